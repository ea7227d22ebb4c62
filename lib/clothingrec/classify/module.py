"""LightningModule: backbone by name, label-smoothed cross-entropy (mixup/cutmix on soft targets),
class-balanced metrics."""
from __future__ import annotations

import math
import random
import time

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from clothingrec.classify.augment import eval_batch, mix_batch
from clothingrec.classify.config import ClassifierConfig
from clothingrec.classify.data import epoch_seed
from clothingrec.classify.models import build_classifier, load_matching, read_weights, to_channels_last


def _param_groups(model: nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class ClassifierModule(L.LightningModule):
    def __init__(self, cfg: dict | ClassifierConfig, classes: tuple[str, ...] | list[str]):
        super().__init__()
        cfg_dict = cfg.to_dict() if isinstance(cfg, ClassifierConfig) else dict(cfg)
        self.save_hyperparameters({"cfg": cfg_dict, "classes": list(classes)})
        self.cfg = ClassifierConfig(**cfg_dict)
        self.classes = tuple(classes)
        n = len(self.classes)
        self.model = self.build_model(n)
        self.init_loaded: list[str] = []
        if self.cfg.init_weights:
            self.init_loaded = load_matching(self.model, read_weights(self.cfg.init_weights))
        self.model = to_channels_last(self.model, self.cfg.channels_last)
        # teachers live in a plain list: not submodules, so neither trained, checkpointed nor exported
        self.teachers: list[nn.Module] = [self.load_teacher(t) for t in self.cfg.teacher_list]
        if self.cfg.bn_momentum is not None:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = self.cfg.bn_momentum
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)
        self.lr = self.cfg.lr  # the LR finder writes here
        self.mix_generator = torch.Generator().manual_seed(self.cfg.seed + 1)
        self._fit_start: float | None = None
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_f1 = MulticlassF1Score(n, average="macro")
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_f1 = MulticlassF1Score(n, average="macro")
        self.train_acc = MulticlassAccuracy(n, average="micro")

    def build_model(self, num_classes: int) -> nn.Module:
        return build_classifier(self.cfg.model, num_classes, self.cfg.pretrained)

    def load_teacher(self, source: str) -> nn.Module:
        from clothingrec.classify.inference import load_classifier
        from clothingrec.classify.models import weights_file

        loaded = load_classifier(weights_file(source, "teachers"))
        if tuple(loaded.classes) != self.classes:
            raise ValueError(f"teacher {source}: classes {loaded.classes} differ from {self.classes}")
        for p in loaded.model.parameters():
            p.requires_grad_(False)
        return to_channels_last(loaded.model.eval(), self.cfg.channels_last)

    @torch.no_grad()
    def teacher_probs(self, x: torch.Tensor) -> torch.Tensor:
        """The teachers' averaged softened class probabilities (temperature ``distill_temperature``)."""
        t = self.cfg.distill_temperature
        probs = [teacher.to(x.device)(x).float().div(t).softmax(dim=1) for teacher in self.teachers]
        return torch.stack(probs).mean(dim=0)

    def on_train_start(self) -> None:
        self._fit_start = time.monotonic()

    def reseed(self, epoch: int) -> None:
        """Every random stream of ``epoch`` (sample order, batch augmentation, mixup/cutmix, dropout) starts from
        ``(seed, epoch)``, so a run resumed from an epoch's checkpoint draws what the uninterrupted run drew.
        The sample order itself is :class:`~clothingrec.classify.data.EpochSampler`'s, a function of the epoch."""
        seed = epoch_seed(self.cfg.seed, epoch)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.mix_generator.manual_seed(seed + 1)
        datamodule = getattr(self.trainer, "datamodule", None)
        if isinstance(getattr(datamodule, "generator", None), torch.Generator):
            datamodule.generator.manual_seed(seed)

    def on_train_epoch_start(self) -> None:
        self.reseed(self.current_epoch)

    def schedule_progress(self, step: int, warmup: int, total: int) -> float:
        """Fraction of the cosine schedule done: by steps (the global step, so a resumed run continues the same
        curve), or by wall time when ``time_budget_h`` with ``schedule_time`` is the tighter limit."""
        progress = (step - warmup) / max(1, total - warmup)
        if self.cfg.time_budget_h and self.cfg.schedule_time and self._fit_start is not None:
            budget = self.cfg.time_budget_h * 3600.0 * 0.97  # leave room for the last validation
            progress = max(progress, (time.monotonic() - self._fit_start) / budget)
        return min(1.0, max(0.0, progress))

    def on_validation_epoch_start(self) -> None:
        # runs after the callbacks' hook: with weight averaging, the averaged weights are in place here
        if self.cfg.precise_bn_batches and self.trainer is not None and self.trainer.state.fn == "fit":
            self.recompute_batchnorm(self.cfg.precise_bn_batches)

    @torch.no_grad()
    def recompute_batchnorm(self, batches: int) -> int:
        """Precise BatchNorm: exact mean/variance of the current weights over ``batches`` train batches.

        Early in training from scratch the running averages lag far behind the weights, and
        eval-mode outputs can collapse to one class; this replaces them with statistics of the
        weights being evaluated (eval-cropped training images, fixed seeded sample).  Returns the
        number of images used.
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        dm = getattr(self.trainer, "datamodule", None)
        if not norms or dm is None:
            return 0
        store = dm.store("train")
        n = min(len(store), batches * self.cfg.batch)
        idx = torch.randperm(len(store), generator=torch.Generator().manual_seed(self.cfg.seed))[:n]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        was_training = self.model.training
        self.model.train()
        for i in range(0, n, self.cfg.batch):
            images = store.images[idx[i:i + self.cfg.batch]].to(self.device)
            self.model(eval_batch(images, self.cfg.imgsz, self.cfg.channels_last))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.model.train(was_training)
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        cfg = self.cfg
        if cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0:
            x, targets, _ = mix_batch(x, y, len(self.classes), mixup_alpha=cfg.mixup_alpha,
                                      cutmix_alpha=cfg.cutmix_alpha, prob=cfg.mix_prob,
                                      smoothing=cfg.label_smoothing,
                                      generator=self.mix_generator if x.device.type == "cpu" else None)
            logits = self(x)
            loss = torch.sum(-targets * torch.log_softmax(logits.float(), dim=1), dim=1).mean()
            y = targets.argmax(dim=1)  # training accuracy against the dominant label
        else:
            logits = self(x)
            loss = self.criterion(logits, y)
        if self.teachers and cfg.distill_weight > 0:
            t = cfg.distill_temperature
            kd = F.kl_div(torch.log_softmax(logits.float() / t, dim=1), self.teacher_probs(x),
                          reduction="batchmean") * (t * t)
            self.log("train_distill_loss", kd, on_step=False, on_epoch=True, batch_size=y.numel())
            loss = (1.0 - cfg.distill_weight) * loss + cfg.distill_weight * kd
        self.train_acc(logits.detach(), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=y.numel())
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=y.numel())
        return loss

    def _eval_step(self, batch, prefix: str, acc, f1):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc.update(logits, y)
        f1.update(logits, y)
        self.log(f"{prefix}_loss", loss, on_step=False, on_epoch=True, batch_size=y.numel(), sync_dist=True)
        self.log(f"{prefix}_acc", acc, on_step=False, on_epoch=True, batch_size=y.numel())
        self.log(f"{prefix}_macro_f1", f1, on_step=False, on_epoch=True, batch_size=y.numel())

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.val_acc, self.val_f1)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", self.test_acc, self.test_f1)

    def predict_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, _ = batch
        return self(x).float().softmax(dim=1)

    def configure_optimizers(self):
        cfg = self.cfg
        groups = _param_groups(self.model, cfg.weight_decay)
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=self.lr, momentum=cfg.momentum, nesterov=True)
        else:
            opt = torch.optim.AdamW(groups, lr=self.lr)
        if cfg.scheduler == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total // 2)

        def factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            progress = self.schedule_progress(step, warmup, total)
            return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
