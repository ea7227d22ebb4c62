"""DeepFashion2 reader: ``{train,validation}/image/*.jpg`` + ``{train,validation}/annos/*.json``.

One JSON per image: ``source`` ('shop' | 'user'), ``pair_id`` and ``item1`` … ``itemN``, each with
``category_id`` (1–13), ``category_name``, ``style``, ``bounding_box`` ``[x1, y1, x2, y2]``,
``landmarks`` ``[x, y, v] * n`` (v: 2 visible, 1 occluded, 0 unlabelled; n fixed per category,
294 landmark slots over all categories), ``segmentation`` (list of polygons), ``scale``,
``occlusion``, ``zoom_in``, ``viewpoint``.  Released split sizes: 191,961 train / 32,153
validation.

:func:`read_image` validates one image (the shared rules of :mod:`.records`: :func:`~.records.load_json`,
:func:`~.records.check_box`, :func:`~.records.check_polygons`, :func:`~.records.decoded_size`) and
returns its record plus an :class:`Issue` for every item it skips (out-of-range category; a box that
is malformed, non-finite, inverted, zero-size or outside the image; no valid polygon; zero mask
area; a duplicate or unknown item key) or field it drops or changes (malformed or non-finite
landmarks, polygons and attributes; boxes and polygons clipped to the image).  Unreadable or
truncated images and malformed JSON skip the whole image.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from clothingrec.datasets.records import (
    BadNumber,
    ImageRecord,
    ImageSkipped,
    Issue,
    ObjectRecord,
    ReadResult,
    check_box,
    check_polygons,
    decoded_size,
    finite_attribute,
    first_bad_number,
    image_error,
    image_size,
    load_json,
    number_problem,
)

CATEGORIES = (
    "short sleeve top", "long sleeve top", "short sleeve outwear", "long sleeve outwear", "vest",
    "sling", "shorts", "trousers", "skirt", "short sleeve dress", "long sleeve dress", "vest dress",
    "sling dress",
)
#: number of landmarks of each category, in category order (sums to 294)
LANDMARK_COUNTS = (25, 33, 31, 39, 15, 15, 10, 14, 8, 29, 37, 19, 19)
#: first slot of each category in the 294-slot global landmark layout
LANDMARK_OFFSETS = tuple(sum(LANDMARK_COUNTS[:i]) for i in range(len(LANDMARK_COUNTS)))
NUM_LANDMARKS = sum(LANDMARK_COUNTS)
#: our split names → DeepFashion2 folder names
SPLITS = {"train": "train", "val": "validation"}
RELEASED_SIZES = {"train": 191_961, "val": 32_153}
ITEM_ATTRIBUTES = ("style", "scale", "occlusion", "zoom_in", "viewpoint")
_ITEM_KEY = re.compile(r"^item(\d+)$")

assert NUM_LANDMARKS == 294


def list_split(root: str | Path, split: str) -> tuple[list[tuple[Path, Path]], list[Issue]]:
    """Pairs ``(image, annotation)`` of one split, sorted by file name, and issues for unpaired files.

    ``split`` is ``train``/``val`` (or the folder names ``train``/``validation``).
    """
    root = Path(root)
    folder = SPLITS.get(split, split)
    image_dir, anno_dir = root / folder / "image", root / folder / "annos"
    if not image_dir.is_dir() or not anno_dir.is_dir():
        raise FileNotFoundError(f"DeepFashion2 split {folder!r} needs {image_dir} and {anno_dir}")
    images = {p.stem: p for p in _scan(image_dir, ".jpg")}
    annos = {p.stem: p for p in _scan(anno_dir, ".json")}
    pairs, issues = [], []
    for stem in sorted(images.keys() | annos.keys()):
        if stem not in annos:
            issues.append(Issue(f"{folder}/image/{stem}.jpg", "", "annos",
                                "no annotation file for this image", split, "image"))
        elif stem not in images:
            issues.append(Issue(f"{folder}/annos/{stem}.json", "", "image",
                                "no image file for this annotation", split, "image"))
        else:
            pairs.append((images[stem], annos[stem]))
    return pairs, issues


def _scan(folder: Path, suffix: str) -> list[Path]:
    with os.scandir(folder) as it:
        return [Path(e.path) for e in it if e.name.endswith(suffix) and not e.name.startswith(".")]


def _rel(path: str | Path) -> str:
    """``train/annos/000001.json``: the last three path parts, stable across machines."""
    parts = [p for p in os.fspath(path).split(os.sep) if p and p != "."]
    return "/".join(parts[-3:])


#: top-level keys of an annotation file besides ``item1`` … ``itemN``
IMAGE_KEYS = ("source", "pair_id")
#: the keys of one item (anything else is reported as unknown)
ITEM_KEYS = ("category_id", "category_name", "bounding_box", "landmarks", "segmentation", *ITEM_ATTRIBUTES)


def read_image(image_path: str | Path, anno_path: str | Path, split: str = "",
               compute_area: bool = True, decode: bool = True) -> ReadResult:
    """Read and validate one DeepFashion2 image; see the module doc for what is skipped.

    ``decode``: decode every pixel before keeping the image (:func:`~.records.decoded_size`), else
    read the size from the header only.  ``items_in`` of the result counts every item-like key of
    the file (duplicates and mis-spelled ``itemN`` keys included): each is either in the record or
    in exactly one item-level issue.
    """
    image_path, anno_path = Path(image_path), Path(anno_path)
    afile = _rel(anno_path)
    try:
        try:
            with open(anno_path, "rb") as f:
                data = load_json(f.read())
        except (OSError, ValueError) as exc:
            raise ImageSkipped(Issue(afile, "", "json", f"malformed JSON ({exc})", split, "image")) from exc
        if not isinstance(data, dict):
            raise ImageSkipped(Issue(afile, "", "json", "top level is not an object", split, "image"))
        try:
            width, height = (decoded_size if decode else image_size)(image_path)
        except ValueError as exc:
            raise ImageSkipped(Issue(_rel(image_path), "", "image", image_error(exc), split, "image")) from exc
    except ImageSkipped as skipped:
        return ReadResult(None, [skipped.issue])
    issues: list[Issue] = []
    attributes = {}
    for name in IMAGE_KEYS:
        value = data.get(name)
        if not finite_attribute(value):
            issues.append(Issue(afile, "", name, f"{_attribute_problem(value)} (field dropped)", split, "field"))
            value = None
        attributes[name] = value
    record = ImageRecord(path=image_path, width=width, height=height, split=split,
                         annotation_path=anno_path, attributes=attributes)
    items, items_in = [], 0
    for key, value in data.items():
        m = _ITEM_KEY.match(key)
        if m and not key.startswith("item0"):
            items.append((int(m.group(1)), key, value))
            items_in += 1
        elif key not in IMAGE_KEYS:
            item_like = _item_like(key, value)
            items_in += item_like
            issues.append(Issue(afile, key, key, f"unknown key {key!r} (expected source, pair_id or "
                                f"item1, item2, ...): not converted", split, "item" if item_like else "field"))
    for key in getattr(data, "duplicates", ()):
        item_like = key not in IMAGE_KEYS and _item_like(key, data[key])
        items_in += item_like
        issues.append(Issue(afile, key, key, f"duplicate key {key!r}: the earlier value is overridden by the "
                            "later one (earlier one lost)", split, "item" if item_like else "field"))
    for _, key, value in sorted(items, key=lambda x: x[0]):
        obj = _read_item(value, key, afile, split, width, height, issues, compute_area)
        if obj is not None:
            obj.attributes["source"] = record.attributes["source"]
            obj.attributes["pair_id"] = record.attributes["pair_id"]
            record.objects.append(obj)
    return ReadResult(record, issues, items_in)


def _attribute_problem(value) -> str:
    if isinstance(value, (BadNumber, float)):
        return number_problem(value)
    return f"{str(value)[:40]} holds a non-finite number"


def _item_like(key: str, value) -> bool:
    """An item under a canonical ``itemN`` key, or a mis-spelled one (an object, or a key like ``Item2``)."""
    return bool(_ITEM_KEY.match(key)) or isinstance(value, dict) or key.lower().startswith(("item", "itme", "iten"))


def _read_item(item, key, afile, split, width, height, issues, compute_area) -> ObjectRecord | None:
    def skip(field, reason):
        issues.append(Issue(afile, key, field, reason, split, "item"))

    def note(field, reason):
        issues.append(Issue(afile, key, field, reason, split, "field"))

    if not isinstance(item, dict):
        skip("item", "item is not an object")
        return None
    dups = getattr(item, "duplicates", ())
    if dups:
        skip(dups[0], f"duplicate key {dups[0]!r} in the item: ambiguous value")
        return None
    for name in item:
        if name not in ITEM_KEYS:
            note(name, f"unknown item key {name!r} (ignored)")
    cat = item.get("category_id")
    if type(cat) is not int or not 1 <= cat <= len(CATEGORIES):
        skip("category_id", f"category_id {cat!r} is not an integer in 1..{len(CATEGORIES)}"[:160])
        return None
    box = check_box(item.get("bounding_box"), width, height, skip, note)
    if box is None:
        return None
    polygons = check_polygons(item.get("segmentation"), width, height, skip, note)
    if polygons is None:
        return None
    area = None
    if compute_area:
        from pycocotools import mask as mask_utils

        area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))
        if area <= 0:
            skip("segmentation", "polygons cover no pixel (zero mask area)")
            return None
    n_expected = LANDMARK_COUNTS[cat - 1]
    landmarks = item.get("landmarks")
    if not (isinstance(landmarks, list) and len(landmarks) == 3 * n_expected):
        got = len(landmarks) if isinstance(landmarks, list) else type(landmarks).__name__
        note("landmarks", f"expected {3 * n_expected} numbers for category {cat}, got {got} "
                          "(item kept without landmarks)")
        landmarks = None
    elif (bad := first_bad_number(landmarks)) is not None:
        note(f"landmarks[{bad[0]}]", f"{bad[1]} (item kept without landmarks)")
        landmarks = None
    elif any(v not in (0, 1, 2) for v in landmarks[2::3]):
        note("landmarks", "visibility not 0, 1 or 2 (item kept without landmarks)")
        landmarks = None
    attributes = {}
    for name in ITEM_ATTRIBUTES:
        value = item.get(name)
        if not finite_attribute(value):
            note(name, f"{_attribute_problem(value)} (field dropped)")
            value = None
        attributes[name] = value
    return ObjectRecord(category_id=cat, category_name=CATEGORIES[cat - 1], bbox=box,
                        polygons=polygons, area=area, landmarks=landmarks, attributes=attributes,
                        name=key)


class Keypoints(list):
    """A 294-slot keypoint list whose slots outside ``[start, stop)`` are all ``0.0`` (as built by
    :func:`global_keypoints`; not to be modified), so that its JSON text can reuse cached zero runs."""

    __slots__ = ("start", "stop")

    def __init__(self, values, start: int = 0, stop: int | None = None):
        super().__init__(values)
        self.start, self.stop = start, len(self) if stop is None else stop


def global_keypoints(category_id: int, landmarks: list[float] | None) -> tuple[Keypoints, int]:
    """Place an item's landmarks in the 294-slot layout: ``(keypoints [x, y, v] * 294, num_keypoints)``.

    Slots of other categories are zeros; ``num_keypoints`` counts landmarks with ``v > 0``.
    """
    keypoints = [0.0] * (3 * NUM_LANDMARKS)
    if not landmarks:
        return Keypoints(keypoints, 0, 0), 0
    start = 3 * LANDMARK_OFFSETS[category_id - 1]
    keypoints[start:start + len(landmarks)] = [float(v) for v in landmarks]
    visible = sum(1 for v in landmarks[2::3] if v > 0)
    return Keypoints(keypoints, start, start + len(landmarks)), visible


def iter_split(root: str | Path, split: str, max_images: int | None = None):
    """Yield :class:`ReadResult` for each image of a split (sequential; for analysis notebooks)."""
    pairs, issues = list_split(root, split)
    for issue in issues:
        yield ReadResult(None, [issue])
    for image_path, anno_path in pairs[:max_images]:
        yield read_image(image_path, anno_path, split)
