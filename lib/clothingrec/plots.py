"""Drawing helpers shared by the notebooks: detections (boxes, labels, scores, masks, polygons) and grids.

::

    ax = draw_detections(image, boxes_xyxy, labels, scores=scores, masks=masks, class_names=names)
    fig = image_grid(images, detections=[{"boxes_xyxy": b, "labels": l}, ...], titles=names, ncols=4)

``image`` may be a path, a PIL image, an H×W×3 array (uint8 or float in [0, 1]), a CHW torch
tensor, or an existing matplotlib Axes that already shows the image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: 20 well-separated colours (matplotlib's tab20, reordered so neighbouring class ids differ)
_PALETTE = [
    (0.12, 0.47, 0.71), (1.00, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81),
    (0.68, 0.78, 0.91), (1.00, 0.73, 0.47), (0.60, 0.87, 0.54), (1.00, 0.60, 0.59), (0.77, 0.69, 0.84),
    (0.77, 0.61, 0.58), (0.97, 0.71, 0.82), (0.78, 0.78, 0.78), (0.86, 0.86, 0.55), (0.62, 0.85, 0.90),
]


def class_color(label) -> tuple[float, float, float]:
    """A stable colour per class index (or per class name)."""
    if isinstance(label, (int, np.integer)):
        return _PALETTE[int(label) % len(_PALETTE)]
    return _PALETTE[sum(map(ord, str(label))) % len(_PALETTE)]


def to_array(image) -> np.ndarray:
    """Any supported image (path, PIL, array, CHW tensor) → H×W×3 uint8 array."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as im:
            return np.asarray(im.convert("RGB"))
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        return np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):  # torch tensor, CHW
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = np.transpose(image, (1, 2, 0))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return arr[..., :3]


