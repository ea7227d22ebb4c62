"""From predictor outputs to COCO results, a confusion matrix, metrics.json and the results table.

Predictors (``clothingrec.detect.Predictor``) return ``Detections`` with ``boxes_xyxy`` (N, 4)
in image pixels, ``labels`` (N,) COCO category ids, ``scores`` (N,) and optional ``masks``
(N, H, W) bool.  Everything here only relies on those attribute names.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clothingrec.evaluate.coco import CocoEvalResult, coco_evaluate, load_coco
from clothingrec.structures import EXPORT_SCORE_THRESHOLD  # noqa: F401  (re-exported)


def encode_mask(mask: np.ndarray) -> dict:
    """A bool (H, W) mask as a COCO RLE with a JSON-friendly string ``counts``."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def detections_to_results(image_id: int, det, *, score_threshold: float = EXPORT_SCORE_THRESHOLD,
                          with_masks: bool = True) -> list[dict]:
    """One image's ``Detections`` → COCO result dicts (bbox as [x, y, w, h])."""
    boxes = np.asarray(det.boxes_xyxy, dtype=float).reshape(-1, 4)
    labels = np.asarray(det.labels).reshape(-1)
    scores = np.asarray(det.scores, dtype=float).reshape(-1)
    masks = getattr(det, "masks", None)
    out = []
    for i in range(len(scores)):
        if scores[i] < score_threshold:
            continue
        x1, y1, x2, y2 = boxes[i]
        r = {"image_id": int(image_id), "category_id": int(labels[i]),
             "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(scores[i])}
        if with_masks and masks is not None:
            r["segmentation"] = encode_mask(np.asarray(masks[i]).astype(bool))
        out.append(r)
    return out


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array; raises naming the file when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


@dataclass
class PredictionRun:
    """Predictions of one predictor over a COCO split."""

    results: list[dict]
    per_image: dict[int, object] = field(default_factory=dict)  # image_id -> Detections
    seconds_per_image: float = float("nan")
    skipped: list[str] = field(default_factory=list)


def predict_coco(predictor, gt, image_dir, *, max_images: int | None = None,
                 score_threshold: float = EXPORT_SCORE_THRESHOLD, keep_detections: bool = True,
                 with_masks: bool | None = None) -> PredictionRun:
    """Run ``predictor.predict`` on every image of the COCO split ``gt`` (files under ``image_dir``).

    Unreadable images are skipped and listed in ``skipped`` (they still count as missed ground truth
    in the evaluation).  ``with_masks=None`` exports masks when the predictor returns them.
    """
    coco_gt = load_coco(gt)
    image_dir = Path(image_dir)
    images = sorted(coco_gt.dataset["images"], key=lambda im: im["id"])
    if max_images is not None:
        images = images[:max_images]
    run = PredictionRun(results=[])
    elapsed, n = 0.0, 0
    for info in images:
        path = image_dir / info["file_name"]
        try:
            image = read_image(path)
        except OSError as exc:
            run.skipped.append(str(exc))
            continue
        start = time.perf_counter()
        det = predictor.predict(image)
        elapsed += time.perf_counter() - start
        n += 1
        masks_here = with_masks if with_masks is not None else getattr(det, "masks", None) is not None
        run.results.extend(detections_to_results(info["id"], det, score_threshold=score_threshold,
                                                 with_masks=masks_here))
        if keep_detections:
            run.per_image[info["id"]] = det
    run.seconds_per_image = elapsed / n if n else float("nan")
    return run


def evaluate_predictions(gt, results: list[dict], *, segm: bool | None = None,
                         image_ids=None) -> dict[str, CocoEvalResult]:
    """bbox evaluation always; segm too when asked (``segm=None``: when results carry masks)."""
    if segm is None:
        segm = any("segmentation" in r for r in results)
    out = {"bbox": coco_evaluate(gt, results, "bbox", image_ids=image_ids)}
    if segm:
        out["segm"] = coco_evaluate(gt, results, "segm", image_ids=image_ids)
    return out


def evaluate_predictor(predictor, gt, image_dir, *, max_images: int | None = None,
                       segm: bool | None = None) -> tuple[dict[str, CocoEvalResult], PredictionRun]:
    """Predict the split and score it: the one evaluation every detector family goes through."""
    run = predict_coco(predictor, gt, image_dir, max_images=max_images)
    coco_gt = load_coco(gt)
    ids = sorted(im["id"] for im in coco_gt.dataset["images"])
    if max_images is not None:
        ids = ids[:max_images]
    return evaluate_predictions(coco_gt, run.results, segm=segm, image_ids=ids), run


# ---- confusion matrix -------------------------------------------------------------------------

def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def confusion_matrix(gt, results: list[dict], *, score_threshold: float = 0.25,
                     iou_threshold: float = 0.5) -> pd.DataFrame:
    """Detection confusion matrix, rows = ground truth class, columns = predicted class.

    Per image, detections above ``score_threshold`` are matched greedily (highest IoU first,
    class-agnostic) to ground-truth boxes with IoU ≥ ``iou_threshold``.  Unmatched ground truth
    counts in the ``background`` column (missed), unmatched detections in the ``background`` row
    (false positives).  Counts only; AP figures come from pycocotools.
    """
    coco_gt = load_coco(gt)
    cat_ids = sorted(coco_gt.getCatIds())
    names = [coco_gt.cats[c]["name"] for c in cat_ids]
    index = {c: i for i, c in enumerate(cat_ids)}
    bg = len(cat_ids)
    matrix = np.zeros((bg + 1, bg + 1), dtype=int)
    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r["score"] >= score_threshold and r["category_id"] in index:
            by_image.setdefault(r["image_id"], []).append(r)
    for img_id in coco_gt.getImgIds():
        anns = [a for a in coco_gt.imgToAnns.get(img_id, []) if not a.get("iscrowd", 0)]
        gboxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                            a["bbox"][1] + a["bbox"][3]] for a in anns]).reshape(-1, 4)
        dets = by_image.get(img_id, [])
        dboxes = np.array([[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2],
                            d["bbox"][1] + d["bbox"][3]] for d in dets]).reshape(-1, 4)
        ious = _iou_matrix(gboxes, dboxes)
        matched_g, matched_d = set(), set()
        if ious.size:
            pairs = np.argwhere(ious >= iou_threshold)
            order = np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")
            for g, d in pairs[order]:
                if g in matched_g or d in matched_d:
                    continue
                matched_g.add(g)
                matched_d.add(d)
                matrix[index[anns[g]["category_id"]], index[dets[d]["category_id"]]] += 1
        for g, a in enumerate(anns):
            if g not in matched_g:
                matrix[index[a["category_id"]], bg] += 1
        for d, det in enumerate(dets):
            if d not in matched_d:
                matrix[bg, index[det["category_id"]]] += 1
    labels = names + ["background"]
    return pd.DataFrame(matrix, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="pred"))


