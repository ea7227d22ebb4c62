"""Synthetic DeepFashion2 / Penn-Fudan generators: exact layouts, schemas, correct geometry, determinism."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from clothingrec import synthetic
from clothingrec.datasets import deepfashion2 as df2
from clothingrec.datasets import pennfudan as pf

ITEM_FIELDS = {"segmentation", "scale", "viewpoint", "zoom_in", "landmarks", "style", "bounding_box",
               "category_id", "occlusion", "category_name"}


@pytest.fixture(scope="module")
def df2_root(tmp_path_factory):
    return synthetic.write_deepfashion2(tmp_path_factory.mktemp("df2"), n_train=14, n_val=3, seed=3)


@pytest.fixture(scope="module")
def pf_root(tmp_path_factory):
    return synthetic.write_pennfudan(tmp_path_factory.mktemp("pf"), n=6, seed=3)


def test_deepfashion2_layout_and_schema(df2_root):
    for folder, n in (("train", 14), ("validation", 3)):
        images = sorted(p.name for p in (df2_root / folder / "image").iterdir())
        annos = sorted(p.name for p in (df2_root / folder / "annos").iterdir())
        assert images == [f"{i:06d}.jpg" for i in range(1, n + 1)]
        assert annos == [f"{i:06d}.json" for i in range(1, n + 1)]
    seen = set()
    for anno in sorted((df2_root / "train" / "annos").glob("*.json")):
        data = json.loads(anno.read_text())
        assert data["source"] in ("shop", "user") and isinstance(data["pair_id"], int)
        items = [k for k in data if k.startswith("item")]
        assert items == [f"item{i}" for i in range(1, len(items) + 1)] and items
        w, h = Image.open(df2_root / "train" / "image" / f"{anno.stem}.jpg").size
        for key in items:
            item = data[key]
            assert set(item) == ITEM_FIELDS
            c = item["category_id"]
            seen.add(c)
            assert item["category_name"] == df2.CATEGORIES[c - 1]
            assert len(item["landmarks"]) == 3 * df2.LANDMARK_COUNTS[c - 1]
            assert set(item["landmarks"][2::3]) <= {0, 1, 2}
            for x, y, v in zip(*[iter(item["landmarks"])] * 3):
                assert (x, y) == (0, 0) if v == 0 else (0 <= x <= w and 0 <= y <= h)
            assert item["occlusion"] in (1, 2, 3) and item["scale"] in (1, 2, 3)
            assert item["zoom_in"] in (1, 2, 3) and item["viewpoint"] in (1, 2)
            assert all(len(p) >= 6 and len(p) % 2 == 0 for p in item["segmentation"])
            # the box is the extent of what the polygons rasterise to (no off-by-one)
            m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(item["segmentation"], h, w)))
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            assert item["bounding_box"] == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    assert seen == set(range(1, 14)), "14 images must cover all 13 categories"


def test_deepfashion2_polygons_match_painted_pixels(df2_root):
    """Inside a garment's polygons the pixels are not the background: the drawing matches the labels."""
    data = json.loads((df2_root / "train" / "annos" / "000001.json").read_text())
    img = np.asarray(Image.open(df2_root / "train" / "image" / "000001.jpg")).astype(float)
    h, w = img.shape[:2]
    for key in (k for k in data if k.startswith("item")):
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(data[key]["segmentation"], h, w))) > 0
        inside = img[m].mean(0)
        ring = np.zeros_like(m)
        x1, y1, x2, y2 = data[key]["bounding_box"]
        ring[max(y1 - 3, 0):y2 + 3, max(x1 - 3, 0):x2 + 3] = True
        ring &= ~m
        if ring.sum() > 50:
            assert m.sum() > 100 and np.abs(inside - img[ring].mean(0)).sum() > 1.0


def test_pennfudan_layout_masks_and_boxes(pf_root):
    pngs = sorted(p.stem for p in (pf_root / "PNGImages").glob("*.png"))
    assert pngs == ["FudanPed00001", "FudanPed00002", "FudanPed00003",
                    "PennPed00001", "PennPed00002", "PennPed00003"]
    for stem in pngs:
        ann = pf.parse_annotation((pf_root / "Annotation" / f"{stem}.txt").read_text())
        img = Image.open(pf_root / "PNGImages" / f"{stem}.png")
        mask = np.asarray(Image.open(pf_root / "PedMasks" / f"{stem}_mask.png"))
        assert ann.filename == f"PennFudanPed/PNGImages/{stem}.png"
        assert ann.size == (img.width, img.height, 3) and mask.shape == (img.height, img.width)
        assert sorted(set(np.unique(mask)) - {0}) == [o.index for o in ann.objects]
        assert len(ann.labels) == len(ann.objects) >= 1
        for o in ann.objects:
            rows, cols = np.flatnonzero((mask == o.index).any(1)), np.flatnonzero((mask == o.index).any(0))
            # 1-based inclusive PASCAL coordinates of the mask's extent
            assert o.box == (cols[0] + 1, rows[0] + 1, cols[-1] + 1, rows[-1] + 1)
            assert o.mask_file == f"PennFudanPed/PedMasks/{stem}_mask.png"


def test_generators_are_deterministic(tmp_path, df2_root, pf_root):
    a = synthetic.write_deepfashion2(tmp_path / "a", n_train=14, n_val=3, seed=3)
    for f in sorted((df2_root).rglob("*.*")):
        assert (a / f.relative_to(df2_root)).read_bytes() == f.read_bytes(), f
    b = synthetic.write_pennfudan(tmp_path / "b", n=6, seed=3)
    for f in sorted(pf_root.rglob("*.*")):
        assert (b / f.relative_to(pf_root)).read_bytes() == f.read_bytes(), f
    c = synthetic.write_pennfudan(tmp_path / "c", n=6, seed=4)
    assert (c / "PNGImages" / "FudanPed00001.png").read_bytes() != (b / "PNGImages" / "FudanPed00001.png").read_bytes()


def test_rewrite_smaller_removes_stale_files(tmp_path):
    root = synthetic.write_deepfashion2(tmp_path / "d", n_train=3, n_val=1)
    synthetic.write_deepfashion2(root, n_train=2, n_val=1)
    assert len(list((root / "train" / "annos").glob("*.json"))) == 2
    assert len(list((root / "train" / "image").glob("*.jpg"))) == 2


def test_ccp_generator_is_deterministic_and_reads_clean(tmp_path):
    from scipy.io import loadmat

    from clothingrec.datasets import ccp

    a = synthetic.write_ccp(tmp_path / "a", n=3, seed=1)
    b = synthetic.write_ccp(tmp_path / "b", n=3, seed=1)
    for stem in ("0001", "0002", "0003"):
        ga = loadmat(a / "annotations" / "pixel-level" / f"{stem}.mat")["groundtruth"]
        gb = loadmat(b / "annotations" / "pixel-level" / f"{stem}.mat")["groundtruth"]
        assert ga.dtype == "uint8" and ga.shape == (128, 96) and (ga == gb).all()
        assert (a / "photos" / f"{stem}.jpg").read_bytes() == (b / "photos" / f"{stem}.jpg").read_bytes()
    assert ccp.read_label_names(a) == list(ccp.LABELS)
    pairs, issues = ccp.list_images(a)
    for photo, mat in pairs:
        res = ccp.read_image(photo, mat, classes="all")
        names = [o.category_name for o in res.record.objects]
        assert not res.issues and names[0] == "top" and names[-1] == "person" and res.items_in == len(names)
