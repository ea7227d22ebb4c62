"""ultralytics YOLO behind the project's surface: train, resume, native val, and the common predictor.

Model family and size are one string: ``yolov8n``, ``yolov8s``, ``yolo11m``, ``yolov8n-seg`` … With
``pretrained=False`` (default here) the model is built from its ``.yaml`` config and trained from
scratch; ``pretrained=True`` loads ``<model>.pt`` through :func:`clothingrec.weights.ultralytics_weights`
(fails fast offline, naming the file).  ``device``: ``auto`` | ``cpu`` | ``cuda`` | ``0`` | ``0,1``
(several GPUs = ultralytics' own DDP).  ultralytics saves ``weights/last.pt`` every epoch;
``resume=True`` continues it.  Its own plots (results, PR, F1, confusion matrix) land in the run folder.
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clothingrec.structures import EXPORT_SCORE_THRESHOLD, Detections

#: ultralytics plot files shown by the training notebook (those that exist are shown)
PLOT_FILES = ("results.png", "BoxPR_curve.png", "BoxF1_curve.png", "MaskPR_curve.png", "MaskF1_curve.png",
              "confusion_matrix.png", "confusion_matrix_normalized.png", "labels.jpg",
              "PR_curve.png", "F1_curve.png")


def yolo_device(device: str | int | None = "auto") -> str:
    """Our device names → ultralytics': ``auto`` → ``0`` / ``mps`` / ``cpu``; ``cuda:1`` → ``1``."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "0"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    device = str(device)
    if device == "cuda":
        return "0"
    if device.startswith("cuda:"):
        return device.split(":", 1)[1]
    return device


def model_source(model: str, *, task: str = "detect", pretrained: bool | str = False) -> str:
    """``yolov8n`` + task + pretrained → ``yolov8n.yaml`` / ``yolov8n-seg.pt`` / a given path."""
    from clothingrec.weights import ultralytics_weights

    model = str(model)
    if model.endswith((".pt", ".yaml", ".yml")):
        return ultralytics_weights(model)
    if task == "segment" and not model.endswith("-seg"):
        model += "-seg"
    if pretrained:
        return ultralytics_weights(pretrained if isinstance(pretrained, str) and pretrained.endswith(".pt")
                                   else f"{model}.pt")
    return f"{model}.yaml"


def checkpoint_task(weights) -> str:
    """The task an ultralytics checkpoint was trained for (``detect``, ``segment``, ``classify``, …)."""
    from ultralytics.nn.tasks import guess_model_task, load_checkpoint

    model, _ = load_checkpoint(str(weights))
    return getattr(model, "task", None) or guess_model_task(model)


@contextlib.contextmanager
def quiet_ultralytics(enabled: bool = True):
    """Silence ultralytics' logger (and stdout) for notebook cells that are compared by nbval."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("ultralytics")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(old)


@dataclass
class YoloRun:
    save_dir: Path
    best: Path | None
    last: Path | None
    results: pd.DataFrame
    plots: list[Path] = field(default_factory=list)
    model: str = ""
    task: str = "detect"


def _collect(save_dir: Path, model: str, task: str) -> YoloRun:
    csv = save_dir / "results.csv"
    results = pd.read_csv(csv) if csv.is_file() else pd.DataFrame()
    results.columns = [c.strip() for c in results.columns]
    weights = save_dir / "weights"
    plots = [save_dir / name for name in PLOT_FILES if (save_dir / name).is_file()]
    return YoloRun(save_dir=save_dir, best=(weights / "best.pt") if (weights / "best.pt").is_file() else None,
                   last=(weights / "last.pt") if (weights / "last.pt").is_file() else None,
                   results=results, plots=plots, model=model, task=task)


def _enable_tensorboard() -> None:
    """ultralytics' own TensorBoard callback: event files in the run's save_dir (``make tensorboard``)."""
    try:
        import tensorboard  # noqa: F401
        from ultralytics.utils import SETTINGS
    except ImportError:
        return
    if SETTINGS.get("tensorboard") is not True:
        SETTINGS.update({"tensorboard": True})  # read per trainer; stored in $YOLO_CONFIG_DIR/settings.json


def train_yolo(data_yaml, out_dir, *, model: str = "yolov8n", task: str = "detect", pretrained=False,
               epochs: int = 1, imgsz: int = 640, batch: int = 16, workers: int = 8, device="auto",
               seed: int = 0, time_budget_h: float | None = None, patience: int = 100, resume: bool = False,
               name: str = "train", quiet: bool = True, **overrides) -> YoloRun:
    """Train (or resume) an ultralytics YOLO model into ``out_dir/name``; returns its files and curves."""
    from ultralytics import YOLO

    out_dir = Path(out_dir).resolve()
    save_dir = out_dir / name
    last = save_dir / "weights" / "last.pt"
    _enable_tensorboard()
    if resume and last.is_file():
        if not finished(last):
            with quiet_ultralytics(quiet):
                YOLO(str(last)).train(resume=True)
        return _collect(save_dir, model, task)
    source = model_source(model, task=task, pretrained=pretrained)
    transfer = isinstance(pretrained, (str, Path)) and checkpoint_task(source) != task
    if transfer:  # another task's weights (a backbone pretrained by classification): the model from its config,
        source = model_source(model, task=task)  # ultralytics copies the layers whose names and shapes match
    args = dict(data=str(data_yaml), epochs=int(epochs), imgsz=int(imgsz), batch=int(batch),
                workers=int(workers), device=yolo_device(device), seed=int(seed), patience=int(patience),
                project=str(out_dir), name=name, exist_ok=True, plots=True, verbose=False,
                pretrained=str(pretrained) if transfer else bool(pretrained))
    if time_budget_h:
        args["time"] = float(time_budget_h)
    args.update(overrides)
    with quiet_ultralytics(quiet):
        yolo = YOLO(source, task=task)
        yolo.train(**args)
    return _collect(save_dir, model, task)


def finished(last) -> bool:
    """Whether an ultralytics ``last.pt`` ends a finished run (its optimiser stripped, epoch -1): nothing to
    resume, where ultralytics itself would fail on the missing training arguments."""
    import torch

    return torch.load(last, map_location="cpu", weights_only=False).get("epoch") == -1


def yolo_history(run: YoloRun) -> pd.DataFrame:
    """ultralytics' results.csv with tidy names: epoch, losses, lr, val mAP50/mAP50-95 per epoch."""
    df = run.results.copy()
    rename = {"metrics/mAP50(B)": "val_mAP50", "metrics/mAP50-95(B)": "val_mAP50_95",
              "metrics/mAP50(M)": "val_mask_mAP50", "metrics/mAP50-95(M)": "val_mask_mAP50_95",
              "lr/pg0": "lr"}
    return df.rename(columns=rename)