def _as_numpy(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def draw_detections(ax_or_image, boxes_xyxy, labels=None, scores=None, masks=None, class_names=None, *,
                    polygons=None, score_threshold: float | None = None, mask_alpha: float = 0.45,
                    linewidth: float = 1.8, fontsize: float = 7, title: str | None = None, ax=None):
    """Draw boxes (x1, y1, x2, y2 pixels), labels, optional scores, masks (N×H×W) and polygons.

    ``labels`` are class indices (looked up in ``class_names``) or strings.  Masks may be boolean
    or probabilities (thresholded at 0.5).  Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import Polygon, Rectangle

    if isinstance(ax_or_image, Axes):
        ax = ax_or_image
        shown = ax.get_images()
        height, width = (shown[0].get_array().shape[:2] if shown else (None, None))
    else:
        img = to_array(ax_or_image)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5 * img.shape[0] / max(img.shape[1], 1)))
        ax.imshow(img)
        height, width = img.shape[:2]
    boxes = _as_numpy(boxes_xyxy)
    boxes = np.zeros((0, 4)) if boxes is None else boxes.reshape(-1, 4).astype(float)
    n = len(boxes)
    labels = [None] * n if labels is None else list(_as_numpy(labels).tolist() if not isinstance(labels, list)
                                                   else labels)
    scores = None if scores is None else _as_numpy(scores).reshape(-1)
    masks = _as_numpy(masks)
    keep = np.ones(n, dtype=bool)
    if scores is not None and score_threshold is not None:
        keep = scores >= score_threshold
    if masks is not None and len(masks):
        if masks.ndim == 4:  # N×1×H×W (torchvision Mask R-CNN)
            masks = masks[:, 0]
        h, w = masks.shape[1:]
        overlay = np.zeros((h, w, 4), dtype=np.float32)
        for i in range(min(len(masks), n) if n else len(masks)):
            if n and not keep[i]:
                continue
            m = masks[i] > 0.5 if masks.dtype != bool else masks[i]
            overlay[m, :3] = class_color(labels[i] if n else i)
            overlay[m, 3] = mask_alpha
        ax.imshow(overlay, extent=(0, w, h, 0), interpolation="nearest")
    for i in range(n):
        if not keep[i]:
            continue
        x1, y1, x2, y2 = boxes[i]
        lab = labels[i]
        color = class_color(lab if lab is not None else 0)
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=linewidth))
        if isinstance(lab, (int, np.integer)) and class_names is not None and 0 <= lab < len(class_names):
            text = class_names[int(lab)]
        else:
            text = "" if lab is None else str(lab)
        if scores is not None:
            text = f"{text} {scores[i]:.2f}".strip()
        if text:
            ax.text(x1, y1, text, fontsize=fontsize, color="white", va="bottom", ha="left",
                    bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "edgecolor": "none"}, clip_on=True)
    for i, poly in enumerate(polygons or []):
        if poly is None or (n and not keep[i]):
            continue
        pts = np.asarray(poly, dtype=float).reshape(-1, 2)
        color = class_color(labels[i] if i < n and labels[i] is not None else i)
        ax.add_patch(Polygon(pts, closed=True, fill=False, edgecolor=color, linewidth=1.0, linestyle="--"))
    if width is not None:
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    return ax


def image_grid(images, detections=None, titles=None, ncols: int = 4, cell_size: float = 3.0,
               class_names=None, suptitle: str | None = None):
    """Show images in a grid, each optionally with detections (dict of :func:`draw_detections` kwargs).

    Returns the figure; unused cells are blanked.
    """
    import matplotlib.pyplot as plt

    images = list(images)
    n = max(len(images), 1)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_size * ncols, cell_size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(images):
            ax.set_axis_off()
            continue
        det = dict(detections[k]) if detections is not None and detections[k] is not None else {}
        draw_detections(images[k], det.pop("boxes_xyxy", None), det.pop("labels", None),
                        class_names=det.pop("class_names", class_names), ax=ax,
                        title=titles[k] if titles is not None else None, **det)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def record_detections(record, keep_order=None) -> dict:
    """``draw_detections`` kwargs for a dataset record (boxes, 0-based labels, masks)."""
    from clothingrec.datasets.records import object_mask

    objs = record.objects
    return {
        "boxes_xyxy": np.array([o.bbox for o in objs], dtype=float).reshape(-1, 4),
        "labels": [o.category_id - 1 for o in objs],
        "masks": np.stack([object_mask(o, record.height, record.width) for o in objs]) if objs else None,
    }


def distribution_panel(images, objects, title: str = "", order=None):
    """Six plots of a detection dataset: class counts, objects per image, box size, aspect ratio,
    image sizes and box centres.  ``images`` / ``objects`` come from
    :func:`clothingrec.datasets.records.records_frames`.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    order = order or sorted(objects["category"].unique()) if len(objects) else []
    counts = objects["category"].value_counts().reindex(order, fill_value=0) if len(objects) else None
    ax = axes[0, 0]
    if counts is not None:
        ax.barh(range(len(order)), counts.values, color=[class_color(i) for i in range(len(order))])
        ax.set_yticks(range(len(order)), order, fontsize=8)
        ax.invert_yaxis()
    ax.set_title("objects per class")
    ax = axes[0, 1]
    n = images["n_objects"]
    ax.hist(n, bins=np.arange(-0.5, n.max() + 1.5, 1) if len(n) else 1, color="tab:blue")
    ax.set_title("objects per image")
    ax.set_xlabel("objects")
    ax = axes[0, 2]
    if len(objects):
        ax.hist(objects["rel_size"], bins=30, range=(0, 1), color="tab:green")
    ax.set_title("box size: sqrt(box area / image area)")
    ax = axes[1, 0]
    if len(objects):
        ax.hist(np.log2(objects["aspect"].clip(1 / 16, 16)), bins=30, color="tab:orange")
    ax.set_title("box aspect log2(w / h)")
    ax = axes[1, 1]
    ax.scatter(images["width"], images["height"], s=8, alpha=0.5)
    ax.set_title("image sizes (px)")
    ax.set_xlabel("width")
    ax.set_ylabel("height")
    ax = axes[1, 2]
    if len(objects):
        merged = objects.merge(images[["file", "split", "width", "height"]], on=["file", "split"])
        cx = (merged["x1"] + merged["x2"]) / 2 / merged["width"]
        cy = (merged["y1"] + merged["y2"]) / 2 / merged["height"]
        ax.hist2d(cx, cy, bins=12, range=[[0, 1], [0, 1]], cmap="Blues")
        ax.invert_yaxis()
    ax.set_title("box centres (relative)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def count_panel(frame, columns, title: str = ""):
    """Bar charts of value counts for several categorical columns of a table (e.g. DF2 attributes)."""
    import matplotlib.pyplot as plt

    columns = [c for c in columns if c in frame]
    fig, axes = plt.subplots(1, max(len(columns), 1), figsize=(3.2 * max(len(columns), 1), 3), squeeze=False)
    for ax, col in zip(axes.flat, columns):
        counts = frame[col].value_counts().sort_index()
        ax.bar([str(v) for v in counts.index], counts.values, color="tab:purple")
        ax.set_title(col)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
