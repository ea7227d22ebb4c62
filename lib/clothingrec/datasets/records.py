"""Typed records shared by every detection-dataset reader, and the problems they report.

A reader turns one image of a dataset (DeepFashion2, Penn-Fudan, clothing-co-parsing) into an
:class:`ImageRecord` holding :class:`ObjectRecord` items, plus a list of :class:`Issue` rows for
what it had to skip.  Coordinates are continuous pixel coordinates with the origin at the top-left
corner of the top-left pixel: a box ``(x1, y1, x2, y2)`` covering pixel columns ``0..9`` is
``(0, 0, 10, ...)``.  Readers convert each dataset's own convention to this one (Penn-Fudan's
1-based inclusive PASCAL boxes, for instance).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Issue:
    """One skipped image or item: which file, which item, which field, why."""

    file: str
    item: str  # "" for the whole image, else "item2", "object 1", "skirt"...
    field: str  # the offending field ("bounding_box", "segmentation", "category_id", "image"...)
    reason: str
    split: str = ""
    level: str = "item"  # "item": only this object skipped; "image": the whole image skipped

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.file}" + (f" [{self.item}]" if self.item else "")
        return f"{self.level:<5} {where}: {self.field}: {self.reason}"


class ImageSkipped(Exception):
    """Raised by a reader when a whole image cannot be used; carries the :class:`Issue`."""

    def __init__(self, issue: Issue):
        super().__init__(str(issue))
        self.issue = issue


@dataclass
class ObjectRecord:
    """One annotated object (a garment or a person) in dataset-native terms.

    ``polygons``: list of flat ``[x0, y0, x1, y1, ...]`` lists (DeepFashion2 segmentation, or contours
    traced from a mask).  ``mask``: boolean H×W array when the dataset gives masks (Penn-Fudan, CCP).
    ``landmarks``: DeepFashion2's per-category ``[x, y, v] * n`` list.  ``attributes``: every other
    per-object field the dataset defines (style, scale, occlusion, zoom_in, viewpoint...).
    """

    category_id: int
    category_name: str
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 (continuous pixel coordinates)
    polygons: list[list[float]] = field(default_factory=list)
    mask: np.ndarray | None = None
    area: float | None = None  # pixel area of the mask / rasterised polygons
    landmarks: list[float] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the item's name in the source file ("item1", "object 2", "top")

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


@dataclass
class ImageRecord:
    """One image and its objects."""

    path: Path
    width: int
    height: int
    objects: list[ObjectRecord] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)  # image-level fields (source, pair_id)
    split: str = ""
    image_id: int = 0
    annotation_path: Path | None = None

    @property
    def file_name(self) -> str:
        return self.path.name


@dataclass
class ReadResult:
    """What a reader returns for one image: the record (None when the image was skipped) and issues."""

    record: ImageRecord | None
    issues: list[Issue] = field(default_factory=list)


def clip_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """Clip ``(x1, y1, x2, y2)`` to the image ``[0, width] × [0, height]``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Extent of a boolean mask as a continuous box (pixel ``c`` spans ``[c, c+1)``); None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def _offset_outward(pts: np.ndarray) -> np.ndarray:
    """Move each vertex of a closed pixel-centre contour half a pixel outward (mitred offset).

    OpenCV contours run through the centres of the boundary pixels; the mask's true outline runs
    along the pixels' outer edges.  Offsetting every edge by 0.5 px along its outward normal turns
    one into the other (for 45-degree staircases: into their mean line), so the polygon rasterises
    back to the same pixels.
    """
    if len(pts) < 3:
        return pts
    signed = 0.5 * np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    edge = np.roll(pts, -1, axis=0) - pts
    length = np.linalg.norm(edge, axis=1, keepdims=True)
    edge = edge / np.where(length == 0, 1.0, length)
    if signed > 0:
        normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    else:
        normal = np.stack([-edge[:, 1], edge[:, 0]], axis=1)
    n_in, n_out = np.roll(normal, 1, axis=0), normal
    denom = 1.0 + np.sum(n_in * n_out, axis=1, keepdims=True)
    miter = np.where(denom > 0.2, (n_in + n_out) / np.maximum(denom, 0.2), n_out)
    return pts + 0.5 * miter


