"""``make data``: make every dataset available under ``data/`` and say what is missing.

- clothing-dataset-small and clothing-co-parsing: linked from ``$CLOTHINGREC_SHARED``
  (``../shared/datasets`` beside the repo) when present, otherwise cloned from their public
  origins (pinned commits) when a network is available.  Counts are verified per split/class.
- DeepFashion2 and Penn-Fudan cannot be redistributed: if ``data/deepfashion2`` or
  ``data/PennFudanPed`` is absent, print how to obtain them; small synthetic sets in their
  exact formats are written to ``data/synthetic/`` for tests and smoke runs.
- CCP garment crops (``data/ccp-crops/{train,test}/<class>/``): the classifiers' out-of-domain test set
  (photos of the test part of the stored CCP split) and its optional training add-on (train part), cut
  from CCP's label maps (:mod:`clothingrec.datasets.ccp_crops`); reused when current; counts printed.

Exit status is non-zero only when a dataset the default profile needs is missing or wrong.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from clothingrec.paths import CCP, CLOTHING_SMALL, DATA_DIR, DEEPFASHION2, PENNFUDAN, SHARED_DATASETS, SYNTHETIC_DIR

#: public origins and the commits the shared copies were taken from (see their SOURCE.md)
ORIGINS = {
    CLOTHING_SMALL: ("https://github.com/alexeygrigorev/clothing-dataset-small.git",
                     "11961516512414bf9f6c150a832cfd21b54a6b54"),
    CCP: ("https://github.com/bearpaw/clothing-co-parsing.git",
          "fe34fb77721a9973fbae92c05f7f12b664d10110"),
}
CLOTHING_SMALL_SPLITS = {"train": 3068, "validation": 341, "test": 372}
CLOTHING_SMALL_CLASSES = ("dress", "hat", "longsleeve", "outwear", "pants",
                          "shirt", "shoes", "shorts", "skirt", "t-shirt")
CCP_IMAGES = 1004
#: sizes of the synthetic smoke sets (small: smoke trainings run on them in CI)
SYNTHETIC_DF2 = {"n_train": 48, "n_val": 16}
SYNTHETIC_PENNFUDAN = {"n": 40}

OBTAIN = {
    DEEPFASHION2: (
        "DeepFashion2 is released on request (github.com/switchablenorms/DeepFashion2: fill in "
        "the form, unzip train.zip/validation.zip with the password you receive). Put it at "
        f"{DATA_DIR / DEEPFASHION2} as train/{{image,annos}} and validation/{{image,annos}}, "
        "then pass DATASET=deepfashion2."
    ),
    PENNFUDAN: (
        "Penn-Fudan Pedestrian (cis.upenn.edu/~jshi/ped_html/): download PennFudanPed.zip and unzip "
        f"it so that {DATA_DIR / PENNFUDAN}/PNGImages, PedMasks and Annotation exist, then pass "
        "DATASET=pennfudan."
    ),
}


def link_or_download(name: str) -> Path | None:
    """Ensure ``data/<name>`` exists: symlink the shared copy, else clone the public origin."""
    target = DATA_DIR / name
    if target.exists():
        print(f"[data] {name}: present at {target}")
        return target
    if target.is_symlink():  # dangling link from another checkout
        target.unlink()
    shared = SHARED_DATASETS / name
    if shared.is_dir():
        target.symlink_to(shared.resolve(), target_is_directory=True)
        print(f"[data] {name}: linked {target} -> {shared.resolve()}")
        return target
    url, commit = ORIGINS[name]
    if shutil.which("git") is None:
        print(f"[data] {name}: MISSING (no shared copy at {shared} and git is not installed)")
        return None
    print(f"[data] {name}: no shared copy at {shared}; cloning {url} @ {commit[:10]}")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        subprocess.run(["git", "clone", "--quiet", "--filter=blob:none", url, str(tmp)],
                       check=True, timeout=1800, env=env)
        subprocess.run(["git", "-C", str(tmp), "checkout", "--quiet", commit], check=True, env=env)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"[data] {name}: MISSING: download failed ({exc}); place a copy at {target}")
        return None
    if name == CCP:  # keep only the pixel-labelled part, laid out like the shared copy
        _trim_ccp(tmp)
    tmp.rename(target)
    return target


def _trim_ccp(root: Path) -> None:
    photos = root / "photos"
    for photo in photos.glob("*.jpg"):
        if int(photo.stem) > CCP_IMAGES:
            photo.unlink()
    shutil.rmtree(root / "annotations" / "image-level", ignore_errors=True)


def verify_clothing_small(root: Path) -> list[str]:
    problems = []
    for split, expected in CLOTHING_SMALL_SPLITS.items():
        counts = {c: len(list((root / split / c).glob("*.jpg"))) for c in CLOTHING_SMALL_CLASSES}
        total = sum(counts.values())
        status = "ok" if total == expected else f"EXPECTED {expected}"
        print(f"[data]   {split:<10} {total:>5} images {status}  "
              + " ".join(f"{c}={n}" for c, n in counts.items()))
        if total != expected:
            problems.append(f"{CLOTHING_SMALL}/{split}: {total} images, expected {expected}")
    return problems


def verify_ccp(root: Path) -> list[str]:
    photos = len(list((root / "photos").glob("*.jpg")))
    labels = len(list((root / "annotations" / "pixel-level").glob("*.mat")))
    ok = photos == labels == CCP_IMAGES and (root / "label_list.mat").exists()
    print(f"[data]   photos {photos}, pixel-level label maps {labels}, label_list.mat "
          f"{'present' if (root / 'label_list.mat').exists() else 'MISSING'} "
          f"{'ok' if ok else f'EXPECTED {CCP_IMAGES} of each'}")
    return [] if ok else [f"{CCP}: {photos} photos / {labels} label maps, expected {CCP_IMAGES}"]


def write_synthetic() -> None:
    try:
        from clothingrec import synthetic
    except ImportError:
        print("[data] synthetic generators not available in this version; skipped")
        return
    for name, writer, kwargs in (
        (DEEPFASHION2, synthetic.write_deepfashion2, SYNTHETIC_DF2),
        (PENNFUDAN, synthetic.write_pennfudan, SYNTHETIC_PENNFUDAN),
    ):
        root = SYNTHETIC_DIR / name
        writer(root, seed=0, **kwargs)
        print(f"[data] synthetic {name}: written to {root} ({kwargs})")


def write_ccp_crops(ccp_root: Path) -> list[str]:
    """Build (or reuse) ``data/ccp-crops`` from the CCP copy and print its counts per class and part."""
    from clothingrec.datasets import ccp_crops

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        crops = ccp_crops.build_crops(ccp_crops.crops_dir(), ccp_root, workers=max(1, min(4, cores)),
                                      log=lambda m: print(f"[data] {m.removeprefix('[ccp-crops] ')}"))
    except Exception as exc:  # noqa: BLE001 - the other datasets stay usable; the problem is reported
        return [f"ccp-crops: not built ({type(exc).__name__}: {exc})"]
    print("[data]   CCP garment crops per class (train = add-on for training, test = out-of-domain test set):")
    for line in crops.counts_frame().to_string().splitlines():
        print(f"[data]     {line}")
    return []


def main() -> int:
    from clothingrec.paths import building

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with building(DATA_DIR / ".make-data"):  # two `make` targets started together prepare data/ in turn
        return _prepare_all()


def _prepare_all() -> int:
    problems: list[str] = []
    for name, verify in ((CLOTHING_SMALL, verify_clothing_small), (CCP, verify_ccp)):
        root = link_or_download(name)
        problems += verify(root) if root else [f"{name}: missing"]
        if name == CCP and root:
            problems += write_ccp_crops(root)
    for name, how in OBTAIN.items():
        where = DATA_DIR / name
        if where.exists():
            print(f"[data] {name}: present at {where}")
        else:
            print(f"[data] {name}: not present (optional). {how}")
    write_synthetic()
    if problems:
        print("[data] PROBLEMS:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("[data] all datasets the default profiles need are present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
