"""The two-stage clothing pipeline: person detector → padded person crops → clothing detector.

Two modes over one image (RGB uint8, H×W×3):

- ``direct``: the clothing detector on the whole image.
- ``two-stage``: the person detector finds people; each person box is padded by ``margin`` (a
  fraction of the box's width and height on every side), clipped to the image, snapped outward to
  whole pixels and cropped; the clothing detector runs on each crop; its boxes (and masks) are moved
  back to image coordinates by the crop's integer offset, then merged across overlapping crops by
  non-maximum suppression per class.  When no person is found the pipeline falls back to ``direct``
  and says so (``fallback=True``, ``fallback_reason``).

Any detector that implements :class:`clothingrec.structures.Predictor` plugs in (torchvision
Faster/Mask R-CNN, ultralytics YOLO, or a stub in tests)::

    pipe = Pipeline(person_predictor, clothing_predictor, margin=0.1)
    result = pipe.run(image, mode="two-stage")
    result.detections          # Detections in image coordinates
    result.mode_used, result.fallback, result.timings, result.person_boxes
    result.to_dict()           # JSON-ready (the web demo sends it as is)

:func:`evaluate_modes` scores several modes on the same COCO split with the shared pycocotools
evaluation and measures per-image latency in the same run.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clothingrec.structures import Detections

MODES = ("direct", "two-stage")


# ---------------------------------------------------------------- geometry
def pad_box(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Pad ``(x1, y1, x2, y2)`` by ``margin`` × its size on each side, clip, snap outward to integers.

    The result is the crop window ``image[y1:y2, x1:x2]``: integer pixel edges inside the image
    (``0 ≤ x1 < x2 ≤ width``).  A negative margin shrinks the box.
    """
    if not math.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError(f"person box {box!r} has a non-finite coordinate")
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    cx1 = max(0, min(width, math.floor(x1 - dx)))
    cy1 = max(0, min(height, math.floor(y1 - dy)))
    cx2 = max(0, min(width, math.ceil(x2 + dx)))
    cy2 = max(0, min(height, math.ceil(y2 + dy)))
    return cx1, cy1, cx2, cy2


def to_image_coordinates(det: Detections, crop: tuple[int, int, int, int],
                         image_hw: tuple[int, int]) -> Detections:
    """Move detections made on ``image[y1:y2, x1:x2]`` back to the full image.

    Boxes are shifted by ``(x1, y1)`` and clipped to the crop window (a detector may return boxes a
    little outside its input); masks are pasted into an image-sized canvas.
    """
    x1, y1, x2, y2 = crop
    boxes = det.boxes_xyxy.astype(np.float32).copy()
    if len(boxes):
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, x2 - x1) + x1
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, y2 - y1) + y1
    masks = None
    if det.masks is not None:
        h, w = image_hw
        masks = np.zeros((len(det), h, w), dtype=bool)
        if len(det):
            crop_masks = np.asarray(det.masks, dtype=bool)
            if crop_masks.shape[1:] != (y2 - y1, x2 - x1):
                raise ValueError(f"clothing detector returned masks of shape {crop_masks.shape[1:]} for a "
                                 f"crop of {(y2 - y1, x2 - x1)} (masks must be in input-image pixels)")
            masks[:, y1:y2, x1:x2] = crop_masks
    return Detections(boxes, det.labels.copy(), det.scores.copy(), masks)


def nms_per_class(det: Detections, iou_threshold: float) -> Detections:
    """Non-maximum suppression within each class (torchvision ``batched_nms``), best score first."""
    if len(det) == 0:
        return det
    import torch
    from torchvision.ops import batched_nms

    keep = batched_nms(torch.as_tensor(det.boxes_xyxy, dtype=torch.float32),
                       torch.as_tensor(det.scores, dtype=torch.float32),
                       torch.as_tensor(det.labels, dtype=torch.int64), float(iou_threshold)).numpy()
    return det.select(keep)


