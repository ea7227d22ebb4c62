"""The one COCO evaluation: pycocotools ``COCOeval`` over a COCO ground-truth JSON and a results list.

Every detector family (torchvision, ultralytics YOLO, detectron2) is scored here, from the same
validation JSON, with the same settings (``maxDets`` 1/10/100, IoU 0.50:0.95), so their numbers
can be compared.  Results are plain COCO result dicts::

    {"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float,
     "segmentation": {"size": [h, w], "counts": str}}   # segmentation only for mask models
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Names of the 12 numbers ``COCOeval.summarize()`` prints, in order.
STAT_NAMES = [
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
]


def load_coco(gt) -> COCO:  # noqa: F821
    """A ``pycocotools.coco.COCO`` from a path, a dataset dict or an existing COCO object (quietly)."""
    from pycocotools.coco import COCO

    if isinstance(gt, COCO):
        return gt
    if isinstance(gt, (str, os.PathLike)):
        path = Path(gt)
        if not path.is_file():
            raise FileNotFoundError(f"COCO ground-truth file {path} does not exist")
        with open(path, encoding="utf-8") as fh:
            gt = json.load(fh)
    if not isinstance(gt, dict):
        raise TypeError(f"ground truth must be a path, a dict or a COCO object, not {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"COCO ground truth has no {key!r} field")
    coco = COCO()
    coco.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _validate_results(results: list[dict], coco_gt, iou_type: str) -> tuple[list[dict], list[str]]:
    """Keep well-formed results for ``iou_type``; return them and a list of problems found."""
    image_ids = set(coco_gt.getImgIds())
    cat_ids = set(coco_gt.getCatIds())
    kept, problems = [], []
    for i, r in enumerate(results):
        if r.get("image_id") not in image_ids:
            problems.append(f"result {i}: image_id {r.get('image_id')!r} is not in the ground truth")
            continue
        if r.get("category_id") not in cat_ids:
            problems.append(f"result {i}: category_id {r.get('category_id')!r} is not a ground-truth category")
            continue
        if iou_type == "bbox":
            bbox = r.get("bbox")
            if bbox is None or len(bbox) != 4 or not np.all(np.isfinite(bbox)):
                problems.append(f"result {i}: field 'bbox' is missing or malformed: {bbox!r}")
                continue
            r = {k: v for k, v in r.items() if k != "segmentation"}
        elif iou_type == "segm":
            if "segmentation" not in r:
                problems.append(f"result {i}: field 'segmentation' is missing (needed for segm)")
                continue
            # loadRes takes the bbox branch (area = box area) when a bbox is present: drop it for segm
            r = {k: v for k, v in r.items() if k != "bbox"}
        kept.append(dict(r))
    return kept, problems


@dataclass
class CocoEvalResult:
    """What one pycocotools evaluation produced (one IoU type)."""

    iou_type: str
    stats: dict[str, float]
    per_category: pd.DataFrame
    summary_text: str
    #: ``COCOeval.eval['precision']``: [T=10 IoU, R=101 recall, K categories, A=4 areas, M=3 maxDets]
    precision: np.ndarray | None = None
    recall_thresholds: np.ndarray | None = None
    iou_thresholds: np.ndarray | None = None
    category_ids: list[int] = field(default_factory=list)
    category_names: list[str] = field(default_factory=list)
    n_results: int = 0
    problems: list[str] = field(default_factory=list)

    def pr_curve(self, category_id: int, iou: float = 0.5, area: str = "all", max_dets: int = 100):
        """(recall, precision) of one category at one IoU threshold; precision is -1 where undefined."""
        if self.precision is None:
            raise ValueError("no precision array (evaluation had no ground truth)")
        t = int(np.argmin(np.abs(self.iou_thresholds - iou)))
        k = self.category_ids.index(category_id)
        a = ["all", "small", "medium", "large"].index(area)
        m = [1, 10, 100].index(max_dets)
        return self.recall_thresholds, self.precision[t, :, k, a, m]

    def to_dict(self) -> dict:
        return {
            "iou_type": self.iou_type,
            "stats": self.stats,
            "n_results": self.n_results,
            "per_category": self.per_category.to_dict(orient="records"),
            "problems": self.problems,
        }


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def coco_evaluate(gt, results: list[dict], iou_type: str = "bbox", *, image_ids=None) -> CocoEvalResult:
    """Score ``results`` against ``gt`` with pycocotools ``COCOeval``.

    ``gt``: COCO JSON path, dict or COCO object.  ``results``: list of COCO result dicts (see module
    doc).  ``image_ids``: restrict to these images (default: every image in ``gt``, so images the
    detector found nothing in still count).  Malformed results are dropped and listed in
    ``problems``; an empty results list scores 0 (not an error).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', not {iou_type!r}")
    coco_gt = load_coco(gt)
    kept, problems = _validate_results(list(results), coco_gt, iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        if kept:
            coco_dt = coco_gt.loadRes(copy.deepcopy(kept))
        else:  # loadRes cannot take an empty list: an empty result set scores zero
            coco_dt = COCO()
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "annotations": [],
                               "categories": coco_gt.dataset["categories"]}
            coco_dt.createIndex()
    cat_ids = sorted(coco_gt.getCatIds())
    names = [coco_gt.cats[c]["name"] for c in cat_ids]
    evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
    if image_ids is not None:
        evaluator.params.imgIds = sorted(int(i) for i in image_ids)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    text = "\n".join(line for line in buffer.getvalue().splitlines() if line.startswith(" Average"))
    stats = {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)}
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    rows = []
    n_gt = {c: len(coco_gt.getAnnIds(catIds=[c], imgIds=evaluator.params.imgIds, iscrowd=False))
            for c in cat_ids}
    n_dt = {c: 0 for c in cat_ids}
    for r in kept:
        n_dt[r["category_id"]] = n_dt.get(r["category_id"], 0) + 1
    for k, (cid, name) in enumerate(zip(cat_ids, names)):
        p_all = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        p75 = precision[5, :, k, 0, -1]
        rows.append({"category_id": cid, "category": name, "n_gt": n_gt[cid], "n_det": n_dt[cid],
                     "AP": _mean_valid(p_all), "AP50": _mean_valid(p50), "AP75": _mean_valid(p75)})
    return CocoEvalResult(
        iou_type=iou_type, stats=stats, per_category=pd.DataFrame(rows), summary_text=text,
        precision=precision, recall_thresholds=np.asarray(evaluator.params.recThrs),
        iou_thresholds=np.asarray(evaluator.params.iouThrs), category_ids=cat_ids,
        category_names=names, n_results=len(kept), problems=problems,
    )


def ground_truth_as_results(gt, *, with_masks: bool = False, score: float = 1.0) -> list[dict]:
    """The ground truth rewritten as a results list (a perfect detector; used to check the evaluation)."""
    coco_gt = load_coco(gt)
    out = []
    for ann in coco_gt.dataset["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        r = {"image_id": ann["image_id"], "category_id": ann["category_id"],
             "bbox": [float(v) for v in ann["bbox"]], "score": float(score)}
        if with_masks:
            rle = coco_gt.annToRLE(ann)
            r["segmentation"] = {"size": list(rle["size"]),
                                 "counts": rle["counts"].decode("ascii") if isinstance(rle["counts"], bytes)
                                 else rle["counts"]}
        out.append(r)
    return out
