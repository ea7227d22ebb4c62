"""Typed records shared by every detection-dataset reader, and the problems they report.

A reader turns one image of a dataset (DeepFashion2, Penn-Fudan, clothing-co-parsing) into an
:class:`ImageRecord` holding :class:`ObjectRecord` items, plus a list of :class:`Issue` rows for
what it had to skip.  Coordinates are continuous pixel coordinates with the origin at the top-left
corner of the top-left pixel: a box ``(x1, y1, x2, y2)`` covering pixel columns ``0..9`` is
``(0, 0, 10, ...)``.  Readers convert each dataset's own convention to this one (Penn-Fudan's
1-based inclusive PASCAL boxes, for instance).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import sys
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
    #: objects the annotation holds (kept images): ``items_in == len(record.objects) +`` item-level issues
    items_in: int | None = None


# ------------------------------------------------------------------ the validation layer every reader uses
class BadNumber(str):
    """A number of an annotation that no output may carry: ``NaN``, ``±Infinity`` or one too large for
    a float.  Holds the source text; :func:`load_json` returns it in the number's place, so it fails
    every numeric check downstream (it is not an ``int`` or ``float``) and the report can quote it."""


_FLOAT_MAX = sys.float_info.max


def _json_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else BadNumber(text)


def _json_int(text: str):
    if len(text) > 400:  # past any float (and Python's int-parsing digit limit): never int() it
        return BadNumber(text)
    value = int(text)
    return value if abs(value) <= _FLOAT_MAX else BadNumber(text)


class JsonObject(dict):
    """A JSON object that remembers the keys it held more than once (``duplicates``, in file order)."""

    __slots__ = ("duplicates",)


def _json_object(pairs):
    obj = JsonObject()
    dups = []
    for key, value in pairs:
        if key in obj:
            dups.append(key)
        obj[key] = value
    obj.duplicates = dups
    return obj


#: text that may hold a number a float cannot carry: a 300-digit run or a 3-digit exponent, looked for in
#: the text with every ASCII digit made ``0`` and ``E`` made ``e`` (one C pass, then substring searches)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_RISKY_RUNS = (b"0" * 300, b"e000", b"e+000", b"e-000")


def _risky_number(data: bytes) -> bool:
    """True when ``data`` may hold a number past a float's range (false alarms only cost speed)."""
    folded = data.translate(_DIGITS_AS_ZERO)
    return any(run in folded for run in _RISKY_RUNS)


def load_json(data: bytes | str):
    """Parse annotation JSON keeping every problem visible: non-finite numbers and numbers too large
    for a float become :class:`BadNumber`, objects are :class:`JsonObject` listing duplicate keys
    (plain ``json.loads`` keeps the last value silently).  Raises ``ValueError`` on malformed JSON.

    Numbers go through Python hooks only when the text could hold one past a float (a long digit run
    or a 3-digit exponent); otherwise every number is finite and parsed by the C scanner itself."""
    risky = _risky_number(bytes(data) if isinstance(data, (bytes, bytearray)) else
                          data.encode("utf-8", "surrogatepass"))
    if not risky:
        return json.loads(data, parse_constant=BadNumber, object_pairs_hook=_json_object)
    return json.loads(data, parse_float=_json_float, parse_int=_json_int, parse_constant=BadNumber,
                      object_pairs_hook=_json_object)


def parse_number(text: str):
    """A number from annotation text (int when integral in form), or :class:`BadNumber` / ``None``
    (not a number at all)."""
    text = text.strip()
    try:
        return _json_int(text) if text.lstrip("+-").isdigit() else _json_float(text)
    except ValueError:
        return None


def number_problem(value) -> str | None:
    """Why ``value`` is not a usable coordinate: None for a finite int / float (not bool)."""
    t = type(value)
    if t is float:
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if t is int:
        return None if abs(value) <= _FLOAT_MAX else f"{str(value)[:12]}... is too large for a float"
    if isinstance(value, BadNumber):
        if value.lstrip("+-") in ("NaN", "Infinity", "inf", "nan"):
            return f"{value} is not a finite number"
        return f"{value[:24]} is too large for a float"
    if value is None or isinstance(value, (bool, str, list, dict)):
        return f"{type(value).__name__} {str(value)[:30]!r} is not a number"
    return f"{type(value).__name__} is not a number"


def first_bad_number(values) -> tuple[int, str] | None:
    """``(index, reason)`` of the first value that is not a finite number, or None (fast path)."""
    for i, v in enumerate(values):
        t = type(v)
        if t is float:
            if v - v != 0.0:  # NaN or ±inf
                return i, number_problem(v)
        elif t is not int or abs(v) > _FLOAT_MAX:
            return i, number_problem(v)
    return None


def finite_attribute(value) -> bool:
    """True when an attribute value can go to strict JSON as it is (no BadNumber, NaN or ±inf inside)."""
    if isinstance(value, BadNumber):
        return False
    if type(value) is float:
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(finite_attribute(v) for v in value)
    if isinstance(value, dict):
        return all(finite_attribute(v) for v in value.values())
    return True


_BOX_NAMES = ("x1", "y1", "x2", "y2")


