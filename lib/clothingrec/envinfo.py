"""What this machine is and which datasets are present (the environment notebook, provenance files)."""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from clothingrec.paths import (
    CCP,
    CLOTHING_SMALL,
    DEEPFASHION2,
    PENNFUDAN,
    PROJECT_ROOT,
    SYNTHETIC_DIR,
    find_dataset,
)

PACKAGES = ("torch", "torchvision", "ultralytics", "lightning", "torchmetrics", "timm", "pycocotools",
            "numpy", "pandas", "scikit-learn", "matplotlib", "seaborn", "papermill", "nbval",
            "onnxruntime")

#: dataset name → (folder, glob of its images relative to it)
DATASETS = {
    CLOTHING_SMALL: (lambda: find_dataset(CLOTHING_SMALL, required=False), "*/*/*.jpg"),
    CCP: (lambda: find_dataset(CCP, required=False), "photos/*.jpg"),
    DEEPFASHION2: (lambda: find_dataset(DEEPFASHION2, required=False), "*/image/*.jpg"),
    PENNFUDAN: (lambda: find_dataset(PENNFUDAN, required=False), "PNGImages/*.png"),
    f"synthetic {DEEPFASHION2}": (lambda: _existing(SYNTHETIC_DIR / DEEPFASHION2), "*/image/*.jpg"),
    f"synthetic {PENNFUDAN}": (lambda: _existing(SYNTHETIC_DIR / PENNFUDAN), "PNGImages/*.png"),
}


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


def package_versions(names=PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_report(device: str | None = "auto", threads: int | None = None) -> dict:
    """Hardware and runtime facts: CPU, cores, torch threads, accelerator."""
    import torch

    from clothingrec.device import cpu_count, resolve_device, set_threads

    resolved = resolve_device(device)
    report = {
        "cpu": cpu_model(),
        "cores": cpu_count(),
        "torch_threads": set_threads(threads),
        "device_requested": device,
        "device": str(resolved),
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "platform": platform.platform(),
    }
    return report


def git_commit() -> str:
    """``<sha>`` of HEAD, with ``-dirty`` when tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(command: str | None = None, **extra) -> dict:
    """What a curated result records about how it was produced."""
    return {"command": command, "commit": git_commit(), "date": dt.datetime.now().isoformat(timespec="seconds"),
            "hardware": machine_report(), "packages": package_versions(), **extra}


def dataset_report() -> list[dict]:
    """One row per known dataset: found or not, where (relative to the project when inside it), image count."""
    rows = []
    for name, (locate, pattern) in DATASETS.items():
        root = locate()
        if root is None:
            rows.append({"dataset": name, "found": False, "location": "-", "images": 0})
            continue
        try:
            where = str(root.relative_to(PROJECT_ROOT))
        except ValueError:
            where = str(root)
        rows.append({"dataset": name, "found": True, "location": where,
                     "images": sum(1 for _ in root.glob(pattern))})
    return rows


def sample_images(rows: list[dict]) -> dict[str, Path]:
    """The first image (sorted) of each dataset that was found."""
    samples = {}
    for row in rows:
        if not row["found"]:
            continue
        locate, pattern = DATASETS[row["dataset"]]
        first = min(locate().glob(pattern), default=None)
        if first is not None:
            samples[row["dataset"]] = first
    return samples
