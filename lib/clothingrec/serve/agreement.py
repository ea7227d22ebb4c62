"""Does a serving backend give the same answers as eager PyTorch?  Measured, with stated tolerances.

Classifier: top-1 agreement over a set of images and the largest absolute logit difference.
``fp32`` backends must agree on every top-1 and stay within :data:`LOGIT_ATOL` + :data:`LOGIT_RTOL`
× max |logit|; an ``int8`` backend is accepted for serving only when its top-1 agreement is at least
:data:`INT8_MIN_TOP1` (its logit difference is reported, not bounded).

Detector: every eager box above the comparison threshold must find a box of the same label in the
served output at IoU ≥ :data:`BOX_IOU` (greedy, best score first), and vice versa.  The comparison
threshold of an image is ``max(score_threshold, lowest score kept by either side)`` plus a margin (at
most :data:`SCORE_TOL`, see :func:`match_detections`): boxes that sit right at a score or top-k
cut-off may legitimately fall on either side of it, so they are searched for among all boxes of the
other side but not required.  Matched pairs report their score
difference; the backend agrees when both match rates are ≥ :data:`MIN_MATCHED` and the largest score
difference is ≤ :data:`MAX_SCORE_DIFF`.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

LOGIT_ATOL = 1e-3
LOGIT_RTOL = 1e-3
INT8_MIN_TOP1 = 0.99
BOX_IOU = 0.9
SCORE_TOL = 0.02
MIN_MATCHED = 0.95
MAX_SCORE_DIFF = 0.05


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float32)


def classifier_agreement(reference_logits, logits, *, exact: bool = True, atol: float = LOGIT_ATOL,
                         rtol: float = LOGIT_RTOL, min_top1: float = INT8_MIN_TOP1) -> dict:
    """Top-1 agreement and logit differences of ``logits`` against ``reference_logits`` ([N, C])."""
    ref, out = _np(reference_logits), _np(logits)
    if ref.shape != out.shape:
        raise ValueError(f"logit shapes differ: reference {ref.shape}, backend {out.shape}")
    n = int(ref.shape[0])
    same = ref.argmax(axis=1) == out.argmax(axis=1)
    diff = np.abs(ref - out)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    tol = atol + rtol * scale
    top1 = float(same.mean()) if n else float("nan")
    max_diff = float(diff.max()) if diff.size else 0.0
    agrees = bool(n > 0 and (top1 == 1.0 and max_diff <= tol if exact else top1 >= min_top1))
    return {"n": n, "top1_agreement": top1, "top1_mismatches": int((~same).sum()),
            "max_abs_logit_diff": max_diff, "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
            "max_abs_logit": scale, "criterion": (f"top-1 identical and max |Δlogit| ≤ {tol:.3g} "
                                                  f"({atol:g} + {rtol:g}×max|logit|)" if exact
                                                  else f"top-1 agreement ≥ {min_top1:g}"),
            "agrees": agrees}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two (N, 4) / (M, 4) xyxy box arrays."""
    from torchvision.ops import box_iou as _iou

    return _iou(torch.as_tensor(a, dtype=torch.float32).reshape(-1, 4),
                torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)).numpy()


def _greedy_match(src, dst, iou_threshold: float, required: np.ndarray):
    """For each required box of ``src`` (best score first) the best unused same-label ``dst`` box."""
    iou = box_iou(src.boxes_xyxy, dst.boxes_xyxy) if len(src) and len(dst) else np.zeros((len(src), len(dst)))
    used = np.zeros(len(dst), dtype=bool)
    matched, score_diffs, ious = 0, [], []
    for i in np.argsort(-src.scores, kind="stable"):
        if not required[i]:
            continue
        candidates = np.flatnonzero((dst.labels == src.labels[i]) & ~used & (iou[i] >= iou_threshold)) \
            if len(dst) else np.zeros(0, dtype=int)
        if len(candidates) == 0:
            continue
        j = candidates[np.argmax(iou[i, candidates])]
        used[j] = True
        matched += 1
        score_diffs.append(abs(float(src.scores[i]) - float(dst.scores[j])))
        ious.append(float(iou[i, j]))
    return matched, score_diffs, ious


