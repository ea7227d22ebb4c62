"""Predictors for trained detectors and ``load_detector`` (a run folder or a checkpoint → predictor)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clothingrec.detect.config import short_side
from clothingrec.detect.models import rebuild, set_score_threshold
from clothingrec.device import resolve_device
from clothingrec.runs import RunRecord, is_run
from clothingrec.structures import EXPORT_SCORE_THRESHOLD, Detections


class TorchvisionPredictor:
    """The common predictor interface over a torchvision Faster / Mask R-CNN.

    ``score_threshold`` is also the model's own box-score threshold (:func:`set_score_threshold`)."""

    def __init__(self, model, label_to_coco: dict[int, int], category_names: dict[int, str], *,
                 device="auto", score_threshold: float = EXPORT_SCORE_THRESHOLD, mask_threshold: float = 0.5):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        set_score_threshold(self.model, score_threshold)
        self.label_to_coco = {int(k): int(v) for k, v in label_to_coco.items()}
        self.category_names = {int(k): v for k, v in category_names.items()}
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.with_masks = getattr(model.roi_heads, "mask_predictor", None) is not None
        self.family = "maskrcnn" if self.with_masks else "fasterrcnn"

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        out = self.model([tensor.to(self.device)])[0]
        keep = out["scores"] >= self.score_threshold
        labels = [self.label_to_coco[int(v)] for v in out["labels"][keep].cpu()]
        masks = None
        if self.with_masks:
            masks = (out["masks"][keep][:, 0] > self.mask_threshold).cpu().numpy()
        return Detections(out["boxes"][keep].cpu().numpy(), np.array(labels, dtype=np.int64),
                          out["scores"][keep].cpu().numpy(), masks)


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = [path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt",
                  path / "weights" / "best.pt", path / "weights" / "last.pt"]
    candidates += sorted(path.glob("*/weights/best.pt")) + sorted(path.glob("*/weights/last.pt"))
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"no detector checkpoint under {path} (looked for {[str(c) for c in candidates[:4]]})")


def _iou(nms_iou) -> dict:
    return {} if nms_iou is None else {"iou": float(nms_iou)}


def load_detector(run_dir_or_checkpoint, *, device="auto", score_threshold: float = EXPORT_SCORE_THRESHOLD,
                  imgsz: int | None = None, nms_iou: float | None = None):
    """A predictor from a training run folder (its ``run.json``) or a checkpoint file.

    A run folder's record names its weights, backend, classes and input size; a bare checkpoint is
    recognised by its content: ours (``spec`` + ``model``, rebuilt from the stored spec) or ultralytics'.
    ``imgsz``: the inference size when not the trained one, with the meaning it has for every family
    (the longest input side; an R-CNN's shorter side is 3/5 of it, :func:`~clothingrec.detect.config.short_side`).
    ``nms_iou``: the IoU above which the detector suppresses a same-class box (None: the backend's own,
    0.7 for ultralytics, 0.5 for the R-CNNs).
    """
    if nms_iou is not None and not 0.0 < float(nms_iou) <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou!r}")
    path = Path(run_dir_or_checkpoint)
    if path.is_dir() and is_run(path):
        record = RunRecord.load(path)
        weights = record.weights_path(path)
        if weights is None or not weights.exists():
            raise FileNotFoundError(f"{path}: its run record names weights {record.weights!r}, which do not exist")
        if record.backend == "detectron2":
            from clothingrec.detect.detectron2_backend import load_predictor

            return load_predictor(weights.parent / "config.yaml", weights, record.category_names,
                                  score_threshold=score_threshold, device=device, imgsz=imgsz, nms_iou=nms_iou)
        if record.backend == "ultralytics":
            from clothingrec.detect.yolo import YoloPredictor

            return YoloPredictor(weights, imgsz=imgsz or record.imgsz, device=device, conf=score_threshold,
                                 category_ids=record.category_ids or None, **_iou(nms_iou))
        path = weights
    path = _find_checkpoint(path)
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "spec" in state and "model" in state:
        spec = dict(state["spec"])
        if imgsz is not None:
            spec.update(min_size=short_side(imgsz), max_size=int(imgsz))
        model = rebuild(spec)
        model.load_state_dict(state["model"])
        if nms_iou is not None:
            model.roi_heads.nms_thresh = float(nms_iou)
        names = {int(c["id"]): c["name"] for c in state["categories"]}
        return TorchvisionPredictor(model, state["label_to_coco"], names, device=device,
                                    score_threshold=score_threshold)
    if isinstance(state, dict) and ("train_args" in state or "model" in state):
        from clothingrec.detect.yolo import YoloPredictor

        size = imgsz or int((state.get("train_args") or {}).get("imgsz", 640))
        return YoloPredictor(path, imgsz=size, device=device, conf=score_threshold, **_iou(nms_iou))
    raise ValueError(f"{path} is neither a clothingrec torchvision checkpoint nor an ultralytics one")
