"""Readers: DeepFashion2, Penn-Fudan (original text format), CCP (.mat label maps), headers, splits."""
import json

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from clothingrec import synthetic
from clothingrec.datasets import ccp, deepfashion2 as df2, pennfudan as pf
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
    ids = ccp_image_ids()
    a = ccp_split(ids)
    assert (len(a["train"]), len(a["val"])) == (803, 201)
    assert sorted(a["train"] + a["val"]) == sorted(ids) and not set(a["train"]) & set(a["val"])
    b = ccp_split(list(reversed([int(i) for i in ids])))
    assert [int(i) for i in a["val"]] == b["val"]
    assert ccp_split(ids, seed=1)["val"] != a["val"]
    s = seeded_split(["b", "a", "c", "a"], val_fraction=0.34, seed=0)
    assert sorted(s["train"] + s["val"]) == ["a", "b", "c"] and len(s["val"]) == 1
