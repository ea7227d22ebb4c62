"""YOLO (ultralytics) labels and ``data.yaml``.

Detect labels: one line ``class xc yc w h`` per object, normalised to the image size.  Segment
labels: one line ``class x1 y1 x2 y2 ...`` per object; an object made of several polygons (an open
jacket, a person split by an occluder) becomes one outline by joining the pieces with zero-width
bridges (walked out and back), which rasterises to the union of the pieces.
Class index = COCO category id − 1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from clothingrec.datasets.records import ImageRecord


def _fmt(v: float) -> str:
    return f"{min(max(v, 0.0), 1.0):.6f}"


def detect_line(class_index: int, bbox_xyxy, width: int, height: int) -> str:
    x1, y1, x2, y2 = bbox_xyxy
    return " ".join([str(class_index), _fmt((x1 + x2) / 2 / width), _fmt((y1 + y2) / 2 / height),
                     _fmt((x2 - x1) / width), _fmt((y2 - y1) / height)])


def merge_polygons(polygons: list[list[float]]) -> np.ndarray:
    """Join several polygons into one closed outline (K×2) with bridges walked out and back.

    Pieces are visited greedily (next = the one with the vertex nearest to the current piece's
    entry point); each piece is walked fully from its entry vertex back to it; the path then returns
    along the same bridges, so every bridge encloses no area.
    """
    pieces = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons if len(p) >= 6]
    if not pieces:
        return np.zeros((0, 2))
    if len(pieces) == 1:
        return pieces[0]
    order = [0]
    entries = [0]
    remaining = set(range(1, len(pieces)))
    while remaining:
        cur = pieces[order[-1]][entries[-1]]
        best = None
        for j in sorted(remaining):
            d = np.linalg.norm(pieces[j] - cur, axis=1)
            k = int(d.argmin())
            if best is None or d[k] < best[0]:
                best = (d[k], j, k)
        _, j, k = best
        order.append(j)
        entries.append(k)
        remaining.remove(j)
    path = []
    for j, k in zip(order, entries):
        piece = np.roll(pieces[j], -k, axis=0)
        path.append(np.vstack([piece, piece[:1]]))  # around the piece, back to its entry vertex
    back = [pieces[j][k][None] for j, k in zip(order[-2:0:-1], entries[-2:0:-1])]  # bridges walked back
    return np.vstack(path + back)


def segment_line(class_index: int, polygons: list[list[float]], width: int, height: int) -> str | None:
    outline = merge_polygons(polygons)
    if len(outline) < 3:
        return None
    coords = np.clip(outline / (width, height), 0.0, 1.0).reshape(-1)
    return f"{class_index} " + " ".join(map("{:.6f}".format, coords.tolist()))


def record_lines(record: ImageRecord) -> tuple[str, str, list[int]]:
    """``(detect text, segment text, positions of the objects without an outline)`` for one image; each
    line ends with a newline.  An object whose polygons do not merge into an outline of 3 or more points
    has a detect line and no segment line; its position in ``record.objects`` is returned so that the
    caller can report it."""
    det, seg, no_outline = [], [], []
    for i, obj in enumerate(record.objects):
        c = obj.category_id - 1
        det.append(detect_line(c, obj.bbox, record.width, record.height))
        line = segment_line(c, obj.polygons, record.width, record.height)
        if line is None:
            no_outline.append(i)
        else:
            seg.append(line)
    return "".join(x + "\n" for x in det), "".join(x + "\n" for x in seg), no_outline


def write_data_yaml(path: str | Path, root: str | Path, splits: dict[str, str], names: list[str]) -> Path:
    """Write an ultralytics ``data.yaml``: ``path`` (absolute root), split image folders, ``names``."""
    import yaml

    path = Path(path)
    data = {"path": str(Path(root).resolve()), **splits, "nc": len(names),
            "names": {i: n for i, n in enumerate(names)}}
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def read_labels(path: str | Path, width: int, height: int):
    """Read a YOLO label file back: classes, boxes (x1, y1, x2, y2, pixels), polygons (pixels, or None).

    Detect lines give boxes; segment lines give polygons and their extents as boxes.
    """
    classes, boxes, polygons = [], [], []
    text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else ""
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        c, vals = int(parts[0]), np.array([float(v) for v in parts[1:]])
        classes.append(c)
        if len(vals) == 4:
            xc, yc, w, h = vals * [width, height, width, height]
            boxes.append([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2])
            polygons.append(None)
        else:
            pts = vals.reshape(-1, 2) * [width, height]
            boxes.append([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
            polygons.append(pts)
    return np.array(classes, dtype=np.int64), np.array(boxes, dtype=np.float64).reshape(-1, 4), polygons