def native_val(weights, data_yaml, *, imgsz: int = 640, batch: int = 16, device="auto", split: str = "val",
               out_dir=None, name: str = "val", conf: float = EXPORT_SCORE_THRESHOLD, iou: float = 0.7,
               quiet: bool = True) -> dict:
    """ultralytics' own mAP (its matching and interpolation), shown next to the pycocotools figure."""
    from ultralytics import YOLO

    kwargs = dict(data=str(data_yaml), imgsz=int(imgsz), batch=int(batch), device=yolo_device(device),
                  split=split, conf=conf, iou=iou, plots=out_dir is not None, verbose=False)
    if out_dir is not None:
        kwargs.update(project=str(Path(out_dir).resolve()), name=name, exist_ok=True)
    with quiet_ultralytics(quiet):
        metrics = YOLO(str(weights)).val(**kwargs)
    out = {"ultralytics_mAP50": float(metrics.box.map50), "ultralytics_mAP50_95": float(metrics.box.map)}
    seg = getattr(metrics, "seg", None)
    if seg is not None:
        out.update({"ultralytics_mask_mAP50": float(seg.map50), "ultralytics_mask_mAP50_95": float(seg.map)})
    return out


class YoloPredictor:
    """The common predictor interface over an ultralytics model (boxes, and masks for -seg models)."""

    family = "yolo"

    def __init__(self, weights, *, imgsz: int = 640, device="auto", conf: float = EXPORT_SCORE_THRESHOLD,
                 iou: float = 0.7, max_det: int = 100, category_ids: list[int] | None = None):
        from ultralytics import YOLO

        self.weights = Path(weights)
        if not self.weights.is_file():
            raise FileNotFoundError(f"YOLO weights {self.weights} do not exist")
        self.model = YOLO(str(self.weights))
        self.task = self.model.task
        names = self.model.names  # {class index: name}
        self.category_ids = category_ids or [int(i) + 1 for i in sorted(names)]
        self.category_names = {self.category_ids[int(i)]: n for i, n in names.items()}
        self.imgsz, self.device, self.conf, self.iou, self.max_det = imgsz, yolo_device(device), conf, iou, max_det

    def predict(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        bgr = np.ascontiguousarray(image[..., ::-1])  # ultralytics reads numpy arrays as BGR
        with quiet_ultralytics(True):
            res = self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=self.max_det,
                                     device=self.device, verbose=False, retina_masks=True)[0]
        boxes = res.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty(*image.shape[:2], with_masks=self.task == "segment")
        cls = boxes.cls.cpu().numpy().astype(int)
        labels = np.array([self.category_ids[c] for c in cls])
        masks = None
        if res.masks is not None:
            masks = res.masks.data.cpu().numpy() > 0.5
            if masks.shape[1:] != image.shape[:2]:  # retina_masks gives image size; guard anyway
                from PIL import Image

                masks = np.stack([np.asarray(Image.fromarray(m.astype(np.uint8)).resize(
                    (image.shape[1], image.shape[0]))) > 0 for m in masks])
        return Detections(boxes.xyxy.cpu().numpy(), labels, boxes.conf.cpu().numpy(), masks)
