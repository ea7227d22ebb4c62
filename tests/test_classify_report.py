"""Classifier evaluation on two test sets (clothingrec.classify.report): in-domain clothing-dataset-small and
out-of-domain CCP garment crops, one evaluation code, scored by scikit-learn; the committed classifier's
out-of-domain numbers re-score exactly (slow; skipped only when ``data/ccp-crops`` is absent)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from clothingrec.classify import report
from clothingrec.classify.inference import export_weights, load_classifier
from clothingrec.classify.models import build_classifier
from clothingrec.datasets.ccp_crops import crops_dir, read_crops
from clothingrec.datasets.clothing_small import CLASSES
from clothingrec.paths import RESULTS_DIR

CLASSIFIER_RUN = RESULTS_DIR / "classifier-mobilenet_v3_small-scratch"
LABELS = list(range(len(CLASSES)))


def _sklearn(y_true, y_pred) -> dict:
    """The out-of-domain entry computed directly with scikit-learn."""
    return {"accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0),
            "per_class_recall": dict(zip(CLASSES, recall_score(y_true, y_pred, labels=LABELS, average=None,
                                                               zero_division=0).tolist())),
            "confusion": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(), "num_images": len(y_true)}


def _check_against_sklearn(entry: dict, y_true, y_pred):
    expected = _sklearn(y_true, y_pred)
    assert entry["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    assert entry["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-12)
    assert entry["per_class_recall"] == pytest.approx(expected["per_class_recall"], abs=1e-12)
    assert list(entry["per_class_recall"]) == list(CLASSES)
    assert entry["confusion"] == expected["confusion"] and entry["num_images"] == expected["num_images"]
    assert entry["per_class_support"] == {c: int(np.sum(np.asarray(y_true) == i)) for i, c in enumerate(CLASSES)}


def test_ood_metrics_are_sklearns_with_every_class_a_label():
    """Hand-made labels with a class absent from the test set (shorts) and one never predicted."""
    y_true = np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 6, 8, 9, 9])
    y_pred = np.array([0, 2, 1, 2, 2, 9, 3, 4, 2, 6, 6, 0, 7, 9, 2])
    ev = report.Evaluation(y_true, y_pred, np.eye(10)[y_pred], [f"{i}.jpg" for i in range(len(y_true))],
                           CLASSES, "test", [], float("nan"), report.OOD_DATASET)
    entry = report.ood_metrics(ev)
    _check_against_sklearn(entry, y_true, y_pred)
    assert entry["per_class_recall"]["shorts"] == 0.0 and entry["per_class_support"]["shorts"] == 0
    assert (entry["dataset"], entry["split"]) == ("ccp-crops", "test")
    # side by side: one column per set, percent, rounded like the classification table
    inside = report.Evaluation(y_true, y_true, np.eye(10)[y_true], ev.paths, CLASSES, "test", [], 1.0)
    table = report.side_by_side({"in": inside, "out": ev})
    assert table.loc["accuracy", "in"] == 100.0 and table.loc["accuracy", "out images"] == len(y_true)
    assert table.loc["macro-F1", "out"] == round(100 * entry["macro_f1"], 2)
    assert table.loc["recall longsleeve", "out"] == round(100 * 2 / 3, 2)
    # metrics.json: in-domain fields unchanged at the top level, out-of-domain under its own key
    record = report.metrics_record(inside, name="x", model="m", imgsz=32, params=1, provenance={}, ood=ev)
    assert record["accuracy"] == 1.0 and record["num_images"] == len(y_true) and record["split"] == "test"
    assert record[report.OOD_KEY] == entry and report.OOD_KEY == "ood_ccp_crops"
    assert report.OOD_KEY not in report.metrics_record(inside, name="x", model="m", imgsz=32, params=1, provenance={})


def _tiny_crops(root, counts: dict[str, int], seed: int = 0):
    """A crop folder in ``data/ccp-crops``'s layout (``test/<class>/*.jpg``), coloured noise."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        folder = root / "test" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            size = (int(rng.integers(30, 60)), int(rng.integers(30, 60)))
            img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            img[:, :, CLASSES.index(name) % 3] = 40 * (CLASSES.index(name) % 6)
            Image.fromarray(img).save(folder / f"{i:04d}_0.jpg", quality=95)
    return root


