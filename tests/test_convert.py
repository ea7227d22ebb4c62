"""Converters: COCO / YOLO round trips, determinism, reuse, and every malformed case reported."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from clothingrec import synthetic
from clothingrec.convert import coco as coco_mod
from clothingrec.convert import prepare_detection_dataset
from clothingrec.convert import yolo as yolo_mod
from clothingrec.datasets import deepfashion2 as df2


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def df2_src(tmp_path_factory):
    return synthetic.write_deepfashion2(tmp_path_factory.mktemp("df2src"), n_train=10, n_val=4, seed=2)


@pytest.fixture(scope="module")
def pf_src(tmp_path_factory):
    return synthetic.write_pennfudan(tmp_path_factory.mktemp("pfsrc"), n=10, seed=2)


@pytest.fixture(scope="module")
def df2_out(df2_src, tmp_path_factory):
    return prepare_detection_dataset(df2_src, tmp_path_factory.mktemp("df2out"), task="segment", workers=1)


def _items(src, folder):
    out = {}
    for anno in sorted((src / folder / "annos").glob("*.json")):
        data = json.loads(anno.read_text())
        out[anno.stem + ".jpg"] = [data[k] for k in sorted(data) if k.startswith("item")]
    return out


def test_df2_coco_round_trip(df2_src, df2_out):
    assert df2_out.class_names == list(df2.CATEGORIES) and df2_out.categories[0]["id"] == 1
    assert df2_out.num_images == {"train": 10, "val": 4} and not df2_out.report.skipped
    for split, folder in (("train", "train"), ("val", "validation")):
        coco = COCO(str(df2_out.coco_json[split]))
        items = _items(df2_src, folder)
        assert len(coco.getImgIds()) == len(items)
        assert len(coco.getAnnIds()) == sum(map(len, items.values()))
        for img in coco.loadImgs(coco.getImgIds()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            src = items[img["file_name"]]
            assert len(anns) == len(src)
            assert (df2_out.image_dir[split] / img["file_name"]).resolve() == \
                (df2_src / folder / "image" / img["file_name"]).resolve()
            for ann, item in zip(anns, src):
                x, y, w, h = ann["bbox"]
                assert box_iou((x, y, x + w, y + h), item["bounding_box"]) == pytest.approx(1.0)
                m = coco.annToMask(ann)
                ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
                    item["segmentation"], img["height"], img["width"])))
                assert (m == ref).all() and ann["area"] == m.sum()  # area from the mask, not the box
                assert ann["iscrowd"] == 0 and ann["category_id"] == item["category_id"]
                for key in ("style", "scale", "occlusion", "zoom_in", "viewpoint"):
                    assert ann[key] == item[key]
                assert (ann["source"], ann["pair_id"]) == (img["source"], img["pair_id"])
                start = 3 * df2.LANDMARK_OFFSETS[item["category_id"] - 1]
                assert len(ann["keypoints"]) == 882
                assert ann["keypoints"][start:start + len(item["landmarks"])] == item["landmarks"]
                assert ann["num_keypoints"] == sum(v > 0 for v in item["landmarks"][2::3])


def test_yolo_labels_load_through_ultralytics(df2_out):
    import yaml
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(df2_out.yolo_yaml))
    assert data["nc"] == 13 and data["names"][0] == "short sleeve top"
    coco = json.loads(df2_out.coco_json["val"].read_text())
    n_ann = len(coco["annotations"])
    for task in ("detect", "segment"):
        ds = prepare_detection_dataset(df2_out.source, df2_out.root, task=task, workers=1)
        assert ds.reused
        yd = YOLODataset(img_path=str(ds.image_dir["val"]), data=yaml.safe_load(ds.yolo_yaml.read_text()),
                         task=task, imgsz=256, augment=False, cache=False)
        assert len(yd.labels) == 4 and sum(len(lb["cls"]) for lb in yd.labels) == n_ann
        by_name = {im["file_name"]: im for im in coco["images"]}
        for lb in yd.labels:
            img = by_name[lb["im_file"].rsplit("/", 1)[-1]]
            anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
            assert lb["cls"].reshape(-1).tolist() == [a["category_id"] - 1 for a in anns]
            for (xc, yc, w, h), a in zip(lb["bboxes"], anns):
                x, y, bw, bh = a["bbox"]
                ref = ((x + bw / 2) / img["width"], (y + bh / 2) / img["height"], bw / img["width"],
                       bh / img["height"])
                # detect: our boxes exactly; segment: ultralytics boxes the polygon (within 3 px)
                tol = 1e-5 if task == "detect" else 3.0 / min(img["width"], img["height"])
                assert np.allclose((xc, yc, w, h), ref, atol=tol)
            if task == "segment":
                assert len(lb["segments"]) == len(anns)


def test_yolo_segment_polygons_cover_the_mask(df2_out):
    """Merged multi-piece outlines rasterise to the union of the pieces."""
    coco = json.loads(df2_out.coco_json["train"].read_text())
    for img in coco["images"][:6]:
        h, w = img["height"], img["width"]
        cls, boxes, polys = yolo_mod.read_labels(df2_out.root / "labels-segment" / "train" /
                                                 img["file_name"].replace(".jpg", ".txt"), w, h)
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        for poly, ann in zip(polys, anns):
            ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w)))
            m = mask_utils.decode(mask_utils.frPyObjects([poly.reshape(-1).tolist()], h, w))[..., 0]
            iou = (m & ref).sum() / (m | ref).sum()
            assert iou > 0.97, (img["file_name"], iou)


def test_merge_polygons_bridges_have_no_area():
    squares = [[0, 0, 10, 0, 10, 10, 0, 10], [20, 0, 30, 0, 30, 10, 20, 10], [40, 0, 50, 0, 50, 10, 40, 10]]
    merged = yolo_mod.merge_polygons(squares)
    m = mask_utils.decode(mask_utils.frPyObjects([merged.reshape(-1).tolist()], 20, 60))[..., 0]
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(squares, 20, 60)))
    assert (m == ref).all()


def test_pennfudan_round_trip_masks_and_boxes(pf_src, tmp_path):
    ds = prepare_detection_dataset(pf_src, tmp_path / "pf", workers=1)
    assert ds.class_names == ["person"] and ds.classes == "person"
    assert ds.num_images == {"train": 7, "val": 1, "test": 2}
    split = json.loads((ds.root / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == \
        sorted(p.stem for p in (pf_src / "PNGImages").glob("*.png"))
    for s in ("train", "val", "test"):
        coco = COCO(str(ds.coco_json[s]))
        for img in coco.loadImgs(coco.getImgIds()):
            inst = np.asarray(Image.open(pf_src / "PedMasks" / img["file_name"].replace(".png", "_mask.png")))
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert len(anns) == inst.max()
            for k, ann in enumerate(anns, 1):
                ref = inst == k
                m = coco.annToMask(ann).astype(bool)
                assert (m & ref).sum() / (m | ref).sum() > 0.99
                assert ann["area"] == ref.sum()
                rows, cols = np.flatnonzero(ref.any(1)), np.flatnonzero(ref.any(0))
                x, y, w, h = ann["bbox"]
                assert box_iou((x, y, x + w, y + h), (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)) == 1.0


def test_output_is_deterministic_and_independent_of_workers(df2_src, df2_out, tmp_path, monkeypatch):
    import clothingrec.convert as conv

    monkeypatch.setattr(conv, "PARALLEL_MIN_JOBS", 1)  # use the process pool even for 10 images
    other = prepare_detection_dataset(df2_src, tmp_path / "again", task="segment", workers=2, force=True)
    for s in ("train", "val"):
        assert other.coco_json[s].read_bytes() == df2_out.coco_json[s].read_bytes()
        for f in sorted((df2_out.root / "labels-segment" / s).glob("*.txt")):
            assert (other.root / "labels-segment" / s / f.name).read_bytes() == f.read_bytes()


def test_reuse_and_cap(df2_src, tmp_path):
    a = prepare_detection_dataset(df2_src, tmp_path / "cap", max_images=7, workers=1)
    assert not a.reused and a.num_images == {"train": 5, "val": 2}
    b = prepare_detection_dataset(df2_src, tmp_path / "cap", max_images=7, workers=1)
    assert b.reused and b.num_images == a.num_images
    c = prepare_detection_dataset(df2_src, tmp_path / "cap", max_images=None, workers=1)
    assert not c.reused and c.num_images == {"train": 10, "val": 4}
    assert len(list((tmp_path / "cap" / "images" / "train").iterdir())) == 10


def test_header_only_conversion_keeps_a_truncated_image_and_says_so(df2_src, tmp_path):
    """``decode_images=False``: sizes from headers (a truncated photo passes, the report says pixels were
    not checked); the default decodes and skips it; the two conversions never reuse each other's folder."""
    src = tmp_path / "cut"
    shutil.copytree(df2_src, src)
    photo = src / "train" / "image" / "000003.jpg"
    photo.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    fast = prepare_detection_dataset(src, tmp_path / "out", max_images=6, workers=1, decode_images=False)
    assert fast.num_images["train"] == 4 and any("pixels not decoded" in n for n in fast.report.notes)
    strict = prepare_detection_dataset(src, tmp_path / "out", max_images=6, workers=1)
    assert not strict.reused and strict.num_images["train"] == 3
    assert any(i.file.endswith("000003.jpg") and "undecodable" in i.reason for i in strict.report.skipped)
    assert not any("pixels not decoded" in n for n in strict.report.notes)


