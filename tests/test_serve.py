"""The serving path agrees with eager PyTorch (issue 9): classifier, torchvision R-CNN hybrid, YOLO in ORT;
and OpenVINO as a candidate (issue 16, part 4): YOLO and classifier agreement, skipped only when openvino
does not import (the reason is the skip message), and the measured choice rule with fake timings.

Models: the curated trained classifier under runs/results/ when it is committed, otherwise a seeded
untrained one with BatchNorm statistics re-estimated on real training images (agreement needs
realistic numerics, not accuracy).  Detectors are seeded the same way at small input sizes.
Timing is never asserted here; only agreement and the choice logic are.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clothingrec import serve, zoo
from clothingrec.classify.inference import split_tensor
from clothingrec.serve import agreement as agree
from clothingrec.serve.classifier import build_backends, choose, evaluate_backends
from clothingrec.structures import Classifier, Detections


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core CI machine: no oversubscription
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def classifier():
    return zoo.resolve("classifier", "auto", imgsz=64, calibration_per_class=4)[0]


@pytest.fixture(scope="module")
def test_split(classifier):
    x, labels, paths = split_tensor(classifier, "test")
    return x, labels, paths


@pytest.fixture(scope="module")
def classifier_backends(classifier, tmp_path_factory):
    calibration, _, _ = split_tensor(classifier, "train", per_class=2)
    return build_backends(classifier.model, classifier.imgsz, backends=("onnx-fp32", "onnx-int8"),
                          calibration=calibration, threads=1, workdir=tmp_path_factory.mktemp("serve-clf"))


def test_classifier_onnx_agrees_on_whole_test_split(classifier, test_split, classifier_backends):
    x, _, _ = test_split
    assert len(x) == 372, f"clothing-dataset-small test split has 372 images, decoded {len(x)}"
    assert all(e["error"] is None for e in classifier_backends.values()), classifier_backends
    rows = {r["backend"]: r for r in evaluate_backends(classifier_backends, x, rounds=1, repeats=2)}
    fp32 = rows["onnx-fp32"]["agreement"]
    print(f"\nclassifier {classifier.meta.get('arch', '')} @{classifier.imgsz}: fp32 {fp32}")
    assert fp32["n"] == 372
    assert fp32["top1_agreement"] == 1.0 and fp32["top1_mismatches"] == 0
    assert fp32["max_abs_logit_diff"] <= agree.LOGIT_ATOL + agree.LOGIT_RTOL * fp32["max_abs_logit"]
    assert fp32["agrees"]
    int8 = rows["onnx-int8"]["agreement"]
    print(f"classifier int8 (static QDQ): top-1 agreement {int8['top1_agreement']:.4f}, "
          f"max |Δlogit| {int8['max_abs_logit_diff']:.3g}")
    assert int8["agrees"] == (int8["top1_agreement"] >= agree.INT8_MIN_TOP1)
    chosen = choose(list(rows.values()))
    assert chosen["agreement"]["agrees"]
    if not int8["agrees"]:
        assert chosen["backend"] != "onnx-int8"


def test_serving_classifier_same_interface(classifier, test_split, tmp_path):
    x, _, paths = test_split
    served = serve.serving_classifier(classifier, images=x[:48], backends=("onnx-fp32",), threads=1,
                                      workdir=tmp_path, rounds=1, repeats=3)
    assert served.agreement["agrees"] and {r["backend"] for r in served.candidates} == {"eager", "onnx-fp32"}
    assert served.backend == choose(served.candidates)["backend"]  # the measured rule, on its own measurements
    assert isinstance(served, Classifier) and served.eager is classifier and served.classes == classifier.classes
    # the eager and the served predict name the same classes for real files
    files = paths[::40]
    ref = classifier.predict(files)
    got = served.predict(files)
    assert got.labels == ref.labels
    assert torch.allclose(got.probs, ref.probs, atol=1e-4)


def test_serving_classifier_agrees_with_eager_on_crops(classifier, tmp_path):
    """The app's call: crops of a real photo through the ONNX backend give the eager classes and scores."""
    from clothingrec.evaluate import read_image
    from clothingrec.paths import CCP, find_dataset

    image = read_image(find_dataset(CCP) / "photos" / "0001.jpg")
    h, w = image.shape[:2]
    boxes = np.array([[0, 0, w, h], [40.5, 60.2, 300.7, 500.1], [w / 2, h / 3, w, h], [10, 10, 11, 11]])
    backends = build_backends(classifier.model, classifier.imgsz, backends=("onnx-fp32",), threads=1, workdir=tmp_path)
    served = serve.ServingClassifier(classifier, backends["onnx-fp32"]["module"], "onnx-fp32")
    ref, got = classifier.classify_crops(image, boxes), served.classify_crops(image, boxes)
    assert [c.label for c in got] == [c.label for c in ref] and len(ref) == 4
    assert np.allclose([c.probs for c in got], [c.probs for c in ref], atol=1e-4)
    assert np.allclose(served.classify(image).probs, ref[0].probs, atol=1e-4)