def mask_polygons(mask: np.ndarray, min_points: int = 3) -> list[list[float]]:
    """Trace the outer contours of a boolean mask as COCO polygons (flat xy lists, pixel edges).

    Contours are traced with OpenCV and moved onto the pixels' outer edges
    (:func:`_offset_outward`), so rasterising them with pycocotools gives back the mask's pixels
    (IoU 1.0 on solid shapes).  Holes are not represented (COCO polygons cannot express them); the
    annotation's ``area`` still comes from the mask.  Contours of fewer than ``min_points`` vertices
    are dropped; a mask whose every contour is that small falls back to its box as a rectangle.
    Largest polygon first.
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        pts = contour.reshape(-1, 2).astype(np.float64)
        if len(pts) < min_points:
            continue
        pts = _offset_outward(pts + 0.5)
        polygons.append([round(float(v), 2) for v in pts.reshape(-1)])
    if not polygons:
        box = mask_box(mask.astype(bool))
        if box is not None:
            x1, y1, x2, y2 = box
            polygons = [[x1, y1, x2, y1, x2, y2, x1, y2]]
    polygons.sort(key=lambda p: (-len(p), p))
    return polygons


def _jpeg_size(f) -> tuple[int, int]:
    if f.read(2) != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    while True:
        byte = f.read(1)
        while byte and byte != b"\xff":  # tolerate garbage between segments
            byte = f.read(1)
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            raise ValueError("JPEG ended before a frame header (SOF)")
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # standalone markers
            continue
        if marker == 0xD9:
            raise ValueError("JPEG ended before a frame header (SOF)")
        head = f.read(2)
        if len(head) != 2:
            raise ValueError("truncated JPEG segment")
        length = int.from_bytes(head, "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) != 5:
                raise ValueError("truncated JPEG frame header")
            height, width = int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big")
            if width == 0 or height == 0:
                raise ValueError("JPEG frame header gives a zero size")
            return width, height
        if length < 2:
            raise ValueError("corrupt JPEG segment length")
        f.seek(length - 2, 1)


def image_size(path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, without decoding pixels.

    JPEG and PNG headers are parsed directly (a few hundred bytes read); other formats go through
    PIL's lazy ``Image.open``, which also reads only the header.  Raises ``ValueError`` naming the
    file when the header is unreadable.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            start = f.read(24)
            if start[:2] == b"\xff\xd8":
                f.seek(0)
                return _jpeg_size(f)
            if start[:8] == b"\x89PNG\r\n\x1a\n" and start[12:16] == b"IHDR":
                width, height = int.from_bytes(start[16:20], "big"), int.from_bytes(start[20:24], "big")
                if width == 0 or height == 0:
                    raise ValueError("PNG header gives a zero size")
                return width, height
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable image {path}: {exc}") from exc
    except Exception as exc:  # PIL.UnidentifiedImageError and friends
        raise ValueError(f"unreadable image {path}: {exc}") from exc


def image_error(exc: Exception) -> str:
    """Short reason for an :func:`image_size` failure, without the path (the report names the file)."""
    cause = exc.__cause__
    return f"unreadable image ({cause})" if cause is not None else str(exc)


def object_mask(obj: ObjectRecord, height: int, width: int) -> np.ndarray:
    """The object's boolean mask: its own, else its polygons rasterised (pycocotools)."""
    if obj.mask is not None:
        return obj.mask
    if not obj.polygons:
        return np.zeros((height, width), dtype=bool)
    from pycocotools import mask as mask_utils

    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(obj.polygons, height, width))).astype(bool)


def records_frames(records: list[ImageRecord]):
    """Two pandas tables for analysis: one row per image, one row per object.

    images: file, split, width, height, n_objects and image attributes (source, pair_id...).
    objects: file, split, category, category_id, box (x1..y2, w, h), area (mask pixels), rel_size
    (sqrt of box area / image area), aspect (w / h) and every scalar object attribute.
    """
    import pandas as pd

    images, objects = [], []
    for rec in records:
        row = {"file": rec.file_name, "split": rec.split, "width": rec.width, "height": rec.height,
               "n_objects": len(rec.objects)}
        row.update({k: v for k, v in rec.attributes.items() if isinstance(v, (str, int, float)) or v is None})
        images.append(row)
        for obj in rec.objects:
            w, h = obj.width, obj.height
            o = {"file": rec.file_name, "split": rec.split, "category": obj.category_name,
                 "category_id": obj.category_id, "x1": obj.bbox[0], "y1": obj.bbox[1], "x2": obj.bbox[2],
                 "y2": obj.bbox[3], "w": w, "h": h, "area": obj.area,
                 "rel_size": float(np.sqrt(w * h / (rec.width * rec.height))),
                 "aspect": float(w / h) if h > 0 else float("nan")}
            o.update({k: v for k, v in obj.attributes.items()
                      if isinstance(v, (str, int, float)) and k not in o})
            objects.append(o)
    return pd.DataFrame(images), pd.DataFrame(objects)
