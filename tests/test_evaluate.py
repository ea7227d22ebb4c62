"""The one COCO evaluation: perfect predictions score 1, shuffled boxes score ~0, bad input is reported."""
import json

import numpy as np
import pandas as pd
import pytest

from clothingrec.evaluate import (
    coco_evaluate,
    confusion_matrix,
    detections_to_results,
    detector_metrics,
    evaluate_predictions,
    ground_truth_as_results,
    predict_coco,
    results_table,
)
from clothingrec.evaluate.coco import STAT_NAMES
from clothingrec.structures import Detections


def _square(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def make_gt(n_images=12, seed=0):
    """A COCO instances dict: 12 images 200x160, 1–3 objects of 3 categories with polygon masks."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    aid = 1
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i:04d}.png", "width": 200, "height": 160})
        for _ in range(int(rng.integers(1, 4))):
            w, h = (float(v) for v in rng.integers(30, 70, size=2))
            x, y = float(rng.integers(0, 200 - w)), float(rng.integers(0, 160 - h))
            anns.append({"id": aid, "image_id": i, "category_id": int(rng.integers(1, 4)), "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0, "segmentation": _square(x, y, w, h)})
            aid += 1
    cats = [{"id": 1, "name": "top"}, {"id": 2, "name": "trousers"}, {"id": 3, "name": "skirt"}]
    return {"images": images, "annotations": anns, "categories": cats}


def test_ground_truth_as_predictions_scores_one():
    gt = make_gt()
    evals = evaluate_predictions(gt, ground_truth_as_results(gt, with_masks=True), segm=True)
    for iou_type in ("bbox", "segm"):
        stats = evals[iou_type].stats
        assert stats["AP"] == pytest.approx(1.0)
        assert stats["AP50"] == pytest.approx(1.0)
        assert stats["AR100"] == pytest.approx(1.0)
    table = evals["bbox"].per_category
    assert list(table["category"]) == ["top", "trousers", "skirt"]
    assert np.allclose(table["AP"], 1.0)
    assert table["n_gt"].sum() == len(gt["annotations"])
    assert len(evals["bbox"].summary_text.splitlines()) == 12


def test_shuffled_boxes_score_near_zero():
    gt = make_gt()
    results = ground_truth_as_results(gt)
    rng = np.random.default_rng(1)
    # move every box to a different image (each image's boxes come from elsewhere)
    ids = [im["id"] for im in gt["images"]]
    perm = {a: b for a, b in zip(ids, np.roll(ids, 5))}
    shuffled = [{**r, "image_id": int(perm[r["image_id"]]), "score": float(rng.random())} for r in results]
    ap = coco_evaluate(gt, shuffled, "bbox").stats
    assert ap["AP"] < 0.05
    assert ap["AP50"] < 0.1


def test_wrong_labels_score_zero_and_fill_the_confusion_matrix():
    gt = make_gt()
    results = ground_truth_as_results(gt)
    wrong = [{**r, "category_id": r["category_id"] % 3 + 1} for r in results]
    assert coco_evaluate(gt, wrong, "bbox").stats["AP"] == pytest.approx(0.0)
    cm = confusion_matrix(gt, wrong)
    values = cm.to_numpy()
    assert values.sum() == len(gt["annotations"])
    assert np.trace(values[:3, :3]) == 0  # every match is to the wrong class
    cm_right = confusion_matrix(gt, results)
    assert np.trace(cm_right.to_numpy()) == len(gt["annotations"])
    assert cm_right.loc["background"].sum() == 0


def test_confusion_matrix_counts_misses_and_false_positives():
    gt = make_gt(n_images=2)
    results = ground_truth_as_results(gt)[1:]  # drop one: a miss
    results.append({"image_id": 1, "category_id": 2, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.9})
    cm = confusion_matrix(gt, results)
    assert cm["background"].sum() == 1  # missed ground truth
    assert cm.loc["background"].sum() == 1  # false positive


def test_empty_and_malformed_results_are_handled():
    gt = make_gt()
    empty = coco_evaluate(gt, [], "bbox")
    assert empty.stats["AP"] == 0.0 and empty.n_results == 0
    bad = [{"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
           {"image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1], "score": 0.5},
           {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]
    res = coco_evaluate(gt, bad + ground_truth_as_results(gt), "bbox")
    assert len(res.problems) == 3
    assert "image_id 999" in res.problems[0] and "category_id 77" in res.problems[1]
    assert "'bbox'" in res.problems[2]
    assert res.stats["AP"] == pytest.approx(1.0)


def test_missing_ground_truth_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        coco_evaluate(tmp_path / "nope.json", [], "bbox")
    (tmp_path / "broken.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="annotations"):
        coco_evaluate(tmp_path / "broken.json", [], "bbox")


def test_predictor_path_matches_results_path(tmp_path):
    """A predictor that returns the ground truth, through predict_coco, scores 1 (boxes and masks)."""
    from PIL import Image

    gt = make_gt(n_images=4)
    for im in gt["images"]:
        Image.new("RGB", (im["width"], im["height"])).save(tmp_path / im["file_name"])
    gt["images"].append({"id": 99, "file_name": "missing.png", "width": 200, "height": 160})

    class Oracle:
        family = "oracle"
        category_names = {1: "top", 2: "trousers", 3: "skirt"}
        calls = 0

        def predict(self, image):
            Oracle.calls += 1
            img_id = Oracle.calls
            anns = [a for a in gt["annotations"] if a["image_id"] == img_id]
            boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                     for a in anns]
            masks = np.zeros((len(anns), image.shape[0], image.shape[1]), dtype=bool)
            for k, b in enumerate(boxes):
                x1, y1, x2, y2 = (int(v) for v in b)
                masks[k, y1:y2, x1:x2] = True
            return Detections(boxes, [a["category_id"] for a in anns], np.ones(len(anns)), masks)

    run = predict_coco(Oracle(), gt, tmp_path)
    assert len(run.skipped) == 1 and "missing.png" in run.skipped[0]
    ids = [1, 2, 3, 4]
    evals = evaluate_predictions(gt, run.results, image_ids=ids)
    assert set(evals) == {"bbox", "segm"}
    assert evals["bbox"].stats["AP"] == pytest.approx(1.0)
    assert evals["segm"].stats["AP50"] == pytest.approx(1.0)
    metrics = detector_metrics("oracle", "oracle", "none", "fixture", evals, imgsz=200, params=0)
    assert metrics["kind"] == "detector" and metrics["bbox_AP50"] == pytest.approx(1.0)
    assert metrics["segm_AP"] == pytest.approx(1.0, abs=0.02)
    table = results_table([metrics])
    assert table.loc[0, "name"] == "oracle"


def test_detections_validate_and_export():
    det = Detections([[0, 0, 10, 20], [5, 5, 6, 6]], [1, 2], [0.9, 0.0005])
    out = detections_to_results(7, det)
    assert len(out) == 1  # below the export threshold dropped
    assert out[0]["bbox"] == [0.0, 0.0, 10.0, 20.0] and out[0]["image_id"] == 7
    with pytest.raises(ValueError, match="differ in length"):
        Detections([[0, 0, 1, 1]], [1, 2], [0.5])
    assert len(det.filter(0.5)) == 1


# ------------------------------------------------------------------ partial overlaps, pinned to pycocotools
def _box_gt():
    """3 images 200x160, 2 categories, boxes with polygon masks (areas all 'large' or 'medium')."""
    boxes = [(1, 1, [0, 0, 100, 100]), (2, 1, [20, 20, 60, 50]), (3, 2, [10, 10, 120, 90]),
             (1, 2, [110, 40, 80, 110]), (2, 2, [100, 10, 40, 40])]
    anns = [{"id": i + 1, "image_id": im, "category_id": c, "bbox": [float(v) for v in b],
             "area": float(b[2] * b[3]), "iscrowd": 0, "segmentation": _square(*b)}
            for i, (im, c, b) in enumerate(boxes)]
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 200, "height": 160} for i in (1, 2, 3)],
            "annotations": anns, "categories": [{"id": 1, "name": "top"}, {"id": 2, "name": "skirt"}]}


def _partial_results():
    return [
        {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 100.0, 62.0], "score": 0.9},  # IoU 0.62
        {"image_id": 2, "category_id": 1, "bbox": [20.0, 20.0, 60.0, 50.0], "score": 0.5},  # exact
        {"image_id": 2, "category_id": 1, "bbox": [150.0, 100.0, 30.0, 30.0], "score": 0.95},  # false positive
        {"image_id": 3, "category_id": 2, "bbox": [10.0, 10.0, 120.0, 72.0], "score": 0.8},  # IoU 0.8
        {"image_id": 3, "category_id": 2, "bbox": [10.0, 10.0, 120.0, 63.0], "score": 0.6},  # duplicate: FP
        {"image_id": 1, "category_id": 2, "bbox": [110.0, 40.0, 80.0, 50.0], "score": 0.7},  # IoU 0.4545: FP, miss
        # image 2's skirt is never predicted: a miss
    ]


def _pycocotools_oracle(gt, results, iou_type="bbox"):
    """pycocotools run directly: the 12 summary numbers and per-category AP50 / AP75 (area all, 100 dets)."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        dt = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dt, iouType=iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_cat = {}
    def ap(t, k):
        p = ev.eval["precision"][t, :, k, 0, 2]
        return float(p[p > -1].mean()) if (p > -1).any() else -1.0

    for k, cid in enumerate(ev.params.catIds):
        per_cat[cid] = (ap(0, k), ap(5, k))
    return list(map(float, ev.stats)), per_cat


def test_one_partial_overlap_scores_ap50_one_ap75_zero():
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 160}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 100.0, 100.0],
                           "area": 10000.0, "iscrowd": 0, "segmentation": _square(0, 0, 100, 100)}],
          "categories": [{"id": 1, "name": "top"}]}
    pred = [{"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 100.0, 62.0], "score": 0.9}]  # IoU 0.62
    r = coco_evaluate(gt, pred, "bbox")
    s = r.stats
    assert s["AP50"] == pytest.approx(1.0) and s["AP75"] == pytest.approx(0.0)
    assert s["AP"] == pytest.approx(0.3)  # matched at IoU 0.50, 0.55, 0.60 of the ten thresholds
    assert s["AP_large"] == pytest.approx(0.3) and s["AP_small"] == -1 and s["AP_medium"] == -1
    assert s["AR1"] == s["AR10"] == s["AR100"] == pytest.approx(0.3)
    row = r.per_category.iloc[0]
    assert (row.AP50, row.AP75, row.AP) == pytest.approx((1.0, 0.0, 0.3))
    stats, per_cat = _pycocotools_oracle(gt, pred)
    assert [s[n] for n in STAT_NAMES] == pytest.approx(stats)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_partial_overlaps_match_pycocotools_exactly(iou_type):
    gt = _box_gt()
    results = _partial_results()
    if iou_type == "segm":  # the same boxes as rectangle masks (RLE), as mask models export them
        from pycocotools import mask as mask_utils

        for r in results:
            x, y, w, h = r["bbox"]
            rle = mask_utils.merge(mask_utils.frPyObjects(_square(x, y, w, h), 160, 200))
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    ours = evaluate_predictions(gt, results, segm=(iou_type == "segm"))[iou_type]
    ref_stats, ref_cat = _pycocotools_oracle(gt, results, iou_type)
    assert [ours.stats[n] for n in STAT_NAMES] == pytest.approx(ref_stats, abs=1e-12)
    assert len(ours.summary_text.splitlines()) == 12
    table = ours.per_category.set_index("category_id")
    for cid, (ap50, ap75) in ref_cat.items():
        assert (table.loc[cid, "AP50"], table.loc[cid, "AP75"]) == pytest.approx((ap50, ap75), abs=1e-12)
    # and by hand, so a shared misreading of pycocotools would not pass: top has 2 GT, 3 detections
    # (FP at 0.95, IoU-0.62 TP at 0.9, exact TP at 0.5); skirt has 3 GT, the 0.8-IoU TP and 2 FPs
    if iou_type == "bbox":
        assert table.loc[1, "n_gt"] == 2 and table.loc[2, "n_gt"] == 3
        assert table.loc[1, "AP75"] == pytest.approx(
            np.mean([1 / 3] * 51 + [0.0] * 50))  # recall 0.5 reached only at the third detection
        assert table.loc[2, "AP50"] == pytest.approx(np.mean([1.0] * 34 + [0.0] * 67))  # 1 of 3 found
        assert table.loc[2, "AP75"] == pytest.approx(table.loc[2, "AP50"])  # IoU 0.8 passes 0.75


def _curve_run(tmp_path, name, history: dict, threads=2, device="cpu"):
    from clothingrec.runs import RunRecord

    run_dir = tmp_path / name
    run_dir.mkdir()
    RunRecord(task="detect", family=name, arch="x", classes=["a"], dataset="ccp", imgsz=192,
              config={"threads": threads, "device": device},
              provenance={"hardware": {"device": device, "torch_threads": threads}}).save(run_dir)
    pd.DataFrame(history).to_csv(run_dir / "history.csv", index=False)
    return run_dir


def test_learning_curve_reads_every_backend_history_as_core_hours(tmp_path):
    from clothingrec.evaluate import learning_curve
    from clothingrec.runs import RunRecord

    # ultralytics: cumulative seconds; the torchvision loop: seconds per epoch (training + evaluation)
    yolo = learning_curve(_curve_run(tmp_path, "yolo", {"epoch": [1, 2], "time": [1800.0, 3600.0],
                                                        "val_mAP50": [0.1, 0.3]}, threads=1))
    assert yolo["hours"].tolist() == [0.5, 1.0] and yolo["core_hours"].tolist() == [0.5, 1.0]
    assert yolo["AP50"].tolist() == [0.1, 0.3]
    rcnn = learning_curve(_curve_run(tmp_path, "maskrcnn", {
        "epoch": [1, 2, 3], "train_seconds": [3000.0, 3000.0, 3000.0], "eval_seconds": [600.0, None, 600.0],
        "bbox_AP50": [0.2, None, 0.4], "segm_AP50": [0.1, None, 0.3]}, threads=2))
    # the epoch without an evaluation is dropped, its time still counts
    assert rcnn["epoch"].tolist() == [1, 3] and rcnn["hours"].tolist() == pytest.approx([1.0, 10200 / 3600])
    assert (rcnn["core_hours"].tolist() == pytest.approx([2.0, 10200 / 1800])
            and rcnn["segm_AP50"].tolist() == [0.1, 0.3])
    gpu = learning_curve(_curve_run(tmp_path, "fasterrcnn", {"epoch": [1], "train_seconds": [360.0],
                                                             "bbox_AP50": [0.5]}, threads=8, device="cuda:0"))
    assert gpu["core_hours"].tolist() == gpu["hours"].tolist() == [0.1]  # an accelerator run is not scaled
    # a curve names its run by family, model, input size and backend (two YOLO sizes stay apart on one plot)
    assert yolo.attrs["label"] == "yolo x @192 px (torchvision)" and yolo.attrs["family"] == "yolo"
    (tmp_path / "empty").mkdir()
    RunRecord.load(tmp_path / "yolo").save(tmp_path / "empty")
    empty = learning_curve(tmp_path / "empty")  # stopped before its first epoch: no rows, same attrs
    assert len(empty) == 0 and empty.attrs["label"] == yolo.attrs["label"]
    # a multi-scale training is told apart from a run of the same model at one size
    record = RunRecord.load(tmp_path / "fasterrcnn")
    record.config["train_imgsz"] = [427, 533, 640]
    record.save(tmp_path / "multiscale")
    (tmp_path / "multiscale" / "history.csv").write_text((tmp_path / "fasterrcnn" / "history.csv").read_text())
    label = learning_curve(tmp_path / "multiscale").attrs["label"]
    assert label == "fasterrcnn x @192 px, trained at 427–640 (torchvision)"


def test_runs_of_one_setup_are_told_apart_on_the_plot(tmp_path):
    """Two runs with the same family, model and size (trained two ways) get their run names in the legend; a
    run alone keeps its plain label; runs that share the name too add their folder."""
    from clothingrec.evaluate import labelled, learning_curve
    from clothingrec.runs import RunRecord

    history = {"epoch": [1], "time": [60.0], "val_mAP50": [0.1]}
    runs = {}
    for folder, name in (("a", "long"), ("b", "long-aug"), ("c", "long-aug")):
        run_dir = _curve_run(tmp_path, folder, history)
        record = RunRecord.load(run_dir)
        record.family, record.name = "yolo", name
        record.save(run_dir)
        runs[folder] = learning_curve(run_dir)
    alone = learning_curve(_curve_run(tmp_path, "fasterrcnn", {"epoch": [1], "train_seconds": [60.0],
                                                               "bbox_AP50": [0.2]}))
    labels = list(labelled([runs["a"], runs["b"], runs["c"], alone]))
    assert labels == ["yolo x @192 px (torchvision) [long]", "yolo x @192 px (torchvision) [long-aug, b]",
                      "yolo x @192 px (torchvision) [long-aug, c]", "fasterrcnn x @192 px (torchvision)"]
    assert list(labelled([runs["a"]])) == ["yolo x @192 px (torchvision)"]


def test_a_restarted_run_continues_the_curve_of_the_run_it_started_from(tmp_path):
    """init_weights: the record names the earlier run and keeps its curve; the restart's epochs and core-hours
    count on from that run's last epoch, so the AP-per-core-hour plot charges the whole path."""
    from clothingrec.detect.recipe import started_from
    from clothingrec.evaluate import learning_curve
    from clothingrec.runs import RunRecord

    first = _curve_run(tmp_path, "fasterrcnn", {"epoch": [1, 2], "train_seconds": [1800.0, 1800.0],
                                                "bbox_AP50": [0.3, 0.4]}, threads=1)
    (first / "checkpoints").mkdir()
    (first / "checkpoints" / "best.pt").write_bytes(b"stand-in")
    origin = started_from(first / "checkpoints" / "best.pt")
    assert origin["weights"].endswith("fasterrcnn/checkpoints/best.pt") and origin["run"].endswith("fasterrcnn")
    assert [row["AP50"] for row in origin["curve"]] == [0.3, 0.4]

    second = tmp_path / "restart"
    second.mkdir()
    record = RunRecord.load(first)
    record.provenance["started_from"] = origin
    record.save(second)
    pd.DataFrame({"epoch": [1, 2], "train_seconds": [3600.0, 3600.0], "bbox_AP50": [0.45, 0.5]}).to_csv(
        second / "history.csv", index=False)
    curve = learning_curve(second)
    assert curve["epoch"].tolist() == [1, 2, 3, 4] and curve["AP50"].tolist() == [0.3, 0.4, 0.45, 0.5]
    assert curve["core_hours"].tolist() == pytest.approx([0.5, 1.0, 2.0, 3.0])
    assert curve.attrs["label"] == "fasterrcnn x @192 px, restarted after epoch 2 (torchvision)"
    assert started_from(tmp_path / "loose.pt") == {"weights": str(tmp_path / "loose.pt")}  # not in a run folder


def test_a_run_started_from_a_pretrained_backbone_counts_the_pretraining_first(tmp_path):
    """init_weights naming a backbone pretrained here: the record keeps its backbone.json; the curve's hours and
    core-hours start at the pretraining's, and the label names the pretraining data."""
    import json

    from clothingrec.detect.recipe import started_from
    from clothingrec.evaluate import learning_curve
    from clothingrec.runs import RunRecord

    backbone = tmp_path / "backbones" / "b"
    (backbone / "yolo" / "weights").mkdir(parents=True)
    (backbone / "yolo" / "weights" / "best.pt").write_bytes(b"stand-in")
    (backbone / "backbone.json").write_text(json.dumps({
        "dataset": "../shared/datasets/clothing-dataset-small", "extra_train": ["data/ccp-crops"],
        "hours": 0.5, "core_hours": 0.5, "best_val_top1": 0.7, "weights": "yolo/weights/best.pt"}))
    origin = started_from(backbone / "yolo" / "weights" / "best.pt")
    assert origin["backbone"]["run"].endswith("backbones/b") and origin["backbone"]["best_val_top1"] == 0.7
    assert "curve" not in origin

    run = _curve_run(tmp_path, "yolo", {"epoch": [1, 2], "time": [1800.0, 3600.0], "val_mAP50": [0.1, 0.3]},
                     threads=1)
    record = RunRecord.load(run)
    record.provenance["started_from"] = origin
    record.save(run)
    curve = learning_curve(run)
    assert curve["epoch"].tolist() == [1, 2] and curve["core_hours"].tolist() == pytest.approx([1.0, 1.5])
    assert curve.attrs["label"] == ("yolo x @192 px, backbone pretrained on clothing-dataset-small + ccp-crops "
                                    "(torchvision)")
