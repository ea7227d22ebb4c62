"""CCP garment crops: worn clothing from street photos, labelled with clothing-dataset-small's 10 classes.

The classifiers are trained and tested on product photos (one garment on a plain background); the web
demo classifies garments cut out of street photos.  This module builds that second kind of test set
from clothing-co-parsing's pixel-level label maps (``make data`` → ``data/ccp-crops/``)::

    data/ccp-crops/test/<class>/<id>_<n>.jpg     out-of-domain TEST set: photos of the test part only
    data/ccp-crops/train/<class>/<id>_<n>.jpg    optional training add-on: photos of the train part only
    data/ccp-crops/index.csv                     one row per crop: part, class, file, photo id, CCP labels, box
    data/ccp-crops/manifest.json                 parameters, split and mapping digests, counts (reuse key)

The parts come from THE stored CCP split (:func:`clothingrec.splits.ccp_split`), so a crop of a photo the
detectors are tested on is never a training crop, and the val photos (used to select detectors) give no
crops at all.  The layout is clothing-dataset-small's, so its reader reads it:
:func:`read_crops` (= :func:`clothingrec.datasets.clothing_small.read_split` on this folder), and a
classifier evaluation that takes a dataset folder and a split name takes ``data/ccp-crops`` and ``test``.

Crops (:func:`image_regions`).  CCP's labels are semantic with one labelled person per photo, so the pixels
of a class are one garment, possibly in pieces (an open jacket is two halves, a bag strap cuts trousers in
two): per class, the 8-connected regions of its pixels are found, stray specks (below
:data:`MIN_COMPONENT_SHARE` of the largest region, or :data:`MIN_COMPONENT_PIXELS`) are dropped, and the
rest are **merged into one crop** — except ``shoes``, whose label covers a pair: there the largest region
(one shoe, or both where they touch) is the crop, so that a pair counts once like every other garment
(the box of two feet apart is mostly legs and pavement).  A crop is the box of its pixels, padded by
:data:`PAD` of its size on each side (clipped to the photo), kept only if it has at least
:data:`DEFAULT_MIN_PIXELS` labelled pixels (:data:`MIN_PIXELS`: fewer for shoes and hats), both box sides
of at least :data:`MIN_SIDE` px, and its pixels fill at least :data:`MIN_FILL` of the box (a
shirt seen only at the collar and cuffs under a jacket gives a box that is mostly jacket: skipped).
Crops are written as JPEG (quality 95) in a fixed order, so a rebuild writes the same bytes.

The label mapping (:data:`MAPPING`): every CCP label is either mapped to one of the 10 classes or left out,
with the reason.  The judgement calls, from looking at CCP's labelled regions next to the classes'
training images (product photos of the small set):

- ``sweater``, ``sweatshirt``, ``hoodie`` → ``longsleeve``: the small set's ``longsleeve`` images are
  exactly these (knitted and fleece long-sleeved tops, long-sleeve tees), and ``shirt`` / ``outwear`` are
  button-up shirts and jackets/coats;
- ``coat``, ``jacket``, ``blazer`` → ``outwear``; ``pants``, ``jeans`` → ``pants``; every kind of footwear
  → ``shoes``;
- left out although they are garments, because CCP uses the label for things that belong to several
  classes or to none: ``blouse`` (CCP's generic women's top: blouses, but also sweaters, printed tees and
  ruffled tops; the small set's ``shirt`` is button-up shirts), ``top`` (tank tops, camisoles, crop
  tops, some jackets), ``jumper`` (sweaters, but also pinafore dresses, capes and printed tops), ``vest``
  (waistcoats, sleeveless coats, tank tops), ``cardigan`` (between ``longsleeve`` and ``outwear``), ``suit``
  (the suit jacket alone in some photos, jacket and trousers as one region in others), ``cape``
  (ponchos and capes: no sleeves, unlike the jackets and coats of ``outwear``), ``leggings`` (mostly
  opaque legwear under skirts and dresses), ``romper`` and ``bodysuit`` (one-piece: no class);
- accessories, jewellery, bags, belts, eyewear, scarves, ties, gloves, hosiery, underwear, swimwear, skin
  and hair have no class among the 10.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clothingrec.datasets import ccp
from clothingrec.datasets.clothing_small import CLASSES

#: CCP label → (one of the 10 classes, or None for left out; the reason)
MAPPING: dict[str, tuple[str | None, str]] = {
    # tops
    "t-shirt": ("t-shirt", "same garment"),
    "shirt": ("shirt", "same garment (button-up shirt)"),
    "sweater": ("longsleeve", "knitted long-sleeved top: what the small set's longsleeve images show"),
    "sweatshirt": ("longsleeve", "fleece long-sleeved top: what the small set's longsleeve images show"),
    "hoodie": ("longsleeve", "hooded sweatshirt: a long-sleeved top (2 photos in CCP)"),
    "blouse": (None, "CCP's generic women's top (blouses, sweaters, printed tees, ruffled tops): no one class"),
    "top": (None, "tank tops, camisoles, crop tops (and some jackets): no class among the 10"),
    "jumper": (None, "used for sweaters, pinafore dresses, capes and printed tops alike: no one class"),
    "vest": (None, "waistcoats, sleeveless coats and tank tops: no class among the 10"),
    "cardigan": (None, "open knitted top between longsleeve and outwear: ambiguous"),
    "bodysuit": (None, "one-piece top / jumpsuit: no class among the 10"),
    # outer layers
    "coat": ("outwear", "same garment"),
    "jacket": ("outwear", "same garment"),
    "blazer": ("outwear", "tailored jacket"),
    "suit": (None, "the suit jacket alone in some photos, jacket and trousers as one region in others"),
    "cape": (None, "capes and ponchos, no sleeves: unlike the jackets and coats of outwear"),
    # bottoms and one-pieces
    "pants": ("pants", "same garment"),
    "jeans": ("pants", "denim trousers"),
    "leggings": (None, "mostly opaque legwear under skirts and dresses in CCP, not trousers"),
    "shorts": ("shorts", "same garment"),
    "skirt": ("skirt", "same garment"),
    "dress": ("dress", "same garment"),
    "romper": (None, "one-piece shorts / jumpsuit: no class among the 10"),
    # head and feet
    "hat": ("hat", "same garment (hats and caps)"),
    "shoes": ("shoes", "footwear"),
    "boots": ("shoes", "footwear"),
    "sneakers": ("shoes", "footwear"),
    "heels": ("shoes", "footwear"),
    "pumps": ("shoes", "footwear"),
    "flats": ("shoes", "footwear"),
    "loafers": ("shoes", "footwear"),
    "sandals": ("shoes", "footwear"),
    "clogs": ("shoes", "footwear"),
    "wedges": ("shoes", "footwear"),
    # no counterpart among the 10 classes
    "accessories": (None, "accessory: no class"),
    "bag": (None, "bag: no class"),
    "purse": (None, "bag: no class"),
    "wallet": (None, "accessory: no class"),
    "belt": (None, "accessory: no class"),
    "bracelet": (None, "jewellery: no class"),
    "earrings": (None, "jewellery: no class"),
    "necklace": (None, "jewellery: no class"),
    "ring": (None, "jewellery: no class"),
    "watch": (None, "accessory: no class"),
    "glasses": (None, "eyewear: no class"),
    "sunglasses": (None, "eyewear: no class"),
    "scarf": (None, "accessory: no class"),
    "tie": (None, "accessory: no class"),
    "gloves": (None, "accessory: no class"),
    "socks": (None, "hosiery: no class"),
    "stockings": (None, "hosiery: no class"),
    "tights": (None, "hosiery: no class"),
    "bra": (None, "underwear: no class"),
    "intimate": (None, "underwear: no class"),
    "panties": (None, "underwear: no class"),
    "swimwear": (None, "swimwear: no class"),
    "skin": (None, "body, not clothing"),
    "hair": (None, "body, not clothing"),
}
#: classes whose pixels are a pair of objects: the largest connected region is the crop
LARGEST_REGION: frozenset[str] = frozenset({"shoes"})
MIN_PIXELS: dict[str, int] = {"shoes": 400, "hat": 600}  # small objects
DEFAULT_MIN_PIXELS = 2000
MIN_SIDE = 24
MIN_FILL = 0.2
MIN_COMPONENT_PIXELS = 50
MIN_COMPONENT_SHARE = 0.1
PAD = 0.1
JPEG_QUALITY = 95
#: the parts written (val photos select detectors; they give no crops)
PARTS: tuple[str, ...] = ("train", "test")
FORMAT_VERSION = 2


def crops_dir() -> Path:
    from clothingrec.paths import DATA_DIR

    return DATA_DIR / "ccp-crops"


def class_lookup(label_names=ccp.LABELS) -> np.ndarray:
    """``lut[v]`` = index into :data:`CLASSES` of CCP label value ``v``, or -1 (left out / background)."""
    lut = np.full(256, -1, dtype=np.int16)
    for v, name in enumerate(label_names):
        target = MAPPING.get(name, (None, ""))[0]
        if target is not None:
            lut[v] = CLASSES.index(target)
    return lut


_LUT = class_lookup()


def mapping_table():
    """The mapping as a table: every CCP label, its class (or ``-``), the reason, and the parameters' note."""
    import pandas as pd

    rows = [{"ccp_label": name, "class": MAPPING[name][0] or "-", "reason": MAPPING[name][1]}
            for name in ccp.LABELS[1:]]
    frame = pd.DataFrame(rows)
    frame["order"] = [CLASSES.index(c) if c in CLASSES else len(CLASSES) for c in frame["class"]]
    return frame.sort_values(["order", "ccp_label"]).drop(columns="order").reset_index(drop=True)


