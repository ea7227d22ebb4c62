"""Drawing helpers other notebooks import: draw_detections and image_grid."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from clothingrec.plots import class_color, draw_detections, image_grid, to_array  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_draw_detections_on_array_with_everything():
    img = np.zeros((40, 60, 3), np.uint8)
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 5:20, 5:30] = True
    masks[1, 10:30, 30:50] = True
    ax = draw_detections(img, [[5, 5, 30, 20], [30, 10, 50, 30]], [0, 2], scores=[0.9, 0.3], masks=masks,
                         class_names=["top", "skirt", "dress"], polygons=[None, [[30, 10], [50, 10], [50, 30]]])
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 2 and rects[0].get_xy() == (5.0, 5.0) and rects[0].get_width() == 25
    assert rects[1].get_edgecolor()[:3] == pytest.approx(class_color(2))
    assert len([p for p in ax.patches if isinstance(p, Polygon)]) == 1
    assert [t.get_text() for t in ax.texts] == ["top 0.90", "dress 0.30"]
    overlay = ax.get_images()[1].get_array()
    assert overlay.shape == (40, 60, 4) and overlay[10, 10, 3] > 0 and overlay[35, 5, 3] == 0


def test_draw_detections_threshold_torch_like_masks_and_existing_axes():
    import torch  # detectors return tensors
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((20, 20, 3)))
    boxes = torch.tensor([[1.0, 1.0, 10.0, 10.0], [2.0, 2.0, 5.0, 5.0]])
    masks = torch.zeros((2, 1, 20, 20))
    masks[0, 0, 1:10, 1:10] = 0.9
    out = draw_detections(ax, boxes, torch.tensor([1, 0]), scores=torch.tensor([0.8, 0.1]), masks=masks,
                          score_threshold=0.5)
    assert out is ax and len(ax.patches) == 1 and [t.get_text() for t in ax.texts] == ["1 0.80"]


def test_image_grid_and_to_array(tmp_path):
    from PIL import Image

    p = tmp_path / "a.png"
    Image.new("RGB", (16, 8), (255, 0, 0)).save(p)
    assert to_array(p).shape == (8, 16, 3) and to_array(np.ones((4, 4))).dtype == np.uint8
    fig = image_grid([p, np.zeros((8, 8, 3), np.uint8), Image.open(p)],
                     detections=[{"boxes_xyxy": [[1, 1, 4, 4]], "labels": ["x"]}, None, None],
                     titles=["a", "b", "c"], ncols=2)
    axes = fig.axes
    assert len(axes) == 4 and axes[0].get_title() == "a" and len(axes[0].patches) == 1
    assert not axes[3].axison