def check_box(box, width: int, height: int, skip, note, field: str = "bounding_box", shown=None):
    """Validate and clip one ``(x1, y1, x2, y2)`` box; the one rule every reader applies.

    Returns the clipped box, or None after ``skip(field, reason)`` (the item is lost): not four
    numbers, a non-finite or too-large value (the field names its index), an inverted box (x2 < x1 or
    y2 < y1), a zero width or height, or a box entirely outside the image.  A box that is kept but
    reaches outside the image is clipped and ``note(field, reason)`` says so (never silently).
    ``shown``: the box as the source file writes it, for the reason (default ``box``).
    """
    shown = box if shown is None else shown
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        skip(field, f"expected [x1, y1, x2, y2] numbers, got {shown!r}"[:160])
        return None
    bad = first_bad_number(box)
    if bad is not None:
        skip(f"{field}[{bad[0]}]", f"{_BOX_NAMES[bad[0]]}: {bad[1]}")
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 < x1 or y2 < y1:
        which = " and ".join(s for s, bad in (("x2 < x1", x2 < x1), ("y2 < y1", y2 < y1)) if bad)
        skip(field, f"inverted box: {which} (box {list(shown)})")
        return None
    if x2 == x1 or y2 == y1:
        skip(field, f"zero {'width' if x2 == x1 else 'height'} box (box {list(shown)})")
        return None
    clipped = clip_box((x1, y1, x2, y2), width, height)
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        skip(field, f"box lies outside the {width}x{height} image (zero area after clipping; box {list(shown)})")
        return None
    if clipped != (x1, y1, x2, y2):
        note(field, f"box reaches outside the {width}x{height} image: clipped from {list(shown)} to "
                    f"{[round(v, 2) for v in clipped]}")
    return clipped


def check_polygons(seg, width: int, height: int, skip, note, field: str = "segmentation") -> list[list[float]] | None:
    """Validate flat ``[x, y, ...]`` polygons: bad ones dropped with ``note`` (field level), points
    outside the image clipped with one ``note``; None after ``skip`` when no polygon is left."""
    if not isinstance(seg, list):
        skip(field, f"expected a list of polygons, got {type(seg).__name__}")
        return None
    polygons, outside = [], 0
    for k, poly in enumerate(seg):
        if not isinstance(poly, list) or len(poly) % 2:
            note(f"{field}[{k}]", "polygon is not a flat list of x, y numbers (polygon dropped)")
            continue
        bad = first_bad_number(poly)
        if bad is not None:
            note(f"{field}[{k}][{bad[0]}]", f"{bad[1]} (polygon dropped)")
            continue
        if len(poly) < 6:
            note(f"{field}[{k}]", f"polygon has {len(poly) // 2} points, fewer than 3 (polygon dropped)")
            continue
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) >= 0 and min(ys) >= 0 and max(xs) <= width and max(ys) <= height:
            polygons.append(list(map(float, poly)))  # inside the image: nothing to clip
            continue
        clipped = []
        for i in range(0, len(poly), 2):
            x, y = float(poly[i]), float(poly[i + 1])
            cx, cy = min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))
            outside += (cx, cy) != (x, y)
            clipped += [cx, cy]
        polygons.append(clipped)
    if outside:
        note(field, f"{outside} polygon points outside the {width}x{height} image, clipped to its edge")
    if not polygons:
        skip(field, "no valid polygon with at least 3 points")
        return None
    return polygons


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
            return _header_size(f, path)
    except OSError as exc:
        raise ValueError(f"unreadable image {path}: {exc}") from exc


def _header_size(f, path) -> tuple[int, int]:
    """:func:`image_size` of an open binary file (read from its start)."""
    try:
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

        f.seek(0)
        with Image.open(f) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable image {path}: {exc}") from exc
    except Exception as exc:  # PIL.UnidentifiedImageError and friends
        raise ValueError(f"unreadable image {path}: {exc}") from exc


@contextlib.contextmanager
def _strict_decoding(path):
    """Pillow decoding inside refuses truncated files, even where some other library set
    ``ImageFile.LOAD_TRUNCATED_IMAGES``; any failure (OSError for a truncated file, SyntaxError for broken PNG
    chunks, DecompressionBombError, ...) leaves as ``ValueError("undecodable image <path>: ...")``."""
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every decoding failure, named once
        raise ValueError(f"undecodable image {path}: {exc}") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def decoded_size(path) -> tuple[int, int]:
    """``(width, height)`` of an image whose pixels decode completely; ``ValueError`` otherwise.

    The header size (:func:`image_size`) must agree with Pillow's, and every pixel is decoded (JPEGs
    at 1/8 scale, which still reads the whole entropy-coded stream): a truncated or corrupt file is
    refused here instead of failing later in training (:func:`_strict_decoding`).  The file is read
    once; both the header parser and Pillow work on those bytes.
    """
    path = Path(path)
    try:
        data = io.BytesIO(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"unreadable image {path}: {exc}") from exc
    width, height = _header_size(data, path)
    data.seek(0)
    from PIL import Image

    with _strict_decoding(path), Image.open(data) as im:
        if im.size != (width, height):
            raise ValueError(f"header says {width}x{height}, the decoder {im.size[0]}x{im.size[1]}")
        if im.format == "JPEG":
            im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
        im.load()
    return width, height


def decoded_array(path) -> np.ndarray:
    """Every pixel of ``path`` as an array; ``ValueError`` for a truncated or corrupt file
    (:func:`_strict_decoding`: a cut-off mask must not load as half zeros)."""
    from PIL import Image

    with _strict_decoding(path), Image.open(path) as im:
        return np.asarray(im)


def image_error(exc: Exception) -> str:
    """Short reason for an :func:`image_size` failure, without the path (the report names the file)."""
    cause = exc.__cause__
    if cause is not None and str(exc).startswith("undecodable"):
        return f"undecodable image pixels ({type(cause).__name__}: {cause})"
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
