"""The detectron2 backend end to end (``family: maskrcnn, backend: detectron2``) on tiny synthetic data.

detectron2 is installed by ``make setup`` from ``../shared/wheels/detectron2-*.whl`` (its SOURCE.md);
without it these tests skip, except the "not installed" message, which hides the package itself.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from clothingrec.detect import detectron2_backend as d2b

needs_d2 = pytest.mark.skipif(
    not d2b.detectron2_available(),
    reason="detectron2 is not installed (make setup installs ../shared/wheels/detectron2-*.whl)")


def _hide_detectron2(monkeypatch):
    import sys

    monkeypatch.setattr(d2b, "find_spec", lambda name, *a: None)
    for name in [m for m in sys.modules if m == "detectron2" or m.startswith("detectron2.")]:
        monkeypatch.delitem(sys.modules, name)


def test_not_installed_message_names_how_to_get_it(monkeypatch, tmp_path):
    from clothingrec.detect import fit, load_config

    _hide_detectron2(monkeypatch)
    assert not d2b.detectron2_available()
    with pytest.raises(ImportError, match="not on PyPI.*backend='torchvision'"):
        d2b.require_detectron2()
    cfg = load_config("smoke", family="maskrcnn", backend="detectron2", model="resnet50_fpn", imgsz=64,
                      max_images=8, epochs=1)
    with pytest.raises(ImportError, match="needs the detectron2 package"):
        fit(cfg, tmp_path / "run")


def test_read_metrics_turns_metrics_json_into_history_and_steps(tmp_path):
    lines = [{"iteration": i, "total_loss": 4.0 - i, "loss_cls": 1.0, "loss_mask": 0.5, "lr": 0.01 * (i + 1),
              "time": 0.1} for i in range(4)]
    lines.append({"iteration": 3, "total_loss": 0.5, "loss_cls": 1.0, "loss_mask": 0.5, "lr": 0.04})  # resumed
    lines.append({"iteration": 3, "bbox/AP": 1.0})  # an evaluation line without losses
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    history, steps = d2b.read_metrics(tmp_path, iterations_per_epoch=2)
    assert steps["step"].tolist() == [1, 2, 3, 4] and steps["loss"].tolist() == [4.0, 3.0, 2.0, 0.5]
    assert history["epoch"].tolist() == [1, 2] and history["loss"].tolist() == [3.5, 1.25]
    assert history["lr"].tolist() == [0.02, 0.04] and history["iterations"].tolist() == [2, 4]
    from clothingrec.detect.plots import history_columns

    assert history_columns(history)[0] == ["loss", "loss_cls", "loss_mask"]
    assert d2b.read_metrics(tmp_path / "nothing", 2)[0].empty


@needs_d2
@pytest.mark.slow
def test_detectron2_trains_resumes_loads_scores_plots_and_runs_in_the_pipeline(tmp_path):
    from clothingrec.detect import fit, load_config, load_detector
    from clothingrec.detect.plots import plot_run
    from clothingrec.pipeline import Pipeline
    from clothingrec.runs import RunRecord
    from clothingrec.structures import Detections

    out = tmp_path / "run"
    cfg = load_config("smoke", family="maskrcnn", backend="detectron2", model="resnet50_fpn", imgsz=64,
                      max_images=8, epochs=1, device="cpu")
    run = fit(cfg, out)
    per_epoch = max(1, run.data.num_images["train"] // cfg.batch)
    record = RunRecord.load(out)
    # each epoch's checkpoint is scored on val by the one evaluation; the best bbox AP50 is the run's weights
    assert record.backend == "detectron2" and record.weights == "detectron2/model_best.pth"
    assert {"bbox_AP50", "segm_AP50", "train_seconds", "eval_seconds"} <= set(run.history.columns)
    assert (out / "detectron2" / "config.yaml").is_file() and (out / "detectron2" / "last_checkpoint").is_file()
    assert len(run.history) == 1 and len(run.steps) == per_epoch and np.isfinite(run.history["loss"]).all()
    assert {"bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50"} <= set(record.metrics)
    assert record.metrics["params"] > 40e6  # R50-FPN Mask R-CNN
    assert isinstance(run.predictor, d2b.Detectron2Predictor)

    # resume continues from the stored checkpoint: iterations per_epoch..2*per_epoch-1, none repeated
    run2 = fit(cfg.replace(epochs=2), out, resume=True)
    lines = (out / "detectron2" / "metrics.json").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines if "total_loss" in line]
    assert iterations == list(range(2 * per_epoch))
    assert run2.history["epoch"].tolist() == [1, 2] and run2.record.provenance["epochs_run"] == 2
    assert not run2.interrupted
    import torch

    state = torch.load(out / "detectron2" / "model_final.pth", map_location="cpu", weights_only=False)
    assert state["iteration"] == 2 * per_epoch - 1
    scored = d2b.read_epochs(out / "detectron2")
    assert [r["epoch"] for r in scored] == [1, 2] and run2.history["bbox_AP50"].notna().all()
    best_epoch = max(scored, key=lambda r: (r["bbox_AP50"], -r["epoch"]))["epoch"]
    best = torch.load(out / "detectron2" / "model_best.pth", map_location="cpu", weights_only=False)
    assert best["iteration"] == best_epoch * per_epoch - 1  # the first epoch with the highest val AP50
    from clothingrec.evaluate import learning_curve

    assert learning_curve(out)["epoch"].tolist() == [1, 2]  # the AP-per-core-hour curve reads it

    # fit scored the run through the common loader (load_detector) and the one evaluation: boxes and masks
    assert set(run2.evals) == {"bbox", "segm"}
    if run2.predictions.results:  # the mask numbers are pycocotools' own on the same detections
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt = COCO(str(run2.data.coco_json["val"]))
        direct = COCOeval(gt, gt.loadRes(run2.predictions.results), "segm")
        direct.evaluate(); direct.accumulate(); direct.summarize()  # noqa: E702
        assert run2.evals["segm"].stats["AP50"] == pytest.approx(float(direct.stats[1]), abs=1e-12)
    assert run2.predictions.per_image and isinstance(run2.predictor, d2b.Detectron2Predictor)
    predictor = load_detector(out, device="cpu", score_threshold=0.0)
    assert isinstance(predictor, d2b.Detectron2Predictor) and predictor.category_names == record.category_names
    image = np.zeros((64, 48, 3), dtype=np.uint8)
    image[10:50, 8:40] = (200, 40, 40)
    det = predictor.predict(image)
    assert isinstance(det, Detections) and (det.masks is None or det.masks.shape[1:] == (64, 48))
    assert set(det.labels.tolist()) <= set(record.category_ids)
    larger = load_detector(out, device="cpu", imgsz=96, nms_iou=0.6)  # settings of its own, as for every family
    assert (larger.cfg.INPUT.MIN_SIZE_TEST, larger.cfg.INPUT.MAX_SIZE_TEST) == (58, 96)
    assert larger.cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST == 0.6
    assert predictor.cfg.INPUT.MAX_SIZE_TEST == 64

    class OnePerson:
        family, category_names = "stub", {1: "person"}

        def predict(self, img):
            return Detections(np.array([[4.0, 4.0, 44.0, 60.0]]), np.array([1]), np.array([0.9]))

    result = Pipeline(OnePerson(), predictor).run(image, mode="two-stage")
    assert result.mode_used == "two-stage" and not result.fallback
    assert Pipeline(None, predictor).run(image, mode="direct").mode_used == "direct"
    saved = plot_run(run2, show=False, images=2)
    assert out / "training_curves.png" in saved and (out / "training_curves.png").stat().st_size > 0


@needs_d2
@pytest.mark.slow
def test_detectron2_time_budget_ends_a_sitting_at_an_epoch_boundary_and_resume_finishes_it(tmp_path):
    import yaml

    from clothingrec.detect import fit, load_config
    from clothingrec.runs import RunRecord

    out = tmp_path / "run"
    cfg = load_config("smoke", family="maskrcnn", backend="detectron2", model="resnet50_fpn", imgsz=64,
                      max_images=8, epochs=3, device="cpu", light_heads=True, time_budget_h=1e-6)
    first = fit(cfg, out)
    per_epoch = max(1, first.data.num_images["train"] // cfg.batch)
    assert first.interrupted and first.history["epoch"].tolist() == [1]
    assert (out / "detectron2" / "last_checkpoint").read_text().strip() == f"model_{per_epoch - 1:07d}.pth"
    assert RunRecord.load(out).weights == "detectron2/model_best.pth"  # epoch 1, scored before the stop
    dumped = yaml.safe_load((out / "detectron2" / "config.yaml").read_text())
    assert dumped["MODEL"]["ROI_HEADS"]["BATCH_SIZE_PER_IMAGE"] == 128  # light heads reach detectron2
    assert dumped["MODEL"]["RPN"]["POST_NMS_TOPK_TRAIN"] == 500

    rest = fit(cfg.replace(time_budget_h=None), out, resume=True)
    lines = (out / "detectron2" / "metrics.json").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines if "total_loss" in line]
    assert iterations == list(range(3 * per_epoch))  # nothing repeated, nothing skipped
    assert not rest.interrupted and rest.history["epoch"].tolist() == [1, 2, 3]
    assert [r["epoch"] for r in d2b.read_epochs(out / "detectron2")] == [1, 2, 3]


@needs_d2
def test_detectron2_r50_and_r101_fpn_build_from_the_model_zoo_configs(tmp_path):
    from detectron2.modeling import build_model

    params = {}
    for backbone in ("resnet50_fpn", "resnet101_fpn"):
        cfg = d2b.make_config(tmp_path / "t.json", tmp_path, tmp_path / "v.json", tmp_path, tmp_path / backbone,
                              backbone=backbone, num_classes=13, iterations=10, device="cpu")
        assert cfg.MODEL.RESNETS.DEPTH == (50 if backbone == "resnet50_fpn" else 101)
        assert cfg.SOLVER.STEPS == (6, 8) and cfg.MODEL.WEIGHTS == ""
        model = build_model(cfg)
        assert model.roi_heads.box_predictor.cls_score.out_features == 14
        params[backbone] = sum(p.numel() for p in model.parameters())
    assert 43e6 < params["resnet50_fpn"] < 45e6 and 62e6 < params["resnet101_fpn"] < 64e6
    with pytest.raises(ValueError, match="resnet18_fpn"):
        d2b.make_config(tmp_path / "t.json", tmp_path, tmp_path / "v.json", tmp_path, tmp_path / "x",
                        backbone="resnet18_fpn", num_classes=2)
    # repeat-factor sampling and a start from an earlier run: detectron2's own sampler and MODEL.WEIGHTS
    cfg = d2b.make_config(tmp_path / "t.json", tmp_path, tmp_path / "v.json", tmp_path, tmp_path / "rfs",
                          num_classes=2, repeat_threshold=0.3, init_weights=str(tmp_path / "model_final.pth"))
    assert cfg.DATALOADER.SAMPLER_TRAIN == "RepeatFactorTrainingSampler" and cfg.DATALOADER.REPEAT_THRESHOLD == 0.3
    assert cfg.MODEL.WEIGHTS == str(tmp_path / "model_final.pth") and cfg.MODEL.BACKBONE.FREEZE_AT == 0
