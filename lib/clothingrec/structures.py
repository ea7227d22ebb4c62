"""Types every task shares, at the bottom of the library (nothing here imports the rest of it).

- :class:`Detections` — one image's detections; :class:`Predictor` — ``predict(image) -> Detections``.
- :class:`Classification` — one crop's class; :class:`Classifier` — ``classify(image)`` and
  ``classify_crops(image, boxes)``.
- :data:`EXPORT_SCORE_THRESHOLD` — the lowest score any predictor exports (COCO evaluation needs the
  low-score tail; displays filter higher).
- :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD` — the normalisation every classifier and backbone uses.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

EXPORT_SCORE_THRESHOLD = 0.001  # the lowest score kept for scoring (AP needs the whole ranking)
#: the lowest score a served detector keeps: a request's threshold filters above it, and an R-CNN's NMS and
#: mask head then run on a few boxes instead of a hundred
SERVE_SCORE_THRESHOLD = 0.05
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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

    def select(self, keep) -> Detections:
        """The detections at ``keep``: a boolean mask or integer indices (in that order)."""
        keep = np.asarray(keep)
        if keep.dtype != bool:
            keep = keep.astype(np.int64).reshape(-1)
        return Detections(self.boxes_xyxy[keep], self.labels[keep], self.scores[keep],
                          None if self.masks is None else self.masks[keep])

    def filter(self, score_threshold: float) -> Detections:
        """Those scoring at least ``score_threshold``."""
        return self.select(self.scores >= score_threshold)

    def top(self, k: int) -> Detections:
        """The ``k`` best-scoring, best first."""
        return self.select(np.argsort(-self.scores, kind="stable")[:max(0, int(k))])

    @classmethod
    def empty(cls, height: int | None = None, width: int | None = None, with_masks: bool = False):
        masks = np.zeros((0, height or 0, width or 0), dtype=bool) if with_masks else None
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), masks)

    @classmethod
    def concatenate(cls, parts: Sequence[Detections], height: int, width: int,
                    with_masks: bool) -> Detections:
        """One image's detections from several parts (missing masks become empty ones)."""
        if not parts:
            return cls.empty(height, width, with_masks=with_masks)
        masks = None
        if with_masks:
            masks = np.concatenate([p.masks if p.masks is not None else np.zeros((len(p), height, width), bool)
                                    for p in parts])
        return cls(np.concatenate([p.boxes_xyxy for p in parts]), np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.scores for p in parts]), masks)


@runtime_checkable
class Predictor(Protocol):
    """``predict(RGB uint8 HxWx3) -> Detections``; ``category_names`` maps COCO id → name."""

    family: str
    category_names: dict[int, str]

    def predict(self, image: np.ndarray) -> Detections: ...


@dataclass(frozen=True)
class Classification:
    """One image's (or crop's) class: the top-1 name, its probability, and every class's probability."""

    label: str
    score: float
    probs: tuple[float, ...] = ()


@runtime_checkable
class Classifier(Protocol):
    """``classify(RGB uint8 HxWx3) -> Classification``; ``classify_crops`` does each box of one image."""

    classes: tuple[str, ...]

    def classify(self, image: np.ndarray) -> Classification: ...

    def classify_crops(self, image: np.ndarray, boxes_xyxy) -> list[Classification]: ...
