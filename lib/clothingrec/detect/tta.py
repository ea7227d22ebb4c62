"""Horizontal-flip test-time augmentation over any detector predictor.

:class:`FlipTTAPredictor` runs the wrapped predictor on the image and on its mirror image, maps the
mirrored detections back, and merges the two sets by per-class NMS at the detector's own NMS IoU
(torchvision R-CNN ``roi_heads.nms_thresh``, ultralytics ``iou``, detectron2 ``NMS_THRESH_TEST``),
keeping at most ``max_detections``. It costs two forward passes; whether it pays is a setting to
choose on val, like a checkpoint (``evaluate_run(run, tta=True)``, notebook 06's ``tta``).
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms

from clothingrec.structures import Detections

#: the merge IoU where a predictor does not say its own
DEFAULT_NMS_IOU = 0.5


def nms_iou(predictor) -> float:
    """The IoU at which ``predictor``'s detector suppresses duplicates."""
    heads = getattr(getattr(predictor, "model", None), "roi_heads", None)
    if heads is not None and hasattr(heads, "nms_thresh"):
        return float(heads.nms_thresh)
    cfg = getattr(predictor, "cfg", None)
    if cfg is not None and hasattr(cfg, "MODEL"):
        return float(cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST)
    return float(getattr(predictor, "iou", DEFAULT_NMS_IOU))


def mirror(det: Detections, width: int) -> Detections:
    """Detections of a left-right mirrored image mapped back onto the original (``width`` pixels wide)."""
    boxes = det.boxes_xyxy.copy()
    boxes[:, [0, 2]] = width - det.boxes_xyxy[:, [2, 0]]
    masks = det.masks[:, :, ::-1] if det.masks is not None else None
    return Detections(boxes, det.labels, det.scores, masks)


class FlipTTAPredictor:
    """``predictor`` on the image and its mirror image, merged (see the module doc).

    Everything else (``category_names``, ``family``, ``imgsz``, …) is the wrapped predictor's."""

    tta = "hflip"

    def __init__(self, predictor, *, iou: float | None = None, max_detections: int = 100):
        self.predictor = predictor
        self.iou = nms_iou(predictor) if iou is None else float(iou)
        if not 0.0 < self.iou <= 1.0:
            raise ValueError(f"merge IoU must be in (0, 1], got {self.iou}")
        self.max_detections = int(max_detections)

    def __getattr__(self, name):
        if name == "predictor":  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def predict(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        plain = self.predictor.predict(image)
        flipped = mirror(self.predictor.predict(np.ascontiguousarray(image[:, ::-1])), image.shape[1])
        both = [plain, flipped]
        boxes = torch.from_numpy(np.concatenate([d.boxes_xyxy for d in both]))
        scores = torch.from_numpy(np.concatenate([d.scores for d in both]))
        labels = torch.from_numpy(np.concatenate([d.labels for d in both]))
        keep = batched_nms(boxes, scores, labels, self.iou)[: self.max_detections].numpy()
        masks = None
        if plain.masks is not None and flipped.masks is not None:
            masks = np.concatenate([plain.masks, flipped.masks])[keep]
        return Detections(boxes.numpy()[keep], labels.numpy()[keep], scores.numpy()[keep], masks)