def match_detections(reference, other, *, iou_threshold: float = BOX_IOU, score_threshold: float = 0.0,
                     score_tol: float = SCORE_TOL, capacity: int | None = None) -> dict:
    """Compare two :class:`~clothingrec.structures.Detections` of the same image (see module doc).

    The margin above the cut-off is ``min(score_tol, max(4 δ, 1e-4))`` where δ is the largest score
    difference of boxes matched without any threshold: a backend that moves scores by 1e-6 is
    compared on nearly every box, one that moves them by 0.01 leaves out the boxes within 0.04 of
    the cut-off.
    """
    # a side's lowest score is a cut-off only when its output may have been truncated (top-k):
    # always when ``capacity`` (the detector's max detections per image) is unknown
    lows = [float(d.scores.min()) for d in (reference, other) if len(d) and (capacity is None or len(d) >= capacity)]
    _, all_diffs, _ = _greedy_match(reference, other, iou_threshold, np.ones(len(reference), dtype=bool))
    delta = max(all_diffs) if all_diffs else score_tol
    margin = min(score_tol, max(4.0 * delta, 1e-4))
    threshold = max([score_threshold] + lows) + margin
    need_ref = reference.scores >= threshold
    need_other = other.scores >= threshold
    m_ref, diffs, ious = _greedy_match(reference, other, iou_threshold, need_ref)
    m_other, diffs2, _ = _greedy_match(other, reference, iou_threshold, need_other)
    return {"threshold": threshold, "margin": margin, "reference_boxes": int(need_ref.sum()),
            "matched_reference": m_ref, "backend_boxes": int(need_other.sum()), "matched_backend": m_other,
            "score_diffs": diffs + diffs2, "ious": ious}


def detector_agreement(per_image: Iterable[tuple], *, iou_threshold: float = BOX_IOU,
                       score_threshold: float = 0.0, score_tol: float = SCORE_TOL, capacity: int | None = None,
                       min_matched: float = MIN_MATCHED, max_score_diff: float = MAX_SCORE_DIFF) -> dict:
    """Aggregate :func:`match_detections` over ``(reference, backend)`` Detections pairs."""
    ref_n = ref_m = oth_n = oth_m = images = 0
    diffs, ious = [], []
    for reference, other in per_image:
        r = match_detections(reference, other, iou_threshold=iou_threshold, score_threshold=score_threshold,
                             score_tol=score_tol, capacity=capacity)
        images += 1
        ref_n += r["reference_boxes"]
        ref_m += r["matched_reference"]
        oth_n += r["backend_boxes"]
        oth_m += r["matched_backend"]
        diffs += r["score_diffs"]
        ious += r["ious"]
    recall = ref_m / ref_n if ref_n else float("nan")
    precision = oth_m / oth_n if oth_n else float("nan")
    max_diff = max(diffs) if diffs else 0.0
    compared = ref_n + oth_n
    agrees = bool(images > 0 and (compared == 0 or (recall >= min_matched and precision >= min_matched
                                                     and max_diff <= max_score_diff)))
    return {"images": images, "reference_boxes": ref_n, "matched_reference": ref_m, "backend_boxes": oth_n,
            "matched_backend": oth_m, "recall": recall, "precision": precision,
            "max_score_diff": float(max_diff), "mean_iou": float(np.mean(ious)) if ious else float("nan"),
            "min_iou": float(np.min(ious)) if ious else float("nan"),
            "criterion": (f"same-label boxes matched at IoU ≥ {iou_threshold:g} both ways for ≥ "
                          f"{min_matched:.0%} of boxes scoring ≥ cut-off + {score_tol:g}; "
                          f"max |Δscore| ≤ {max_score_diff:g}"),
            "agrees": agrees}
