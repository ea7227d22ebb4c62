"""Notebook settings → a training run of the torchvision loop or the detectron2 backend (notebooks 04, 05)."""
from __future__ import annotations

from pathlib import Path

from clothingrec.detect.engine import LIGHT_HEADS, TrainConfig, train


def train_config(settings: dict, family: str, *, device: str = "auto", workers: int | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from the merged notebook settings (``imgsz`` sets min_size / max_size)."""
    min_size, max_size = settings["min_size"], settings["max_size"]
    if settings.get("imgsz"):
        min_size, max_size = int(settings["imgsz"]), int(round(settings["imgsz"] * 5 / 3))
    return TrainConfig(
        family=family, backbone=settings["backbone"], epochs=int(settings["epochs"]), batch=int(settings["batch"]),
        lr=float(settings["lr"]), warmup_iters=int(settings["warmup_iters"]), min_size=int(min_size),
        max_size=int(max_size), workers=int(workers if workers is not None else settings.get("workers", 0) or 0),
        device=device, seed=int(settings["seed"]), pretrained=settings.get("pretrained"),
        pretrained_backbone=settings.get("pretrained_backbone"), threads=settings.get("threads"),
        max_train_images=None, max_eval_images=settings.get("max_eval_images"),
        time_limit_s=(float(settings["time_hours"]) * 3600) if settings.get("time_hours") else None,
        model_kwargs=dict(LIGHT_HEADS) if settings.get("light_heads") else {},
        log_every=int(settings.get("log_every", 20)))


def run_torchvision(settings: dict, ds, out_dir, family: str, *, device: str = "auto", resume: bool = False,
                    workers: int | None = None, log=print):
    """Train on a prepared dataset (``clothingrec.convert.PreparedDataset``); returns the TrainResult."""
    cfg = train_config(settings, family, device=device, workers=workers)
    return train(ds.coco_json["train"], ds.image_dir["train"], ds.coco_json["val"], ds.image_dir["val"],
                 Path(out_dir), cfg, resume=resume, log=log)


def run_detectron2(settings: dict, ds, out_dir, *, device: str = "auto", resume: bool = False):
    """The detectron2 Mask R-CNN backend on the same COCO split; returns its predictor."""
    from clothingrec.detect.detectron2_backend import Detectron2Predictor, make_config, train_detectron2

    iterations = int(settings.get("iterations") or settings["epochs"] * max(1, ds.num_images["train"] // settings["batch"]))
    cfg = make_config(ds.coco_json["train"], ds.image_dir["train"], ds.coco_json["val"], ds.image_dir["val"],
                      Path(out_dir) / "detectron2", backbone=settings["backbone"], num_classes=len(ds.categories),
                      iterations=iterations, batch=int(settings["batch"]), lr=float(settings["lr"]) / 8,
                      min_size=int(settings["min_size"]), max_size=int(settings["max_size"]), device=device,
                      pretrained=bool(settings.get("pretrained")), seed=int(settings["seed"]))
    weights = train_detectron2(cfg, resume=resume)
    names = {int(c["id"]): c["name"] for c in ds.categories}
    return Detectron2Predictor(cfg, weights, names)
