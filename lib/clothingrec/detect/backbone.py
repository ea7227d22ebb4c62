"""A YOLO backbone pretrained here, by classification on an image-folder dataset (no outside weights).

    python -m clothingrec.detect.backbone --out runs/backbones/yolov8n-clothing-small --imgsz 192 --hours 0.4

trains ``yolov8n-cls.yaml`` on clothing-dataset-small's ``train/`` (``validation/`` picks the best epoch;
``test/`` is not read) and writes ``backbone.json`` beside ultralytics' run.  ``--add-train data/ccp-crops``
adds another image-folder set's ``train/`` (same class names: the CCP garment crops of the CCP train photos,
never of the val or test photos the detectors are selected and scored on).  A YOLO detector starts from it
with ``init_weights: <out>`` (the folder, or its ``yolo/weights/best.pt``): ultralytics copies the layers whose
names and shapes match (the classifier's backbone, layers 0–8 of the detector) and initialises the rest.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clothingrec.detect.yolo import YoloRun, train_yolo, yolo_device

RECORD = "backbone.json"  #: what a pretrained backbone's folder holds beside ultralytics' run


def read_record(folder) -> dict | None:
    """A backbone folder's record (data, accuracy, weights, hours), or None if ``folder`` is not one."""
    path = Path(folder) / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def classifier_record(weights) -> dict | None:
    """The record, in the shape of :data:`RECORD`, of a classifier trained here (the classifier recipe's run)
    whose exported weights start an R-CNN's backbone (``pretrained_backbone``); None without its run's
    ``train_summary.json`` beside the weights."""
    from clothingrec.datasets.clothing_small import dataset_root
    from clothingrec.runs import relative

    weights = Path(weights)
    summary_file = weights.parent / "train_summary.json"
    if not summary_file.is_file():
        return None
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    config = summary.get("config") or {}
    extra = config.get("extra_train") or []
    seconds = summary.get("total_fit_seconds", summary.get("fit_seconds"))  # every sitting of a resumed run
    hours = None if seconds is None else float(seconds) / 3600
    on_cpu = str(summary.get("device") or "cpu").startswith("cpu")
    threads = int(config.get("threads") or 1) if on_cpu else 1
    return {"model": summary.get("model"), "task": "classify", "dataset": str(relative(config.get("dataset")
                                                                                        or dataset_root())),
            "extra_train": [str(e) for e in ([extra] if isinstance(extra, str) else extra)],
            "imgsz": config.get("imgsz"), "epochs_run": summary.get("epochs_run"), "monitor": summary.get("monitor"),
            "best_val": summary.get("best_score"), "weights": weights.name, "hours": hours,
            "core_hours": None if hours is None else hours * threads, "time_budget_h": config.get("time_budget_h"),
            "seed": config.get("seed")}


def merged_folder(out: Path, root: Path, extra_train) -> Path:
    """An image-folder tree under ``out`` linking ``root``'s ``train/`` and val part and each extra root's
    ``train/`` (file links, names prefixed by their source), so ultralytics reads them as one dataset."""
    val = next((root / v for v in ("val", "validation", "valid") if (root / v).is_dir()), None)
    if val is None:
        raise FileNotFoundError(f"{root}: no val/ or validation/ folder to choose the best epoch on")
    parts = [("train", root / "train", ""), ("val", val, "")] + [
        ("train", Path(e) / "train", f"{Path(e).name}-") for e in extra_train]
    for part, src, prefix in parts:
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: not a folder of class folders")
        for f in sorted(src.glob("*/*")):
            if f.is_file():
                link = out / part / f.parent.name / f"{prefix}{f.name}"
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.exists():
                    link.symlink_to(f.resolve())
    unknown = sorted({d.name for d in (out / "train").iterdir()} - {d.name for d in (out / "val").iterdir()})
    if unknown:
        raise ValueError(f"{out}: train classes {unknown} have no val images (the extra sets' class names must "
                         "be the base set's)")
    return out


