"""The common predictor interface every detector family implements."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Detections:
    """Detections of one image, in that image's pixel coordinates.

    ``boxes_xyxy`` (N, 4) float, ``labels`` (N,) int COCO category ids (YOLO class id + 1),
    ``scores`` (N,) float, ``masks`` (N, H, W) bool or None for box-only models.
    """

    boxes_xyxy: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self):
        self.boxes_xyxy = np.asarray(self.boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not (len(self.boxes_xyxy) == len(self.labels) == len(self.scores)):
            raise ValueError(
                f"Detections: boxes ({len(self.boxes_xyxy)}), labels ({len(self.labels)}) and "
                f"scores ({len(self.scores)}) differ in length"
            )
        if self.masks is not None:
            self.masks = np.asarray(self.masks).astype(bool)
            if len(self.masks) != len(self.scores):
                raise ValueError(f"Detections: {len(self.masks)} masks for {len(self.scores)} boxes")

    def __len__(self) -> int:
        return len(self.scores)

    def filter(self, score_threshold: float) -> "Detections":
        keep = self.scores >= score_threshold
        return Detections(self.boxes_xyxy[keep], self.labels[keep], self.scores[keep],
                          None if self.masks is None else self.masks[keep])

    @classmethod
    def empty(cls, height: int | None = None, width: int | None = None, with_masks: bool = False):
        masks = np.zeros((0, height or 0, width or 0), dtype=bool) if with_masks else None
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), masks)


@runtime_checkable
class Predictor(Protocol):
    """``predict(RGB uint8 HxWx3) -> Detections``; ``category_names`` maps COCO id → name."""

    family: str
    category_names: dict[int, str]

    def predict(self, image: np.ndarray) -> Detections: ...
