"""The two-stage pipeline: crop geometry, mapping back to image coordinates, merging, fallback, evaluation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clothingrec.pipeline import Pipeline, evaluate_modes, latency_summary, nms_per_class, pad_box, to_image_coordinates
from clothingrec.structures import Detections, Predictor

RED = (220, 20, 20)


def scene(height=200, width=300, garments=((120, 70, 160, 120),)):
    """A grey image with red garments (x1, y1, x2, y2 in pixel edges)."""
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    for x1, y1, x2, y2 in garments:
        image[y1:y2, x1:x2] = RED
    return image


class FixedPersons:
    """Person detector stub: always the same boxes (image coordinates)."""

    family = "stub"
    category_names = {1: "person"}

    def __init__(self, boxes, scores=None, labels=None):
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.full(len(self.boxes), 0.9) if scores is None else np.asarray(scores)
        self.labels = np.ones(len(self.boxes)) if labels is None else np.asarray(labels)
        self.calls = 0

    def predict(self, image):
        self.calls += 1
        return Detections(self.boxes, self.labels, self.scores)


class RedFinder:
    """Clothing detector stub that really looks at its input: the extent of the red pixels, label 3."""

    family = "stub"
    category_names = {3: "skirt"}

    def __init__(self, with_masks=False):
        self.inputs = []
        self.with_masks = with_masks

    def predict(self, image):
        self.inputs.append(image.shape)
        red = np.all(image == RED, axis=2)
        if not red.any():
            return Detections.empty(*image.shape[:2], with_masks=self.with_masks)
        rows, cols = np.flatnonzero(red.any(1)), np.flatnonzero(red.any(0))
        box = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        return Detections([box], [3], [0.8], red[None] if self.with_masks else None)


class CropBox:
    """Clothing detector stub returning one fixed box in its *input* (crop) coordinates."""

    family = "stub"
    category_names = {2: "top"}

    def __init__(self, box, label=2, score=0.7):
        self.box, self.label, self.score = box, label, score
        self.inputs = []

    def predict(self, image):
        self.inputs.append(image.shape)
        return Detections([self.box], [self.label], [self.score])


def test_stubs_satisfy_the_predictor_protocol():
    assert isinstance(RedFinder(), Predictor) and isinstance(FixedPersons([[0, 0, 1, 1]]), Predictor)


def test_pad_box_exact_and_clipped():
    # 80 x 120 box, margin 0.1 → 8 px left/right, 12 px top/bottom
    assert pad_box((100, 40, 180, 160), 0.1, 300, 200) == (92, 28, 188, 172)
    # fractional coordinates snap outward
    assert pad_box((10.4, 10.6, 20.2, 30.5), 0.0, 300, 200) == (10, 10, 21, 31)
    # clipped at the image border
    assert pad_box((5, 5, 295, 195), 0.5, 300, 200) == (0, 0, 300, 200)
    with pytest.raises(ValueError, match="non-finite"):
        pad_box((0, 0, float("nan"), 5), 0.1, 300, 200)


def test_crop_box_comes_back_at_exact_image_coordinates():
    person = FixedPersons([[100, 40, 180, 160]])
    clothing = CropBox((10, 20, 30, 40))
    result = Pipeline(person, clothing, margin=0.1).run(scene(), "two-stage")
    assert clothing.inputs == [(144, 96, 3)]  # crop (92, 28)-(188, 172)
    assert result.crops == [(92, 28, 188, 172)]
    assert result.mode_used == "two-stage" and not result.fallback
    np.testing.assert_array_equal(result.detections.boxes_xyxy, [[102, 48, 122, 68]])
    assert result.detections.labels.tolist() == [2]
    np.testing.assert_allclose(result.detections.scores, [0.7])
    np.testing.assert_array_equal(result.person_boxes, [[100, 40, 180, 160]])


def test_known_garment_inside_known_person_is_found_where_it_is():
    image = scene(garments=[(120, 70, 160, 120)])
    person = FixedPersons([[100, 40, 180, 160]])
    clothing = RedFinder()
    pipe = Pipeline(person, clothing, margin=0.1)
    two = pipe.run(image, "two-stage")
    direct = pipe.run(image, "direct")
    np.testing.assert_array_equal(two.detections.boxes_xyxy, [[120, 70, 160, 120]])
    np.testing.assert_array_equal(direct.detections.boxes_xyxy, [[120, 70, 160, 120]])
    assert direct.mode_used == "direct" and not direct.fallback and direct.crops == []
    assert clothing.inputs == [(144, 96, 3), (200, 300, 3)]


def test_boxes_outside_the_crop_are_clipped_to_it():
    det = Detections([[-5, -5, 500, 500]], [1], [0.5])
    back = to_image_coordinates(det, (10, 20, 60, 90), (100, 100))
    np.testing.assert_array_equal(back.boxes_xyxy, [[10, 20, 60, 90]])


def test_masks_are_pasted_back_into_the_image():
    image = scene(garments=[(120, 70, 160, 120)])
    pipe = Pipeline(FixedPersons([[100, 40, 180, 160]]), RedFinder(with_masks=True), margin=0.1)
    result = pipe.run(image, "two-stage")
    assert result.detections.masks.shape == (1, 200, 300)
    expected = np.all(image == RED, axis=2)
    np.testing.assert_array_equal(result.detections.masks[0], expected)


def test_overlapping_crops_are_merged_by_nms_per_class():
    image = scene(garments=[(120, 70, 160, 120)])
    # two overlapping persons both containing the whole garment → one skirt after NMS
    persons = FixedPersons([[100, 40, 180, 160], [110, 50, 190, 170]], scores=[0.9, 0.8])
    clothing = RedFinder()
    result = Pipeline(persons, clothing, margin=0.1).run(image, "two-stage")
    assert len(clothing.inputs) == 2
    assert len(result.crops) == 2
    np.testing.assert_array_equal(result.detections.boxes_xyxy, [[120, 70, 160, 120]])


def test_nms_keeps_different_classes():
    det = Detections([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], [1, 2, 1], [0.9, 0.8, 0.7])
    kept = nms_per_class(det, 0.5)
    assert sorted(kept.labels.tolist()) == [1, 2]
    np.testing.assert_allclose(sorted(kept.scores.tolist()), [0.8, 0.9])


def test_fallback_to_direct_when_no_person_is_found():
    image = scene()
    clothing = RedFinder()
    result = Pipeline(FixedPersons(np.zeros((0, 4))), clothing).run(image, "two-stage")
    assert result.mode_requested == "two-stage"
    assert result.mode_used == "direct" and result.fallback
    assert "no person" in result.fallback_reason
    assert clothing.inputs == [(200, 300, 3)]  # the whole image
    np.testing.assert_array_equal(result.detections.boxes_xyxy, [[120, 70, 160, 120]])
    assert any("fell back to direct" in n for n in result.notes)


def test_low_score_and_wrong_label_persons_do_not_count():
    persons = FixedPersons([[100, 40, 180, 160], [0, 0, 50, 50]], scores=[0.3, 0.95], labels=[1, 2])
    result = Pipeline(persons, RedFinder(), person_score_threshold=0.5).run(scene(), "two-stage")
    assert result.fallback and len(result.person_boxes) == 0
    accept_all = Pipeline(persons, RedFinder(), person_label=None, person_score_threshold=0.2)
    assert len(accept_all.run(scene(), "two-stage").person_boxes) == 2


def test_to_dict_is_json_ready():
    pipe = Pipeline(FixedPersons([[100, 40, 180, 160]]), RedFinder(with_masks=True))
    d = pipe.run(scene(), "two-stage").to_dict(include_masks=True)
    text = json.dumps(d)
    back = json.loads(text)
    assert back["mode_used"] == "two-stage" and back["fallback"] is False
    assert back["detections"][0]["name"] == "skirt"
    assert back["detections"][0]["box"] == [120.0, 70.0, 160.0, 120.0]
    assert back["persons"][0]["crop"] == [92, 28, 188, 172]
    assert set(back["timings_ms"]) == {"person", "clothing", "merge", "total"}
    assert back["detections"][0]["mask_rle"]["size"] == [200, 300]


def test_bad_input_is_named():
    pipe = Pipeline(FixedPersons([]), RedFinder())
    with pytest.raises(ValueError, match="mode"):
        pipe.run(scene(), "sideways")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        pipe.run(np.zeros((10, 10)), "direct")
    with pytest.raises(ValueError, match="margin"):
        Pipeline(FixedPersons([]), RedFinder(), margin=-0.2)


def test_latency_summary():
    s = latency_summary([0.01, 0.02, 0.03, 0.04])
    assert s["median_ms"] == pytest.approx(25.0) and s["n"] == 4
    assert s["p95_ms"] == pytest.approx(38.5)


def test_evaluate_modes_scores_both_modes_with_pycocotools(tmp_path):
    from PIL import Image

    garments = {1: (120, 70, 160, 120), 2: (30, 30, 80, 90)}
    images, anns = [], []
    for image_id, (x1, y1, x2, y2) in garments.items():
        Image.fromarray(scene(garments=[(x1, y1, x2, y2)])).save(tmp_path / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": 200, "width": 300})
        anns.append({"id": image_id, "image_id": image_id, "category_id": 3, "iscrowd": 0,
                     "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 3, "name": "skirt"}]}
    # the person covers image 1's garment but not image 2's: image 2 is a miss in two-stage mode
    pipe = Pipeline(FixedPersons([[100, 40, 180, 160]]), RedFinder(), margin=0.1)
    table, details = evaluate_modes(pipe, gt, tmp_path, warmup=0)
    rows = table.set_index("mode")
    assert rows.loc["direct", "bbox_AP"] == pytest.approx(1.0)
    assert rows.loc["two-stage", "bbox_AP50"] == pytest.approx(0.5, abs=0.01)
    assert rows.loc["two-stage", "persons_found"] == 2 and rows.loc["two-stage", "fallbacks"] == 0
    assert rows.loc["direct", "images"] == 2
    assert np.isfinite(rows.loc["direct", "latency_median_ms"])
    assert len(details["two-stage"]["results"]) == 2


def test_real_torchvision_predictors_plug_in():
    """Untrained torchvision models through the common predictor: boxes stay in their crops, masks image-sized."""
    import torch

    from clothingrec.detect import LIGHT_HEADS, TorchvisionPredictor, build_detector

    torch.manual_seed(0)
    kw = dict(min_size=96, max_size=128, box_detections_per_img=5, **LIGHT_HEADS)
    person = TorchvisionPredictor(build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 2, **kw),
                                  {1: 1}, {1: "person"}, device="cpu")
    clothing = TorchvisionPredictor(build_detector("maskrcnn", "mobilenet_v3_large_fpn", 3, **kw),
                                    {1: 1, 2: 2}, {1: "top", 2: "skirt"}, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    pipe = Pipeline(person, clothing, margin=0.2, person_score_threshold=0.0, max_persons=2)
    result = pipe.run(image, "two-stage")
    assert result.mode_used == "two-stage" and 1 <= len(result.crops) <= 2
    det = result.detections
    assert det.masks is not None and det.masks.shape[1:] == (120, 90)
    assert set(det.labels.tolist()) <= {1, 2}
    x1 = min(c[0] for c in result.crops)
    y1 = min(c[1] for c in result.crops)
    x2 = max(c[2] for c in result.crops)
    y2 = max(c[3] for c in result.crops)
    if len(det):
        assert det.boxes_xyxy[:, 0].min() >= x1 and det.boxes_xyxy[:, 2].max() <= x2
        assert det.boxes_xyxy[:, 1].min() >= y1 and det.boxes_xyxy[:, 3].max() <= y2
        outside = np.ones((120, 90), bool)
        for cx1, cy1, cx2, cy2 in result.crops:
            outside[cy1:cy2, cx1:cx2] = False
        assert not det.masks[:, outside].any()
    direct = pipe.run(image, "direct")
    assert direct.detections.masks.shape[1:] == (120, 90)
    json.dumps(result.to_dict(include_masks=True))
