"""The one detection config: ``configs/detect/default.yaml`` ← an experiment YAML ← notebook parameters.

Every detector, clothing or person, YOLO or R-CNN, is configured by one :class:`DetectConfig` and
trained by one recipe (:func:`clothingrec.detect.fit`).  The experiment YAML is ``config`` when
given, else ``configs/detect/<family>-<profile>.yaml`` (``person-<profile>.yaml`` for
``classes: person``) when it exists; a notebook parameter left at ``None`` takes the YAML value.

``imgsz`` has one meaning for every family: the longest side of the network input, in pixels.
ultralytics letterboxes to an ``imgsz`` square; the R-CNNs (torchvision and detectron2) resize so
that the shorter side is 3/5 of it and the longer at most ``imgsz`` (:meth:`DetectConfig.rcnn_sizes`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from clothingrec.config_cast import cast_fields
from clothingrec.device import PRECISIONS
from clothingrec.paths import CONFIG_DIR, PROJECT_ROOT

DETECT_CONFIG_DIR = CONFIG_DIR / "detect"
DEFAULT_YAML = DETECT_CONFIG_DIR / "default.yaml"
FAMILIES = ("yolo", "fasterrcnn", "maskrcnn")
#: family → its backends, the first being its default
BACKENDS = {"yolo": ("ultralytics",), "fasterrcnn": ("torchvision",), "maskrcnn": ("torchvision", "detectron2")}
#: family → default ``model`` (YOLO: the ultralytics model name; R-CNNs: the backbone)
DEFAULT_MODELS = {"yolo": "yolov8n", "fasterrcnn": "mobilenet_v3_large_fpn", "maskrcnn": "mobilenet_v3_large_fpn"}
CLASSES = ("garments", "person")
SHORT_SIDE = 3 / 5
#: the two-stage families, whose ``imgsz`` is the longer image side (:func:`short_side` gives the shorter)
RCNN_FAMILIES = ("fasterrcnn", "maskrcnn")


def short_side(imgsz) -> int:
    """An R-CNN's shorter input side (torchvision's ``min_size``) for the recipe's ``imgsz``, its longer side."""
    return int(round(int(imgsz) * SHORT_SIDE))


def _project_path(value) -> Path:
    """``value`` as a path; a relative one that does not exist here but does under the project root, there."""
    path = Path(str(value))
    if not path.exists() and not path.is_absolute() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


