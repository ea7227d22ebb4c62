"""Synthetic datasets in the exact DeepFashion2, Penn-Fudan and CCP layouts, for tests and smoke runs.

Nothing here imitates real photographs; the point is the *format*: every file, field and convention
the real readers and converters rely on, with ground truth that is correct by construction.

- :func:`write_deepfashion2` draws garment-shaped polygons (the 13 DeepFashion2 categories: tops with
  short/long sleeves, outwear with an open front, vests, slings, shorts, trousers, skirts, four kinds
  of dresses) with textures (stripes, checks, dots, noise) on varied backgrounds.  Some garments are
  partly hidden by an occluder (a bag-like blob).  ``segmentation`` is traced from the rendered
  *visible* mask of each garment (so it rasterises back to exactly those pixels), ``bounding_box``
  is the extent of that mask, and ``landmarks`` are the garment's outline points in the category's
  slots (``v = 1`` where the occluder hides them).  Attributes follow what is drawn: ``occlusion``
  from the hidden fraction (1 < 5 %, 2 < 30 %, 3 otherwise), ``scale`` from the box's share of the
  image (1 < 10 %, 2 < 30 %, 3 otherwise), ``zoom_in`` 1 unless the garment fills most of the frame,
  ``viewpoint`` 1 (flat, "no wear") for single shop items and 2 (frontal, worn) for outfits,
  ``source`` ``shop`` / ``user`` accordingly, consecutive images share a ``pair_id``.
- :func:`write_pennfudan` draws people-like figures (head, torso, arms, legs) on street-like
  backgrounds with one instance id per figure in ``PedMasks`` and the original annotation text format.
- :func:`write_ccp` writes clothing-co-parsing label maps (``.mat``, 59 labels) of a figure with a
  top, a bottom and sometimes a coat and shoes, with flat-coloured photos.

Both are seeded and deterministic (same arguments → byte-identical files) and take well under a
second per ten images.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clothingrec.datasets import deepfashion2 as df2
from clothingrec.datasets import pennfudan as pf
from clothingrec.datasets.records import mask_box, mask_polygons

TOPS = (1, 2, 3, 4, 5, 6)
BOTTOMS = (7, 8, 9)
DRESSES = (10, 11, 12, 13)


# ---------------------------------------------------------------- garment outlines (unit frame)
def _top_like(rng, sleeve: str | None, body_len: float, hem_flare: float = 0.0, neck_depth: float = 0.08,
              strap: bool = False, waist: float | None = None) -> np.ndarray:
    """Right half (x ≥ 0) of a top/outwear/dress outline from neck to hem, mirrored to a closed polygon."""
    j = lambda v: v * rng.uniform(0.9, 1.1)  # noqa: E731
    neck, shoulder, body = j(0.11), j(0.27), j(0.25)
    right = []
    if strap:
        right += [(neck, 0.0), (neck + 0.05, 0.0), (body, j(0.3))]
        armpit_y = 0.3
    else:
        right += [(neck, 0.0), (shoulder, 0.05)]
        if sleeve is None:  # vest: armhole
            right += [(shoulder * 0.95, 0.16), (body, 0.3)]
            armpit_y = 0.3
        else:
            angle = math.radians(45 if sleeve == "short" else 72)
            length = j(0.2) if sleeve == "short" else j(0.52)
            width = 0.13
            d = np.array([math.cos(angle), math.sin(angle)])
            s = np.array([shoulder, 0.05])
            outer = s + length * d
            inner = outer + width * np.array([-math.sin(angle), math.cos(angle)])
            right += [tuple(outer), tuple(inner), (body, 0.22)]
            armpit_y = 0.22
    if waist is not None:
        right.append((body * 0.9, max(waist, armpit_y + 0.05)))
    hem = body + hem_flare
    right += [(hem, body_len), (hem * 0.5, body_len + 0.01)]
    right = np.array(right, dtype=float)
    left = right[::-1] * np.array([-1.0, 1.0])
    return np.vstack([[0.0, neck_depth], right, left])


def garment_outline(category_id: int, rng: np.random.Generator) -> np.ndarray:
    """Closed outline (N×2, unit frame: x centred on 0, y from 0 down) of a DeepFashion2 category."""
    c = category_id
    if c == 1:
        return _top_like(rng, "short", 0.62)
    if c == 2:
        return _top_like(rng, "long", 0.62)
    if c == 3:
        return _top_like(rng, "short", 0.8, neck_depth=0.35)
    if c == 4:
        return _top_like(rng, "long", 0.8, neck_depth=0.35)
    if c == 5:
        return _top_like(rng, None, 0.6, neck_depth=0.2)
    if c == 6:
        return _top_like(rng, None, 0.55, neck_depth=0.22, strap=True)
    if c == 7:  # shorts
        return np.array([(-0.3, 0), (0.3, 0), (0.36, 0.36), (0.04, 0.38), (0, 0.2), (-0.04, 0.38),
                         (-0.36, 0.36)]) * rng.uniform(0.9, 1.1, size=2)
    if c == 8:  # trousers
        return np.array([(-0.28, 0), (0.28, 0), (0.31, 1.0), (0.06, 1.0), (0, 0.3), (-0.06, 1.0),
                         (-0.31, 1.0)]) * rng.uniform(0.9, 1.1, size=2)
    if c == 9:  # skirt
        return np.array([(-0.25, 0), (0.25, 0), (0.42, 0.6), (0.2, 0.63), (0, 0.64), (-0.2, 0.63),
                         (-0.42, 0.6)]) * rng.uniform(0.9, 1.1, size=2)
    if c == 10:
        return _top_like(rng, "short", 1.1, hem_flare=0.15, waist=0.45)
    if c == 11:
        return _top_like(rng, "long", 1.1, hem_flare=0.15, waist=0.45)
    if c == 12:
        return _top_like(rng, None, 1.05, hem_flare=0.15, neck_depth=0.2, waist=0.45)
    if c == 13:
        return _top_like(rng, None, 1.0, hem_flare=0.18, neck_depth=0.22, strap=True, waist=0.42)
    raise ValueError(f"category_id {category_id} not in 1..13")


def _outline_points(outline: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a closed outline (its landmarks)."""
    closed = np.vstack([outline, outline[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.arange(n) * cum[-1] / n
    idx = np.clip(np.searchsorted(cum, targets, side="right") - 1, 0, len(seg) - 1)
    t = (targets - cum[idx]) / np.where(seg[idx] == 0, 1, seg[idx])
    return closed[idx] + (closed[idx + 1] - closed[idx]) * t[:, None]


# ---------------------------------------------------------------- textures and backgrounds
def _color(rng, lo=20, hi=235) -> np.ndarray:
    return rng.integers(lo, hi, size=3).astype(np.float32)


def _texture(rng, h: int, w: int) -> np.ndarray:
    """An H×W×3 float texture: stripes, checks, dots or mottled noise over a base colour."""
    base, other = _color(rng), _color(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # stripes at a random angle
        a = rng.uniform(0, math.pi)
        period = rng.uniform(6, 18)
        sel = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > 0)[..., None]
    elif kind == 1:  # checks
        p = int(rng.integers(6, 16))
        sel = (((xx // p) + (yy // p)) % 2 == 0)[..., None]
    elif kind == 2:  # dots
        p = rng.uniform(8, 16)
        sel = ((np.mod(xx, p) - p / 2) ** 2 + (np.mod(yy, p) - p / 2) ** 2 < (p / 4) ** 2)[..., None]
    else:  # mottled
        sel = np.zeros((h, w, 1), dtype=bool)
        other = base
    tex = np.where(sel, other, base)
    tex = tex + rng.normal(0, 6, size=(h, w, 1)).astype(np.float32)
    return tex


def _background(rng, h: int, w: int) -> np.ndarray:
    """Gradient with soft rectangles and noise (studio / room / street-like)."""
    c0, c1 = _color(rng, 60, 250), _color(rng, 60, 250)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = c0 * (1 - t) + c1 * t + np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(0, 5))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 8, w // 2)), y0 + int(rng.integers(h // 8, h // 2))
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * 0.5 + _color(rng, 60, 250) * 0.5
    img += rng.normal(0, 4, size=(h, w, 1)).astype(np.float32)
    return img


def _paint(canvas: np.ndarray, mask: np.ndarray, rng) -> None:
    """Fill ``mask`` with a fresh texture (computed over the mask's extent only)."""
    box = mask_box(mask)
    if box is None:
        _texture(rng, 1, 1)  # keep the random stream independent of emptiness
        return
    x1, y1, x2, y2 = (int(v) for v in box)
    sub = mask[y1:y2, x1:x2]
    tex = _texture(rng, y2 - y1, x2 - x1)
    shade = np.linspace(1.05, 0.85, y2 - y1, dtype=np.float32)[:, None, None]
    canvas[y1:y2, x1:x2][sub] = (tex * shade)[sub]


def _poly_mask(points: np.ndarray, h: int, w: int) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).polygon([tuple(p) for p in points.tolist()], fill=1)
    return np.asarray(im, dtype=bool)


def _place(outline: np.ndarray, box: tuple[float, float, float, float], rng) -> np.ndarray:
    """Scale an outline uniformly into ``box`` (x1, y1, x2, y2), centred, with a small rotation."""
    lo, hi = outline.min(0), outline.max(0)
    size = hi - lo
    bw, bh = box[2] - box[0], box[3] - box[1]
    s = min(bw / size[0], bh / size[1]) * rng.uniform(0.8, 0.95)
    pts = (outline - (lo + hi) / 2) * s
    a = math.radians(rng.uniform(-6, 6))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = pts @ rot.T
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    return pts + centre


# ---------------------------------------------------------------- DeepFashion2
def _df2_layout(i: int, rng, w: int, h: int) -> tuple[str, list[tuple[int, tuple]]]:
    """Scenario and [(category, region)] for image ``i``: every category appears within 13 images."""
    primary = i % 13 + 1
    m = 0.03
    if rng.random() < 0.4:  # a single shop item, flat
        return "shop", [(primary, (w * m, h * m, w * (1 - m), h * (1 - m)))]
    if primary in TOPS:
        bottom = int(rng.choice(BOTTOMS))
        return "user", [(primary, (w * 0.1, h * m, w * 0.9, h * 0.5)),
                        (bottom, (w * 0.15, h * 0.52, w * 0.85, h * (1 - m)))]
    if primary in BOTTOMS:
        top = int(rng.choice(TOPS))
        return "user", [(top, (w * 0.1, h * m, w * 0.9, h * 0.48)),
                        (primary, (w * 0.15, h * 0.5, w * 0.85, h * (1 - m)))]
    # dress next to another garment
    other = int(rng.choice(TOPS + BOTTOMS))
    return "user", [(primary, (w * m, h * m, w * 0.55, h * (1 - m))),
                    (other, (w * 0.57, h * 0.2, w * (1 - m), h * 0.8))]


def _df2_image(i: int, rng, size: tuple[int, int]) -> tuple[Image.Image, dict]:
    w, h = size
    canvas = _background(rng, h, w)
    source, layout = _df2_layout(i, rng, w, h)
    garments = []
    for cat, region in layout:
        outline = _place(garment_outline(cat, rng), region, rng)
        mask = _poly_mask(outline, h, w)
        _paint(canvas, mask, rng)
        garments.append((cat, outline, mask))
    occluder = np.zeros((h, w), dtype=bool)
    if rng.random() < 0.35:  # a bag-like blob over part of the picture
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        rx, ry = rng.uniform(0.08, 0.22) * w, rng.uniform(0.08, 0.2) * h
        im = Image.new("L", (w, h), 0)
        ImageDraw.Draw(im).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=1)
        occluder = np.asarray(im, dtype=bool)
        canvas[occluder] = _color(rng)
    anno = {"source": source, "pair_id": i // 2 + 1}
    k = 0
    for cat, outline, mask in garments:
        visible = mask & ~occluder
        full = int(mask.sum())
        if full == 0 or visible.sum() < 0.2 * full:  # hidden: DeepFashion2 would not label it
            continue
        hidden = 1 - visible.sum() / full
        box = mask_box(visible)
        share = (box[2] - box[0]) * (box[3] - box[1]) / (w * h)
        n = df2.LANDMARK_COUNTS[cat - 1]
        pts = _outline_points(outline, n)
        landmarks = []
        for x, y in pts:
            xi, yi = int(min(max(x, 0), w - 1)), int(min(max(y, 0), h - 1))
            u = rng.random()
            if u < 0.04:
                landmarks += [0, 0, 0]
            else:
                v = 1 if occluder[yi, xi] else 2
                landmarks += [round(float(x), 1), round(float(y), 1), v]
        k += 1
        anno[f"item{k}"] = {
            "segmentation": mask_polygons(visible),
            "scale": 1 if share < 0.1 else 2 if share < 0.3 else 3,
            "viewpoint": 1 if source == "shop" else 2,
            "zoom_in": 1 if share < 0.6 else 2 if share < 0.8 else 3,
            "landmarks": landmarks,
            "style": 1 if k == 1 else 0,
            "bounding_box": [int(round(v)) for v in box],
            "category_id": cat,
            "occlusion": 1 if hidden < 0.05 else 2 if hidden < 0.3 else 3,
            "category_name": df2.CATEGORIES[cat - 1],
        }
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    return image, anno


def write_deepfashion2(root: str | Path, n_train: int = 48, n_val: int = 16,
                       image_size: tuple[int, int] = (256, 256), seed: int = 0) -> Path:
    """Write ``root/{train,validation}/{image,annos}`` in the DeepFashion2 layout; return ``root``.

    ``image_size`` is (width, height).  Files are numbered ``000001`` upward in each split, as in
    the release.  Existing files of the same names are overwritten; stale higher-numbered files
    from a bigger earlier run are removed, so the folder always holds exactly this set.
    """
    root = Path(root)
    for s, (folder, n) in enumerate((("train", n_train), ("validation", n_val))):
        image_dir, anno_dir = root / folder / "image", root / folder / "annos"
        image_dir.mkdir(parents=True, exist_ok=True)
        anno_dir.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, s])
        keep = set()
        for i in range(n):
            stem = f"{i + 1:06d}"
            keep.add(stem)
            image, anno = _df2_image(i, rng, tuple(image_size))
            image.save(image_dir / f"{stem}.jpg", quality=90)
            (anno_dir / f"{stem}.json").write_text(json.dumps(anno), encoding="utf-8")
        for stale in list(image_dir.glob("*.jpg")) + list(anno_dir.glob("*.json")):
            if stale.stem not in keep:
                stale.unlink()
    return root


# ---------------------------------------------------------------- Penn-Fudan
def _person_parts(cx: float, top: float, height: float, rng) -> list[tuple[str, list]]:
    """Shapes of a standing figure (head, torso, arms, legs) as PIL drawing primitives."""
    u = height / 8.0  # head units
    hw = u * rng.uniform(0.75, 0.9)
    stride = rng.uniform(-0.6, 0.6) * u
    sh = u * rng.uniform(1.0, 1.2)  # half shoulder width
    parts = [
        ("ellipse", [cx - hw / 2, top, cx + hw / 2, top + u]),
        ("polygon", [(cx - sh, top + 1.15 * u), (cx + sh, top + 1.15 * u), (cx + 0.8 * sh, top + 4.1 * u),
                     (cx - 0.8 * sh, top + 4.1 * u)]),
        ("polygon", [(cx - sh, top + 1.2 * u), (cx - sh - 0.45 * u, top + 1.3 * u),
                     (cx - sh - 0.35 * u + stride * 0.3, top + 4.0 * u), (cx - sh + 0.1 * u, top + 4.0 * u)]),
        ("polygon", [(cx + sh, top + 1.2 * u), (cx + sh + 0.45 * u, top + 1.3 * u),
                     (cx + sh + 0.35 * u - stride * 0.3, top + 4.0 * u), (cx + sh - 0.1 * u, top + 4.0 * u)]),
        ("polygon", [(cx - 0.8 * sh, top + 4.0 * u), (cx - 0.05 * u, top + 4.0 * u),
                     (cx - 0.1 * u - stride, top + 8.0 * u), (cx - 0.65 * sh - stride, top + 8.0 * u)]),
        ("polygon", [(cx + 0.05 * u, top + 4.0 * u), (cx + 0.8 * sh, top + 4.0 * u),
                     (cx + 0.65 * sh + stride, top + 8.0 * u), (cx + 0.1 * u + stride, top + 8.0 * u)]),
    ]
    return parts


def _pf_image(i: int, rng) -> tuple[Image.Image, Image.Image, list[tuple[int, int, int, int]]]:
    w, h = int(rng.integers(300, 421)), int(rng.integers(260, 341))
    canvas = _background(rng, h, w)
    ground = int(h * rng.uniform(0.6, 0.8))
    canvas[ground:] = canvas[ground:] * 0.4 + _color(rng, 80, 160) * 0.6
    n = int(rng.integers(1, 4))
    slot = w / n
    mask = Image.new("L", (w, h), 0)
    boxes = []
    k = 0
    for j in range(n):
        height = h * rng.uniform(0.5, 0.88)
        cx = slot * (j + 0.5) + rng.uniform(-0.1, 0.1) * slot
        width_needed = height * 0.42
        if width_needed > slot * 0.76:  # neighbours never touch: masks and boxes stay exact
            height = slot * 0.76 / 0.42
        top = min(max(ground - height * rng.uniform(0.85, 1.0), 2.0), h - height - 2)
        k += 1
        person = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(person)
        for shape, coords in _person_parts(cx, top, height, rng):
            getattr(draw, shape)(coords, fill=1)
        pm = np.asarray(person, dtype=bool)
        # torso/legs in clothing colours, head/arms in a skin-like tone
        skin = np.array([rng.uniform(120, 230), rng.uniform(90, 180), rng.uniform(70, 150)], np.float32)
        canvas[pm] = skin
        clothes = Image.new("L", (w, h), 0)
        cdraw = ImageDraw.Draw(clothes)
        for shape, coords in _person_parts_clothes(cx, top, height, person):
            getattr(cdraw, shape)(coords, fill=1)
        cm = np.asarray(clothes, dtype=bool) & pm
        _paint(canvas, cm, rng)
        mask_np = np.asarray(mask).copy()
        mask_np[pm] = k
        mask = Image.fromarray(mask_np)
    final = np.asarray(mask)
    for j in range(1, k + 1):
        box = mask_box(final == j)
        boxes.append((int(box[0]) + 1, int(box[1]) + 1, int(box[2]), int(box[3])))  # 1-based inclusive
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    return image, mask, boxes


def _person_parts_clothes(cx, top, height, person):
    """Region of the figure covered by clothes: everything below the neck."""
    w, h = person.size
    u = height / 8.0
    return [("rectangle", [0, top + 1.1 * u, w, h])]


def write_pennfudan(root: str | Path, n: int = 40, seed: int = 0) -> Path:
    """Write ``root/{PNGImages,PedMasks,Annotation}`` in the Penn-Fudan layout and text format."""
    root = Path(root)
    dirs = {d: root / d for d in ("PNGImages", "PedMasks", "Annotation")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    keep = set()
    half = (n + 1) // 2
    for i in range(n):
        stem = f"FudanPed{i + 1:05d}" if i < half else f"PennPed{i - half + 1:05d}"
        keep.add(stem)
        image, mask, boxes = _pf_image(i, rng)
        image.save(dirs["PNGImages"] / f"{stem}.png", compress_level=1)
        mask.save(dirs["PedMasks"] / f"{stem}_mask.png", compress_level=1)
        ann = pf.PedAnnotation(
            filename=f"PennFudanPed/PNGImages/{stem}.png", size=(image.width, image.height, 3),
            labels=["PASpersonWalking"] * len(boxes),
            objects=[pf.PedObject(index=k + 1, label="PASpersonWalking", box=b,
                                  mask_file=f"PennFudanPed/PedMasks/{stem}_mask.png",
                                  original_label="PennFudanPed") for k, b in enumerate(boxes)])
        (dirs["Annotation"] / f"{stem}.txt").write_text(pf.format_annotation(ann), encoding="utf-8")
    for d, pattern in (("PNGImages", "*.png"), ("PedMasks", "*_mask.png"), ("Annotation", "*.txt")):
        for stale in dirs[d].glob(pattern):
            if stale.name.split(".")[0].removesuffix("_mask") not in keep:
                stale.unlink()
    return root


# ---------------------------------------------------------------- clothing-co-parsing (pixel-level part)
def write_ccp(root: str | Path, n: int = 8, seed: int = 0, image_size: tuple[int, int] = (96, 128)) -> Path:
    """Write ``root/{photos,annotations/pixel-level}`` and ``label_list.mat`` in the CCP layout.

    Each label map (``groundtruth``, uint8, H×W) holds a figure: hair and skin, a top (``t-shirt`` or
    ``blouse``), a bottom (``jeans``, ``skirt`` or ``shorts``), sometimes shoes and a ``coat``;
    photos are flat colours per label.  Ids are ``0001`` upward (as in the release, so the stored
    split knows them).  ``image_size`` is (width, height).
    """
    from scipy.io import savemat

    from clothingrec.datasets import ccp

    root = Path(root)
    photos, labels = root / "photos", root / "annotations" / "pixel-level"
    photos.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    names = np.empty((len(ccp.LABELS),), dtype=object)
    names[:] = [np.array([name]) for name in ccp.LABELS]
    savemat(root / "label_list.mat", {"label_list": names.reshape(1, -1)})
    value = {name: v for v, name in enumerate(ccp.LABELS)}
    rng = np.random.default_rng([seed, 11])
    w, h = image_size
    palette = rng.integers(30, 230, size=(len(ccp.LABELS), 3)).astype(np.uint8)
    for i in range(n):
        gt = np.zeros((h, w), np.uint8)
        cx = int(w * rng.uniform(0.4, 0.6))
        gt[int(h * 0.05):int(h * 0.15), cx - w // 10:cx + w // 10] = value["hair"]
        gt[int(h * 0.15):int(h * 0.22), cx - w // 14:cx + w // 14] = value["skin"]
        top = str(rng.choice(["t-shirt", "blouse"]))
        gt[int(h * 0.22):int(h * 0.5), cx - w // 5:cx + w // 5] = value[top]
        if rng.random() < 0.3:
            gt[int(h * 0.22):int(h * 0.55), cx - w // 4:cx - w // 6] = value["coat"]
        bottom = str(rng.choice(["jeans", "skirt", "shorts"]))
        gt[int(h * 0.5):int(h * (0.9 if bottom == "jeans" else 0.7)), cx - w // 6:cx + w // 6] = value[bottom]
        if rng.random() < 0.5:
            gt[int(h * 0.92):int(h * 0.98), cx - w // 6:cx + w // 6] = value["shoes"]
        stem = f"{i + 1:04d}"
        savemat(labels / f"{stem}.mat", {"groundtruth": gt})
        Image.fromarray(palette[gt]).save(photos / f"{stem}.jpg", quality=90)
    return root
