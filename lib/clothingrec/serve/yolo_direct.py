"""A thin ONNX Runtime serving path for ultralytics YOLO detectors: the exported model called directly.

ultralytics' ``predict`` wraps its three stages (letterbox, forward, NMS) in a general machinery (sources,
streams, callbacks, ``Results`` objects) that costs about as much as the forward of a small model at a
small input on a CPU.  :class:`DirectYoloPredictor` runs the same three stages itself on the model
ultralytics exports (:func:`clothingrec.serve.detector.export_yolo_onnx`, dynamic axes):

- letterbox: scale the longer side to ``imgsz`` (bilinear), pad the shorter to the next multiple of the
  stride with grey 114 — the minimal padding ultralytics uses for a dynamic model —, RGB in [0, 1]; kept
  even where the resize ends a pixel past a stride multiple: resizing onto the multiple instead saves a
  stride of padding but moved scores by up to 0.2 against eager, which the agreement check refuses;
- forward: one ONNX Runtime session with the stated thread count; output ``(1, 4 + classes, anchors)``,
  boxes as centre / size in input pixels, class scores after the sigmoid;
- NMS: each anchor's best class and its score above ``conf``, per-class NMS at ``iou``
  (:func:`clothingrec.pipeline.nms_per_class`, the pipeline's one NMS rule), the ``max_det`` highest kept,
  boxes mapped back to the image.

It has the :class:`~clothingrec.detect.yolo.YoloPredictor` interface (``predict(RGB image) ->
Detections``, ``category_ids`` / ``category_names``, ``imgsz``, ``conf``, ``iou``, ``max_det``) and is
one more candidate of :func:`clothingrec.serve.detector.fastest_predictor`, served only when its boxes
agree with eager's.  Detection models only: a ``-seg`` model's masks need ultralytics' mask decoding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clothingrec.structures import Detections

PAD_VALUE = 114


def letterbox_params(height: int, width: int, imgsz: int, stride: int = 32) -> dict:
    """Scale and padding that fit an ``height`` × ``width`` image into ``imgsz`` with minimal stride padding."""
    gain = min(imgsz / height, imgsz / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    pad_w, pad_h = (imgsz - new_w) % stride / 2, (imgsz - new_h) % stride / 2
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    # the resize's exact scale per axis (the rounded size over the original) maps boxes back
    return {"gain": gain, "scale_x": new_w / width, "scale_y": new_h / height, "size": (new_w, new_h),
            "top": top, "bottom": bottom, "left": left, "right": right,
            "input": (new_h + top + bottom, new_w + left + right)}  # the network input (height, width)


def letterbox(image: np.ndarray, imgsz: int, stride: int = 32) -> tuple[np.ndarray, dict]:
    """``(float32 [1, 3, H, W] RGB in [0, 1], params)`` for an RGB uint8 image (H, W, 3)."""
    import cv2

    p = letterbox_params(image.shape[0], image.shape[1], imgsz, stride)
    if (image.shape[1], image.shape[0]) != p["size"]:
        image = cv2.resize(image, p["size"], interpolation=cv2.INTER_LINEAR)
    if p["top"] or p["bottom"] or p["left"] or p["right"]:
        image = cv2.copyMakeBorder(image, p["top"], p["bottom"], p["left"], p["right"], cv2.BORDER_CONSTANT,
                                   value=(PAD_VALUE,) * 3)
    tensor = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    tensor *= 1 / 255
    return tensor, p


def decode(raw: np.ndarray, params: dict, shape: tuple[int, int], *, conf: float, iou: float,
           max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes xyxy in image pixels, class indices, scores)`` from the model's ``(1, 4 + C, A)`` output."""
    from clothingrec.pipeline import nms_per_class

    pred = raw[0].T  # (anchors, 4 + classes)
    cls_scores = pred[:, 4:]
    cls = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(cls)), cls]
    keep = scores > conf
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    xywh = pred[keep, :4]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    kept = nms_per_class(Detections(boxes, cls[keep], scores[keep]), iou).top(max_det)  # best score first
    boxes, cls, scores = kept.boxes_xyxy.astype(np.float32), kept.labels, kept.scores
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - params["left"]) / params["scale_x"]
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - params["top"]) / params["scale_y"]
    h, w = shape
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes, cls.astype(np.int64), scores


class DirectYoloPredictor:
    """An exported YOLO detector in ONNX Runtime with its own letterbox and NMS (see the module doc)."""

    family = "yolo"
    task = "detect"

    def __init__(self, onnx_path, *, imgsz: int, category_ids, category_names: dict, conf: float, iou: float,
                 max_det: int, threads: int | None = None, stride: int = 32):
        from clothingrec.serve.onnx import ort_session

        self.weights = Path(onnx_path)
        self.session = ort_session(self.weights, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.category_ids = list(category_ids)
        self.category_names = dict(category_names)
        self.imgsz, self.conf, self.iou, self.max_det, self.stride = int(imgsz), conf, iou, max_det, stride
        self.device = "cpu"

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, dict]:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        return letterbox(np.ascontiguousarray(image, dtype=np.uint8), self.imgsz, self.stride)

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor})[0]

    def postprocess(self, raw: np.ndarray, params: dict, shape: tuple[int, int]) -> Detections:
        boxes, cls, scores = decode(raw, params, shape, conf=self.conf, iou=self.iou, max_det=self.max_det)
        if len(boxes) == 0:
            return Detections.empty(*shape, with_masks=False)
        if cls.max() >= len(self.category_ids):
            raise ValueError(f"{self.weights}: the model predicts class {int(cls.max())}, "
                             f"its categories are {self.category_ids}")
        labels = np.array([self.category_ids[c] for c in cls])
        return Detections(boxes.astype(np.float32), labels, scores.astype(np.float32), None)

    def predict(self, image: np.ndarray) -> Detections:
        tensor, params = self.preprocess(image)
        return self.postprocess(self.forward(tensor), params, image.shape[:2])


def yolo_direct_backend(predictor, workdir=None, threads: int | None = None) -> DirectYoloPredictor:
    """The direct ONNX Runtime path of an eager :class:`~clothingrec.detect.yolo.YoloPredictor`."""
    from clothingrec.serve.detector import export_yolo_onnx

    if getattr(predictor, "task", "detect") != "detect":
        raise ValueError(f"the direct path serves detection models; {predictor.weights} is a "
                         f"{predictor.task} model (ultralytics decodes its masks)")
    path = export_yolo_onnx(predictor.weights, predictor.imgsz, workdir)
    stride = int(max(getattr(getattr(predictor.model, "model", None), "stride", torch.tensor([32])).tolist()))
    return DirectYoloPredictor(path, imgsz=predictor.imgsz, category_ids=predictor.category_ids,
                               category_names=predictor.category_names, conf=predictor.conf, iou=predictor.iou,
                               max_det=predictor.max_det, threads=threads, stride=stride)


__all__ = ["DirectYoloPredictor", "letterbox", "letterbox_params", "decode", "yolo_direct_backend"]
