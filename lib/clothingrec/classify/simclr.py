"""Self-supervised pretraining (SimCLR): two augmented views of every image, NT-Xent on a projection head.

``objective: simclr`` in a classifier config trains this module through the same ``train()`` as the
supervised recipe (store, batch augmentation on the device, checkpoints, resume, time budget).  The
classifier's last ``nn.Linear`` becomes a projection MLP; the features it receives are the
representation.  Validation: k-nearest-neighbour classification of the validation images among the
*labelled* train images (cosine similarity, temperature-weighted votes), so the run is selected on
validation macro-F1 like a supervised one, without a linear head.  The exported weights initialise a
supervised run (``init_weights``): every tensor but the projection is reused.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from clothingrec.classify.augment import eval_batch
from clothingrec.classify.models import build_classifier, swap_last_linear
from clothingrec.classify.module import ClassifierModule


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross-entropy of two views ``[n, d]``: each embedding must pick its other
    view among the ``2n - 1`` others (cosine similarity / temperature)."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def knn_predict(features: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, num_classes: int,
                k: int = 20, temperature: float = 0.07) -> torch.Tensor:
    """Class scores ``[n, num_classes]``: the ``k`` most cosine-similar bank entries vote with weight
    ``exp(similarity / temperature)``."""
    sim = F.normalize(features.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    top, idx = sim.topk(min(k, bank.shape[0]), dim=1)
    votes = torch.zeros(features.shape[0], num_classes, device=features.device)
    return votes.scatter_add_(1, bank_labels[idx], (top / temperature).exp())


class ProjectionHead(nn.Sequential):
    def __init__(self, in_features: int, out_features: int):
        super().__init__(nn.Linear(in_features, in_features), nn.BatchNorm1d(in_features), nn.ReLU(inplace=True),
                         nn.Linear(in_features, out_features))


class SimCLRModule(ClassifierModule):
    """The classifier backbone with a projection head in place of its last linear layer."""

    def build_model(self, num_classes: int) -> nn.Module:
        model = build_classifier(self.cfg.model, num_classes, self.cfg.pretrained)
        head = swap_last_linear(model, lambda last: ProjectionHead(last.in_features, self.cfg.simclr_proj_dim))
        head.register_forward_pre_hook(self._keep_features)
        self._features: torch.Tensor | None = None
        self._bank: tuple[torch.Tensor, torch.Tensor] | None = None
        return model

    def _keep_features(self, module, args):
        self._features = args[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The representation (input of the projection head) of a normalised batch."""
        self.model(x)
        return self._features

    def training_step(self, batch, batch_idx):
        (x1, x2), y = batch
        loss = nt_xent(self(x1), self(x2), self.cfg.simclr_temperature)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=y.numel())
        return loss

    @torch.no_grad()
    def feature_bank(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and labels of the labelled train images (eval crop), for the k-NN validation."""
        store = self.trainer.datamodule.store("train")
        labelled = (store.labels >= 0).nonzero().flatten()
        feats = []
        for i in range(0, labelled.numel(), self.cfg.eval_batch_size):
            images = store.images[labelled[i:i + self.cfg.eval_batch_size]].to(self.device)
            feats.append(self.features(eval_batch(images, self.cfg.imgsz, self.cfg.channels_last)).float())
        return torch.cat(feats), store.labels[labelled].to(self.device)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()  # precise BatchNorm first: the bank uses the weights validated
        was_training = self.model.training
        self.model.eval()
        self._bank = self.feature_bank()
        self.model.train(was_training)

    def _eval_step(self, batch, prefix: str, acc, f1):
        x, y = batch
        scores = knn_predict(self.features(x), *self._bank, num_classes=len(self.classes))
        acc.update(scores, y)
        f1.update(scores, y)
        self.log(f"{prefix}_acc", acc, on_step=False, on_epoch=True, batch_size=y.numel())
        self.log(f"{prefix}_macro_f1", f1, on_step=False, on_epoch=True, batch_size=y.numel())

    def on_validation_epoch_end(self) -> None:
        self._bank = None

    def test_step(self, batch, batch_idx):
        raise RuntimeError("a SimCLR run is not tested: its weights initialise a supervised run (init_weights)")

    def predict_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, _ = batch
        return self.features(x)


def module_class(objective: str) -> type[ClassifierModule]:
    """The LightningModule that trains ``objective``."""
    return SimCLRModule if objective == "simclr" else ClassifierModule
