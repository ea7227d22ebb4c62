"""Readers: DeepFashion2, Penn-Fudan (original text format), CCP (.mat label maps), headers, splits."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.io import savemat

from clothingrec import synthetic
from clothingrec.datasets import ccp
from clothingrec.datasets import deepfashion2 as df2
from clothingrec.datasets import pennfudan as pf
from clothingrec.datasets.records import image_size, mask_box, mask_polygons
from clothingrec.paths import CCP, find_dataset
from clothingrec.splits import ccp_image_ids, ccp_split, seeded_split

ORIGINAL_PF = """# Compatible with PASCAL Annotation Version 1.00
Image filename : "PennFudanPed/PNGImages/FudanPed00001.png"
Image size (X x Y x C) : 559 x 536 x 3
Database : "The Penn-Fudan-Pedestrian Database"
Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }
# Note there may be some objects not included in the ground truth list for they are severe-occluded
# or have very small size.
# Top left pixel co-ordinates : (1, 1)
# Details for pedestrian 1 ("PASpersonWalking")
Original label for object 1 "PASpersonWalking" : "PennFudanPed"
Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)
Pixel mask for object 1 "PASpersonWalking" : "PennFudanPed/PedMasks/FudanPed00001_mask.png"

# Details for pedestrian 2 ("PASpersonWalking")
Original label for object 2 "PASpersonWalking" : "PennFudanPed"
Bounding box for object 2 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (420, 171) - (535, 486)
Pixel mask for object 2 "PASpersonWalking" : "PennFudanPed/PedMasks/FudanPed00001_mask.png"
"""


def test_df2_constants():
    assert len(df2.CATEGORIES) == 13 and df2.NUM_LANDMARKS == 294
    assert df2.LANDMARK_OFFSETS[:4] == (0, 25, 58, 89) and df2.LANDMARK_OFFSETS[-1] == 294 - 19


#: The published description (DeepFashion2 README and paper, Ge et al. 2019), written out by hand and not
#: derived from the code: the 13 categories in category_id order, the number of landmarks of each, and
#: the 1-based landmark numbers of each in the 294-point layout of the README's landmark figure.
PUBLISHED_DF2 = [
    (1, "short sleeve top", 25, 1, 25), (2, "long sleeve top", 33, 26, 58),
    (3, "short sleeve outwear", 31, 59, 89), (4, "long sleeve outwear", 39, 90, 128),
    (5, "vest", 15, 129, 143), (6, "sling", 15, 144, 158), (7, "shorts", 10, 159, 168),
    (8, "trousers", 14, 169, 182), (9, "skirt", 8, 183, 190), (10, "short sleeve dress", 29, 191, 219),
    (11, "long sleeve dress", 37, 220, 256), (12, "vest dress", 19, 257, 275), (13, "sling dress", 19, 276, 294),
]


def test_df2_landmark_layout_matches_the_published_description():
    """The reader and the synthetic generator share these constants; pin them to the release's own."""
    assert list(df2.CATEGORIES) == [name for _, name, *_ in PUBLISHED_DF2]
    assert df2.LANDMARK_COUNTS == (25, 33, 31, 39, 15, 15, 10, 14, 8, 29, 37, 19, 19)
    for cid, name, count, first, last in PUBLISHED_DF2:
        assert df2.LANDMARK_COUNTS[cid - 1] == count == last - first + 1, name
        assert df2.LANDMARK_OFFSETS[cid - 1] == first - 1, name  # 0-based slot of landmark number `first`
    assert df2.NUM_LANDMARKS == 294 == PUBLISHED_DF2[-1][-1]
    # the generator writes each category's count (so a wrong constant would be caught in its output too)
    lm = [float(v) for i in range(8) for v in (10 + i, 20 + i, 2)]
    kps, num = df2.global_keypoints(9, lm)  # skirt: landmarks 183..190
    assert num == 8 and kps[3 * 182:3 * 190] == lm and not any(kps[:3 * 182]) and not any(kps[3 * 190:])


