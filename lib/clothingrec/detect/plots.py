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
    if any(c in history for c in metrics):
        axes[2].legend(fontsize=7)
    else:  # a final model trained on val (train_on_val): nothing held out to score per epoch
        axes[2].text(0.5, 0.5, "no validation part:\ntrained on val", ha="center", va="center",
                     transform=axes[2].transAxes, color="0.4")
        axes[2].set_xticks([]), axes[2].set_yticks([])
    for ax in (axes[0], axes[2]):
        ax.set_xlabel(x)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def history_columns(history: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(losses, validation metrics)`` of a run's history, whichever trainer wrote it."""
    losses = [c for c in history if c.startswith(("loss", "train/", "val/"))]
    metrics = [c for c in history if c.endswith(("_AP", "_AP50")) or c in ("val_mAP50", "val_mAP50_95")]
    return losses, metrics


def plot_run(run, *, score_threshold: float = 0.3, images: int = 8, show: bool = True) -> list:
    """The figures every training notebook shows, saved into the run folder: training curves, PR curves
    (IoU 0.5), the confusion matrix at ``score_threshold`` and predictions vs ground truth on val (a run
    trained on val: the training curves only)."""
    import matplotlib.pyplot as plt

    from clothingrec.evaluate import confusion_matrix
    from clothingrec.evaluate.plots import plot_confusion, plot_pr_curves, plot_prediction_grid

    saved = []

    def save(fig, name):
        fig.savefig(run.dir / name, dpi=110, bbox_inches="tight")
        saved.append(run.dir / name)
        plt.show() if show else plt.close(fig)

    if len(run.history):
        losses, metrics = history_columns(run.history)
        save(plot_training_curves(run.history, losses=losses, metrics=metrics, steps=run.steps,
                                  title=f"{run.record.name}: training"), "training_curves.png")
    if not run.evals:  # a final model trained on val (train_on_val): only test can score it (notebook 06)
        return saved
    val_json, val_images = run.data.coco_json["val"], run.data.image_dir["val"]
    fig, axes = plt.subplots(1, len(run.evals), figsize=(6 * len(run.evals), 4.5), squeeze=False)
    for ax, (iou_type, res) in zip(axes[0], run.evals.items()):
        plot_pr_curves(res, ax=ax, title=f"{iou_type} PR @0.5")
    fig.tight_layout()
    save(fig, "pr_curves.png")
    ax = plot_confusion(confusion_matrix(val_json, run.predictions.results, score_threshold=score_threshold))
    save(ax.figure, "confusion_matrix.png")
    ids = sorted(run.predictions.per_image)[:images]
    save(plot_prediction_grid(val_json, val_images, run.predictions.results, ids, score_threshold=score_threshold),
         "predictions.png")
    return saved