def _tiny_weights(path, images):
    """An untrained mobilenet_v3_small whose head spreads ``images`` over the classes: random directions of
    the centred penultimate features, scaled so logits differ by units (no near ties between code paths)."""
    from clothingrec.classify.inference import EvalTransform

    torch.manual_seed(0)
    model = build_classifier("mobilenet_v3_small", num_classes=len(CLASSES), pretrained=None).eval()
    with torch.no_grad():
        x = torch.stack([EvalTransform(32, 36)(p) for p in images])
        feats = model.classifier[:-1](torch.flatten(model.avgpool(model.features(x)), 1))
        direction = torch.randn(len(CLASSES), feats.shape[1])
        centre = feats.mean(0)
        scale = 10.0 / ((feats - centre) @ direction.T).std()
        model.classifier[-1].weight.copy_(direction * scale)
        model.classifier[-1].bias.copy_(-(centre @ direction.T) * scale)
    return export_weights(model, path, arch="mobilenet_v3_small", classes=CLASSES, imgsz=32, resize_size=36)


def test_ood_evaluation_on_a_tiny_crop_index_gives_sklearns_numbers(tmp_path):
    counts = {"dress": 3, "hat": 1, "longsleeve": 2, "pants": 4, "shoes": 5, "skirt": 2, "t-shirt": 1}
    root = _tiny_crops(tmp_path / "ccp-crops", counts)
    weights = _tiny_weights(tmp_path / "tiny.pt", sorted(root.glob("test/*/*.jpg")))
    ev = report.evaluate_ood(weights, "test", root, device="cpu", threads=1, cache_store=False)
    assert (ev.dataset, ev.split, len(ev.y_true)) == ("ccp-crops", "test", 18)
    assert [why for _, why in ev.skipped] == ["no images for classes: outwear, shirt, shorts"]
    index = read_crops("test", root)
    assert [str(r.path) for r in index.records] == ev.paths
    assert ev.y_true.tolist() == index.labels
    # predictions: the classifier's own per-image path (EvalTransform), independent of the batch store
    loaded = load_classifier(weights)
    direct = loaded.predict(ev.paths).indices.numpy()
    assert ev.y_pred.tolist() == direct.tolist()
    assert len(set(direct.tolist())) > 1, "the tiny model should not predict one class for everything"
    _check_against_sklearn(report.ood_metrics(ev), index.labels, direct)
    # one evaluation code: the same folder read as a clothing-dataset-small split scores the same
    same = report.evaluate(weights, "test", root, device="cpu", threads=1, cache_store=False)
    assert same.y_pred.tolist() == ev.y_pred.tolist() and same.dataset == report.IN_DOMAIN
    # a seeded subset per class, as the smoke notebook takes
    sub = report.evaluate_ood(weights, "test", root, eval_per_class=2, device="cpu", threads=1, cache_store=False)
    assert len(sub.y_true) == sum(min(2, n) for n in counts.values())


def test_unfinished_training_runs_are_not_evaluated_by_default(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RuntimeError, match="still training"):
        report.finished_run(run)
    (run / "mobilenet_v3_small.pt").write_bytes(b"x")
    summary = run / "train_summary.json"
    summary.write_text(json.dumps({"stopped_reason": "time_budget_h (1.1 h) at the end of epoch 7: resume"}))
    with pytest.raises(RuntimeError, match="unfinished"):
        report.finished_run(run)
    summary.write_text(json.dumps({"stopped_reason": "max_epochs"}))
    assert report.finished_run(run) == run


