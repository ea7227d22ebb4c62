"""Training-curve plots shared by the detector notebooks (losses, learning rate, validation metric)."""
from __future__ import annotations

import pandas as pd


def plot_training_curves(history: pd.DataFrame, *, x: str = "epoch", losses=None, lr: str = "lr",
                         metrics=None, title: str = "training curves", steps: pd.DataFrame | None = None):
    """Three panels: losses per epoch (and per step when ``steps`` is given), learning rate, val metric."""
    import matplotlib.pyplot as plt

    losses = losses or [c for c in history.columns if "loss" in c]
    metrics = metrics or [c for c in history.columns if "AP" in c or "mAP" in c]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    if steps is not None and len(steps) and "loss" in steps:
        axes[0].plot(steps["step"] / max(1, steps["step"].max()) * history[x].max(), steps["loss"],
                     color="0.8", lw=0.8, label="loss per step")
    for c in losses:
        if c in history:
            axes[0].plot(history[x], history[c], marker="o", ms=3, label=c)
    axes[0].set_title("losses")
    axes[0].legend(fontsize=7)
    if steps is not None and len(steps) and "lr" in steps:
        axes[1].plot(steps["step"], steps["lr"])
        axes[1].set_xlabel("step")
    elif lr in history:
        axes[1].plot(history[x], history[lr], marker="o", ms=3)
        axes[1].set_xlabel(x)
    axes[1].set_title("learning rate")
    for c in metrics:
        if c in history:
            axes[2].plot(history[x], history[c], marker="o", ms=3, label=c)
    axes[2].set_title("validation")
    axes[2].legend(fontsize=7)
    for ax in (axes[0], axes[2]):
        ax.set_xlabel(x)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
