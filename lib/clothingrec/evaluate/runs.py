"""Evaluate trained detector runs (notebooks 03–05) on one validation split: the comparison in notebook 06."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from clothingrec.evaluate.coco import CocoEvalResult, load_coco
from clothingrec.evaluate.results import PredictionRun, detector_metrics, evaluate_predictor

#: training notebooks whose latest runs notebook 06 evaluates
TRAINING_NOTEBOOKS = ("03_train_yolo", "04_train_fasterrcnn", "05_train_maskrcnn")


@dataclass
class EvaluatedRun:
    name: str
    family: str
    model: str
    run_dir: Path
    predictor: object
    evals: dict[str, CocoEvalResult]
    predictions: PredictionRun
    metrics: dict
    trained_on: dict = field(default_factory=dict)


def find_runs(run_dirs=None) -> tuple[list[Path], list[str]]:
    """The run folders to evaluate (default: the latest run of each training notebook) and what is missing."""
    from clothingrec.paths import latest_run

    found, missing = [], []
    if run_dirs:
        items = [Path(p) for p in (run_dirs.split(",") if isinstance(run_dirs, str) else run_dirs)]
        for p in items:
            (found if p.is_dir() else missing).append(p if p.is_dir() else f"{p}: no such run folder")
        return found, missing
    for nb in TRAINING_NOTEBOOKS:
        try:
            found.append(latest_run(nb))
        except FileNotFoundError as exc:
            missing.append(f"{nb}: {exc}")
    return found, missing


def evaluate_run(run_dir, gt_json, image_dir, *, device="auto", max_images: int | None = None) -> EvaluatedRun:
    """Load a run's detector (``load_detector``), predict the split, score it with pycocotools."""
    from clothingrec.detect.predictor import load_detector

    run_dir = Path(run_dir)
    meta = {}
    if (run_dir / "metrics.json").is_file():
        meta = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    trained_on = {}
    if (run_dir / "data.json").is_file():
        trained_on = json.loads((run_dir / "data.json").read_text(encoding="utf-8"))
    coco_gt = load_coco(gt_json)
    if trained_on.get("categories"):
        theirs = [(c["id"], c["name"]) for c in trained_on["categories"]]
        ours = [(c["id"], c["name"]) for c in coco_gt.dataset["categories"]]
        if theirs != ours:
            raise ValueError(f"{run_dir}: detector was trained on categories {[n for _, n in theirs]}, "
                             f"the evaluation split has {[n for _, n in ours]}")
    imgsz = meta.get("imgsz")
    predictor = load_detector(run_dir, device=device, imgsz=imgsz)
    evals, preds = evaluate_predictor(predictor, coco_gt, image_dir, max_images=max_images)
    family = meta.get("family") or getattr(predictor, "family", "unknown")
    model = meta.get("model") or "unknown"
    name = meta.get("name") or f"detector-{family}-{model}"
    params = meta.get("params")
    metrics = detector_metrics(name, family, model, meta.get("dataset", "unknown"), evals, imgsz=imgsz,
                               params=params, provenance={"run_dir": str(run_dir),
                                                          "evaluated_on": str(gt_json)},
                               extra={"seconds_per_image": preds.seconds_per_image})
    return EvaluatedRun(name=name, family=family, model=model, run_dir=run_dir, predictor=predictor,
                        evals=evals, predictions=preds, metrics=metrics, trained_on=trained_on)
