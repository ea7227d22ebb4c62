"""LightningDataModule over clothing-dataset-small (or any folder-per-class tree in its layout)."""
from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from clothingrec.classify.augment import AugmentParams, eval_batch, train_batch
from clothingrec.classify.config import ClassifierConfig
from clothingrec.classify.store import ImageStore, StoreDataset, build_store, collate_batch
from clothingrec.datasets.clothing_small import CLASSES, SplitIndex, read_split


def class_balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-sample weights 1 / count(class): every class is drawn equally often in expectation."""
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).double()
    return (1.0 / counts)[labels]


def with_extra_train(index: SplitIndex, extra: str) -> SplitIndex:
    """``index`` (a train split) plus the images of a second training set: ``"ccp-crops"`` (the CCP garment
    crops of CCP's train part, never its val or test photos) or a folder in clothing-dataset-small's layout
    (its ``train/`` split).  Same classes required; what either skipped stays listed."""
    from clothingrec.datasets.ccp_crops import read_crops

    added = read_crops("train") if extra == "ccp-crops" else read_split("train", extra, index.classes)
    if tuple(added.classes) != tuple(index.classes):
        raise ValueError(f"extra_train={extra!r}: classes {added.classes} differ from {index.classes}")
    if not len(added):
        raise ValueError(f"extra_train={extra!r}: no training images under {added.root} (run `make data`?)")
    return SplitIndex(index.root, index.split, index.classes, index.records + added.records,
                      index.skipped + added.skipped)


def with_unlabelled_photos(index: SplitIndex, per_class: int | None = None) -> SplitIndex:
    """``index`` plus CCP's train-part photos as unlabelled records (label -1), for self-supervised
    pretraining.  ``per_class`` (the smoke cap) keeps that many of them, as if they were one more class."""
    from clothingrec.datasets.ccp import part_photos
    from clothingrec.datasets.clothing_small import ImageRecord

    photos = part_photos("train")
    if not photos:
        raise ValueError("extra_train='ccp-photos': no CCP train-part photos found")
    photos = photos[:per_class] if per_class else photos
    added = [ImageRecord(path, -1, "unlabelled", "train") for path in photos]
    return SplitIndex(index.root, index.split, index.classes, index.records + added, index.skipped)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch``'s random streams in a run seeded ``seed`` (distinct per epoch and per run seed)."""
    return (int(seed) + 1) * 1_000_003 + int(epoch)


class EpochSampler(Sampler[int]):
    """One epoch's training indices as a function of ``(seed, epoch)``: a permutation, or (``weights``)
    ``n`` draws with replacement in proportion to the weights.  Lightning calls :meth:`set_epoch` before every
    epoch, so a run resumed from an epoch's checkpoint sees the order the uninterrupted run saw."""

    def __init__(self, n: int, seed: int, weights: torch.Tensor | None = None):
        self.n, self.seed, self.weights, self.epoch = int(n), int(seed), weights, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch) + 2)
        if self.weights is None:
            return iter(torch.randperm(self.n, generator=g).tolist())
        return iter(torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist())


class ClothingDataModule(L.LightningDataModule):
    """Train / validation / test stores, class-balanced sampling, device-side augmentation.

    The splits are the dataset's own: train for fitting, validation for selection, test
    only in ``stage="test"``/``"predict"`` (never built or read during ``fit``).
    """

    def __init__(self, cfg: ClassifierConfig, classes: tuple[str, ...] = CLASSES):
        super().__init__()
        self.cfg = cfg
        self.classes = tuple(classes)
        self.aug = AugmentParams.from_config(cfg)
        self.stores: dict[str, ImageStore] = {}
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.batch_size = cfg.batch  # training batch; Lightning's batch-size finder scales this attribute

    # -- stores ------------------------------------------------------------------------------
    def store(self, split: str) -> ImageStore:
        if split not in self.stores:
            index = read_split(split, self.cfg.dataset, self.classes)
            if split == "train" and self.cfg.extra_train not in (None, "ccp-photos"):
                index = with_extra_train(index, self.cfg.extra_train)
            limit = self.cfg.train_per_class if split == "train" else self.cfg.eval_per_class
            index = index.subset(limit, seed=self.cfg.seed)
            if split == "train" and self.cfg.extra_train == "ccp-photos":
                index = with_unlabelled_photos(index, limit)
            self.stores[split] = build_store(index, self.cfg.resize_size, self.cfg.store_workers,
                                             self.cfg.cache_store)
        return self.stores[split]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate"):
            self.store("validation")
        if stage in (None, "fit"):
            self.store("train")
        if stage in ("test", "predict"):
            self.store("test")

    def skipped(self) -> list[tuple[str, str]]:
        """(file, reason) for everything left out of the built stores."""
        out = []
        for store in self.stores.values():
            out.extend(store.skipped)
        return out

    # -- loaders -----------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        store = self.store("train")
        weights = class_balanced_weights(store.labels, len(self.classes)) if self.cfg.sampler == "weighted" else None
        sampler = EpochSampler(len(store), self.cfg.seed, weights)
        # the loader draws its workers' base seed from a generator of its own: the batch augmentation's
        # (self.generator) and dropout's (global) streams then depend only on the epoch's reseed
        # (ClassifierModule.reseed), not on when Lightning created the epoch's iterator
        return DataLoader(StoreDataset(store), batch_size=self.batch_size, sampler=sampler,
                          generator=torch.Generator().manual_seed(self.cfg.seed),
                          drop_last=len(store) > self.batch_size,
                          num_workers=self.cfg.workers, collate_fn=collate_batch,
                          persistent_workers=self.cfg.workers > 0, pin_memory=torch.cuda.is_available())

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(StoreDataset(self.store(split)), batch_size=self.cfg.eval_batch_size, shuffle=False,
                          num_workers=self.cfg.workers, collate_fn=collate_batch)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # -- device-side transforms --------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        if training:
            gen = None
            if images.device.type == "cpu":
                gen = self.generator
            x = train_batch(images, self.cfg.imgsz, self.aug, self.cfg.channels_last, gen)
            if self.cfg.objective == "simclr":  # a second, independently augmented view of each image
                x = (x, train_batch(images, self.cfg.imgsz, self.aug, self.cfg.channels_last, gen))
        else:
            x = eval_batch(images, self.cfg.imgsz, self.cfg.channels_last)
        return x, labels