#: One annotation file as DeepFashion2 ships it (key order, value types and nesting of the release:
#: ``segmentation`` a list of flat polygons, ``landmarks`` flat [x, y, v] triples, integer boxes).
REAL_FORMAT_ANNO = """{
 "item2": {"segmentation": [[12, 30, 52, 30, 56, 44, 8, 44], [20, 2, 24, 2, 24, 6]],
           "scale": 2, "viewpoint": 2, "zoom_in": 1,
           "landmarks": [12, 30, 2, 32, 30, 1, 52, 30, 2, 56, 44, 2, 44, 44, 1, 32, 44, 2, 20, 44, 0, 8, 44, 2],
           "style": 0, "bounding_box": [8, 30, 56, 44], "category_id": 9, "occlusion": 2,
           "category_name": "skirt"},
 "source": "user",
 "pair_id": 17,
 "item1": {"segmentation": [[10, 4, 54, 4, 54, 28, 10, 28]],
           "scale": 3, "viewpoint": 2, "zoom_in": 1,
           "landmarks": [10, 4, 2, 20, 4, 2, 32, 4, 2, 44, 4, 2, 54, 4, 1, 54, 16, 2, 54, 28, 2, 32, 28, 2,
                         10, 28, 2, 0, 0, 0],
           "style": 1, "bounding_box": [10, 4, 54, 28], "category_id": 7, "occlusion": 1,
           "category_name": "shorts"}
}"""


def test_df2_reader_parses_a_real_format_file_to_exact_records(tmp_path):
    (tmp_path / "train" / "image").mkdir(parents=True)
    (tmp_path / "train" / "annos").mkdir(parents=True)
    Image.new("RGB", (64, 48), (90, 120, 150)).save(tmp_path / "train" / "image" / "000017.jpg")
    (tmp_path / "train" / "annos" / "000017.json").write_text(REAL_FORMAT_ANNO)
    res = df2.read_image(tmp_path / "train" / "image" / "000017.jpg", tmp_path / "train" / "annos" / "000017.json",
                         "train")
    assert res.issues == [] and res.items_in == 2
    rec = res.record
    assert (rec.width, rec.height, rec.split) == (64, 48, "train")
    assert rec.attributes == {"source": "user", "pair_id": 17}
    shorts, skirt = rec.objects  # item order by number, not file order
    assert (shorts.name, shorts.category_id, shorts.category_name) == ("item1", 7, "shorts")
    assert shorts.bbox == (10.0, 4.0, 54.0, 28.0)
    assert shorts.polygons == [[10.0, 4.0, 54.0, 4.0, 54.0, 28.0, 10.0, 28.0]]
    assert shorts.area == 44 * 24  # rasterised polygon, not the box by accident: same here, see the skirt
    assert shorts.landmarks == [10, 4, 2, 20, 4, 2, 32, 4, 2, 44, 4, 2, 54, 4, 1, 54, 16, 2, 54, 28, 2, 32, 28, 2,
                                10, 28, 2, 0, 0, 0]
    assert shorts.attributes == {"style": 1, "scale": 3, "occlusion": 1, "zoom_in": 1, "viewpoint": 2,
                                 "source": "user", "pair_id": 17}
    assert (skirt.name, skirt.category_id, skirt.bbox) == ("item2", 9, (8.0, 30.0, 56.0, 44.0))
    assert skirt.polygons == [[12.0, 30.0, 52.0, 30.0, 56.0, 44.0, 8.0, 44.0], [20.0, 2.0, 24.0, 2.0, 24.0, 6.0]]
    from pycocotools import mask as mask_utils

    ref = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(skirt.polygons, 48, 64)))
    assert skirt.area == float(ref) and skirt.area < 48 * 14  # a trapezoid and a triangle, not the box
    assert len(skirt.landmarks) == 3 * 8 and skirt.attributes["occlusion"] == 2
    kps, num = df2.global_keypoints(skirt.category_id, skirt.landmarks)
    assert kps[3 * 182:3 * 190] == [float(v) for v in skirt.landmarks] and num == 7  # one v = 0


