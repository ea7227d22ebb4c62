"""Where things live: project root, data, runs, caches; the offline-safe environment.

Every notebook, test, benchmark and the web app import paths from here, so a
dataset is looked up the same way everywhere:

1. ``data/<name>`` inside the project (``make data`` links or downloads it there),
2. ``$CLOTHINGREC_SHARED/<name>`` (default ``../shared/datasets`` beside the repo).
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("CLOTHINGREC_ROOT", Path(__file__).resolve().parents[2]))
DATA_DIR = PROJECT_ROOT / "data"
RUNS_DIR = PROJECT_ROOT / "runs"
RESULTS_DIR = RUNS_DIR / "results"
CACHE_DIR = PROJECT_ROOT / ".cache"
CONFIG_DIR = PROJECT_ROOT / "configs"
WEIGHTS_DIR = PROJECT_ROOT / "weights"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
SHARED_DATASETS = Path(os.environ.get("CLOTHINGREC_SHARED", PROJECT_ROOT.parent / "shared" / "datasets"))

#: Real datasets the project knows, with the folder name used under ``data/``.
CLOTHING_SMALL = "clothing-dataset-small"
CCP = "clothing-co-parsing"
DEEPFASHION2 = "deepfashion2"
PENNFUDAN = "PennFudanPed"
#: Synthetic stand-ins in the exact DeepFashion2 / Penn-Fudan formats (written by ``make data``).
SYNTHETIC_DIR = DATA_DIR / "synthetic"


def offline_environment() -> dict[str, str]:
    """The variables that keep every cache in the project and third-party libraries offline.

    The Makefile exports the same, and ``make setup`` writes them into the Jupyter kernel's
    ``kernel.json``, so notebooks get them however they are started.
    """
    return {
        "TORCH_HOME": str(CACHE_DIR / "torch"),
        "MPLCONFIGDIR": str(CACHE_DIR / "matplotlib"),
        "YOLO_CONFIG_DIR": str(CACHE_DIR / "ultralytics"),
        "HF_HOME": str(CACHE_DIR / "huggingface"),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "0",
        "HF_HUB_OFFLINE": "1",
    }


def configure_environment() -> None:
    """Apply :func:`offline_environment`, create the cache folders and give ultralytics a local font.

    Called explicitly by entry points (importing :mod:`clothingrec` does nothing), before
    ultralytics is imported.  Uses ``setdefault`` so a user with a network can override any of
    it from the shell.
    """
    for key, value in offline_environment().items():
        os.environ.setdefault(key, value)
    for key in ("TORCH_HOME", "MPLCONFIGDIR", "YOLO_CONFIG_DIR", "HF_HOME"):
        Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
    _install_ultralytics_font(Path(os.environ["YOLO_CONFIG_DIR"]))


def _install_ultralytics_font(config_dir: Path) -> None:
    """ultralytics downloads Arial.ttf for its plots unless one is present: give it a local TTF."""
    targets = [config_dir / "Arial.ttf", config_dir / "Ultralytics" / "Arial.ttf"]
    if all(t.exists() for t in targets):
        return
    spec = find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return
    source = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not source.exists():
        return
    for target in targets:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def find_dataset(name: str, required: bool = True) -> Path | None:
    """Return the folder of dataset ``name`` (see module doc for the search order)."""
    for candidate in (DATA_DIR / name, SHARED_DATASETS / name):
        if candidate.exists():
            return candidate
    if required:
        raise FileNotFoundError(
            f"dataset {name!r} not found in {DATA_DIR / name} or {SHARED_DATASETS / name}; "
            "run `make data` (see data/README.md for datasets you must obtain yourself)"
        )
    return None


def project_relative(path: str | os.PathLike) -> str:
    """``path`` as run records write it: relative to the project root (POSIX) when inside it, else as given.

    Symlinks are not followed, so ``data/<name>`` stays ``data/<name>`` wherever it points.
    """
    absolute = Path(os.path.abspath(path))
    root = Path(os.path.abspath(PROJECT_ROOT))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(path)


def user_path(path: str | os.PathLike) -> Path:
    """A path a user typed: as given when it exists, else (relative) from the project root, since notebooks
    run inside ``notebooks/`` while their users name files from the root."""
    path = Path(path).expanduser()
    if not path.exists() and not path.is_absolute() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


def from_project(path: str | os.PathLike) -> Path:
    """A path read from a run record: a relative one is relative to the project root, not the cwd."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def resolve_output_dir(notebook: str, output_dir: str | os.PathLike | None = None) -> Path:
    """Folder a notebook writes its artifacts to.

    ``make <target>`` (papermill) passes ``runs/<notebook>/<timestamp>``.  A notebook run
    by hand or by nbval writes to ``runs/<notebook>/default`` and points ``latest`` at it,
    so downstream notebooks find the newest outputs the same way in both cases.
    """
    if output_dir:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        return out.resolve()
    out = RUNS_DIR / notebook / "default"
    out.mkdir(parents=True, exist_ok=True)
    point_latest(out)
    return out


def point_latest(run_dir: Path) -> Path:
    """Make ``<run_dir>/../latest`` a relative symlink to ``run_dir`` (atomically: two runs of one notebook
    started together each leave a valid link, the later one's)."""
    link = run_dir.parent / "latest"
    tmp = link.with_name(f".latest.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
    return link


@contextmanager
def building(folder: str | os.PathLike):
    """Hold an exclusive lock on ``folder`` while it is built or checked for reuse.

    Cached folders (prepared datasets, the CCP crops, ``make data``) are shared by every run of the
    project; two trainings started together would otherwise write the same temporary files.  The second
    one waits here, then finds the folder current and reuses it.  The lock is ``<folder>.lock`` beside it
    (POSIX ``flock``: released when the process ends, even when killed); where ``fcntl`` does not exist
    the lock is skipped.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks in the standard library
        yield
        return
    with open(folder.with_name(folder.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def latest_run(notebook: str) -> Path:
    """The newest output folder of ``notebook`` (``runs/<notebook>/latest``)."""
    link = RUNS_DIR / notebook / "latest"
    if not link.exists():
        raise FileNotFoundError(
            f"no run of {notebook} found at {link}; run its make target or the notebook first"
        )
    return link.resolve()
