"""Committed headline numbers re-score through today's code.

The curated runs under runs/results/ carry their weights and their metrics; re-evaluating those weights on
the same split through the library must give the committed figures:

- the classifier (MobileNetV3-small from scratch) on clothing-dataset-small's test split, loaded and
  predicted as notebook 10 does (``clothingrec.classify.report.evaluate``), scored with scikit-learn:
  accuracy and macro-F1 exactly as in its metrics.json;
- the YOLOv8n garment detector on the 201 CCP photos that notebook 06 evaluated, through the detection
  recipe's ``evaluate_run`` (the run's ``run.json`` names weights and split): the pycocotools bbox
  summary within 1e-3.  The run called those photos ``val`` (the 20 % of the earlier seeded 80/20 CCP
  draw); the three-way CCP split names the same photos ``test``.

Skipped only when a dataset folder is absent (``make data`` links them).
"""
from __future__ import annotations

import json

import pytest
import torch

from clothingrec.paths import CCP, CLOTHING_SMALL, RESULTS_DIR, find_dataset

CLASSIFIER_RUN = RESULTS_DIR / "classifier-mobilenet_v3_small-scratch"
#: the small-only row compared with the published ImageNet-pretrained baseline (SimCLR-pretrained here, 160 px)
HEADLINE_CLASSIFIER_RUN = RESULTS_DIR / "classifier-mobilenet_v3_small-scratch-mix-simclr-160"
YOLO_RUN = RESULTS_DIR / "detector-yolo-ccp"
YOLO_EVALUATION = RESULTS_DIR / "evaluation-detectors-ccp" / "detector-yolo-yolov8n-ccp" / "metrics.json"
#: the photos the committed CCP evaluation scored: sha256 of their sorted file names joined by newlines
#: (``0007.jpg`` … ``1000.jpg``; 201 of them), the digest rule of clothingrec run records
EVALUATED_IMAGES = (201, "b174a9efc950a3d8")


def _require(dataset: str):
    if find_dataset(dataset, required=False) is None:
        pytest.skip(f"dataset {dataset} is absent (data/{dataset}; `make data` links it)")


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
@pytest.mark.parametrize("run", [CLASSIFIER_RUN, HEADLINE_CLASSIFIER_RUN], ids=lambda p: p.name)
def test_committed_classifier_rescores_to_its_metrics(one_thread, run):
    _require(CLOTHING_SMALL)
    from sklearn.metrics import accuracy_score, f1_score

    from clothingrec.classify import report

    committed = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    weights = sorted(run.glob("*.pt"))
    assert weights, f"no committed classifier weights in {run}"
    ev = report.evaluate(weights[0], committed["split"], batch_size=64, device="cpu")
    assert len(ev.y_true) == committed["num_images"] and not ev.skipped
    assert accuracy_score(ev.y_true, ev.y_pred) == committed["accuracy"]
    assert f1_score(ev.y_true, ev.y_pred, average="macro") == pytest.approx(committed["macro_f1"], abs=1e-12)


@pytest.mark.slow
def test_committed_yolo_run_rescores_through_the_recipe(one_thread):
    """The run's record names its weights and split; ``evaluate_run`` re-prepares the data, finds the
    stored validation photos (today's ``test`` part, the run used the earlier 80/20 split), checks them
    against the record and scores them: the committed COCO summary within 1e-3."""
    _require(CCP)
    from clothingrec.detect import evaluate_run

    committed = json.loads(YOLO_EVALUATION.read_text(encoding="utf-8"))
    ev = evaluate_run(YOLO_RUN, device="cpu")
    assert (ev.record.split["val"]["images"], ev.record.split["val"]["digest"]) == EVALUATED_IMAGES
    assert ev.part == "test"
    stats = ev.evals["bbox"].stats
    assert stats["AP"] == pytest.approx(committed["bbox_AP"], abs=1e-3)
    assert stats["AP50"] == pytest.approx(committed["bbox_AP50"], abs=1e-3)
    assert stats == pytest.approx(committed["coco_stats"]["bbox"], abs=1e-3)
    smaller = evaluate_run(YOLO_RUN, device="cpu", imgsz=128)  # another inference size, recorded as such
    assert (smaller.predictor.imgsz, smaller.metrics["imgsz"], smaller.metrics["trained_imgsz"]) == (128, 128, 192)
    assert smaller.evals["bbox"].stats["AP50"] != pytest.approx(stats["AP50"], abs=1e-3)
