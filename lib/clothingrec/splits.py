"""Deterministic, seeded, leak-free train/val splits shared by every model.

CCP has no official split.  :func:`ccp_split` is THE split every notebook uses for it:

1. ids are de-duplicated and sorted by their numeric value (``"0007"``, ``7`` and ``"7"`` sort the
   same way; non-numeric ids after, by text), so the split does not depend on listing order;
2. a ``random.Random(seed)`` shuffle of that sorted list picks ``round(n * val_fraction)`` ids
   for ``val``; the rest are ``train``; both lists are returned sorted.

CCP has one photo per id and one labelled person per photo, so splitting by image id cannot leak
an image (or its label map) into both sides.  The same function splits Penn-Fudan (by file stem),
stored with each converted copy.  With the defaults (seed 0, 20 %), the 1,004 CCP ids give
803 train / 201 val.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence


def _key(x) -> tuple:
    s = str(x)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def seeded_split(ids: Iterable, val_fraction: float = 0.2, seed: int = 0) -> dict[str, list]:
    """Split ``ids`` into ``{"train": [...], "val": [...]}``; see the module doc for the rule."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    unique: dict[tuple, object] = {}
    for x in ids:
        unique.setdefault(_key(x), x)  # "0007" and 7 are the same id: first spelling kept
    ordered = [unique[k] for k in sorted(unique)]
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    n_val = int(round(len(ordered) * val_fraction))
    val_keys = {_key(x) for x in shuffled[:n_val]}
    val = [x for x in ordered if _key(x) in val_keys]
    train = [x for x in ordered if _key(x) not in val_keys]
    return {"train": train, "val": val}


def ccp_split(ids: Sequence, val_fraction: float = 0.2, seed: int = 0) -> dict[str, list]:
    """The shared CCP train/val split (by image id, e.g. ``"0001"`` or ``1``): see the module doc."""
    split = seeded_split(ids, val_fraction=val_fraction, seed=seed)
    assert not set(map(str, split["train"])) & set(map(str, split["val"])), "split leaked ids"
    return split


def ccp_image_ids(root=None) -> list[str]:
    """The CCP image ids (``"0001"`` …) that have a pixel-level label map, sorted."""
    from pathlib import Path

    from clothingrec.paths import CCP, find_dataset

    root = Path(root) if root else find_dataset(CCP)
    return sorted(p.stem for p in (root / "annotations" / "pixel-level").glob("*.mat"))
