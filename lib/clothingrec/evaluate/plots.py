"""Plots of the one evaluation: PR curves per class, confusion matrix, predictions vs ground truth."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from clothingrec.evaluate.coco import CocoEvalResult, load_coco


def plot_pr_curves(result: CocoEvalResult, *, iou: float = 0.5, ax=None, title: str | None = None):
    """Precision-recall curve of every category with ground truth (pycocotools' interpolated precision)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    for cid, name in zip(result.category_ids, result.category_names):
        recall, precision = result.pr_curve(cid, iou=iou)
        if np.all(precision < 0):  # no ground truth of this class
            continue
        p = np.where(precision < 0, 0, precision)
        ap = float(np.mean(p))
        ax.plot(recall, p, label=f"{name} {ap:.2f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title or f"{result.iou_type} PR curves @IoU {iou:.2f} (AP{int(iou * 100)} per class)")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    return ax


def plot_confusion(matrix, *, ax=None, title: str = "detection confusion matrix", normalize: bool = False):
    """Heat map of :func:`clothingrec.evaluate.results.confusion_matrix`'s DataFrame."""
    import matplotlib.pyplot as plt

    values = matrix.to_numpy().astype(float)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    if ax is None:
        n = len(matrix)
        _, ax = plt.subplots(figsize=(0.45 * n + 2, 0.45 * n + 1.5))
    im = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(values):
        if v:
            ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center", fontsize=6,
                    color="white" if v > values.max() / 2 else "black")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.04)
    return ax


def _draw_boxes(ax, boxes, labels, names, color, scores=None):
    import matplotlib.patches as patches

    for i, (box, label) in enumerate(zip(boxes, labels)):
        x1, y1, x2, y2 = box
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.2))
        text = names.get(int(label), str(label))
        if scores is not None:
            text += f" {scores[i]:.2f}"
        ax.text(x1, y1, text, color="white", fontsize=6, va="bottom",
                bbox={"facecolor": color, "alpha": 0.7, "pad": 0.5, "linewidth": 0})


def plot_prediction_grid(gt, image_dir, results: list[dict], image_ids: list[int], *,
                         score_threshold: float = 0.3, cols: int = 4, title: str | None = None):
    """Images with ground truth (green) and detections above ``score_threshold`` (red)."""
    import matplotlib.pyplot as plt

    from clothingrec.evaluate.results import read_image

    coco_gt = load_coco(gt)
    names = {c["id"]: c["name"] for c in coco_gt.dataset["categories"]}
    rows = max(1, math.ceil(len(image_ids) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img_id in zip(axes.ravel(), image_ids):
        info = coco_gt.imgs[img_id]
        ax.imshow(read_image(Path(image_dir) / info["file_name"]))
        anns = coco_gt.imgToAnns.get(img_id, [])
        gboxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                  for a in anns]
        _draw_boxes(ax, gboxes, [a["category_id"] for a in anns], names, "tab:green")
        dets = [r for r in results if r["image_id"] == img_id and r["score"] >= score_threshold]
        dboxes = [[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]]
                  for d in dets]
        _draw_boxes(ax, dboxes, [d["category_id"] for d in dets], names, "tab:red",
                    scores=[d["score"] for d in dets])
        ax.set_title(f"{info['file_name']} gt {len(anns)} / det {len(dets)}", fontsize=7)
    fig.suptitle(title or f"ground truth (green) vs detections ≥ {score_threshold} (red)", fontsize=9)
    fig.tight_layout()
    return fig