# ---- metrics.json and the results table ----------------------------------------------------------

def detector_metrics(name: str, family: str, model: str, dataset: str, evals: dict[str, CocoEvalResult],
                     *, split: str = "val", imgsz=None, params: int | None = None,
                     provenance: dict | None = None, extra: dict | None = None) -> dict:
    """The ``metrics.json`` dict of a detector (the convention read by the comparison notebook)."""
    bbox = evals["bbox"].stats
    segm = evals["segm"].stats if "segm" in evals else None
    out = {
        "kind": "detector", "name": name, "family": family, "model": model, "dataset": dataset,
        "split": split, "bbox_AP": bbox["AP"], "bbox_AP50": bbox["AP50"],
        "segm_AP": segm["AP"] if segm else None, "segm_AP50": segm["AP50"] if segm else None,
        "imgsz": imgsz, "params": params,
        "coco_stats": {k: v.stats for k, v in evals.items()},
        "per_category": {k: v.per_category.to_dict(orient="records") for k, v in evals.items()},
        "provenance": provenance or {},
    }
    if extra:
        out.update(extra)
    return out


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True), encoding="utf-8")
    return path


def results_table(metrics: list[dict]) -> pd.DataFrame:
    """One row per detector from ``metrics.json`` dicts."""
    cols = ["name", "family", "model", "dataset", "split", "imgsz", "params",
            "bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50", "ultralytics_mAP50", "ultralytics_mAP50_95"]
    rows = [{c: m.get(c) for c in cols} for m in metrics]
    return pd.DataFrame(rows, columns=cols)