def test_df2_global_keypoints_slots():
    lm = [float(v) for i in range(10) for v in (i, i + 1, 2 if i % 2 else 1)]
    kps, num = df2.global_keypoints(7, lm)  # shorts: 10 landmarks at slots 158..167
    assert len(kps) == 3 * 294 and num == 10
    start = 3 * sum(df2.LANDMARK_COUNTS[:6])
    assert start == 3 * 158 and kps[start:start + 30] == lm
    assert not any(kps[:start]) and not any(kps[start + 30:])
    assert df2.global_keypoints(1, None) == ([0.0] * 882, 0)


def test_df2_reader_on_synthetic(tmp_path):
    root = synthetic.write_deepfashion2(tmp_path, n_train=3, n_val=1, seed=1)
    results = list(df2.iter_split(root, "train"))
    assert len(results) == 3 and all(r.record is not None and not r.issues for r in results)
    rec = results[0].record
    data = json.loads((root / "train" / "annos" / "000001.json").read_text())
    assert (rec.width, rec.height) == (256, 256) and rec.attributes["source"] == data["source"]
    assert [o.name for o in rec.objects] == [k for k in data if k.startswith("item")]
    obj = rec.objects[0]
    assert list(obj.bbox) == data["item1"]["bounding_box"]
    assert obj.attributes["occlusion"] == data["item1"]["occlusion"] and obj.area > 0
    assert obj.landmarks == data["item1"]["landmarks"]


def test_pennfudan_parser_original_format():
    ann = pf.parse_annotation(ORIGINAL_PF)
    assert ann.filename == "PennFudanPed/PNGImages/FudanPed00001.png"
    assert ann.size == (559, 536, 3) and ann.labels == ["PASpersonWalking"] * 2
    assert [o.box for o in ann.objects] == [(160, 182, 302, 431), (420, 171, 535, 486)]
    assert ann.objects[1].mask_file == "PennFudanPed/PedMasks/FudanPed00001_mask.png"
    assert ann.database == "The Penn-Fudan-Pedestrian Database"
    again = pf.parse_annotation(pf.format_annotation(ann))
    assert again == ann


@pytest.mark.parametrize("bad, message", [
    (ORIGINAL_PF.replace("(160, 182) - (302, 431)", "(160, 182) - (302)"), ":11: malformed line"),
    (ORIGINAL_PF.replace("Objects with ground truth : 2", "Objects with ground truth : 3"), "says 3 but lists 2"),
    (ORIGINAL_PF.replace("Image size (X x Y x C) : 559 x 536 x 3\n", ""), "missing 'Image size"),
])
def test_pennfudan_parser_errors_name_the_line(bad, message):
    with pytest.raises(pf.AnnotationError, match=message.replace("(", r"\(")):
        pf.parse_annotation(bad, "Annotation/FudanPed00001.txt")


def test_pennfudan_reader_converts_one_based_boxes(tmp_path):
    root = synthetic.write_pennfudan(tmp_path, n=2, seed=5)
    triples, issues = pf.list_images(root)
    assert len(triples) == 2 and not issues
    res = pf.read_image(*triples[0])
    mask = np.asarray(Image.open(triples[0][1]))
    for obj in res.record.objects:
        k = int(obj.name.split()[-1])
        assert obj.bbox == mask_box(mask == k)  # 1-based inclusive → 0-based continuous, exact
        assert obj.area == (mask == k).sum() and obj.mask.sum() == obj.area


def _write_ccp(root, maps):
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    for stem, gt in maps.items():
        savemat(root / "annotations" / "pixel-level" / f"{stem}.mat", {"groundtruth": gt})
        Image.fromarray(np.full(gt.shape + (3,), 128, np.uint8)).save(root / "photos" / f"{stem}.jpg")