def test_df2_malformed_inputs_are_reported_and_the_rest_converts(df2_src, tmp_path):
    src = tmp_path / "bad"
    shutil.copytree(df2_src, src)
    annos, images = src / "train" / "annos", src / "train" / "image"

    def edit(stem, fn):
        p = annos / f"{stem}.json"
        data = json.loads(p.read_text())
        fn(data)
        p.write_text(json.dumps(data))

    (annos / "000001.json").write_text('{"source": "user", "item1": {')  # malformed JSON
    (images / "000002.jpg").write_bytes(b"not an image at all")  # unreadable image
    edit("000003", lambda d: d["item1"].update(category_id=14))
    edit("000004", lambda d: d["item1"].update(bounding_box=[50, 60, 50, 90]))  # zero width
    edit("000005", lambda d: d["item1"].update(bounding_box=[300, 300, 400, 400]))  # outside → zero after clip
    edit("000006", lambda d: d["item1"].update(segmentation=[[10, 10, 20, 20]]))  # 2 points only
    edit("000007", lambda d: d["item1"].update(landmarks=[1, 2, 2]))  # wrong landmark count: field dropped
    edit("000008", lambda d: d["item1"].update(bounding_box=[-20, -5, 300, 270]))  # clipped, kept
    (annos / "000009.json").unlink()  # image without annotation
    (images / "000010.jpg").unlink()  # annotation without image
    n_items = {stem: len([k for k in json.loads((df2_src / "train" / "annos" / f"{stem}.json").read_text())
                          if k.startswith("item")]) for stem in (f"{i:06d}" for i in range(1, 11))}

    ds = prepare_detection_dataset(src, tmp_path / "badout", workers=2)
    rows = {(r.file, r.item, r.field, r.level) for r in ds.report.skipped}
    expected = {
        ("train/annos/000001.json", "", "json", "image"),
        ("train/image/000002.jpg", "", "image", "image"),
        ("train/annos/000003.json", "item1", "category_id", "item"),
        ("train/annos/000004.json", "item1", "bounding_box", "item"),
        ("train/annos/000005.json", "item1", "bounding_box", "item"),
        ("train/annos/000006.json", "item1", "segmentation[0]", "field"),  # the polygon: a field row
        ("train/annos/000006.json", "item1", "segmentation", "item"),  # the item lost: one item row
        ("train/annos/000007.json", "item1", "landmarks", "field"),
        ("train/annos/000008.json", "item1", "bounding_box", "field"),  # clipped, and said so
        ("train/image/000009.jpg", "", "annos", "image"),
        ("train/annos/000010.json", "", "image", "image"),
    }
    assert rows == expected
    reasons = {r.file.split("/")[-1]: r.reason for r in ds.report.skipped}
    assert "malformed JSON" in reasons["000001.json"] and "unreadable image" in reasons["000002.jpg"]
    assert "fewer than 3" in ds.report.to_frame().query("field == 'segmentation[0]'").reason.iloc[0]
    rep = ds.report
    assert rep.images_in["train"] == 10 and rep.images_out["train"] == 6 and rep.images_skipped("train") == 4
    rep.check()
    assert rep.items_in["train"] == sum(n_items[f"{i:06d}"] for i in (3, 4, 5, 6, 7, 8))
    assert rep.items_skipped("train") == 4 and rep.summary_frame().loc["train", "items_skipped"] == 4
    assert "clipped from [-20, -5, 300, 270]" in rows_reason(rep, "000008.json")
    coco = json.loads(ds.coco_json["train"].read_text())
    by_name = {im["file_name"]: im["id"] for im in coco["images"]}
    assert sorted(by_name) == [f"{i:06d}.jpg" for i in (3, 4, 5, 6, 7, 8)]
    count = {n: sum(a["image_id"] == i for a in coco["annotations"]) for n, i in by_name.items()}
    for stem in ("000003", "000004", "000005", "000006"):
        assert count[f"{stem}.jpg"] == n_items[stem] - 1  # the broken item skipped, the rest kept
    assert count["000007.jpg"] == n_items["000007"] and count["000008.jpg"] == n_items["000008"]
    clipped = next(a for a in coco["annotations"] if a["image_id"] == by_name["000008.jpg"])
    assert clipped["bbox"] == [0.0, 0.0, 256.0, 256.0]
    kept = next(a for a in coco["annotations"] if a["image_id"] == by_name["000007.jpg"])
    assert kept["num_keypoints"] == 0 and not any(kept["keypoints"])
    assert "fewer than 3" in (tmp_path / "badout" / "report.csv").read_text()
    assert ds.num_images["val"] == 4  # the other split untouched


