"""Notebook settings for the detector notebooks: profile YAML < user YAML < explicit parameters.

``configs/detect/<kind>-<profile>.yaml`` holds each profile's defaults (kind: yolo, fasterrcnn,
maskrcnn); a notebook parameter left at ``None`` takes the YAML value.  Prepared datasets are cached
under ``runs/prepared/<dataset>-<classes>-<task>[-max<N>]`` and shared by the notebooks (the
converter reuses an up-to-date folder).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from clothingrec.paths import CONFIG_DIR, PROJECT_ROOT, RUNS_DIR

PREPARED_DIR = RUNS_DIR / "prepared"
KINDS = ("yolo", "fasterrcnn", "maskrcnn")


def profile_path(kind: str, profile: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; one of {KINDS}")
    return CONFIG_DIR / "detect" / f"{kind}-{profile}.yaml"


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings")
    return data


def _find_config(path: Path) -> Path:
    """A user YAML as given, else relative to the project root (``make … CONFIG=configs/detect/x.yaml``:
    papermill runs the notebook in notebooks/), else under configs/detect/."""
    if path.is_absolute() or path.is_file():
        return path
    for base in (PROJECT_ROOT, CONFIG_DIR / "detect"):
        if (base / path).is_file():
            return base / path
    return path


def resolve_settings(kind: str, profile: str = "smoke", config=None, overrides: dict | None = None) -> dict:
    """Merge the profile's YAML, an optional user YAML and the non-``None`` ``overrides``."""
    path = profile_path(kind, profile)
    if not path.is_file():
        known = sorted(p.stem.split("-", 1)[1] for p in (CONFIG_DIR / "detect").glob(f"{kind}-*.yaml"))
        raise ValueError(f"unknown profile {profile!r} for {kind}: known {known}")
    settings = _load_yaml(path)
    if config:
        cpath = _find_config(Path(config))
        user = _load_yaml(cpath)
        unknown = sorted(set(user) - set(settings))
        if unknown:
            raise ValueError(f"config {cpath}: unknown fields {unknown}; known: {sorted(settings)}")
        settings.update(user)
    for key, value in (overrides or {}).items():
        if value is not None:
            settings[key] = value
    settings["profile"] = profile
    return settings


def prepared_dir(dataset: str, *, classes: str = "garments", task: str = "detect",
                 max_images: int | None = None) -> Path:
    """The shared cache folder of a converted dataset (a user's path becomes a safe folder name)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(dataset).strip("/"))[-60:]
    suffix = f"-max{max_images}" if max_images else ""
    return PREPARED_DIR / f"{name}-{classes}-{task}{suffix}"


def prepare(dataset: str, *, task: str = "detect", classes: str = "garments", max_images: int | None = None,
            seed: int = 0):
    """``clothingrec.convert.prepare_detection_dataset`` into the shared cache (quiet, reused when current)."""
    from clothingrec.convert import prepare_detection_dataset

    out = prepared_dir(dataset, classes=classes, task=task, max_images=max_images)
    return prepare_detection_dataset(dataset, out, task=task, classes=classes, max_images=max_images,
                                     seed=seed, progress=False)


def run_name(kind: str, model: str, dataset: str) -> str:
    """``detector-<kind>-<model>-<dataset>`` (the results-folder convention)."""
    ds = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(dataset)).name)
    return f"detector-{kind}-{model}-{ds}"


def dataset_record(ds) -> dict:
    """What a training run records about its data (``data.json``), so notebook 06 can find the split."""
    return {"name": ds.name, "kind": ds.kind, "task": ds.task, "classes": ds.classes, "root": str(ds.root),
            "categories": [{"id": c["id"], "name": c["name"]} for c in ds.categories],
            "coco_json": {k: str(v) for k, v in ds.coco_json.items()},
            "image_dir": {k: str(v) for k, v in ds.image_dir.items()},
            "yolo_yaml": str(ds.yolo_yaml), "num_images": dict(ds.num_images)}
