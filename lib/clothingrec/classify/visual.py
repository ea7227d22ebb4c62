"""Figures for the classifier notebooks that need the data pipeline (augmentation preview)."""
from __future__ import annotations

import torch

from clothingrec.classify.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentParams, eval_batch, train_batch
from clothingrec.classify.config import ClassifierConfig


def _to_image(x: torch.Tensor):
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x.float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def preview_augmentation(cfg: ClassifierConfig, n: int = 8, seed: int = 0):
    """Top row: evaluation centre crops of ``n`` training images (one per class first); bottom: augmented."""
    import matplotlib.pyplot as plt

    from clothingrec.classify.data import ClothingDataModule

    dm = ClothingDataModule(cfg)
    store = dm.store("train")
    picks, seen = [], set()
    for i, label in enumerate(store.labels.tolist()):
        if label not in seen:
            picks.append(i)
            seen.add(label)
        if len(picks) == n:
            break
    idx = torch.tensor(picks)
    images = store.images[idx]
    clean = eval_batch(images, cfg.imgsz, channels_last=False)
    aug = train_batch(images, cfg.imgsz, AugmentParams.from_config(cfg), channels_last=False,
                      generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(2, len(picks), figsize=(1.2 * len(picks), 2.8), squeeze=False, dpi=72)
    for j, i in enumerate(picks):
        axes[0, j].imshow(_to_image(clean[j]))
        axes[0, j].set_title(store.classes[int(store.labels[i])], fontsize=8)
        axes[1, j].imshow(_to_image(aug[j]))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].text(-0.1, 0.5, "eval", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right")
    axes[1, 0].text(-0.1, 0.5, "train", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right")
    fig.tight_layout()
    return fig


def plot_lr_finder(lr_finder, lr_used: float):
    """Lightning's LR-finder curve with its suggestion (if it could make one) and the LR used."""
    import matplotlib.pyplot as plt

    suggestion = lr_finder.suggestion() if lr_finder is not None else None
    fig = lr_finder.plot(suggest=suggestion is not None)
    ax = fig.axes[0]
    ax.axvline(lr_used, color="green", linestyle="--", label=f"used {lr_used:.2g}")
    text = f"suggestion {suggestion:.2g}" if suggestion else "no suggestion (too few points)"
    ax.set_title(f"LR finder: {text}")
    ax.legend()
    plt.close(fig)
    return fig