def rows_reason(report, name):
    return " | ".join(r.reason for r in report.skipped if r.file.endswith(name))


def test_pennfudan_malformed_inputs(pf_src, tmp_path):
    src = tmp_path / "pfbad"
    shutil.copytree(pf_src, src)
    ann = src / "Annotation"
    t = (ann / "FudanPed00001.txt").read_text()
    (ann / "FudanPed00001.txt").write_text(t.replace(") - (", ") -- (", 1))  # malformed box line
    Image.new("L", (5, 5)).save(src / "PedMasks" / "FudanPed00002_mask.png")  # wrong mask size
    t = (ann / "FudanPed00003.txt").read_text()
    (ann / "FudanPed00003.txt").write_text(t.replace("for object 1 ", "for object 9 "))  # no pixel 9
    (src / "PedMasks" / "FudanPed00004_mask.png").unlink()
    ds = prepare_detection_dataset(src, tmp_path / "pfbadout", workers=1)
    rows = {(r.file, r.item, r.field, r.level) for r in ds.report.skipped}
    assert rows == {
        ("Annotation/FudanPed00001.txt", "", "annotation", "image"),
        ("PedMasks/FudanPed00002_mask.png", "", "mask", "image"),
        ("Annotation/FudanPed00003.txt", "object 9", "Pixel mask", "item"),
        ("PNGImages/FudanPed00004.png", "", "PedMasks", "image"),
    }
    assert sum(ds.report.images_in.values()) == 10 and sum(ds.report.images_out.values()) == 7
    ds.report.check()