@dataclass
class DetectConfig:
    """Fields and their meaning are documented in ``configs/detect/default.yaml``."""

    family: str = "fasterrcnn"
    backend: str | None = None
    classes: str = "garments"
    dataset: str = "synthetic-df2"
    task: str | None = None
    train_labels: str | None = None
    model: str | None = None
    pretrained: Any = None
    pretrained_backbone: str | None = None
    init_weights: str | None = None
    repeat_threshold: float | None = None
    train_on_val: bool = False
    imgsz: int = 128
    train_imgsz: list[int] | None = None
    epochs: int = 1
    batch: int = 4
    lr: float = 0.02
    warmup_iters: int = 4
    scheduler: str = "cosine"
    light_heads: bool = True
    max_images: int | None = None
    max_eval_images: int | None = None
    eval_batch: int = 2
    time_budget_h: float | None = None
    patience: int = 100
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 0
    threads: int | None = None
    log_every: int = 20
    ultralytics: dict = field(default_factory=dict)
    name: str | None = None

    def __post_init__(self):
        if self.backend is None and self.family in BACKENDS:
            self.backend = BACKENDS[self.family][0]
        if self.task is None:
            self.task = "segment" if self.family == "maskrcnn" else "detect"
        if self.model is None and self.family in DEFAULT_MODELS:
            self.model = DEFAULT_MODELS[self.family]
        if isinstance(self.train_imgsz, (int, str)) and not isinstance(self.train_imgsz, bool):
            # "448,533,640" or one number, from a notebook parameter or make PARAMS
            text = str(self.train_imgsz)
            try:
                self.train_imgsz = [int(v) for v in text.strip("[]() ").replace(" ", "").split(",") if v]
            except ValueError:
                raise ValueError(f"train_imgsz {text!r}: expected input sizes such as 448,533,640") from None
        if self.name is None:
            prefix = "person" if self.classes == "person" else "detector"
            dataset = Path(str(self.dataset)).name
            self.name = f"{prefix}-{self.family}-{Path(str(self.model)).stem}-{dataset}"

    # ------------------------------------------------------------------------------------------
    def validate(self) -> DetectConfig:
        problems = []
        if self.family not in FAMILIES:
            problems.append(f"family={self.family!r} is not one of {FAMILIES}")
        elif self.backend not in BACKENDS[self.family]:
            problems.append(f"backend={self.backend!r} does not train {self.family} (one of {BACKENDS[self.family]})")
        if self.classes not in CLASSES:
            problems.append(f"classes={self.classes!r} is not one of {CLASSES}")
        if self.task not in ("detect", "segment"):
            problems.append(f"task={self.task!r} is not detect or segment")
        if self.train_labels not in (None, "boxes", "outlines"):
            problems.append(f"train_labels={self.train_labels!r} is not boxes or outlines (null: the task's own)")
        elif self.train_labels == "boxes" and self.task == "segment":
            problems.append("train_labels=boxes: a segment model trains on outlines")
        elif self.train_labels == "outlines" and self.family != "yolo":
            problems.append("train_labels=outlines is for YOLO; the R-CNNs read boxes and masks from COCO")
        if self.imgsz < 32 or self.epochs < 1 or self.batch < 1:
            problems.append(f"imgsz ({self.imgsz}) must be ≥ 32, epochs ({self.epochs}) and batch ({self.batch}) ≥ 1")
        if self.train_imgsz:
            if self.family == "yolo":
                problems.append("train_imgsz (multi-scale training) is for the R-CNNs; YOLO scales its inputs with "
                                "ultralytics' own augmentation (ultralytics: {scale: 0.5})")
            elif any(int(v) < 32 for v in self.train_imgsz):
                problems.append(f"train_imgsz ({self.train_imgsz}): every size must be ≥ 32")
        if self.repeat_threshold is not None and not self.repeat_threshold > 0:
            problems.append(f"repeat_threshold ({self.repeat_threshold}) must be > 0 (null: uniform sampling)")
        elif self.repeat_threshold and self.family == "yolo":
            problems.append("repeat_threshold (repeat-factor sampling) is for the R-CNNs; ultralytics has no such "
                            "sampler")
        if self.train_on_val and self.backend == "detectron2":
            problems.append("train_on_val is for YOLO and the torchvision R-CNNs (detectron2's trainer evaluates on "
                            "a val part)")
        if self.pretrained and self.init_weights:
            problems.append("pretrained and init_weights both name starting weights; give one")
        if self.pretrained_backbone and (self.pretrained or self.init_weights):
            problems.append("pretrained_backbone and pretrained / init_weights both name starting weights; give one")
        elif self.pretrained_backbone and self.backend != "torchvision":
            problems.append(f"pretrained_backbone is for the torchvision R-CNNs ({self.backend}: pretrained starts "
                            "from the library's weights; YOLO from a backbone pretrained here with init_weights)")
        if self.precision not in PRECISIONS:
            problems.append(f"precision={self.precision!r} is not one of {PRECISIONS}")
        elif self.backend == "ultralytics" and self.precision == "bf16-mixed":
            problems.append("precision=bf16-mixed: ultralytics' AMP is fp16 only (16-mixed, auto or 32-true)")
        elif self.backend == "detectron2" and self.precision == "bf16-mixed":
            problems.append("precision=bf16-mixed: detectron2's AMP is fp16 only (16-mixed, auto or 32-true)")
        if self.scheduler not in ("cosine", "multistep", "constant"):
            problems.append(f"scheduler={self.scheduler!r} is not cosine, multistep or constant")
        if problems:
            raise ValueError("invalid detection config: " + "; ".join(problems))
        return self

    @property
    def label_task(self) -> str:
        """The YOLO label set the model trains on: ``segment`` (outlines) or ``detect`` (boxes)."""
        if self.task == "segment" or self.train_labels == "outlines":
            return "segment"
        return "detect"

    @property
    def rcnn_sizes(self) -> tuple[int, int]:
        """``(min_size, max_size)`` of an R-CNN's resize for this ``imgsz`` (see the module doc)."""
        return short_side(self.imgsz), int(self.imgsz)

    @property
    def rcnn_train_sizes(self) -> tuple[tuple[int, ...], int]:
        """Multi-scale training: ``(shorter sides drawn from per image, longest-side cap)`` for
        ``train_imgsz`` (each size by the rule of :attr:`rcnn_sizes`); ``((), imgsz)`` without it."""
        if not self.train_imgsz:
            return (), int(self.imgsz)
        sizes = [int(v) for v in self.train_imgsz]
        return tuple(short_side(v) for v in sizes), max(sizes)

    @property
    def time_budget_s(self) -> float | None:
        return float(self.time_budget_h) * 3600 if self.time_budget_h else None

    def loop_config(self):
        """The torchvision training loop's options (:class:`clothingrec.detect.engine.TrainConfig`)."""
        from clothingrec.detect.engine import LIGHT_HEADS, TrainConfig

        min_size, max_size = self.rcnn_sizes
        train_min_sizes, train_max_size = self.rcnn_train_sizes
        return TrainConfig(
            family=self.family, backbone=self.model, epochs=self.epochs, batch=self.batch, lr=self.lr,
            warmup_iters=self.warmup_iters, scheduler=self.scheduler, min_size=min_size, max_size=max_size,
            train_min_sizes=train_min_sizes, train_max_size=train_max_size if train_min_sizes else None,
            workers=self.workers, device=self.device, precision=self.precision, seed=self.seed,
            pretrained=self.pretrained, pretrained_backbone=self.pretrained_backbone_file(), threads=self.threads,
            init_weights=self.init_weights_file(), repeat_threshold=self.repeat_threshold,
            max_eval_images=self.max_eval_images, eval_batch=self.eval_batch, time_limit_s=self.time_budget_s,
            log_every=self.log_every, model_kwargs=dict(LIGHT_HEADS) if self.light_heads else {})

    def init_weights_file(self) -> str | None:
        """``init_weights`` as a file: a run folder stands for the weights its ``run.json`` names, a pretrained
        backbone's folder (:mod:`clothingrec.detect.backbone`) for those its ``backbone.json`` names."""
        if not self.init_weights:
            return None
        path = _project_path(self.init_weights)
        from clothingrec.detect.backbone import read_record

        backbone = read_record(path) if path.is_dir() and not (path / "run.json").is_file() else None
        if backbone:
            path = path / backbone["weights"]
        elif path.is_dir():
            from clothingrec.runs import RunRecord

            record = RunRecord.load(path)
            if not record.weights:
                raise FileNotFoundError(f"init_weights: run folder {path} records no weights in its run.json")
            if record.family != self.family:
                raise ValueError(f"init_weights: {path} is a {record.family} run, this config trains {self.family}")
            path = path / record.weights
        if not path.is_file():
            raise FileNotFoundError(f"init_weights: {self.init_weights} is neither a run folder nor a weights file")
        return str(path)

    def pretrained_backbone_file(self) -> str | None:
        """``pretrained_backbone`` with a classifier trained here as its weights file: a classifier run folder
        (``09_train_classifier``'s, or a curated one) stands for the ``<model>.pt`` it exported; torchvision's
        weight names (``DEFAULT``, ``IMAGENET1K_V1``) pass through."""
        from clothingrec.detect.models import names_a_path

        value = self.pretrained_backbone
        if not value or not (names_a_path(value) or _project_path(value).is_dir()):
            return value  # None or a torchvision weights name
        path = _project_path(value)
        if path.is_dir():
            summary = path / "train_summary.json"
            if not summary.is_file():
                raise FileNotFoundError(f"pretrained_backbone: {value} is a folder without a classifier run's "
                                        "train_summary.json")
            import json

            named = Path(str(json.loads(summary.read_text(encoding="utf-8")).get("weights") or ""))
            path = next((p for p in (path / named.name, PROJECT_ROOT / named) if named.name and p.is_file()), None)
            if path is None:
                raise FileNotFoundError(f"pretrained_backbone: {summary} names weights {named}, found neither "
                                        "beside it nor in the project")
        if not path.is_file():
            raise FileNotFoundError(f"pretrained_backbone: {value} is neither a classifier run folder nor a "
                                    "weights file")
        return str(path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes) -> DetectConfig:
        return dataclasses.replace(self, **_typed(changes))


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(DetectConfig))


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    return cast_fields(DetectConfig, values, "detection")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    try:
        return _typed(data)
    except KeyError as exc:
        raise KeyError(f"{path}: {exc.args[0]}") from None