def test_ccp_reader_groups_and_person(tmp_path):
    L = {name: v for v, name in enumerate(ccp.LABELS)}
    gt = np.zeros((80, 60), np.uint8)
    gt[10:30, 10:50] = L["t-shirt"]
    gt[25:30, 40:50] = L["blouse"]  # same group as t-shirt: one "top"
    gt[30:70, 15:45] = L["jeans"]
    gt[5:10, 20:40] = L["hair"]  # person only
    gt[70:72, 0:2] = L["skirt"]  # 4 px: noise
    _write_ccp(tmp_path, {"0001": gt, "0002": np.zeros((20, 20), np.uint8)})
    pairs, issues = ccp.list_images(tmp_path)
    assert len(pairs) == 2 and not issues
    res = ccp.read_image(*pairs[0], classes="all")
    names = [o.category_name for o in res.record.objects]
    assert names == ["top", "trousers", "person"]
    top = res.record.objects[0]
    assert top.bbox == (10.0, 10.0, 50.0, 30.0) and top.area == 20 * 40
    assert top.attributes["ccp_labels"] == ["blouse", "t-shirt"]
    assert res.record.objects[2].area == (gt > 0).sum()
    assert [(i.item, i.field) for i in res.issues] == [("skirt", "groundtruth")]
    assert "only 4 px" in res.issues[0].reason
    person = ccp.read_image(*pairs[0], classes="person").record.objects
    assert len(person) == 1 and person[0].category_id == 1
    empty = ccp.read_image(*pairs[1])
    assert empty.record is None and empty.issues[0].level == "image"
    assert "empty label map" in empty.issues[0].reason


def test_ccp_real_labels_and_known_empty_map():
    root = find_dataset(CCP)
    assert ccp.read_label_names(root) == list(ccp.LABELS)
    res = ccp.read_image(root / "photos" / "0536.jpg", root / "annotations" / "pixel-level" / "0536.mat")
    assert res.record is None and "empty label map" in res.issues[0].reason
    res = ccp.read_image(root / "photos" / "0001.jpg", root / "annotations" / "pixel-level" / "0001.mat",
                         classes="all")
    assert res.record.objects[-1].category_name == "person" and len(res.record.objects) >= 2
    assert (res.record.width, res.record.height) == Image.open(root / "photos" / "0001.jpg").size


def test_image_size_from_headers(tmp_path):
    for size, fmt in (((37, 21), "JPEG"), ((64, 48), "PNG"), ((10, 7), "BMP")):
        p = tmp_path / f"x.{fmt.lower()}"
        Image.new("RGB", size, (9, 9, 9)).save(p, fmt)
        assert image_size(p) == size
    progressive = tmp_path / "p.jpg"
    Image.new("RGB", (33, 17)).save(progressive, "JPEG", progressive=True, exif=b"Exif\x00\x00" + b"\x00" * 300)
    assert image_size(progressive) == (33, 17)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    with pytest.raises(ValueError, match="bad.jpg"):
        image_size(bad)


def test_mask_polygons_rasterise_back_exactly():
    from pycocotools import mask as mask_utils

    m = np.zeros((50, 70), bool)
    yy, xx = np.mgrid[:50, :70]
    m[((yy - 25) / 18) ** 2 + ((xx - 30) / 25) ** 2 <= 1] = True
    m[5:12, 55:66] = True  # a second piece
    polys = mask_polygons(m)
    assert len(polys) == 2
    back = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, 50, 70))).astype(bool)
    assert (back == m).all()
    assert mask_polygons(np.eye(4, dtype=bool)[:, :, None].squeeze()) != []  # thin shapes still get a polygon


def test_ccp_split_is_deterministic_disjoint_and_order_free():
    """The split itself is tested in test_splits.py; here: the dataset's ids, in any spelling, get it."""
    ids = ccp_image_ids()
    a = ccp_split(ids)
    assert [len(a[p]) for p in ("train", "val", "test")] == [703, 100, 201]
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(ids)
    b = ccp_split(list(reversed([int(i) for i in ids])))
    assert [int(i) for i in a["test"]] == b["test"] and [int(i) for i in a["val"]] == b["val"]
    s = seeded_split(["b", "a", "c", "a"], val_fraction=0.34, test_fraction=0.0, seed=0)
    assert sorted(s["train"] + s["val"]) == ["a", "b", "c"] and len(s["val"]) == 1