@pytest.mark.slow
def test_committed_classifier_ood_numbers_rescore_exactly():
    if not (crops_dir() / "test").is_dir():
        pytest.skip(f"{crops_dir()} is absent (`make data` builds it)")
    committed = json.loads((CLASSIFIER_RUN / "metrics.json").read_text(encoding="utf-8"))
    assert report.OOD_KEY in committed, "the committed classifier's metrics.json has no out-of-domain numbers"
    entry = committed[report.OOD_KEY]
    previous = torch.get_num_threads()
    try:
        ev = report.evaluate_ood(CLASSIFIER_RUN / "mobilenet_v3_small.pt", "test", batch_size=64, device="cpu",
                                 threads=1, cache_store=False)
    finally:
        torch.set_num_threads(previous)
    assert len(ev.y_true) == entry["num_images"] and not ev.skipped
    rescored = report.ood_metrics(ev)
    assert rescored["confusion"] == entry["confusion"]
    assert rescored["accuracy"] == entry["accuracy"]
    assert rescored["macro_f1"] == pytest.approx(entry["macro_f1"], abs=1e-12)
    assert rescored["per_class_recall"] == pytest.approx(entry["per_class_recall"], abs=1e-12)
    _check_against_sklearn(entry, ev.y_true, ev.y_pred)


def _ablation_run(root, name, cfg, val_f1, val_acc):
    import json

    import pandas as pd

    run = root / name
    run.mkdir()
    (run / "train_summary.json").write_text(json.dumps(
        {"config": cfg, "monitor": "val_macro_f1", "epochs_run": len(val_f1), "fit_seconds": 600.0,
         "train_images_per_s": 50.0}))
    pd.DataFrame({"epoch": range(len(val_f1)), "val_acc": val_acc, "val_macro_f1": val_f1}).to_csv(
        run / "history.csv", index=False)
    return run


def test_ablation_table_shows_the_levers_that_differ_and_the_best_validation_epoch(tmp_path):
    from clothingrec.classify.report import ablation_table

    base = {"model": "mobilenet_v3_small", "imgsz": 128, "label_smoothing": 0.1, "mixup_alpha": None}
    a = _ablation_run(tmp_path, "plain", base, [0.5, 0.7, 0.6], [0.55, 0.72, 0.8])
    b = _ablation_run(tmp_path, "mix", {**base, "mixup_alpha": 0.2}, [0.4, 0.65, 0.75], [0.5, 0.7, 0.78])
    table = ablation_table([a, b])
    assert "mixup_alpha" in table and "imgsz" not in table and "label_smoothing" not in table
    # the epoch the monitor picked, not the best accuracy of any epoch
    assert table.loc["plain", "best epoch"] == 1 and table.loc["plain", "val acc (%)"] == 72.0
    assert table.loc["mix", "best epoch"] == 2 and table.loc["mix", "val macro-F1 (%)"] == 75.0
    # a pretraining run and the run started from it: labelled by objective and by the folder it started from
    c = _ablation_run(tmp_path, "pre", {**base, "objective": "simclr"}, [0.3, 0.4], [0.35, 0.45])
    d = _ablation_run(tmp_path, "ft", {**base, "init_weights": "runs/09_train_classifier/pre"}, [0.6, 0.8], [0.6, 0.8])
    e = _ablation_run(tmp_path, "kd", {**base, "teachers": "runs/a, runs/b"}, [0.6, 0.7], [0.6, 0.7])
    table = ablation_table([a, c, d, e])
    assert table["objective"].tolist() == ["supervised", "simclr", "supervised", "supervised"]
    assert table["teachers"].fillna(0).tolist() == [0, 0, 0, 2]
    assert table["init_weights"].fillna("").tolist() == ["", "", "pre", ""]
    (b / "history.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"mix/history\.csv"):
        ablation_table([a, b])
