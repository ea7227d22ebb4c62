"""The direct YOLO serving path's letterbox and decoding (clothingrec.serve.yolo_direct), without a model."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clothingrec.serve.yolo_direct import decode, letterbox, letterbox_params


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 2000), w=st.integers(1, 2000), imgsz=st.sampled_from([64, 128, 192, 320, 640]))
def test_letterbox_fits_the_longer_side_and_pads_to_the_stride(h, w, imgsz):
    p = letterbox_params(h, w, imgsz)
    new_w, new_h = p["size"]
    assert max(new_w, new_h) == imgsz or min(new_w, new_h) == 1
    padded_w, padded_h = new_w + p["left"] + p["right"], new_h + p["top"] + p["bottom"]
    assert padded_w % 32 == 0 or padded_w == imgsz
    assert padded_h % 32 == 0 or padded_h == imgsz
    assert padded_w <= imgsz and padded_h <= imgsz and abs(p["left"] - p["right"]) <= 1
    assert p["input"] == (padded_h, padded_w)


@settings(max_examples=100, deadline=None)
@given(h=st.integers(20, 1200), w=st.integers(20, 1200), data=st.data())
def test_a_box_mapped_into_the_input_and_decoded_comes_back(h, w, data):
    """A box in image pixels, put where the letterbox moves it, decodes to itself (up to the rounding)."""
    imgsz = 192
    p = letterbox_params(h, w, imgsz)
    x1, y1 = data.draw(st.floats(0, w - 10)), data.draw(st.floats(0, h - 10))
    x2, y2 = data.draw(st.floats(x1 + 5, w)), data.draw(st.floats(y1 + 5, h))
    ix1, ix2 = x1 * p["scale_x"] + p["left"], x2 * p["scale_x"] + p["left"]
    iy1, iy2 = y1 * p["scale_y"] + p["top"], y2 * p["scale_y"] + p["top"]
    raw = np.zeros((1, 4 + 3, 5), np.float32)
    raw[0, :4, 0] = [(ix1 + ix2) / 2, (iy1 + iy2) / 2, ix2 - ix1, iy2 - iy1]
    raw[0, 4 + 2, 0] = 0.9
    boxes, cls, scores = decode(raw, p, (h, w), conf=0.25, iou=0.7, max_det=100)
    assert cls.tolist() == [2] and np.allclose(scores, 0.9)
    assert np.allclose(boxes[0], [x1, y1, x2, y2], atol=1e-2 * max(h, w) / imgsz + 1e-3)


def test_decode_thresholds_suppresses_per_class_and_caps_the_count():
    p = letterbox_params(100, 100, 100, stride=100)
    raw = np.zeros((1, 4 + 2, 6), np.float32)
    boxes = [(50, 50, 20, 20), (51, 50, 20, 20), (51, 50, 20, 20), (10, 10, 8, 8), (80, 80, 10, 10),
             (30, 30, 10, 10)]
    raw[0, :4] = np.array(boxes, np.float32).T
    raw[0, 4, :] = [0.9, 0.8, 0.0, 0.7, 0.1, 0.6]   # class 0
    raw[0, 5, :] = [0.0, 0.0, 0.85, 0.0, 0.0, 0.0]  # class 1: overlaps box 0 but is another class
    out, cls, scores = decode(raw, p, (100, 100), conf=0.25, iou=0.5, max_det=100)
    # box 1 is suppressed by box 0 (same class), box 2 survives (class 1), box 4 is under the threshold
    kept = sorted(zip(cls.tolist(), np.round(scores.astype(float), 2).tolist()))
    assert kept == [(0, 0.6), (0, 0.7), (0, 0.9), (1, 0.85)]
    assert np.allclose(out[np.argmax(scores)], [40, 40, 60, 60])
    capped = decode(raw, p, (100, 100), conf=0.25, iou=0.5, max_det=2)
    assert np.round(capped[2].astype(float), 2).tolist() == [0.9, 0.85]  # the highest kept
    none = decode(raw, p, (100, 100), conf=0.95, iou=0.5, max_det=100)
    assert none[0].shape == (0, 4) and len(none[1]) == len(none[2]) == 0


def test_letterbox_tensor_is_rgb_in_unit_range_with_grey_padding():
    image = np.zeros((60, 120, 3), np.uint8)
    image[..., 0] = 255  # red
    tensor, p = letterbox(image, 64)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, 32 + p["top"] + p["bottom"] - 0, 64)
    assert p["size"] == (64, 32) and tensor.shape[2] == 32  # 32 is already a stride multiple: no padding
    assert np.allclose(tensor[0, 0], 1.0) and np.allclose(tensor[0, 1:], 0.0)
    tensor, p = letterbox(np.zeros((50, 120, 3), np.uint8), 64)  # 27 rows: padded to 32
    assert tensor.shape[2] == 32 and p["top"] + p["bottom"] == 5 and tensor.shape[2:] == p["input"]
    assert np.allclose(tensor[0, :, 0], 114 / 255)