def pretrain_backbone(out_dir, *, data=None, extra_train=(), model: str = "yolov8n", imgsz: int = 192,
                      epochs: int = 100, batch: int = 64, workers: int = 0, device="auto", seed: int = 0,
                      time_budget_h: float | None = None, command: str | None = None, **overrides) -> YoloRun:
    """Train ``<model>-cls.yaml`` from scratch on ``data`` (an image-folder root with ``train/`` and ``val/`` or
    ``validation/``; default clothing-dataset-small), with ``extra_train`` roots' ``train/`` added, into
    ``out_dir/yolo``; records ``out_dir/backbone.json``."""
    from clothingrec.datasets.clothing_small import dataset_root

    root = Path(data) if data else dataset_root()
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"{root}: no train/ folder of class folders to pretrain a backbone on")
    source = merged_folder(Path(out_dir) / "data", root, extra_train) if extra_train else root
    run = train_yolo(source, out_dir, model=f"{model}-cls.yaml", task="classify", epochs=epochs, imgsz=imgsz,
                     batch=batch, workers=workers, device=device, seed=seed, time_budget_h=time_budget_h,
                     patience=epochs, name="yolo", **overrides)
    write_record(out_dir, run, dataset=root, extra_train=extra_train, model=model, imgsz=imgsz, device=device,
                 seed=seed, time_budget_h=time_budget_h, overrides=overrides, command=command)
    return run


def write_record(out_dir, run: YoloRun, *, dataset, extra_train=(), model: str, imgsz: int, device="auto",
                 seed: int = 0, time_budget_h: float | None = None, overrides=None, command: str | None = None,
                 threads: int | None = None) -> dict:
    """``out_dir/backbone.json``: data, accuracy on its val part, weights, hours and core-hours (the cost a
    detector started from it adds to its own), provenance."""
    import torch

    from clothingrec.envinfo import provenance
    from clothingrec.runs import relative

    results = run.results
    top1 = results["metrics/accuracy_top1"] if "metrics/accuracy_top1" in results else None
    hours = float(results["time"].iloc[-1]) / 3600 if "time" in results and len(results) else None
    on_cpu = yolo_device(device) == "cpu"
    threads = int(threads or torch.get_num_threads())
    record = {"model": model, "task": "classify", "dataset": relative(dataset),
              "extra_train": [relative(e) for e in extra_train], "imgsz": int(imgsz), "epochs_run": int(len(results)),
              "best_val_top1": None if top1 is None else float(top1.max()),
              "last_val_top1": None if top1 is None else float(top1.iloc[-1]),
              "weights": relative(run.best or run.last, Path(out_dir)),
              "hours": hours, "core_hours": None if hours is None else hours * (threads if on_cpu else 1),
              "time_budget_h": time_budget_h, "seed": int(seed), "overrides": dict(overrides or {}),
              "provenance": provenance(command, torch_threads=threads)}
    Path(out_dir, RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clothingrec.detect.backbone", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--data", default=None, help="image-folder root (default: clothing-dataset-small)")
    parser.add_argument("--add-train", action="append", default=[], metavar="ROOT",
                        help="another image-folder set whose train/ is added (repeatable)")
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--imgsz", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hours", type=float, default=None, help="time budget; ultralytics fits the epochs to it")
    args = parser.parse_args(argv)
    command = " ".join(["python -m clothingrec.detect.backbone", *(sys.argv[1:] if argv is None else argv)])
    run = pretrain_backbone(args.out, data=args.data, extra_train=args.add_train, model=args.model,
                            imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, workers=args.workers,
                            device=args.device, seed=args.seed, time_budget_h=args.hours, command=command)
    print(Path(args.out, RECORD).read_text(encoding="utf-8"), end="")
    return 0 if run.best or run.last else 1


if __name__ == "__main__":
    from clothingrec.paths import configure_environment

    configure_environment()
    raise SystemExit(main())
