"""Decode and resize every image once into a uint8 tensor store.

Each image is decoded (JPEG DCT-domain downscaling via PIL ``draft`` where it applies),
its shorter side resized to ``size`` and centre-cropped to ``size × size``; the
resulting ``[N, 3, size, size]`` uint8 tensor is what training and evaluation read,
epoch after epoch, without touching a JPEG again.  ``size`` is the eval resize size
(``imgsz / crop_frac``): evaluation centre-crops ``imgsz`` out of it (exactly the usual
resize + centre-crop), training draws random resized crops from it on the device.

Stores are cached on disk under ``.cache/classify/`` keyed by the file list, sizes,
modification times and ``size``.  Images that fail to decode are left out and listed in
:attr:`ImageStore.skipped` with the file name and the reason.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clothingrec.paths import CACHE_DIR

STORE_VERSION = 1
STORE_CACHE_DIR = CACHE_DIR / "classify"


def load_rgb(source, size: int | None = None) -> Image.Image:
    """Open a path (or take a PIL image) as RGB; for JPEG files let the decoder downscale towards ``size``."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    image = Image.open(source)
    if size and image.format == "JPEG":
        image.draft("RGB", (size, size))  # decodes at 1/2, 1/4, 1/8 scale when still >= size
    return image.convert("RGB")


def resize_center_square(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bilinear, antialiased) and centre-crop ``size × size``."""
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def decode_square(source, size: int) -> np.ndarray:
    """``[3, size, size]`` uint8 array of one image (the store's and the inference's decoding)."""
    image = resize_center_square(load_rgb(source, size), size)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


@dataclass
class ImageStore:
    """Decoded images of one split."""

    images: torch.Tensor            # [N, 3, S, S] uint8
    labels: torch.Tensor            # [N] int64
    paths: list[str]
    classes: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=len(self.classes))


def _cache_key(paths: list[str], size: int) -> str:
    h = hashlib.sha1(f"v{STORE_VERSION}|{size}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"|{p}|missing".encode())
    return h.hexdigest()[:16]


def build_store(index, size: int, workers: int = 2, cache: bool = True,
                cache_dir: Path = STORE_CACHE_DIR) -> ImageStore:
    """Decode ``index`` (a :class:`~clothingrec.datasets.clothing_small.SplitIndex`) into a store."""
    paths = [str(r.path) for r in index.records]
    labels = [r.label for r in index.records]
    key = _cache_key(paths, size)
    cache_file = cache_dir / f"{index.split}-{size}-{key}.pt"
    if cache and cache_file.is_file():
        try:
            data = torch.load(cache_file, map_location="cpu", weights_only=False)
            return ImageStore(data["images"], data["labels"], data["paths"], tuple(index.classes),
                              list(index.skipped) + [tuple(s) for s in data["skipped"]])
        except Exception:  # a damaged cache is rebuilt
            cache_file.unlink(missing_ok=True)

    def work(path: str):
        try:
            return decode_square(path, size), None
        except Exception as exc:  # noqa: BLE001 - any decoding failure is reported, not raised
            return None, f"cannot decode image: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        results = list(pool.map(work, paths))
    kept, kept_labels, kept_paths, skipped = [], [], [], []
    for path, label, (array, error) in zip(paths, labels, results):
        if array is None:
            skipped.append((path, error))
            continue
        kept.append(torch.from_numpy(array))
        kept_labels.append(label)
        kept_paths.append(path)
    images = torch.stack(kept) if kept else torch.zeros((0, 3, size, size), dtype=torch.uint8)
    store = ImageStore(images, torch.tensor(kept_labels, dtype=torch.long), kept_paths,
                       tuple(index.classes), list(index.skipped) + skipped)
    if cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")  # processes filling one cache write apart
        torch.save({"images": store.images, "labels": store.labels, "paths": kept_paths,
                    "skipped": skipped, "meta": json.dumps({"size": size, "split": index.split})}, tmp)
        tmp.replace(cache_file)
    return store


class StoreDataset(torch.utils.data.Dataset):
    """Index a store; ``__getitems__`` returns a whole batch as two tensors (one gather, no collate)."""

    def __init__(self, store: ImageStore):
        self.images = store.images
        self.labels = store.labels

    def __len__(self) -> int:
        return int(self.labels.numel())

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]


def collate_batch(batch):
    """Collate for :class:`StoreDataset`: the batch is already stacked."""
    if isinstance(batch, tuple) and len(batch) == 2 and torch.is_tensor(batch[0]):
        return batch
    images, labels = zip(*batch)
    return torch.stack(images), torch.stack(labels)