# ------------------------------------------------------------------ CCP garment crops (classifier OOD test set)
def _label_map(h=120, w=80):
    return np.zeros((h, w), np.uint8)


def _value(name):
    return ccp.LABELS.index(name)


def test_crop_mapping_covers_every_ccp_label():
    from clothingrec.datasets import ccp_crops
    from clothingrec.datasets.clothing_small import CLASSES

    assert set(ccp_crops.MAPPING) == set(ccp.LABELS[1:])  # each label mapped or left out, none forgotten
    targets = {c for c, _ in ccp_crops.MAPPING.values() if c is not None}
    assert targets == set(CLASSES)  # every class gets crops from some label
    assert all(reason for _, reason in ccp_crops.MAPPING.values())
    table = ccp_crops.mapping_table()
    assert len(table) == len(ccp.LABELS) - 1 and set(table["class"]) == set(CLASSES) | {"-"}
    for name, cls in (("jeans", "pants"), ("sweater", "longsleeve"), ("boots", "shoes"), ("blazer", "outwear"),
                      ("bag", None), ("skin", None), ("sunglasses", None)):
        assert ccp_crops.MAPPING[name][0] == cls


def test_crop_regions_merge_pieces_keep_one_shoe_and_skip_specks():
    from clothingrec.datasets import ccp_crops

    gt = _label_map(200, 120)
    gt[20:90, 10:45] = _value("jacket")  # an open jacket: two halves, one garment
    gt[20:90, 75:110] = _value("coat")  # (another outwear label: the same class)
    gt[20:90, 45:75] = _value("t-shirt")  # t-shirt seen between them
    gt[95:165, 30:90] = _value("jeans")
    gt[170:196, 20:50] = _value("sneakers")  # two shoes apart: the larger one is the crop
    gt[175:195, 80:100] = _value("boots")
    gt[5:12, 50:60] = _value("bag")  # left out
    gt[0, 0] = _value("dress")  # a speck: too small
    regions, skipped = ccp_crops.image_regions(gt)
    by_class = {r.class_name: r for r in regions}
    assert [r.class_name for r in regions] == ["outwear", "pants", "shoes", "t-shirt"]  # CLASSES order
    assert by_class["outwear"].box == (10, 20, 110, 90) and by_class["outwear"].ccp_labels == ("coat", "jacket")
    assert by_class["shoes"].box == (20, 170, 50, 196) and by_class["shoes"].ccp_labels == ("sneakers",)
    assert by_class["pants"].pixels == 70 * 60 and by_class["t-shirt"].box == (45, 20, 75, 90)
    for r in regions:  # padded boxes lie inside the photo and contain the labelled box
        x0, y0, x1, y1 = r.crop
        assert 0 <= x0 <= r.box[0] and 0 <= y0 <= r.box[1] and r.box[2] <= x1 <= 120 and r.box[3] <= y1 <= 200
    assert skipped == [("dress", "specks only (largest 1 px < 50)")]


def test_a_photo_without_a_mapped_garment_gives_no_crop(tmp_path):
    from clothingrec.datasets import ccp_crops

    gt = _label_map()
    gt[10:60, 10:60] = _value("skin")
    gt[60:100, 10:60] = _value("bag")
    gt[5:20, 60:70] = _value("blouse")  # left out on purpose
    assert ccp_crops.image_regions(gt) == ([], [])
    Image.new("RGB", (80, 120), "gray").save(tmp_path / "p.jpg")
    savemat(tmp_path / "empty.mat", {"groundtruth": _label_map()})
    crops, skipped = ccp_crops.photo_crops(tmp_path / "p.jpg", tmp_path / "empty.mat")
    assert crops == [] and skipped == [("", "empty label map")]


