"""DeepFashion2 reader: ``{train,validation}/image/*.jpg`` + ``{train,validation}/annos/*.json``.

One JSON per image: ``source`` ('shop' | 'user'), ``pair_id`` and ``item1`` … ``itemN``, each with
``category_id`` (1–13), ``category_name``, ``style``, ``bounding_box`` ``[x1, y1, x2, y2]``,
``landmarks`` ``[x, y, v] * n`` (v: 2 visible, 1 occluded, 0 unlabelled; n fixed per category,
294 landmark slots over all categories), ``segmentation`` (list of polygons), ``scale``,
``occlusion``, ``zoom_in``, ``viewpoint``.  Released split sizes: 191,961 train / 32,153
validation.

:func:`read_image` validates one image and returns its record plus an :class:`Issue` for every
item it skips (out-of-range category, malformed or zero-area box, polygons with fewer than 3
points, zero mask area) or field it drops (malformed landmarks).  Unreadable images and malformed
JSON skip the whole image.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from clothingrec.datasets.records import (ImageRecord, ImageSkipped, Issue, ObjectRecord, ReadResult,
                                          clip_box, image_error, image_size)

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
    import os

    with os.scandir(folder) as it:
        return [Path(e.path) for e in it if e.name.endswith(suffix) and not e.name.startswith(".")]


def _rel(path: Path) -> str:
    """``train/annos/000001.json``: the last three path parts, stable across machines."""
    return "/".join(Path(path).parts[-3:])


def _all_numbers(values) -> bool:
    """Every value an int or a finite-or-infinite float, not NaN, not bool (fast path for long lists)."""
    for v in values:
        t = type(v)
        if t is float:
            if v != v:
                return False
        elif t is not int:
            return False
    return True


def read_image(image_path: str | Path, anno_path: str | Path, split: str = "",
               compute_area: bool = True) -> ReadResult:
    """Read and validate one DeepFashion2 image; see the module doc for what is skipped."""
    image_path, anno_path = Path(image_path), Path(anno_path)
    afile = _rel(anno_path)
    try:
        try:
            with open(anno_path, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise ImageSkipped(Issue(afile, "", "json", f"malformed JSON ({exc})", split, "image"))
        if not isinstance(data, dict):
            raise ImageSkipped(Issue(afile, "", "json", "top level is not an object", split, "image"))
        try:
            width, height = image_size(image_path)
        except ValueError as exc:
            raise ImageSkipped(Issue(_rel(image_path), "", "image", image_error(exc), split, "image"))
    except ImageSkipped as skipped:
        return ReadResult(None, [skipped.issue])
    issues: list[Issue] = []
    record = ImageRecord(path=image_path, width=width, height=height, split=split,
                         annotation_path=anno_path,
                         attributes={"source": data.get("source"), "pair_id": data.get("pair_id")})
    keys = sorted((k for k in data if _ITEM_KEY.match(k)), key=lambda k: int(_ITEM_KEY.match(k).group(1)))
    for key in keys:
        obj = _read_item(data[key], key, afile, split, width, height, issues, compute_area)
        if obj is not None:
            obj.attributes["source"] = record.attributes["source"]
            obj.attributes["pair_id"] = record.attributes["pair_id"]
            record.objects.append(obj)
    return ReadResult(record, issues)


def _read_item(item, key, afile, split, width, height, issues, compute_area) -> ObjectRecord | None:
    def skip(field, reason):
        issues.append(Issue(afile, key, field, reason, split, "item"))

    if not isinstance(item, dict):
        skip("item", "item is not an object")
        return None
    cat = item.get("category_id")
    if not (isinstance(cat, int) and not isinstance(cat, bool)) or not 1 <= cat <= len(CATEGORIES):
        skip("category_id", f"category_id {cat!r} is not an integer in 1..{len(CATEGORIES)}")
        return None
    box = item.get("bounding_box")
    if not (isinstance(box, list) and len(box) == 4 and _all_numbers(box)):
        skip("bounding_box", f"expected [x1, y1, x2, y2] numbers, got {box!r}"[:160])
        return None
    x1, y1, x2, y2 = clip_box(box, width, height)
    if x2 <= x1 or y2 <= y1:
        skip("bounding_box", f"zero area after clipping to the {width}x{height} image (box {box})")
        return None
    seg = item.get("segmentation")
    if not isinstance(seg, list):
        skip("segmentation", f"expected a list of polygons, got {type(seg).__name__}")
        return None
    polygons = []
    for k, poly in enumerate(seg):
        if not (isinstance(poly, list) and _all_numbers(poly)) or len(poly) % 2:
            skip(f"segmentation[{k}]", "polygon is not a flat list of x, y numbers (polygon dropped)")
            continue
        if len(poly) < 6:
            skip(f"segmentation[{k}]", f"polygon has {len(poly) // 2} points, fewer than 3 (polygon dropped)")
            continue
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) >= 0 and min(ys) >= 0 and max(xs) <= width and max(ys) <= height:
            polygons.append(list(map(float, poly)))  # inside the image: nothing to clip
            continue
        clipped = []
        for i in range(0, len(poly), 2):
            clipped.append(min(max(float(poly[i]), 0.0), float(width)))
            clipped.append(min(max(float(poly[i + 1]), 0.0), float(height)))
        polygons.append(clipped)
    if not polygons:
        skip("segmentation", "no polygon with at least 3 points")
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
    if not (isinstance(landmarks, list) and len(landmarks) == 3 * n_expected
            and _all_numbers(landmarks)):
        got = len(landmarks) if isinstance(landmarks, list) else type(landmarks).__name__
        issues.append(Issue(afile, key, "landmarks",
                            f"expected {3 * n_expected} numbers for category {cat}, got {got} "
                            "(item kept without landmarks)", split, "field"))
        landmarks = None
    attributes = {name: item.get(name) for name in ITEM_ATTRIBUTES}
    return ObjectRecord(category_id=cat, category_name=CATEGORIES[cat - 1], bbox=(x1, y1, x2, y2),
                        polygons=polygons, area=area, landmarks=landmarks, attributes=attributes,
                        name=key)


def global_keypoints(category_id: int, landmarks: list[float] | None) -> tuple[list[float], int]:
    """Place an item's landmarks in the 294-slot layout: ``(keypoints [x, y, v] * 294, num_keypoints)``.

    Slots of other categories are zeros; ``num_keypoints`` counts landmarks with ``v > 0``.
    """
    keypoints = [0.0] * (3 * NUM_LANDMARKS)
    if not landmarks:
        return keypoints, 0
    start = 3 * LANDMARK_OFFSETS[category_id - 1]
    keypoints[start:start + len(landmarks)] = [float(v) for v in landmarks]
    visible = sum(1 for v in landmarks[2::3] if v > 0)
    return keypoints, visible


def iter_split(root: str | Path, split: str, max_images: int | None = None):
    """Yield :class:`ReadResult` for each image of a split (sequential; for analysis notebooks)."""
    pairs, issues = list_split(root, split)
    for issue in issues:
        yield ReadResult(None, [issue])
    for image_path, anno_path in pairs[:max_images]:
        yield read_image(image_path, anno_path, split)