# ---------------------------------------------------------------- result
@dataclass
class PipelineResult:
    """One image through the pipeline.  Boxes are ``(x1, y1, x2, y2)`` in image pixels."""

    detections: Detections
    mode_requested: str
    mode_used: str
    fallback: bool
    fallback_reason: str | None
    person_boxes: np.ndarray  # (P, 4) persons kept (after score threshold), image coordinates
    person_scores: np.ndarray  # (P,)
    crops: list[tuple[int, int, int, int]]  # the padded, clipped crop windows, one per person
    timings: dict[str, float]  # seconds: person, clothing, merge, total
    image_size: tuple[int, int]  # (height, width)
    category_names: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self, *, score_threshold: float = 0.0, include_masks: bool = False) -> dict:
        """A JSON-ready dict (plain lists and floats).  Masks as COCO RLE when ``include_masks``."""
        det = self.detections.filter(score_threshold) if score_threshold > 0 else self.detections
        items = []
        for i in range(len(det)):
            label = int(det.labels[i])
            item = {"box": [round(float(v), 2) for v in det.boxes_xyxy[i]], "label": label,
                    "name": self.category_names.get(label, str(label)), "score": round(float(det.scores[i]), 4)}
            if include_masks and det.masks is not None:
                from clothingrec.evaluate import encode_mask

                item["mask_rle"] = encode_mask(det.masks[i])
            items.append(item)
        return {
            "mode_requested": self.mode_requested, "mode_used": self.mode_used,
            "fallback": bool(self.fallback), "fallback_reason": self.fallback_reason,
            "image_size": {"height": int(self.image_size[0]), "width": int(self.image_size[1])},
            "persons": [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4),
                         "crop": [int(v) for v in c]}
                        for b, s, c in zip(self.person_boxes, self.person_scores, self.crops)],
            "detections": items,
            "timings_ms": {k: round(1000.0 * v, 2) for k, v in self.timings.items()},
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- the pipeline
class Pipeline:
    """Person detector → padded crops → clothing detector → image coordinates → per-class NMS.

    ``person_predictor`` and ``clothing_predictor``: anything with ``predict(image) -> Detections``
    (and ``category_names``).  ``person_label``: the category id of "person" in the person
    detector's output (1 for our one-class detectors; ``None`` keeps every label).
    ``person_score_threshold``: persons below it are ignored.  ``max_persons``: at most this many
    crops, best score first.  ``merge_iou``: IoU for the per-class NMS across crops.
    ``min_crop_size``: crops narrower or lower than this many pixels are skipped (noted).
    """

    def __init__(self, person_predictor, clothing_predictor, margin: float = 0.1, *,
                 person_label: int | None = 1, person_score_threshold: float = 0.5, max_persons: int = 10,
                 merge_iou: float = 0.5, min_crop_size: int = 8):
        if clothing_predictor is None:
            raise ValueError("a clothing predictor is required")
        if margin < 0:
            raise ValueError(f"margin must be ≥ 0 (fraction of the person box), got {margin}")
        if not 0.0 <= person_score_threshold <= 1.0:
            raise ValueError(f"person_score_threshold must be in [0, 1], got {person_score_threshold}")
        self.person_predictor = person_predictor
        self.clothing_predictor = clothing_predictor
        self.margin = float(margin)
        self.person_label = person_label
        self.person_score_threshold = float(person_score_threshold)
        self.max_persons = int(max_persons)
        self.merge_iou = float(merge_iou)
        self.min_crop_size = int(min_crop_size)

    @property
    def category_names(self) -> dict[int, str]:
        return dict(getattr(self.clothing_predictor, "category_names", {}) or {})

    def describe(self) -> dict:
        return {"margin": self.margin, "person_label": self.person_label,
                "person_score_threshold": self.person_score_threshold, "max_persons": self.max_persons,
                "merge_iou": self.merge_iou, "min_crop_size": self.min_crop_size,
                "person_family": getattr(self.person_predictor, "family", None),
                "clothing_family": getattr(self.clothing_predictor, "family", None)}

    @staticmethod
    def _check_image(image) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"pipeline input must be an RGB image of shape (H, W, 3), got {image.shape}")
        return image

    def persons(self, image: np.ndarray) -> Detections:
        """The person detector's boxes kept by label, score threshold and ``max_persons``."""
        det = self.person_predictor.predict(image)
        keep = det.scores >= self.person_score_threshold
        if self.person_label is not None:
            keep &= det.labels == self.person_label
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-det.scores[idx], kind="stable")][: self.max_persons]
        return det.select(idx)

    def run(self, image: np.ndarray, mode: str = "two-stage") -> PipelineResult:
        if mode not in MODES:
            raise ValueError(f"unknown pipeline mode {mode!r}; choose one of {MODES}")
        image = self._check_image(image)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        timings = {"person": 0.0, "clothing": 0.0, "merge": 0.0}
        notes: list[str] = []
        empty_persons = np.zeros((0, 4), dtype=np.float32)
        if mode == "direct":
            t = time.perf_counter()
            det = self.clothing_predictor.predict(image)
            timings["clothing"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t0
            return PipelineResult(det, mode, "direct", False, None, empty_persons, np.zeros(0, np.float32), [],
                                  timings, (h, w), self.category_names, notes)

        t = time.perf_counter()
        people = self.persons(image)
        timings["person"] = time.perf_counter() - t
        crops, kept = [], []
        for i, box in enumerate(people.boxes_xyxy):
            crop = pad_box(box, self.margin, w, h)
            if crop[2] - crop[0] < self.min_crop_size or crop[3] - crop[1] < self.min_crop_size:
                notes.append(f"person {i} crop {crop} is smaller than {self.min_crop_size} px: skipped")
                continue
            crops.append(crop)
            kept.append(i)
        person_boxes, person_scores = people.boxes_xyxy[kept], people.scores[kept]
        if not crops:
            reason = (f"no person detected with score ≥ {self.person_score_threshold:g}" if len(people) == 0
                      else "every person crop was too small")
            t = time.perf_counter()
            det = self.clothing_predictor.predict(image)
            timings["clothing"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t0
            notes.append(f"fell back to direct: {reason}")
            return PipelineResult(det, mode, "direct", True, reason, person_boxes, person_scores, [],
                                  timings, (h, w), self.category_names, notes)

        parts, with_masks = [], False
        t = time.perf_counter()
        for crop in crops:
            x1, y1, x2, y2 = crop
            det = self.clothing_predictor.predict(np.ascontiguousarray(image[y1:y2, x1:x2]))
            with_masks = with_masks or det.masks is not None
            parts.append(to_image_coordinates(det, crop, (h, w)))
        timings["clothing"] = time.perf_counter() - t
        t = time.perf_counter()
        merged = Detections.concatenate(parts, h, w, with_masks)
        if len(crops) > 1:
            merged = nms_per_class(merged, self.merge_iou)
        merged = merged.top(len(merged))
        timings["merge"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return PipelineResult(merged, mode, "two-stage", False, None, person_boxes, person_scores, crops,
                              timings, (h, w), self.category_names, notes)


class ModePredictor:
    """A pipeline mode seen as a :class:`~clothingrec.structures.Predictor`, recording each result.

    Lets the shared evaluation (:func:`clothingrec.evaluate.predict_coco`) score a pipeline mode
    exactly as it scores a single detector; ``results`` keeps every :class:`PipelineResult`.
    """

    def __init__(self, pipeline: Pipeline, mode: str):
        if mode not in MODES:
            raise ValueError(f"unknown pipeline mode {mode!r}; choose one of {MODES}")
        self.pipeline, self.mode = pipeline, mode
        self.family = f"pipeline:{mode}"
        self.category_names = pipeline.category_names
        self.results: list[PipelineResult] = []

    def predict(self, image: np.ndarray) -> Detections:
        result = self.pipeline.run(image, self.mode)
        self.results.append(result)
        return result.detections


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """Median, 95th percentile and mean of per-image latencies, in milliseconds."""
    if not seconds:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return {"median_ms": float(statistics.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": int(len(ms))}


def evaluate_modes(pipeline: Pipeline, gt, image_dir, *, modes=MODES, max_images: int | None = None,
                   warmup: int = 1):
    """Score each mode on the same COCO split (pycocotools, shared evaluation) and time it.

    Returns ``(table, details)``: ``table`` a DataFrame with one row per mode (bbox AP, AP50, segm AP
    when masks, median/p95/mean latency per image, persons found, fallbacks) and ``details[mode]`` =
    ``{"evals", "run", "results"}``.  Modes run one after the other over the same images in this
    process, after ``warmup`` unscored passes over the first image (so lazy initialisation does
    not land on one mode).
    """
    import pandas as pd

    from clothingrec.evaluate import evaluate_predictions, load_coco, predict_coco, read_image

    coco_gt = load_coco(gt)
    images = sorted(coco_gt.dataset["images"], key=lambda im: im["id"])
    if max_images is not None:
        images = images[:max_images]
    ids = [im["id"] for im in images]
    if warmup and images:
        try:
            first = read_image(Path(image_dir) / images[0]["file_name"])
            for _ in range(warmup):
                for mode in modes:
                    pipeline.run(first, mode)
        except OSError:
            pass  # unreadable first image: predict_coco reports it
    rows, details = [], {}
    for mode in modes:
        predictor = ModePredictor(pipeline, mode)
        run = predict_coco(predictor, coco_gt, image_dir, max_images=max_images)
        evals = evaluate_predictions(coco_gt, run.results, image_ids=ids)
        lat = latency_summary([r.timings["total"] for r in predictor.results])
        row = {"mode": mode, "images": len(predictor.results),
               "bbox_AP": evals["bbox"].stats["AP"], "bbox_AP50": evals["bbox"].stats["AP50"]}
        if "segm" in evals:
            row.update({"segm_AP": evals["segm"].stats["AP"], "segm_AP50": evals["segm"].stats["AP50"]})
        row.update({"latency_median_ms": lat["median_ms"], "latency_p95_ms": lat["p95_ms"],
                    "latency_mean_ms": lat["mean_ms"],
                    "persons_found": int(sum(len(r.person_boxes) for r in predictor.results)),
                    "fallbacks": int(sum(r.fallback for r in predictor.results)),
                    "skipped_images": len(run.skipped)})
        rows.append(row)
        details[mode] = {"evals": evals, "run": run, "results": predictor.results}
    return pd.DataFrame(rows), details



def plot_modes(images: list[np.ndarray], results: dict[str, list[PipelineResult]], *,
               score_threshold: float = 0.3, titles: list[str] | None = None, max_labels: int = 12):
    """One column per image, one row per mode: clothing boxes (red), person boxes (blue), crops (dashed)."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    modes = list(results)
    fig, axes = plt.subplots(len(modes), len(images), figsize=(3.2 * len(images), 3.6 * len(modes)),
                             squeeze=False)
    for r, mode in enumerate(modes):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image)
            ax.axis("off")
            res = results[mode][c]
            for crop in res.crops:
                x1, y1, x2, y2 = crop
                ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="tab:cyan",
                                               linestyle="--", linewidth=1))
            for box in res.person_boxes:
                x1, y1, x2, y2 = box
                ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="tab:blue",
                                               linewidth=1.2))
            det = res.detections.filter(score_threshold)
            for i in range(min(len(det), max_labels)):
                x1, y1, x2, y2 = det.boxes_xyxy[i]
                ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="tab:red",
                                               linewidth=1.2))
                name = res.category_names.get(int(det.labels[i]), str(int(det.labels[i])))
                ax.text(x1, y1, f"{name} {det.scores[i]:.2f}", color="white", fontsize=6, va="bottom",
                        bbox={"facecolor": "tab:red", "alpha": 0.7, "pad": 0.5, "linewidth": 0})
            label = res.mode_used + (" (fallback)" if res.fallback else "")
            head = f"{titles[c]}\n" if titles else ""
            ax.set_title(f"{head}{mode}: {label}, {len(det)} ≥ {score_threshold:g}", fontsize=7)
    fig.suptitle("clothing (red) · person (blue) · padded crop (dashed)", fontsize=9)
    fig.tight_layout()
    return fig