def test_int8_only_chosen_when_agreeing():
    rows = [{"backend": "eager", "agreement": {"agrees": True}, "batch1": {"median_ms": 10.0}},
            {"backend": "onnx-fp32", "agreement": {"agrees": True}, "batch1": {"median_ms": 4.0}},
            {"backend": "onnx-int8", "agreement": {"agrees": False}, "batch1": {"median_ms": 2.0}}]
    assert choose(rows)["backend"] == "onnx-fp32"
    rows[2]["agreement"]["agrees"] = True
    assert choose(rows)["backend"] == "onnx-int8"


def test_a_backend_within_timing_noise_of_eager_does_not_replace_it():
    rows = [{"backend": "eager", "agreement": {"agrees": True}, "batch1": {"median_ms": 10.0}},
            {"backend": "onnx-fp32", "agreement": {"agrees": True}, "batch1": {"median_ms": 9.5}}]
    assert choose(rows)["backend"] == "eager"          # 1.05x: noise, not a reason to switch
    rows[1]["batch1"]["median_ms"] = 8.0
    assert choose(rows)["backend"] == "onnx-fp32"      # 1.25x
    assert choose(rows, min_speedup=1.5)["backend"] == "eager"


def _det(boxes, labels, scores):
    return Detections(np.array(boxes, dtype=np.float32), np.array(labels), np.array(scores, dtype=np.float32))


def test_match_detections_criteria():
    ref = _det([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 70]], [1, 2, 3], [0.9, 0.8, 0.3])
    same = _det([[0, 0, 10, 10.1], [20, 20, 40, 40], [50, 50, 60, 70]], [1, 2, 3], [0.9, 0.8, 0.3])
    r = agree.detector_agreement([(ref, same)], score_threshold=0.0, capacity=10)
    assert r["reference_boxes"] == 3 and r["recall"] == 1.0 and r["precision"] == 1.0 and r["agrees"]
    moved = _det([[0, 0, 10, 10], [25, 25, 45, 45], [50, 50, 60, 70]], [1, 2, 3], [0.9, 0.8, 0.3])
    r = agree.detector_agreement([(ref, moved)], score_threshold=0.0, capacity=10)
    assert r["matched_reference"] == 2 and not r["agrees"]  # IoU 0.47 < 0.9
    relabelled = _det([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 70]], [1, 5, 3], [0.9, 0.8, 0.3])
    assert not agree.detector_agreement([(ref, relabelled)], capacity=10)["agrees"]
    rescored = _det([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 70]], [1, 2, 3], [0.9, 0.7, 0.3])
    assert not agree.detector_agreement([(ref, rescored)], capacity=10)["agrees"]  # |Δscore| 0.1 > 0.05
    # outputs truncated at 3 (top-k): the box at the other side's cut-off is searched for, not required
    cut = _det([[0, 0, 10, 10], [20, 20, 40, 40], [70, 70, 90, 90]], [1, 2, 4], [0.9, 0.8, 0.79])
    r = agree.match_detections(ref, cut, score_threshold=0.0, capacity=3)
    assert r["reference_boxes"] == 2 and r["matched_reference"] == 2  # 0.3 box is below 0.79 + margin
    assert agree.detector_agreement([(ref, cut)], capacity=3)["agrees"]
    # not truncated: the missing 0.3 box is required, so the outputs do not agree
    assert not agree.detector_agreement([(ref, cut)], capacity=10)["agrees"]


