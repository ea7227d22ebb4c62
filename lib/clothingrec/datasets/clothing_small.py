"""Reader for clothing-dataset-small: ``{train,validation,test}/<class>/*.jpg``, 10 classes.

The class order is fixed (alphabetical, as the folders sort and as the published baselines
report them), so label ``i`` means the same class in every run, checkpoint and table::

    dress, hat, longsleeve, outwear, pants, shirt, shoes, shorts, skirt, t-shirt

Bad input never stops a read: folders that are not a known class and files that are not
images are listed in :attr:`SplitIndex.skipped` with the reason, and the rest is read.
Images that cannot be decoded are found later, when they are decoded (see
:mod:`clothingrec.classify.store`), and are reported the same way.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clothingrec.paths import CLOTHING_SMALL, find_dataset

CLASSES: tuple[str, ...] = (
    "dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: image counts of the published dataset (train / validation / test)
EXPECTED_COUNTS = {"train": 3068, "validation": 341, "test": 372}


@dataclass(frozen=True)
class ImageRecord:
    """One labelled image."""

    path: Path
    label: int
    class_name: str
    split: str


@dataclass
class SplitIndex:
    """The images of one split, in a stable order (class, then file name), and what was skipped."""

    root: Path
    split: str
    classes: tuple[str, ...]
    records: list[ImageRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def class_counts(self) -> dict[str, int]:
        counts = Counter(r.class_name for r in self.records)
        return {c: counts.get(c, 0) for c in self.classes}

    def subset(self, per_class: int | None, seed: int = 0) -> SplitIndex:
        """At most ``per_class`` images of each class, drawn with a seeded RNG (order kept)."""
        if not per_class:
            return self
        rng = random.Random(seed)
        chosen: list[ImageRecord] = []
        for label in range(len(self.classes)):
            members = [r for r in self.records if r.label == label]
            if len(members) > per_class:
                keep = set(rng.sample(range(len(members)), per_class))
                members = [m for i, m in enumerate(members) if i in keep]
            chosen.extend(members)
        return SplitIndex(self.root, self.split, self.classes, chosen, list(self.skipped))


def dataset_root(root: str | Path | None = None) -> Path:
    """The dataset folder: ``root`` if given, else :func:`clothingrec.paths.find_dataset`."""
    return Path(root) if root else find_dataset(CLOTHING_SMALL)


def read_split(split: str, root: str | Path | None = None,
               classes: tuple[str, ...] = CLASSES) -> SplitIndex:
    """Index ``<root>/<split>/<class>/*.jpg`` with the fixed class order ``classes``."""
    root = dataset_root(root)
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder {split!r} not found (expected one of {SPLITS})")
    index = SplitIndex(root=root, split=split, classes=tuple(classes))
    known = {name: i for i, name in enumerate(classes)}
    for entry in sorted(split_dir.iterdir()):
        if not entry.is_dir():
            index.skipped.append((str(entry), "not a class folder"))
            continue
        if entry.name not in known:
            index.skipped.append((str(entry), f"unknown class folder {entry.name!r} (classes: {', '.join(classes)})"))
            continue
        for path in sorted(entry.iterdir()):
            if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES:
                index.skipped.append((str(path), f"not an image file (suffix {path.suffix!r})"))
                continue
            if path.stat().st_size == 0:
                index.skipped.append((str(path), "empty file"))
                continue
            index.records.append(ImageRecord(path, known[entry.name], entry.name, split))
    missing = [c for c in classes if c not in {r.class_name for r in index.records}]
    if missing:
        index.skipped.append((str(split_dir), f"no images for classes: {', '.join(missing)}"))
    return index


def read_all(root: str | Path | None = None, classes: tuple[str, ...] = CLASSES) -> dict[str, SplitIndex]:
    """All three splits."""
    return {split: read_split(split, root, classes) for split in SPLITS}


def counts_table(indexes: dict[str, SplitIndex]):
    """A classes × splits DataFrame of image counts (with a total row)."""
    import pandas as pd

    table = pd.DataFrame({split: idx.class_counts() for split, idx in indexes.items()})
    table.loc["total"] = table.sum()
    return table