def test_ccp_person_and_garments_small(tmp_path):
    person = prepare_detection_dataset("ccp", tmp_path / "ccp_person", classes="person", max_images=12, workers=1)
    assert person.class_names == ["person"] and sum(person.num_images.values()) == 12
    coco = json.loads(person.coco_json["train"].read_text())
    assert len(coco["annotations"]) == len(coco["images"])  # one silhouette per photo
    garments = prepare_detection_dataset("ccp", tmp_path / "ccp_garm", max_images=12, workers=1)
    assert garments.class_names == ["top", "outwear", "vest", "shorts", "trousers", "skirt", "dress"]
    split = json.loads((garments.root / "split.json").read_text())
    assert [len(split[p]) for p in ("train", "val", "test")] == [703, 100, 201]  # the stored split, whatever max_images
    assert garments.num_images == {"train": 9, "val": 1, "test": 2} and person.num_images == garments.num_images


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_detection_dataset("nope", "/tmp/never")
    with pytest.raises(ValueError, match="person"):
        prepare_detection_dataset("synthetic-pennfudan", "/tmp/never", classes="garments")


def test_streamed_coco_equals_one_shot_dump(tmp_path):
    from clothingrec.convert import coco as coco_mod

    cats = coco_mod.df2_categories()[:2]
    images = [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3},
              {"id": 2, "file_name": "b.jpg", "width": 5, "height": 6},
              {"id": 3, "file_name": "c.jpg", "width": 7, "height": 8}]
    anns = [[{"category_id": 1, "bbox": [0.0, 0.0, 1.5, 2.0], "area": 3.0, "iscrowd": 0, "segmentation": []}],
            [],
            [{"category_id": 2, "bbox": [1, 1, 1, 1], "area": 1.0, "iscrowd": 0, "segmentation": [[1, 1, 2, 1, 2, 2]]},
             {"category_id": 1, "bbox": [0, 0, 1, 1], "area": 1.0, "iscrowd": 0, "segmentation": [], "név": "ü"}]]
    writer = coco_mod.CocoWriter(tmp_path / "s.json", cats, "d")
    for image, image_anns in zip(images, anns):
        writer.add(image, [coco_mod.annotation_text(a) for a in image_anns])
    writer.close()
    coco_mod.dump(coco_mod.build(images, anns, cats, "d"), tmp_path / "o.json")
    assert (tmp_path / "s.json").read_bytes() == (tmp_path / "o.json").read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_bench_convert_quick(tmp_path, monkeypatch):
    import importlib.util

    from clothingrec.paths import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("bench_convert", PROJECT_ROOT / "bench" / "bench_convert.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_convert", bench)  # its pool workers are found by module name
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path / "tree")]) == 0
    result = json.loads((tmp_path / "convert_quick.json").read_text())
    assert result["n_files"] == 300 and len(result["results"]) == 4  # plain x2, library headers-only and decoded
    assert {r["images"] for r in result["results"].values()} == {300}
    # peak memory of the process tree while each method ran: at least what the process held when it started
    assert all(r["peak_rss_mb"] >= r["rss_before_mb"] > 0 for r in result["results"].values())
    assert len({r["annotations"] for r in result["results"].values()}) == 1
    assert result["outputs"]["coco_annotations_identical"] and result["outputs"]["label_files_identical"]
    assert result["outputs"]["decoded_label_files_identical"]
    assert (tmp_path / "convert_quick.md").read_text().startswith("# Conversion benchmark")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 13), st.one_of(st.none(), st.lists(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-10**6, 10**6), st.just(-0.0)),
    min_size=3, max_size=117)), st.sampled_from(["user", "shop", 'a "quoted" \\"keypoints\\":0 value']))