def test_ort_module_empty_input_uses_fallback(tmp_path):
    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)).eval()
    path = serve.export_onnx(head, (torch.rand(2, 3, 2, 2),), tmp_path / "h.onnx", input_names=["x"],
                             output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    module = serve.OrtModule(serve.ort_session(path, 1), fallback=head)
    x = torch.rand(5, 3, 2, 2)
    with torch.no_grad():
        assert torch.allclose(module(x), head(x), atol=1e-5)
        assert module(torch.zeros(0, 3, 2, 2)).shape == (0, 4)
    assert next(module.parameters()).device.type == "cpu"


@pytest.fixture(scope="module")
def val_images():
    return serve.validation_images(3)


@pytest.mark.slow
def test_fasterrcnn_hybrid_agrees_and_keeps_interface(val_images, tmp_path_factory):
    from clothingrec.detect import LIGHT_HEADS, TorchvisionPredictor

    heads = {k: v for k, v in LIGHT_HEADS.items() if k.endswith("_test")}
    pred = zoo.untrained_detector("fasterrcnn", min_size=160, images=val_images, logit_scale=10.0,
                                  box_detections_per_img=30, **heads)
    served = serve.fastest_predictor(pred, val_images, threads=1, workdir=tmp_path_factory.mktemp("rcnn"),
                                     rounds=1, repeats=1, score_threshold=0.05)
    assert isinstance(served, TorchvisionPredictor) and served is not pred
    assert served.category_names == pred.category_names and served.family == pred.family
    rows = {r["backend"]: r for r in served.serving["candidates"]}
    assert set(rows) == {"eager", "onnx-fp32", "onnx-fp32+int8-boxhead"}
    for name in ("onnx-fp32", "onnx-fp32+int8-boxhead"):
        a = rows[name]["agreement"]
        print(f"\nfasterrcnn {name}: {a['matched_reference']}/{a['reference_boxes']} eager boxes and "
              f"{a['matched_backend']}/{a['backend_boxes']} served boxes matched at IoU ≥ 0.9, "
              f"max |Δscore| {a['max_score_diff']:.2g}, min IoU {a['min_iou']:.4f}")
        assert a["reference_boxes"] >= 10, "the comparison must cover real boxes"
    fp32 = rows["onnx-fp32"]["agreement"]
    assert fp32["recall"] == 1.0 and fp32["precision"] == 1.0 and fp32["max_score_diff"] < 1e-3
    assert served.serving["agreement"]["agrees"]
    det = served.predict(val_images[0])
    assert isinstance(det, Detections) and det.masks is None and len(det) > 0


@pytest.mark.slow
def test_maskrcnn_hybrid_masks_agree(val_images, tmp_path):
    from clothingrec.serve.detector import RCNN_BACKENDS, hybrid_rcnn

    pred = zoo.untrained_detector("maskrcnn", min_size=128, images=val_images, logit_scale=10.0,
                                  box_detections_per_img=5, rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=50)
    import copy

    served = copy.copy(pred)
    served.model = hybrid_rcnn(pred.model, RCNN_BACKENDS["onnx-fp32"], threads=1, workdir=tmp_path)
    ref, got = pred.predict(val_images[0]), served.predict(val_images[0])
    assert got.masks is not None and got.masks.shape == ref.masks.shape
    a = agree.detector_agreement([(ref, got)], capacity=5)
    assert a["agrees"] and a["reference_boxes"] >= 3, a
    # the same boxes give the same masks (pixel IoU of the mask pairs, in the eager order)
    ious = [(m1 & m2).sum() / max(1, (m1 | m2).sum()) for m1, m2 in zip(ref.masks, got.masks) if m1.any()]
    assert ious and min(ious) >= 0.98, ious


@pytest.mark.slow
def test_yolo_onnx_agrees(val_images, tmp_path):
    from clothingrec.detect import YoloPredictor

    pred = zoo.untrained_yolo("yolov8n", imgsz=128, workdir=tmp_path, images=val_images)
    served = serve.fastest_predictor(pred, val_images[:2], threads=1, workdir=tmp_path, rounds=1, repeats=1)
    from clothingrec.serve.yolo_direct import DirectYoloPredictor

    assert isinstance(served, (YoloPredictor, DirectYoloPredictor))
    assert served.category_names == pred.category_names
    rows = {r["backend"]: r for r in served.serving["candidates"]}
    assert {"eager", "onnx-fp32", "onnx-fp32-direct"} <= set(rows)
    a = rows["onnx-fp32"]["agreement"]
    print(f"\nyolo onnx-fp32: {a['matched_reference']}/{a['reference_boxes']} boxes matched, "
          f"max |Δscore| {a['max_score_diff']:.2g}")
    assert a["reference_boxes"] > 0 and a["recall"] == 1.0 and a["precision"] == 1.0 and a["agrees"]


@pytest.mark.slow
def test_yolo_direct_path_gives_eagers_boxes_on_real_photos_of_any_shape(tmp_path):
    """The exported model called directly (own letterbox and NMS): eager's boxes, labels and scores on CCP
    photos, also turned landscape, shrunk and cropped (other paddings), with the committed trained YOLO
    when present, else the seeded stand-in."""
    from clothingrec.serve.detector import detector_candidates, evaluate_candidates
    from clothingrec.serve.yolo_direct import DirectYoloPredictor

    photos = serve.agreement_images(3)
    photos += [photos[0].transpose(1, 0, 2).copy(), photos[1][::3, ::2].copy(), photos[2][40:200, 10:300].copy()]
    pred, info = zoo.resolve("clothing-detector", "auto", family="yolo", imgsz=128, workdir=tmp_path, images=photos)
    candidates = detector_candidates(pred, backends=("onnx-fp32-direct",), threads=1, workdir=tmp_path)
    assert candidates["onnx-fp32-direct"]["error"] is None, candidates["onnx-fp32-direct"]["error"]
    served = candidates["onnx-fp32-direct"]["predictor"]
    assert isinstance(served, DirectYoloPredictor) and served.category_names == pred.category_names
    rows = {r["backend"]: r for r in evaluate_candidates(candidates, photos, rounds=1, repeats=1)}
    a = rows["onnx-fp32-direct"]["agreement"]
    print(f"\nyolo onnx-fp32-direct ({info.source}): {a['matched_reference']}/{a['reference_boxes']} eager boxes, "
          f"{a['matched_backend']}/{a['backend_boxes']} served, min IoU {a['min_iou']:.5f}, "
          f"max |Δscore| {a['max_score_diff']:.2g}")
    assert a["reference_boxes"] > 0, "the comparison must cover real boxes"
    # the same boxes up to float rounding; the greedy matcher may pair two near-equal-score boxes the other way
    assert a["recall"] >= 0.99 and a["min_iou"] >= 0.999 and a["max_score_diff"] < 1e-4 and a["agrees"]
    empty = served.predict(np.full((50, 70, 3), 114, np.uint8))
    assert empty.boxes_xyxy.shape == (0, 4) and len(empty) == 0
    with pytest.raises(ValueError, match="RGB"):
        served.predict(np.zeros((10, 10), np.uint8))


# ------------------------------------------------------------------ OpenVINO (issue 16, part 4)
from clothingrec.serve import openvino_backend as ovb  # noqa: E402 - imports without openvino installed

_OV_OK, _OV_WHY = ovb.available()
needs_openvino = pytest.mark.skipif(not _OV_OK, reason=f"OpenVINO candidate not testable here: {_OV_WHY}")


@needs_openvino
def test_classifier_openvino_agrees_with_eager_and_states_threads(classifier, test_split, tmp_path):
    """The classifier's OpenVINO backend (the same ONNX file, fp32) gives eager's top-1 on real photos."""
    x, _, _ = test_split
    entries = build_backends(classifier.model, classifier.imgsz, backends=("openvino-fp32",), threads=1,
                             workdir=tmp_path)
    assert entries["openvino-fp32"]["error"] is None, entries["openvino-fp32"]["error"]
    rows = {r["backend"]: r for r in evaluate_backends(entries, x[:96], rounds=1, repeats=2)}
    a = rows["openvino-fp32"]["agreement"]
    print(f"\nclassifier openvino-fp32: top-1 {a['top1_agreement']:.3f} of {a['n']}, "
          f"max |Δlogit| {a['max_abs_logit_diff']:.2g}")
    assert a["n"] == 96 and a["top1_agreement"] == 1.0 and a["agrees"]
    settings = ovb.compiled_settings(entries["openvino-fp32"]["module"].compiled)
    assert settings["INFERENCE_NUM_THREADS"] == "1" and settings["NUM_STREAMS"] == "1"
    assert settings["PERFORMANCE_HINT"] == "LATENCY" and settings["INFERENCE_PRECISION_HINT"] == "f32"


@needs_openvino
@pytest.mark.slow
def test_yolo_openvino_agrees_with_eager_on_real_photos(tmp_path):
    """ultralytics' OpenVINO export + backend: same boxes (IoU ≥ 0.9, same labels) as eager on CCP photos,
    with the committed trained YOLO when present (real boxes), else the seeded stand-in."""
    from clothingrec.detect import YoloPredictor
    from clothingrec.serve.detector import detector_candidates, evaluate_candidates

    photos = serve.agreement_images(3)
    pred, info = zoo.resolve("clothing-detector", "auto", family="yolo", imgsz=128, workdir=tmp_path, images=photos)
    candidates = detector_candidates(pred, backends=("openvino-fp32",), threads=1, workdir=tmp_path)
    assert candidates["openvino-fp32"]["error"] is None, candidates["openvino-fp32"]["error"]
    served = candidates["openvino-fp32"]["predictor"]
    assert isinstance(served, YoloPredictor) and served.category_names == pred.category_names
    assert served.ov_settings["INFERENCE_NUM_THREADS"] == "1" and served.ov_settings["NUM_STREAMS"] == "1"
    rows = {r["backend"]: r for r in evaluate_candidates(candidates, photos, rounds=1, repeats=1,
                                                         score_threshold=0.05)}
    a = rows["openvino-fp32"]["agreement"]
    print(f"\nyolo openvino-fp32 ({info.source}): {a['matched_reference']}/{a['reference_boxes']} eager boxes, "
          f"{a['matched_backend']}/{a['backend_boxes']} served boxes matched at IoU ≥ 0.9, "
          f"min IoU {a['min_iou']:.4f}, max |Δscore| {a['max_score_diff']:.2g}")
    assert a["reference_boxes"] > 0, "the comparison must cover real boxes"
    assert a["recall"] == 1.0 and a["precision"] == 1.0 and a["min_iou"] >= 0.9 and a["agrees"]


def _row(name, ms, agrees=True):
    return {"backend": name, "agreement": {"agrees": agrees}, "batch1": {"median_ms": ms}}


def test_chooser_picks_openvino_by_the_measured_rule():
    rows = [_row("eager", 13.2), _row("onnx-fp32", 8.4), _row("openvino-fp32", 6.1)]
    assert choose(rows)["backend"] == "openvino-fp32"                 # fastest that agrees
    rows[2]["agreement"]["agrees"] = False
    assert choose(rows)["backend"] == "onnx-fp32"                     # disagreeing: never served
    rows = [_row("eager", 10.0), _row("onnx-fp32", 9.8), _row("openvino-fp32", 9.5)]
    assert choose(rows)["backend"] == "eager"                         # 1.05x: within noise of eager
    rows = [_row("eager", 10.0), _row("onnx-fp32", 7.0), _row("openvino-fp32", 7.5)]
    assert choose(rows)["backend"] == "onnx-fp32"                     # measured, not preferred by name


def test_fastest_predictor_serves_the_measured_choice_and_states_threads(monkeypatch):
    """The detector path applies the same rule to measured rows and records the thread settings."""
    from clothingrec.serve import detector as D

    class Fake:
        family = "yolo"

        def __init__(self, name):
            self.name = name

    built = {n: Fake(n) for n in ("eager", "onnx-fp32", "openvino-fp32")}
    monkeypatch.setattr(D, "detector_candidates", lambda pred, **kw: {
        n: {"predictor": p, "build_s": 0.0, "error": None} for n, p in built.items()})
    timings = {"eager": 13.2, "onnx-fp32": 8.4, "openvino-fp32": 6.1}
    monkeypatch.setattr(D, "evaluate_candidates", lambda cands, images, **kw: [
        {**_row(n, ms), "speedup_vs_eager": 13.2 / ms} for n, ms in timings.items()])
    previous = torch.get_num_threads()
    try:
        served = D.fastest_predictor(built["eager"], [np.zeros((8, 8, 3), np.uint8)], threads=1)
    finally:
        torch.set_num_threads(previous)
    assert served.serving_backend == "openvino-fp32" and served.name == "openvino-fp32"
    t = served.serving["threads"]
    assert t["torch_num_threads"] == 1 and t["onnxruntime"]["intra_op_num_threads"] == 1
    assert t["openvino"] == {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                             "INFERENCE_PRECISION_HINT": "f32"}
    timings["openvino-fp32"] = 12.5  # now within noise of eager, and ORT the fastest
    served = D.fastest_predictor(built["eager"], [np.zeros((8, 8, 3), np.uint8)], threads=1)
    assert served.serving_backend == "onnx-fp32"
