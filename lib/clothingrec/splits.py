"""Deterministic, seeded, leak-free train / val / test splits shared by every model.

CCP has no official split.  :func:`ccp_split` is THE split every consumer uses for it (the clothing
detectors, the person detector on the same photos' silhouettes, the pipeline, the classifier's CCP
garment crops).  It is drawn once and stored in the committed file ``configs/splits/ccp.json``
(:data:`CCP_SPLIT_FILE`); :func:`ccp_split` reads that file, so nothing re-draws it differently, and
a test checks that regenerating it (:func:`write_ccp_split`) gives the same bytes.

The rule (:func:`seeded_split`):

1. ids are de-duplicated and sorted by their numeric value (``"0007"``, ``7`` and ``"7"`` sort the
   same way; non-numeric ids after, by text), so the split does not depend on listing order;
2. a ``random.Random(seed)`` shuffle of that sorted list gives the order of the draw: its first
   ``round(n * test_fraction)`` ids are ``test``, the next ``round(n * val_fraction)`` are ``val``,
   the rest ``train``; each list is returned sorted.

CCP has one photo per id and one labelled person per photo, so splitting by image id cannot leak
an image (or its label map) into two parts.  With the stored parameters (seed 0, 70 / 10 / 20 %),
the 1,004 CCP ids give 703 train / 100 val / 201 test.  Penn-Fudan is split by file stem with the
same rule and fractions (stored with each converted copy as ``split.json``); DeepFashion2 keeps its
release folders.

Use: checkpoints and thresholds are chosen on ``val``; ``test`` is evaluated once, at the end.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

PARTS: tuple[str, ...] = ("train", "val", "test")
#: the shared fractions and seed (CCP's stored split and Penn-Fudan's drawn one)
FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}
SEED = 0
#: CCP's pixel-labelled photos are 0001 … 1004 (see ``../shared/datasets/clothing-co-parsing/SOURCE.md``)
CCP_IDS: tuple[str, ...] = tuple(f"{i:04d}" for i in range(1, 1005))
CCP_SPLIT_FILE = Path(__file__).resolve().parents[2] / "configs" / "splits" / "ccp.json"


class SplitError(ValueError):
    """The stored split is damaged, or ids were asked for that it does not hold."""


def _key(x) -> tuple:
    s = str(x)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def seeded_split(ids: Iterable, val_fraction: float = FRACTIONS["val"],
                 test_fraction: float = FRACTIONS["test"], seed: int = SEED) -> dict[str, list]:
    """Split ``ids`` into ``{"train": [...], "val": [...], "test": [...]}``; see the module doc.

    ``test_fraction=0`` gives an empty ``test`` (a two-way split).
    """
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {f}")
    if val_fraction + test_fraction > 1.0:
        raise ValueError(f"val_fraction + test_fraction must be <= 1, got {val_fraction + test_fraction}")
    unique: dict[tuple, object] = {}
    for x in ids:
        unique.setdefault(_key(x), x)  # "0007" and 7 are the same id: first spelling kept
    ordered = [unique[k] for k in sorted(unique)]
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    n_test = int(round(len(ordered) * test_fraction))
    n_val = min(int(round(len(ordered) * val_fraction)), len(ordered) - n_test)
    part_of = {_key(x): "test" for x in shuffled[:n_test]}
    part_of.update({_key(x): "val" for x in shuffled[n_test:n_test + n_val]})
    return {p: [x for x in ordered if part_of.get(_key(x), "train") == p] for p in PARTS}


def check_disjoint(split: dict[str, Sequence]) -> None:
    """Raise :class:`SplitError` when an id is in two parts (ids compared by value: ``7`` = ``"0007"``)."""
    seen: dict[tuple, str] = {}
    for part, ids in split.items():
        for x in ids:
            other = seen.setdefault(_key(x), part)
            if other != part:
                raise SplitError(f"id {x!r} is in both {other!r} and {part!r}")


def split_digest(split: dict[str, Sequence]) -> str:
    """sha256 of the parts' id lists (as text, in :data:`PARTS` order): names a split in one string."""
    canonical = json.dumps({p: [str(x) for x in split.get(p, [])] for p in PARTS}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------ CCP: the stored split
def generate_ccp_split(ids: Iterable = CCP_IDS) -> dict:
    """The content of ``configs/splits/ccp.json``: parameters, counts, digest and the id lists."""
    split = seeded_split(ids, val_fraction=FRACTIONS["val"], test_fraction=FRACTIONS["test"], seed=SEED)
    split = {p: [str(x) for x in split[p]] for p in PARTS}
    return {
        "dataset": "clothing-co-parsing (pixel-labelled photos 0001-1004)",
        "rule": (f"clothingrec.splits.seeded_split(ids, val_fraction={FRACTIONS['val']}, "
                 f"test_fraction={FRACTIONS['test']}, seed={SEED}): ids sorted by value, shuffled by "
                 "random.Random(seed); the first round(n*test) are test, the next round(n*val) val, the rest train"),
        "seed": SEED,
        "fractions": dict(FRACTIONS),
        "counts": {p: len(split[p]) for p in PARTS},
        "digest": split_digest(split),
        **split,
    }


def ccp_split_text(ids: Iterable = CCP_IDS) -> str:
    """The exact bytes (as text) of the stored file: one id list per line, so diffs stay readable."""
    data = generate_ccp_split(ids)
    head = {k: v for k, v in data.items() if k not in PARTS}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines += [f" {json.dumps(p)}: {json.dumps(data[p])}{',' if p != PARTS[-1] else ''}" for p in PARTS]
    return "\n".join(lines) + "\n}\n"


def write_ccp_split(path: str | Path = CCP_SPLIT_FILE) -> Path:
    """(Re)write the stored CCP split; a test checks the committed file equals what this writes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ccp_split_text(), encoding="utf-8")
    _load_stored.cache_clear()
    return path


@lru_cache(maxsize=4)
def _load_stored(path: str) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    split = {p: list(data[p]) for p in PARTS}
    if split_digest(split) != data.get("digest"):
        raise SplitError(f"{path}: the id lists do not match the stored digest (edited by hand?); "
                         "regenerate with clothingrec.splits.write_ccp_split()")
    check_disjoint(split)
    return data


def ccp_split(ids: Iterable | None = None, *, path: str | Path = CCP_SPLIT_FILE) -> dict[str, list[str]]:
    """THE CCP split ``{"train", "val", "test"}`` (id strings such as ``"0001"``, sorted), from the stored file.

    With ``ids`` (e.g. the photos a copy of CCP holds, as ``"0007"`` or ``7``), each part keeps only
    those ids, spelled as given; an id the stored split does not hold raises :class:`SplitError`
    rather than being put anywhere (that would be a second, different split).
    """
    data = _load_stored(str(Path(path).resolve()))
    split = {p: list(data[p]) for p in PARTS}
    if ids is None:
        return split
    part_of = {_key(x): p for p in PARTS for x in split[p]}
    out: dict[str, list] = {p: [] for p in PARTS}
    unknown = []
    given: dict[tuple, object] = {}
    for x in ids:
        given.setdefault(_key(x), x)
    for k in sorted(given):
        part = part_of.get(k)
        if part is None:
            unknown.append(given[k])
        else:
            out[part].append(given[k])
    if unknown:
        raise SplitError(f"{len(unknown)} ids are not in the stored CCP split {path} (first: {unknown[:5]}); "
                         "CCP's pixel-labelled photos are 0001-1004")
    return out


def ccp_split_info(path: str | Path = CCP_SPLIT_FILE) -> dict:
    """The stored split's parameters, counts and digest (no id lists): what reports and run records cite."""
    data = _load_stored(str(Path(path).resolve()))
    return {k: v for k, v in data.items() if k not in PARTS}


def ccp_part_of(image_id, path: str | Path = CCP_SPLIT_FILE) -> str:
    """``"train"``, ``"val"`` or ``"test"``: the part of the stored CCP split an image id belongs to."""
    split = ccp_split([image_id], path=path)
    return next(p for p in PARTS if split[p])


def ccp_image_ids(root=None) -> list[str]:
    """The CCP image ids (``"0001"`` …) that have a pixel-level label map, sorted."""
    from clothingrec.paths import CCP, find_dataset

    root = Path(root) if root else find_dataset(CCP)
    return sorted(p.stem for p in (root / "annotations" / "pixel-level").glob("*.mat"))


if __name__ == "__main__":  # python -m clothingrec.splits: rewrite configs/splits/ccp.json
    print(f"wrote {write_ccp_split()}: {ccp_split_info()['counts']}, digest {ccp_split_info()['digest'][:12]}")
