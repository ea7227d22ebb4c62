"""ultralytics YOLO behind the common surface, and the optional detectron2 backend."""
import json

import numpy as np
import pytest
from PIL import Image

from clothingrec.detect.detectron2_backend import detectron2_available, require_detectron2
from clothingrec.detect.yolo import model_source, yolo_device
from clothingrec.weights import PretrainedWeightsUnavailable


def write_yolo_fixture(root, n_train=8, n_val=4, size=64, seed=0):
    """A YOLO dataset (images/, labels/, data.yaml) and the matching COCO JSON of its val split."""
    rng = np.random.default_rng(seed)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]}
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            canvas = np.full((size, size, 3), 110, dtype=np.uint8)
            cls = i % 2
            w, h = (24, 24) if cls == 0 else (12, 36)
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            canvas[y:y + h, x:x + w] = (230, 20, 20) if cls == 0 else (20, 20, 230)
            name = f"{split}_{i:02d}"
            Image.fromarray(canvas).save(root / "images" / split / f"{name}.jpg")
            (root / "labels" / split / f"{name}.txt").write_text(
                f"{cls} {(x + w / 2) / size:.6f} {(y + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}\n")
            if split == "val":
                img_id = i + 1
                coco["images"].append({"id": img_id, "file_name": f"{name}.jpg", "width": size, "height": size})
                coco["annotations"].append({"id": img_id, "image_id": img_id, "category_id": cls + 1,
                                            "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: bar\n")
    (root / "val.json").write_text(json.dumps(coco))
    return root / "data.yaml", root / "val.json", root / "images" / "val"


def test_device_and_model_names(monkeypatch):
    assert yolo_device("cuda") == "0" and yolo_device("cuda:1") == "1" and yolo_device("0,1") == "0,1"
    assert yolo_device("cpu") == "cpu"
    assert model_source("yolov8n") == "yolov8n.yaml"
    assert model_source("yolo11s", task="segment") == "yolo11s-seg.yaml"
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsUnavailable, match="yolov8n-seg.pt"):
        model_source("yolov8n", task="segment", pretrained=True)


@pytest.mark.slow
def test_yolo_trains_predicts_and_scores_through_the_one_evaluation(tmp_path):
    from clothingrec.detect import load_detector
    from clothingrec.detect.yolo import YoloPredictor, native_val, train_yolo, yolo_history
    from clothingrec.evaluate import evaluate_predictor
    from clothingrec.structures import Detections

    data_yaml, val_json, val_images = write_yolo_fixture(tmp_path / "data")
    run = train_yolo(data_yaml, tmp_path / "out", model="yolov8n", epochs=1, imgsz=64, batch=4, workers=0,
                     device="cpu", name="yolo")
    assert run.best is not None and run.last is not None
    hist = yolo_history(run)
    assert len(hist) == 1 and {"val_mAP50", "lr"} <= set(hist.columns)
    assert any(p.name == "results.png" for p in run.plots)

    predictor = load_detector(tmp_path / "out", device="cpu", imgsz=64)
    assert isinstance(predictor, YoloPredictor) and predictor.category_names == {1: "square", 2: "bar"}
    assert predictor.iou == 0.7 and load_detector(tmp_path / "out", device="cpu", nms_iou=0.5).iou == 0.5
    image = np.asarray(Image.open(val_images / "val_00.jpg").convert("RGB"))
    det = predictor.predict(image)
    assert isinstance(det, Detections) and det.boxes_xyxy.shape[1] == 4
    assert set(det.labels.tolist()) <= {1, 2}
    evals, preds = evaluate_predictor(predictor, val_json, val_images)
    assert len(preds.per_image) == 4 and {r["category_id"] for r in preds.results} <= {1, 2}
    # the one evaluation is pycocotools itself: the same detections scored by COCOeval directly agree exactly
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if preds.results:
        gt = COCO(str(val_json))
        direct = COCOeval(gt, gt.loadRes(preds.results), "bbox")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
        assert evals["bbox"].stats["AP50"] == pytest.approx(float(direct.stats[1]), abs=1e-12)
    native = native_val(run.best, data_yaml, imgsz=64, batch=4, device="cpu")
    # AP at every IoU in 0.5:0.95 is at most AP at 0.5, so their mean is too (a swapped or mis-read key fails)
    assert 0.0 <= native["ultralytics_mAP50_95"] <= native["ultralytics_mAP50"] <= 1.0


def test_detectron2_absent_gives_a_clear_message(monkeypatch):
    from clothingrec.detect import detectron2_backend

    monkeypatch.setattr(detectron2_backend, "find_spec", lambda name, *a: None)  # hidden even where installed
    assert not detectron2_available()
    with pytest.raises(ImportError, match="not on PyPI"):
        require_detectron2()


@pytest.mark.skipif(not detectron2_available(), reason="detectron2 is not installed (not on PyPI; optional backend)")
def test_detectron2_config_from_coco_split(tmp_path):
    data_yaml, val_json, val_images = write_yolo_fixture(tmp_path / "data")
    from clothingrec.detect.detectron2_backend import make_config

    cfg = make_config(val_json, val_images, val_json, val_images, tmp_path / "d2", num_classes=2, iterations=2,
                      device="cpu")
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 2 and cfg.SOLVER.MAX_ITER == 2
    assert (cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TEST) == ((512,), 512)
    multi = make_config(val_json, val_images, val_json, val_images, tmp_path / "d2m", num_classes=2, iterations=2,
                        device="cpu", min_size=320, max_size=533, train_min_sizes=(269, 320, 384), train_max_size=640,
                        name="multi")
    assert (multi.INPUT.MIN_SIZE_TRAIN, multi.INPUT.MIN_SIZE_TRAIN_SAMPLING, multi.INPUT.MAX_SIZE_TRAIN) == (
        (269, 320, 384), "choice", 640)
    assert (multi.INPUT.MIN_SIZE_TEST, multi.INPUT.MAX_SIZE_TEST) == (320, 533)