def find_config(config: str | Path) -> Path:
    """A YAML path as given, else relative to the project root (papermill runs in notebooks/), else a
    file name under ``configs/detect/`` (with or without ``.yaml``)."""
    text = str(config)
    for candidate in (Path(text), PROJECT_ROOT / text, DETECT_CONFIG_DIR / text, DETECT_CONFIG_DIR / f"{text}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.name for p in DETECT_CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"detection config {text!r} not found (files in configs/detect/: {known})")


def load_config(profile: str = "smoke", config: str | Path | None = None, **params) -> DetectConfig:
    """default.yaml ← experiment YAML ← every parameter that is not None (see the module doc).

    ``family`` and ``classes`` choose the profile's file, so they are read from the parameters first,
    then from an explicit ``config`` file, then from default.yaml.
    """
    merged = _read_yaml(DEFAULT_YAML)
    params = _typed({k: v for k, v in params.items() if v is not None})
    experiment = None
    if config:
        experiment = find_config(config)
    else:
        family = params.get("family", merged["family"])
        classes = params.get("classes", merged["classes"])
        candidate = DETECT_CONFIG_DIR / f"{'person' if classes == 'person' else family}-{profile}.yaml"
        if candidate.is_file():
            experiment = candidate
        elif profile != "smoke":
            raise FileNotFoundError(f"no detection profile {candidate.name} (pass CONFIG= a YAML file instead)")
    if experiment is not None:
        merged.update(_read_yaml(experiment))
    merged.update(params)
    return DetectConfig(**merged).validate()