def _ccp_or_skip():
    root = find_dataset(CCP, required=False)
    if root is None:
        pytest.skip("CCP not available (make data)")
    return root


def test_crop_set_is_deterministic_split_pure_and_inside_its_photos(tmp_path):
    from clothingrec.datasets import ccp_crops
    from clothingrec.splits import ccp_split

    root = _ccp_or_skip()
    split = ccp_split()
    ids = split["train"][:8] + split["val"][:3] + split["test"][:8] + ["0536"]  # 0536: empty label map
    a = ccp_crops.build_crops(tmp_path / "a", root, ids=ids, log=lambda m: None)
    b = ccp_crops.build_crops(tmp_path / "b", root, ids=ids, workers=2, log=lambda m: None)
    assert a.counts == b.counts and sum(a.counts["test"].values()) > 0 and sum(a.counts["train"].values()) > 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg"))
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert (tmp_path / "a" / "index.csv").read_bytes() == (tmp_path / "b" / "index.csv").read_bytes()
    index = ccp_crops.read_index(tmp_path / "a")
    assert set(index[index.part == "test"].image_id) <= set(split["test"])  # only test photos in the test set
    assert set(index[index.part == "train"].image_id) <= set(split["train"])
    assert not set(index.image_id) & set(split["val"]) and "0536" not in set(index.image_id)
    for row in index.itertuples():
        x0, y0, x1, y1 = map(int, row.crop.split())
        w, h = image_size(root / "photos" / f"{row.image_id}.jpg")
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert image_size(tmp_path / "a" / row.file) == (x1 - x0, y1 - y0)
    test = ccp_crops.read_crops("test", tmp_path / "a")  # the classifier's reader reads the folder
    assert len(test) == sum(a.counts["test"].values()) and test.class_counts() == a.counts["test"]
    again = ccp_crops.build_crops(tmp_path / "a", root, ids=ids, log=lambda m: None)
    assert again.reused and again.counts == a.counts



def _build_crops(out, root, ids):
    from clothingrec.datasets import ccp_crops

    crops = ccp_crops.build_crops(out, root, ids=ids, log=None)
    return crops.reused, crops.counts


def test_two_make_data_at_once_build_the_crops_once(tmp_path):
    """`make train-a & make train-b` both reach `make data`: the second waits and reuses the first's crops."""
    from processes import at_once

    from clothingrec.datasets import ccp_crops
    from clothingrec.splits import ccp_split

    root = _ccp_or_skip()
    split = ccp_split()
    ids = split["train"][:6] + split["test"][:6]
    results = at_once(_build_crops, [(tmp_path / "crops", root, ids)] * 2)
    assert sorted(r for r, _ in results) == [False, True] and results[0][1] == results[1][1]
    index = ccp_crops.read_index(tmp_path / "crops")
    assert len(index) == sum(sum(c.values()) for c in results[0][1].values()) > 0
    assert all((tmp_path / "crops" / f).is_file() for f in index.file)
    assert not (tmp_path / "crops.partial").exists()


_NUMBER_TEXT = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e308", "1.8e308", "-2E+400", "1e-400", "4.9e-324",
                     "9" * 309, "-" + "1" * 400, "0.0", "-0.0", "1E05", "123e0"]),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-99, 99), st.integers(-999, 999)))


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBER_TEXT, max_size=8), st.booleans())
def test_load_json_fast_path_reads_what_the_checked_path_reads(numbers, as_bytes):
    """load_json skips the per-number hooks when no number can overflow a float; both paths agree."""
    import json

    from clothingrec.datasets import records as R

    text = '{"v": [' + ", ".join(numbers) + '], "k": 1}'
    data = text.encode() if as_bytes else text
    checked = json.loads(data, parse_float=R._json_float, parse_int=R._json_int, parse_constant=R.BadNumber,
                         object_pairs_hook=R._json_object)
    fast = R.load_json(data)
    assert fast == checked
    assert [type(v) for v in fast["v"]] == [type(v) for v in checked["v"]]
