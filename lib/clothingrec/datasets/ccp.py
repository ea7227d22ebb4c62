"""clothing-co-parsing (CCP), pixel-labelled part: ``photos/NNNN.jpg`` + ``annotations/pixel-level/NNNN.mat``.

Each ``.mat`` holds ``groundtruth``, an H×W uint8 map of 59 semantic labels (``label_list.mat``;
0 = null/background).  Labels are semantic, not per instance, and each photo shows one labelled
person, so an image yields:

- one **garment** object per garment group present (mask = all pixels of the group's labels, box =
  their extent), with the 59 labels grouped as in :data:`GARMENT_GROUPS`;
- one **person** object: the silhouette, i.e. every labelled (non-zero) pixel — skin, hair,
  accessories and shoes included.

Mapping to DeepFashion2 (documented choice).  CCP does not label sleeve length, so the sleeve
splits of DeepFashion2 cannot be recovered: ``top`` stands for DF2 *short/long sleeve top*,
``outwear`` for *short/long sleeve outwear*, ``dress`` for the four DF2 dress categories.  CCP's
``vest`` is kept apart (DF2 *vest*); DF2 *sling* has no CCP counterpart.  Labels that are not
garments in DeepFashion2's sense (footwear, bags, jewellery, hair, skin, underwear, legwear such as
tights/stockings/socks, scarves, ties, hats, gloves, swimwear) belong to no garment group; they
still count for the person silhouette.

Garment groups smaller than ``min_pixels`` (label noise: stray pixels) are skipped and reported;
``0536.mat`` is all zeros and is skipped as an image with the reason stated.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from clothingrec.datasets.records import (
    ImageRecord,
    ImageSkipped,
    Issue,
    ObjectRecord,
    ReadResult,
    decoded_size,
    image_error,
    image_size,
    mask_box,
    mask_polygons,
)

#: garment group → (CCP label names, DeepFashion2 category ids it stands for)
GARMENT_GROUPS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "top": (("t-shirt", "shirt", "blouse", "top", "sweater", "sweatshirt", "hoodie", "jumper",
             "bodysuit"), (1, 2)),
    "outwear": (("coat", "jacket", "blazer", "cardigan", "cape", "suit"), (3, 4)),
    "vest": (("vest",), (5,)),
    "shorts": (("shorts",), (7,)),
    "trousers": (("pants", "jeans", "leggings"), (8,)),
    "skirt": (("skirt",), (9,)),
    "dress": (("dress", "romper"), (10, 11, 12, 13)),
}
GARMENT_CATEGORIES = tuple(GARMENT_GROUPS)
#: the 59 CCP labels in label-value order (value v is LABELS[v]); checked against label_list.mat
LABELS = (
    "null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet",
    "cape", "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair",
    "hat", "heels", "hoodie", "intimate", "jacket", "jeans", "jumper", "leggings", "loafers",
    "necklace", "panties", "pants", "pumps", "purse", "ring", "romper", "sandals", "scarf", "shirt",
    "shoes", "shorts", "skin", "skirt", "sneakers", "socks", "stockings", "suit", "sunglasses",
    "sweater", "sweatshirt", "swimwear", "t-shirt", "tie", "tights", "top", "vest", "wallet", "watch",
    "wedges",
)
DEFAULT_MIN_PIXELS = 64


def read_label_names(root: str | Path) -> list[str]:
    """The 59 label names from ``label_list.mat`` (index = label value)."""
    from scipy.io import loadmat

    raw = loadmat(str(Path(root) / "label_list.mat"))["label_list"].reshape(-1)
    return [str(x[0]) if len(x) else "" for x in raw]


def group_lookup(label_names=LABELS) -> np.ndarray:
    """Array ``lut[v]`` = garment-group index (0-based, order of :data:`GARMENT_GROUPS`) or -1."""
    lut = np.full(256, -1, dtype=np.int16)
    index = {name: i for i, name in enumerate(label_names)}
    for g, (names, _) in enumerate(GARMENT_GROUPS.values()):
        for name in names:
            if name not in index:
                raise ValueError(f"CCP label {name!r} of group {list(GARMENT_GROUPS)[g]!r} not in label list")
            lut[index[name]] = g
    return lut


_LUT = group_lookup()


def list_images(root: str | Path) -> tuple[list[tuple[Path, Path]], list[Issue]]:
    """Pairs ``(photo, label map)`` sorted by id, and image-level issues for photos without a map."""
    root = Path(root)
    photos, labels = root / "photos", root / "annotations" / "pixel-level"
    if not labels.is_dir():
        raise FileNotFoundError(f"CCP needs {labels} (and {photos})")
    pairs, issues = [], []
    for mat in sorted(labels.glob("*.mat")):
        photo = photos / f"{mat.stem}.jpg"
        if not photo.exists():
            issues.append(Issue(f"annotations/pixel-level/{mat.name}", "", "photo",
                                f"missing photos/{photo.name}", "", "image"))
            continue
        pairs.append((photo, mat))
    return pairs, issues


def load_label_map(mat_path: str | Path) -> np.ndarray:
    from scipy.io import loadmat

    data = loadmat(str(mat_path))
    if "groundtruth" not in data:
        raise KeyError("no variable 'groundtruth'")
    return np.asarray(data["groundtruth"])


def _usable_labels(gt: np.ndarray) -> tuple[np.ndarray, str]:
    """The label map as uint8 with unusable pixels (NaN, ±inf, fractional, outside 0..58) set to 0
    (background), and a reason counting them ("" when there were none)."""
    if np.issubdtype(gt.dtype, np.floating):
        values = gt.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values != np.round(values))
    else:
        values = gt.astype(np.int64) if gt.dtype != np.uint64 else np.minimum(gt, 255).astype(np.int64)
        bad = np.zeros(gt.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        bad |= ~bad & ((values < 0) | (values >= len(LABELS)))
    problem = ""
    if bad.any():
        sample = sorted({str(v) for v in values[bad][:1000].tolist()})[:3]
        problem = (f"{int(bad.sum())} pixels hold no label of 0..{len(LABELS) - 1} (e.g. {', '.join(sample)}): "
                   "treated as background (0)")
        values = np.where(bad, 0, values)
    return values.astype(np.uint8), problem


def part_photos(part: str, root: str | Path | None = None) -> list[Path]:
    """The photos of one part (``train``/``val``/``test``) of the stored CCP split, sorted by id
    (unlabelled images for self-supervised pretraining; the other parts stay unseen)."""
    from clothingrec.paths import CCP, find_dataset
    from clothingrec.splits import PARTS, ccp_split

    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    pairs, _ = list_images(Path(root) if root else find_dataset(CCP))
    by_id = {photo.stem: photo for photo, _ in pairs}
    return [by_id[i] for i in ccp_split(sorted(by_id))[part]]


def read_image(photo_path: str | Path, mat_path: str | Path, split: str = "",
               classes: str = "garments", min_pixels: int = DEFAULT_MIN_PIXELS,
               with_polygons: bool = True, decode: bool = True) -> ReadResult:
    """Read one CCP photo: ``classes`` is ``garments``, ``person`` or ``all`` (garments + person).

    ``decode``: decode every pixel of the photo before keeping it (else its header size only).
    Unusable label values (NaN, ±inf, fractional, outside the 59 labels) become background with a
    field-level issue counting them; the rest of the map is used."""
    if classes not in ("garments", "person", "all"):
        raise ValueError(f"classes must be 'garments', 'person' or 'all', not {classes!r}")
    photo_path, mat_path = Path(photo_path), Path(mat_path)
    mfile = f"annotations/pixel-level/{mat_path.name}"
    issues: list[Issue] = []
    try:
        try:
            gt = load_label_map(mat_path)
        except Exception as exc:  # noqa: BLE001 - scipy raises many kinds on corrupt files
            raise ImageSkipped(Issue(mfile, "", "groundtruth", f"unreadable label map ({exc})", split,
                                     "image")) from exc
        try:
            width, height = (decoded_size if decode else image_size)(photo_path)
        except ValueError as exc:
            raise ImageSkipped(Issue(f"photos/{photo_path.name}", "", "image", image_error(exc), split,
                                     "image")) from exc
        if gt.ndim != 2 or gt.shape != (height, width):
            raise ImageSkipped(Issue(mfile, "", "groundtruth", f"label map shape {gt.shape} does not match "
                                     f"the {width}x{height} photo", split, "image"))
        if not (np.issubdtype(gt.dtype, np.integer) or np.issubdtype(gt.dtype, np.floating)):
            raise ImageSkipped(Issue(mfile, "", "groundtruth", f"label map of {gt.dtype} values, not numbers",
                                     split, "image"))
        gt, problem = _usable_labels(gt)
        if problem:
            issues.append(Issue(mfile, "", "groundtruth", problem, split, "field"))
        if gt.max() == 0:
            raise ImageSkipped(Issue(mfile, "", "groundtruth",
                                     "empty label map (every pixel is 0 = background)", split, "image"))
    except ImageSkipped as skipped:
        return ReadResult(None, [skipped.issue])
    record = ImageRecord(path=photo_path, width=width, height=height, split=split, annotation_path=mat_path)
    items_in = 0
    if classes in ("garments", "all"):
        groups = _LUT[gt]
        present = np.unique(groups)
        items_in += int((present >= 0).sum())
        for g in present[present >= 0]:
            name = GARMENT_CATEGORIES[g]
            inst = groups == g
            area = int(inst.sum())
            if area < min_pixels:
                issues.append(Issue(mfile, name, "groundtruth",
                                    f"only {area} px (< {min_pixels}): treated as label noise", split))
                continue
            labels = sorted({LABELS[v] for v in np.unique(gt[inst])})
            record.objects.append(ObjectRecord(
                category_id=int(g) + 1, category_name=name, bbox=mask_box(inst),
                polygons=mask_polygons(inst) if with_polygons else [], mask=inst, area=float(area),
                attributes={"ccp_labels": labels, "df2_categories": list(GARMENT_GROUPS[name][1])},
                name=name))
    if classes in ("person", "all"):
        items_in += 1
        person = gt > 0
        record.objects.append(ObjectRecord(
            category_id=len(GARMENT_CATEGORIES) + 1 if classes == "all" else 1, category_name="person",
            bbox=mask_box(person), polygons=mask_polygons(person) if with_polygons else [],
            mask=person, area=float(person.sum()), name="person"))
    return ReadResult(record, issues, items_in)


def label_statistics(mat_paths) -> pandas.DataFrame:  # noqa: F821
    """Per CCP label: images where it appears, pixel share of labelled pixels, and its garment group.

    Shows which labels the garment mapping keeps and how much of the labelled area it leaves out.
    Unreadable or empty maps are ignored here (the readers report them).
    """
    import pandas as pd

    images = np.zeros(len(LABELS), dtype=np.int64)
    pixels = np.zeros(len(LABELS), dtype=np.int64)
    for path in mat_paths:
        try:
            gt = load_label_map(path)
        except Exception:  # noqa: BLE001
            continue
        counts = np.bincount(gt.reshape(-1), minlength=len(LABELS))[:len(LABELS)]
        pixels += counts
        images += counts > 0
    group_of = {name: g for g, (names, _) in GARMENT_GROUPS.items() for name in names}
    labelled = pixels[1:].sum()
    frame = pd.DataFrame({"label": LABELS, "images": images,
                          "pixel_share_%": np.round(100 * pixels / max(labelled, 1), 2),
                          "garment_group": [group_of.get(n, "-") for n in LABELS]})
    return frame.iloc[1:].sort_values(["images", "label"], ascending=[False, True]).reset_index(drop=True)


def mapping_table() -> pandas.DataFrame:  # noqa: F821
    """The garment groups: CCP labels they merge and the DeepFashion2 categories they stand for."""
    import pandas as pd

    from clothingrec.datasets.deepfashion2 import CATEGORIES

    return pd.DataFrame([{"id": i + 1, "group": g, "ccp_labels": ", ".join(names),
                          "deepfashion2": ", ".join(CATEGORIES[c - 1] for c in df2_ids)}
                         for i, (g, (names, df2_ids)) in enumerate(GARMENT_GROUPS.items())]).set_index("id")