def mapping_summary():
    """One row per class: the CCP labels it takes; then one row listing every label left out."""
    import pandas as pd

    table = mapping_table()
    rows = [{"class": c, "ccp_labels": ", ".join(table[table["class"] == c].ccp_label)} for c in CLASSES]
    rows.append({"class": "(left out)", "ccp_labels": ", ".join(table[table["class"] == "-"].ccp_label)})
    return pd.DataFrame(rows).set_index("class")


def mapping_text(width: int = 110) -> str:
    """:func:`mapping_summary` as wrapped text lines (``class: labels``), for printing."""
    import textwrap

    lines = []
    for name, labels in mapping_summary().ccp_labels.items():
        lines += textwrap.wrap(labels, width=width, initial_indent=f"{name:<11} ", subsequent_indent=" " * 12)
    return "\n".join(lines)


@dataclass(frozen=True)
class Region:
    """One garment crop of a photo: class, labelled pixels, their box and the padded crop box
    (``x0, y0, x1, y1``, pixels, end exclusive), and the CCP labels inside."""

    class_name: str
    pixels: int
    box: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]
    ccp_labels: tuple[str, ...]


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def image_regions(gt: np.ndarray) -> tuple[list[Region], list[tuple[str, str]]]:
    """The crops of one label map (see the module doc) and ``(class, reason)`` for each region skipped.

    Order: classes in :data:`CLASSES` order (at most one crop per class and photo).
    """
    from scipy import ndimage

    height, width = gt.shape
    classes = _LUT[gt]
    regions: list[Region] = []
    skipped: list[tuple[str, str]] = []
    for c in np.unique(classes):
        if c < 0:
            continue
        name = CLASSES[c]
        labelled, n = ndimage.label(classes == c, structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(labelled.reshape(-1), minlength=n + 1)[1:]
        keep = [k + 1 for k in range(n)
                if sizes[k] >= max(MIN_COMPONENT_PIXELS, MIN_COMPONENT_SHARE * sizes.max())]
        if not keep:
            skipped.append((name, f"specks only (largest {int(sizes.max())} px < {MIN_COMPONENT_PIXELS})"))
            continue
        if name in LARGEST_REGION:
            keep = [max(keep, key=lambda k: (sizes[k - 1], -k))]
        for group in [keep]:
            mask = np.isin(labelled, group)
            pixels = int(mask.sum())
            x0, y0, x1, y1 = _box(mask)
            w, h = x1 - x0, y1 - y0
            fill = pixels / float(w * h)
            minimum = MIN_PIXELS.get(name, DEFAULT_MIN_PIXELS)
            if pixels < minimum:
                skipped.append((name, f"{pixels} px < {minimum}"))
                continue
            if min(w, h) < MIN_SIDE:
                skipped.append((name, f"box {w}x{h} px: a side < {MIN_SIDE}"))
                continue
            if fill < MIN_FILL:
                skipped.append((name, f"fills {fill:.0%} of its box < {MIN_FILL:.0%} (mostly hidden)"))
                continue
            px, py = max(2, round(PAD * w)), max(2, round(PAD * h))
            crop = (max(0, x0 - px), max(0, y0 - py), min(width, x1 + px), min(height, y1 + py))
            labels = tuple(sorted({ccp.LABELS[v] for v in np.unique(gt[mask])}))
            regions.append(Region(name, pixels, (x0, y0, x1, y1), crop, labels))
    return regions, skipped


def photo_crops(photo_path, mat_path) -> tuple[list[tuple[Region, bytes]], list[tuple[str, str]]]:
    """Crops of one CCP photo as ``(region, JPEG bytes)``; none for an empty or mismatched label map."""
    from PIL import Image

    gt = ccp.load_label_map(mat_path)
    with Image.open(photo_path) as im:
        im = im.convert("RGB")
        if gt.shape != (im.height, im.width):
            return [], [("", f"label map {gt.shape} does not match the {im.width}x{im.height} photo")]
        if gt.max() == 0:
            return [], [("", "empty label map")]
        regions, skipped = image_regions(gt)
        out = []
        for region in regions:
            buf = io.BytesIO()
            im.crop(region.crop).save(buf, format="JPEG", quality=JPEG_QUALITY)
            out.append((region, buf.getvalue()))
    return out, skipped


def _job(args):
    image_id, photo, mat = args
    try:
        crops, skipped = photo_crops(photo, mat)
    except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the build
        return image_id, [], [("", f"{type(exc).__name__}: {exc}")]
    return image_id, crops, skipped


def parameters() -> dict:
    """Everything that decides the crops' bytes (the manifest's reuse key)."""
    return {"format": FORMAT_VERSION, "largest_region": sorted(LARGEST_REGION), "min_pixels": MIN_PIXELS,
            "default_min_pixels": DEFAULT_MIN_PIXELS, "min_side": MIN_SIDE, "min_fill": MIN_FILL,
            "min_component_pixels": MIN_COMPONENT_PIXELS, "min_component_share": MIN_COMPONENT_SHARE,
            "pad": PAD, "jpeg_quality": JPEG_QUALITY, "parts": list(PARTS),
            "mapping_digest": hashlib.sha256(json.dumps(MAPPING, sort_keys=True).encode()).hexdigest()}


@dataclass
class CropSet:
    """What :func:`build_crops` wrote (or found current): folder, per-part class counts, rows, skips."""

    root: Path
    counts: dict[str, dict[str, int]]
    rows: list[dict]
    skipped: list[dict]
    reused: bool = False

    def counts_frame(self):
        import pandas as pd

        table = pd.DataFrame({p: self.counts.get(p, {}) for p in PARTS}).reindex(list(CLASSES)).fillna(0).astype(int)
        table.loc["total"] = table.sum()
        return table


def _source_key(pairs) -> str:
    h = hashlib.sha256()
    for image_id, photo, mat in pairs:
        for p in (photo, mat):
            st = Path(p).stat()
            h.update(f"{image_id}:{Path(p).name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def build_crops(out: str | Path | None = None, source: str | Path | None = None, *, ids=None,
                workers: int = 1, force: bool = False, log=print) -> CropSet:
    """Write the crop set (see the module doc) from the CCP folder ``source`` into ``out``.

    ``ids`` restricts the photos (tests); the part of each photo is always the stored split's.  A folder
    whose manifest matches (same parameters, split, photos) is reused as it is.  ``log=None``: silent.
    """
    from clothingrec.paths import CCP, building, find_dataset

    out = Path(out) if out else crops_dir()
    source = Path(source) if source else find_dataset(CCP)
    with building(out):  # another process building the same folder finishes first; this one then reuses it
        return _build_crops(out, source, ids=ids, workers=workers, force=force, log=log or (lambda m: None))


def _build_crops(out: Path, source: Path, *, ids, workers: int, force: bool, log) -> CropSet:
    from clothingrec.paths import project_relative
    from clothingrec.splits import ccp_split, ccp_split_info

    pairs_all, _ = ccp.list_images(source)
    by_id = {mat.stem: (photo, mat) for photo, mat in pairs_all}
    wanted = sorted(by_id) if ids is None else sorted({str(i).zfill(4) for i in ids} & set(by_id))
    split = ccp_split(wanted)
    jobs = [(i, str(by_id[i][0]), str(by_id[i][1])) for part in PARTS for i in split[part]]
    part_of = {i: part for part in PARTS for i in split[part]}
    key = {"parameters": parameters(), "split_digest": ccp_split_info()["digest"],
           "source": _source_key(sorted(jobs))}
    manifest_path = out / "manifest.json"
    if not force and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("key") == key and all((out / r["file"]).is_file() for r in _read_index(out)):
            log(f"[ccp-crops] {project_relative(out)}: current ({manifest['total']} crops), reused")
            return CropSet(out, manifest["counts"], _read_index(out), manifest.get("skipped", []), reused=True)

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rows, skipped = [], []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_job, sorted(jobs), chunksize=8)
            results = list(results)
    else:
        results = [_job(j) for j in sorted(jobs)]
    for image_id, crops, skips in results:  # photo id order: rows and files are the same on every run
        part = part_of[image_id]
        for n, (region, data) in enumerate(crops):
            rel = f"{part}/{region.class_name}/{image_id}_{n}.jpg"
            path = partial / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append({"part": part, "class": region.class_name, "file": rel, "image_id": image_id, "n": n,
                         "ccp_labels": " ".join(region.ccp_labels), "pixels": region.pixels,
                         "box": " ".join(map(str, region.box)), "crop": " ".join(map(str, region.crop))})
        skipped += [{"part": part, "image_id": image_id, "class": c, "reason": r} for c, r in skips]
    counts = {p: dict(Counter(r["class"] for r in rows if r["part"] == p)) for p in PARTS}
    counts = {p: {c: counts[p].get(c, 0) for c in CLASSES} for p in PARTS}
    _write_index(partial, rows)
    (partial / "manifest.json").write_text(json.dumps(
        {"key": key, "total": len(rows), "counts": counts, "photos": {p: len(split[p]) for p in PARTS},
         "skipped": skipped, "source": str(source)}, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    log(f"[ccp-crops] wrote {len(rows)} crops to {project_relative(out)} ({len(skipped)} regions skipped)")
    return CropSet(out, counts, rows, skipped)


INDEX_COLUMNS = ("part", "class", "file", "image_id", "n", "ccp_labels", "pixels", "box", "crop")


def _write_index(root: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (root / "index.csv").write_text(buf.getvalue(), encoding="utf-8")


def _read_index(root: Path) -> list[dict]:
    path = Path(root) / "index.csv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return [dict(r, n=int(r["n"]), pixels=int(r["pixels"])) for r in csv.DictReader(f)]


def read_index(root: str | Path | None = None):
    """``index.csv`` as a DataFrame (one row per crop, with the CCP labels and boxes)."""
    import pandas as pd

    return pd.DataFrame(_read_index(Path(root) if root else crops_dir()), columns=list(INDEX_COLUMNS))


def read_crops(part: str = "test", root: str | Path | None = None):
    """The crops of ``part`` as clothing-dataset-small's :class:`~clothingrec.datasets.clothing_small.SplitIndex`
    (same class order and labels), for the classifier's evaluation."""
    from clothingrec.datasets.clothing_small import read_split

    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    return read_split(part, Path(root) if root else crops_dir())


# ------------------------------------------------------------------ data notebook helpers
def counts_table(root: str | Path | None = None):
    """Classes × parts crop counts (and photos with at least one crop), with a total row."""

    index = read_index(root)
    table = (index.pivot_table(index="class", columns="part", values="file", aggfunc="count", fill_value=0)
             .reindex(index=list(CLASSES), columns=list(PARTS), fill_value=0))
    table.loc["total"] = table.sum()
    photos = index.groupby("part").image_id.nunique().reindex(list(PARTS), fill_value=0)
    table.loc["photos with crops"] = photos
    return table.astype(int)


def sample_grid(root: str | Path | None = None, part: str = "test", per_class: int = 3, cell: float = 1.1):
    """A grid of crops, one column per class (its first ``per_class`` crops by file name), as a figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    root = Path(root) if root else crops_dir()
    index = read_index(root)
    index = index[index.part == part].sort_values("file")
    fig, axes = plt.subplots(per_class, len(CLASSES), figsize=(len(CLASSES) * cell, per_class * cell * 1.4),
                             squeeze=False)
    for c, name in enumerate(CLASSES):
        files = list(index[index["class"] == name].file[:per_class])
        for r in range(per_class):
            ax = axes[r][c]
            ax.axis("off")
            if r < len(files):
                with Image.open(root / files[r]) as im:
                    ax.imshow(np.asarray(im.convert("RGB")))
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(f"CCP garment crops ({part})")
    fig.tight_layout()
    return fig


def image_sizes(indexes: dict) -> pandas.DataFrame:  # noqa: F821
    """Width and height (from the file headers, no decoding) of every image of ``{name: SplitIndex}``:
    one row per image with ``set``, ``class``, ``width``, ``height``."""
    import pandas as pd

    from clothingrec.datasets.records import image_size

    rows = []
    for name, index in indexes.items():
        for record in index.records:
            try:
                w, h = image_size(record.path)
            except ValueError:
                continue
            rows.append({"set": name, "class": record.class_name, "width": w, "height": h})
    return pd.DataFrame(rows, columns=["set", "class", "width", "height"])


def size_summary(sizes, by: str | tuple[str, ...] = "set") -> pandas.DataFrame:  # noqa: F821
    """Per ``by`` group (``"set"``, or ``("set", "class")`` for a per-class table next to the class counts):
    images, median / min / max width and height, and the most common size with its share."""
    import pandas as pd

    rows = {}
    for key, group in sizes.groupby(list(by) if isinstance(by, tuple) else by, sort=False):
        common = (group.width.astype(str) + "x" + group.height.astype(str)).value_counts()
        rows[key] = {"images": len(group), "width_median": int(group.width.median()),
                     "height_median": int(group.height.median()), "width_min": int(group.width.min()),
                     "width_max": int(group.width.max()), "height_min": int(group.height.min()),
                     "height_max": int(group.height.max()), "most_common": common.index[0],
                     "most_common_%": round(100 * common.iloc[0] / len(group), 1)}
    frame = pd.DataFrame(rows).T
    if isinstance(by, tuple):
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=list(by))
    else:
        frame.index.name = by
    return frame


def size_figure(sizes, title: str = "image sizes"):
    """Width × height scatter and the distribution of the shorter side, one colour per set."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    bins = np.linspace(0, sizes[["width", "height"]].min(axis=1).max() + 1, 41)  # shared by every set
    for name, group in sizes.groupby("set", sort=False):
        ax1.scatter(group.width, group.height, s=6, alpha=0.4, label=f"{name} ({len(group)})")
        short = group[["width", "height"]].min(axis=1)
        ax2.hist(short, bins=bins, alpha=0.5, label=name)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("width (px)")
    ax1.set_ylabel("height (px)")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("shorter side (px)")
    ax2.set_ylabel("images")
    ax2.set_yscale("log")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