def test_annotation_text_is_the_plain_json_of_the_annotation(category, landmarks, source):
    """The cached-zeros keypoint encoding writes exactly what json.dumps writes for the plain list."""
    from clothingrec.datasets import deepfashion2 as df2

    if landmarks is not None:
        landmarks = (landmarks * 117)[:3 * df2.LANDMARK_COUNTS[category - 1]]
    kps, num = df2.global_keypoints(category, landmarks)
    ann = {"category_id": category, "bbox": [1.0, 2.0, 3.0, 4.0], "area": 5.0, "iscrowd": 0,
           "segmentation": [[0, 0, 4, 0, 4, 4]], "keypoints": kps, "num_keypoints": num, "source": source}
    assert coco_mod.annotation_text(ann) == coco_mod._dumps({**ann, "keypoints": list(kps)})


def test_an_object_without_an_outline_is_reported_where_it_is_missing(pf_src, tmp_path, monkeypatch):
    """An object a reader gives no polygon (the built-in mask readers fall back to the box, so this
    stands for any other reader): in COCO and labels-detect, not in labels-segment, and the report says
    so in a field row (the object is not lost)."""
    import clothingrec.datasets.pennfudan as pf_mod

    traced = pf_mod.mask_polygons
    calls = []

    def first_object_untraceable(mask, *args, **kwargs):
        calls.append(1)
        return [] if len(calls) == 1 else traced(mask, *args, **kwargs)

    monkeypatch.setattr(pf_mod, "mask_polygons", first_object_untraceable)
    ds = prepare_detection_dataset(pf_src, tmp_path / "pfout", task="segment", workers=1)
    rows = [r for r in ds.report.skipped if r.field == "segmentation"]
    assert len(rows) == 1 and rows[0].level == "field" and "not in labels-segment" in rows[0].reason
    stem = rows[0].file.rsplit(".", 1)[0]
    det = (ds.root / "labels-detect" / rows[0].split / f"{stem}.txt").read_text().splitlines()
    seg = (ds.root / "labels-segment" / rows[0].split / f"{stem}.txt").read_text().splitlines()
    assert len(det) == len(seg) + 1
    ds.report.check()  # nothing lost: the object is counted out (COCO, box labels)


def test_record_lines_name_the_objects_left_out_of_the_segment_labels():
    from clothingrec.datasets.records import ImageRecord, ObjectRecord

    objs = [ObjectRecord(1, "a", (0, 0, 10, 10), [[0, 0, 10, 0, 10, 10]]), ObjectRecord(2, "b", (2, 2, 5, 5), [])]
    det, seg, missing = yolo_mod.record_lines(ImageRecord(Path("x.jpg"), 20, 20, objs))
    assert len(det.splitlines()) == 2 and len(seg.splitlines()) == 1 and missing == [1]
