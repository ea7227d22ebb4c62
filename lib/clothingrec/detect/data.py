"""A COCO-JSON dataset for torchvision detectors, horizontal-flip augmentation, resumable batching.

Reads the ``coco_json`` / ``image_dir`` pairs written by ``clothingrec.convert``.  Labels given to
the model are contiguous (1..K, 0 = background) and mapped back to COCO category ids on output, so
any COCO file works.  Bad input never stops the run: an image file that is missing, or an
annotation with a malformed / degenerate box, is skipped and listed in ``dataset.report``.

Augmentation is deterministic per (seed, epoch, index), so a run resumed mid-epoch sees exactly the
batches and flips it would have seen without the interruption.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class CocoDetection(Dataset):
    """One COCO split: ``(image float[3,H,W] in [0,1], target dict)`` per image.

    target: ``boxes`` (N, 4) xyxy float, ``labels`` (N,) contiguous int64, ``image_id``, ``area``,
    ``iscrowd``, and ``masks`` (N, H, W) uint8 when ``masks=True``.
    """

    def __init__(self, coco_json, image_dir, *, masks: bool = False, hflip: float = 0.0, seed: int = 0,
                 max_images: int | None = None):
        from clothingrec.evaluate.coco import load_coco

        self.coco_json = Path(coco_json)
        self.image_dir = Path(image_dir)
        self.coco = load_coco(self.coco_json)
        self.masks = masks
        self.hflip = float(hflip)
        self.seed = int(seed)
        self.epoch = 0
        self.report: list[str] = []
        cats = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        self.category_ids = [int(c["id"]) for c in cats]
        self.category_names = {int(c["id"]): c["name"] for c in cats}
        self.coco_to_label = {cid: i + 1 for i, cid in enumerate(self.category_ids)}
        self.label_to_coco = {i + 1: cid for i, cid in enumerate(self.category_ids)}
        images = sorted(self.coco.dataset["images"], key=lambda im: im["id"])
        if max_images is not None:
            images = images[:max_images]
        self.images = []
        for info in images:
            path = self.image_dir / info["file_name"]
            if not path.is_file():
                self.report.append(f"{self.coco_json.name}: image {info['id']} field 'file_name': "
                                   f"{path} does not exist (skipped)")
                continue
            self.images.append(info)
        # validate every annotation once, up front, so the report is complete before training starts
        self._valid = {info["id"]: self._annotations(info) for info in self.images}

    @property
    def num_classes(self) -> int:
        """Categories + background, as torchvision counts them."""
        return len(self.category_ids) + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def _annotations(self, info):
        boxes, labels, areas, crowd, anns = [], [], [], [], []
        w_img, h_img = info.get("width"), info.get("height")
        for ann in self.coco.imgToAnns.get(info["id"], []):
            bbox = ann.get("bbox")
            if bbox is None or len(bbox) != 4 or not np.all(np.isfinite(bbox)):
                self.report.append(f"{self.coco_json.name}: annotation {ann.get('id')} field 'bbox' is malformed")
                continue
            x, y, w, h = (float(v) for v in bbox)
            x1, y1, x2, y2 = x, y, x + w, y + h
            if w_img and h_img:
                x1, x2 = max(0.0, x1), min(float(w_img), x2)
                y1, y2 = max(0.0, y1), min(float(h_img), y2)
            if x2 - x1 < 1 or y2 - y1 < 1:
                self.report.append(f"{self.coco_json.name}: annotation {ann.get('id')} field 'bbox' "
                                   f"{bbox} is degenerate (skipped)")
                continue
            if ann.get("category_id") not in self.coco_to_label:
                self.report.append(f"{self.coco_json.name}: annotation {ann.get('id')} field 'category_id' "
                                   f"{ann.get('category_id')!r} is not a category (skipped)")
                continue
            boxes.append([x1, y1, x2, y2])
            labels.append(self.coco_to_label[ann["category_id"]])
            areas.append(float(ann.get("area", w * h)))
            crowd.append(int(ann.get("iscrowd", 0)))
            anns.append(ann)
        return boxes, labels, areas, crowd, anns

    def load_image(self, index: int) -> np.ndarray:
        from clothingrec.evaluate.results import read_image

        info = self.images[index]
        return read_image(self.image_dir / info["file_name"])

    def __getitem__(self, index: int):
        info = self.images[index]
        image = self.load_image(index)
        h, w = image.shape[:2]
        boxes, labels, areas, crowd, anns = self._valid[info["id"]]
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": int(info["id"]),
            "area": torch.tensor(areas, dtype=torch.float32),
            "iscrowd": torch.tensor(crowd, dtype=torch.int64),
        }
        if self.masks:
            m = np.zeros((len(anns), h, w), dtype=np.uint8)
            for i, ann in enumerate(anns):
                if ann.get("segmentation"):
                    m[i] = self.coco.annToMask(ann)[:h, :w]
                else:  # no polygon: the box is the mask
                    x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
                    m[i, y1:y2, x1:x2] = 1
            target["masks"] = torch.from_numpy(m)
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        if self.hflip > 0:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if rng.random() < self.hflip:
                tensor, target = hflip(tensor, target)
        return tensor, target


def hflip(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """Mirror an image (C, H, W) and its boxes / masks left-right."""
    width = image.shape[-1]
    image = image.flip(-1)
    target = dict(target)
    boxes = target["boxes"].clone()
    if len(boxes):
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return image, target


def collate(batch):
    return tuple(zip(*batch))


class EpochBatchSampler(Sampler):
    """Seeded batches for one epoch (shuffled by (seed, epoch)), optionally skipping finished batches.

    With ``world_size > 1`` each rank takes its own interleaved share of the permutation, which is
    what ``DistributedSampler`` does; here it also makes mid-epoch resume exact.  ``repeats`` (one
    factor ≥ 1 per image, :func:`repeat_factors`) makes the epoch :func:`epoch_indices`.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True,
                 skip_batches: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 repeats=None):
        if repeats is not None:
            order = epoch_indices(repeats, seed=seed, epoch=epoch)
            if shuffle:
                order = np.random.default_rng([seed, epoch, 1]).permutation(order)
        else:
            order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        order = order[rank::world_size]
        nb = len(order) // batch_size if drop_last else math.ceil(len(order) / batch_size)
        self.batches = [order[i * batch_size:(i + 1) * batch_size].tolist() for i in range(nb)]
        self.batches = [b for b in self.batches if b][skip_batches:]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def repeat_factors(dataset: CocoDetection, threshold: float) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS, 2019): category ``c`` in a fraction ``f_c`` of the
    images gets ``r_c = max(1, sqrt(threshold / f_c))``; an image repeats ``max r_c`` over its
    categories (1 for an image with none).  Rare categories are seen more often, common ones as before."""
    if not threshold or threshold <= 0:
        raise ValueError(f"repeat_threshold must be > 0, got {threshold!r}")
    labels = [set(dataset._valid[info["id"]][1]) for info in dataset.images]
    n = max(1, len(labels))
    counts: dict[int, int] = {}
    for present in labels:
        for c in present:
            counts[c] = counts.get(c, 0) + 1
    per_class = {c: max(1.0, math.sqrt(threshold / (k / n))) for c, k in counts.items()}
    return np.array([max((per_class[c] for c in present), default=1.0) for present in labels], dtype=np.float64)


def epoch_indices(repeats, *, seed: int, epoch: int) -> np.ndarray:
    """One epoch's image indices for repeat factors ``repeats``: image ``i`` appears ``floor(r_i)``
    times plus once more for a seeded draw weighted by the fractional parts, so that every epoch has
    the same length, ``round(sum(r))``, every image appears at least once and on average ``r_i`` times
    (up to that rounding)."""
    r = np.asarray(repeats, dtype=np.float64)
    if r.ndim != 1 or np.any(~np.isfinite(r)) or np.any(r < 1):
        raise ValueError("repeat factors must be one finite number ≥ 1 per image")
    base = np.floor(r).astype(np.int64)
    frac = r - base
    extra = int(round(float(r.sum()))) - int(base.sum())
    indices = np.repeat(np.arange(len(r)), base)
    if extra > 0:
        rng = np.random.default_rng([seed, epoch, 2])
        chosen = rng.choice(len(r), size=extra, replace=False, p=frac / frac.sum())
        indices = np.concatenate([indices, np.sort(chosen)])
    return indices


def epoch_size(repeats) -> int:
    """Images per epoch under :func:`epoch_indices` (the length is the same every epoch)."""
    return int(round(float(np.asarray(repeats, dtype=np.float64).sum())))


def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    return math.ceil(len(range(0, n, world_size)) / batch_size) if n else 0


def read_categories(coco_json) -> list[dict]:
    with open(coco_json, encoding="utf-8") as fh:
        return json.load(fh)["categories"]
