"""The run record: one ``run.json`` in every training run folder, read by everything downstream.

What a training run was (task, family, architecture, classes, data and split, input size), what it
produced (weights, metrics) and how it ran (provenance).  Evaluation, the pipeline, analysis, the
comparison and the web demo find a run's weights, classes and validation split here instead of
guessing from folder layouts.  Paths inside are relative to the project root (or to the run folder
for the run's own files), so a record stays valid in another checkout.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clothingrec.paths import from_project, project_relative

RUN_FILE = "run.json"
TASKS = ("detect", "classify")


def relative(path, base=None) -> str | None:
    """``path`` as a record stores it: relative to ``base`` (default: the project root) when inside it."""
    if path is None:
        return None
    if base is None:
        return project_relative(path)
    absolute, root = Path(os.path.abspath(path)), Path(os.path.abspath(base))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(path)


MIN_FREE_MB = 512  # checkpoints of the largest families (R-CNN last + best + the one being written)


class RunFolderError(OSError):
    """A run folder that cannot hold a run: not creatable, not writable, or its disk nearly full."""


def prepare_run_folder(folder, min_free_mb: float = MIN_FREE_MB) -> Path:
    """Create ``folder`` and prove it can take a run's files before any training starts.

    Fails at once, naming the folder, when it cannot be created, a file cannot be written in it,
    or its filesystem has less than ``min_free_mb`` free: a long run would otherwise die at its
    first checkpoint.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"0")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"run folder {folder} is not writable: {exc.strerror or exc}") from exc
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < min_free_mb:
        raise RunFolderError(f"run folder {folder}: only {free_mb:.0f} MB free on its disk, a run needs "
                             f"at least {min_free_mb:.0f} MB (checkpoints); free space or choose another folder")
    return folder


def digest(names) -> str:
    """A short, order-independent fingerprint of a list of file names (a split's identity)."""
    return hashlib.sha256("\n".join(sorted(str(n) for n in names)).encode("utf-8")).hexdigest()[:16]


@dataclass
class RunRecord:
    """Everything downstream needs to know about one training run."""

    task: str                                  # detect | classify
    family: str                                # yolo | fasterrcnn | maskrcnn | classifier
    arch: str                                  # yolov8n, mobilenet_v3_large_fpn, resnet50, ...
    classes: list[str]                         # class names, in label order
    dataset: str                               # dataset name (ccp, synthetic-deepfashion2, ...)
    imgsz: int                                 # the one input size (see the recipe's config doc)
    weights: str | None = None                 # relative to the run folder
    backend: str = "torchvision"               # torchvision | ultralytics | detectron2 | lightning
    category_ids: list[int] = field(default_factory=list)  # detection: COCO id of each class
    split: dict[str, Any] = field(default_factory=dict)     # per split: images, digest; data files
    metrics: dict[str, Any] = field(default_factory=dict)   # headline numbers on the validation split
    config: dict[str, Any] = field(default_factory=dict)    # the resolved recipe config
    provenance: dict[str, Any] = field(default_factory=dict)  # command, commit, hardware, times
    name: str = ""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"run record: task {self.task!r} is not one of {TASKS}")

    @property
    def category_names(self) -> dict[int, str]:
        ids = self.category_ids or list(range(1, len(self.classes) + 1))
        return dict(zip(ids, self.classes))

    def save(self, run_dir) -> Path:
        path = Path(run_dir) / RUN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        text = json.dumps(_finite(asdict(self)), indent=1, default=str, allow_nan=False)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, run_dir) -> RunRecord:
        path = Path(run_dir)
        path = path if path.name == RUN_FILE else path / RUN_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path.parent} has no {RUN_FILE} (not a training run folder of this project)")
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("task", "family", "arch", "classes", "dataset", "imgsz") if k not in data]
        if missing:
            raise ValueError(f"{path}: missing fields {missing}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def weights_path(self, run_dir) -> Path | None:
        return None if self.weights is None else Path(run_dir) / self.weights

    def split_file(self, split: str, key: str) -> Path | None:
        """A stored data path of one split (``key``: ``coco_json`` | ``image_dir``), project-resolved."""
        value = (self.split.get(split) or {}).get(key)
        return None if value is None else from_project(value)


def _finite(value):
    """JSON-ready copy: NaN / ±inf (e.g. an AP with no ground truth) become null; numpy scalars plain."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_run(path) -> bool:
    return (Path(path) / RUN_FILE).is_file()
