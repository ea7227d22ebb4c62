"""The one detection recipe: config merge, one imgsz, stored leak-free splits, fit → run.json → evaluation."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clothingrec.convert import prepare_detection_dataset
from clothingrec.detect import SplitMismatch, evaluate_run, fit, load_config, load_detector
from clothingrec.detect.config import DetectConfig
from clothingrec.detect.engine import lr_lambda_factory
from clothingrec.detect.plots import plot_run
from clothingrec.detect.recipe import check_split, prepare, prepared_dir, reproduces, split_of, with_val_in_train
from clothingrec.evaluate.curves import learning_curve
from clothingrec.paths import PROJECT_ROOT, RESULTS_DIR
from clothingrec.runs import RunRecord


def test_config_merges_default_profile_file_and_parameters(tmp_path):
    smoke = load_config("smoke", family="fasterrcnn", epochs=3, lr=None)
    assert (smoke.epochs, smoke.lr, smoke.dataset, smoke.backend, smoke.task) == (
        3, 0.02, "synthetic-df2", "torchvision", "detect")
    yolo = load_config("smoke", family="yolo")
    assert (yolo.backend, yolo.model, yolo.epochs, yolo.batch) == ("ultralytics", "yolov8n", 2, 8)  # yolo-smoke.yaml
    assert load_config("smoke", family="maskrcnn").task == "segment"
    person = load_config("smoke", classes="person")
    assert (person.dataset, person.scheduler, person.name) == (
        "synthetic-pennfudan", "multistep", "person-fasterrcnn-mobilenet_v3_large_fpn-synthetic-pennfudan")
    user = tmp_path / "u.yaml"
    user.write_text("family: yolo\nbatch: 1\n")
    assert load_config("smoke", user).batch == 1
    user.write_text("bogus: 1\n")
    with pytest.raises(KeyError, match="u.yaml.*bogus"):
        load_config("smoke", user)
    with pytest.raises(FileNotFoundError, match="fasterrcnn-huge.yaml"):
        load_config("huge", family="fasterrcnn")
    with pytest.raises(ValueError, match="backend='detectron2' does not train fasterrcnn"):
        load_config("smoke", family="fasterrcnn", backend="detectron2")
    # papermill passes -r values as strings
    assert load_config("smoke", epochs="4", time_budget_h="0.5", max_images="none").max_images is None


def test_one_imgsz_is_the_longest_side_for_every_family():
    assert DetectConfig(family="fasterrcnn", imgsz=533).rcnn_sizes == (320, 533)
    loop = load_config("smoke", family="maskrcnn", imgsz=853).loop_config()
    assert (loop.min_size, loop.max_size) == (512, 853)


def test_notebook_06_reads_one_inference_size_or_one_per_run():
    from clothingrec.detect.recipe import inference_sizes

    runs = ["runs/03_train_yolo/a", "runs/04_train_fasterrcnn/b"]
    assert inference_sizes(None, runs) == [None, None] and inference_sizes(288, runs) == [288, 288]
    assert inference_sizes("288,587", runs) == [288, 587] and inference_sizes(" ,587", runs) == [None, 587]
    assert inference_sizes("320", runs) == [320, 320]
    with pytest.raises(ValueError, match="3 sizes for 2 runs"):
        inference_sizes("1,2,3", runs)
    with pytest.raises(ValueError, match="whole pixels"):
        inference_sizes("big,587", runs)
    with pytest.raises(ValueError, match="under 32"):
        inference_sizes("16,587", runs)


def test_train_imgsz_is_multi_scale_training_for_the_rcnns_only():
    cfg = load_config("smoke", family="fasterrcnn", imgsz=533, train_imgsz="448, 533,640")  # a make PARAMS text
    assert cfg.train_imgsz == [448, 533, 640] and cfg.rcnn_train_sizes == ((269, 320, 384), 640)
    loop = cfg.loop_config()
    assert (loop.min_size, loop.max_size, loop.train_min_sizes, loop.train_max_size) == (320, 533, (269, 320, 384), 640)
    plain = load_config("smoke", family="maskrcnn", imgsz=533).loop_config()
    assert (plain.train_min_sizes, plain.train_max_size) == ((), None)
    with pytest.raises(ValueError, match="ultralytics' own augmentation"):
        load_config("smoke", family="yolo", train_imgsz=[256, 320])
    with pytest.raises(ValueError, match="train_imgsz"):
        load_config("smoke", family="fasterrcnn", train_imgsz=[16])
    with pytest.raises(ValueError, match="train_imgsz 'big,533'"):
        load_config("smoke", family="fasterrcnn", train_imgsz="big,533")
    assert load_config("smoke", family="fasterrcnn", train_imgsz=640).train_imgsz == [640]  # papermill -p 640


def test_repeat_sampling_and_init_weights_reach_the_loop_and_are_checked(tmp_path):
    cfg = load_config("smoke", family="fasterrcnn", repeat_threshold=0.3)
    assert cfg.loop_config().repeat_threshold == 0.3 and cfg.loop_config().init_weights is None
    with pytest.raises(ValueError, match="ultralytics has no such sampler"):
        load_config("smoke", family="yolo", repeat_threshold=0.3)
    with pytest.raises(ValueError, match="repeat_threshold"):
        load_config("smoke", family="maskrcnn", repeat_threshold=-1)
    # a run folder stands for the weights its record names; a file is taken as it is
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"stand-in")
    RunRecord(task="detect", family="fasterrcnn", arch="mobilenet_v3_large_fpn", classes=["a"], category_ids=[1],
              dataset="x", imgsz=128, backend="torchvision", weights="checkpoints/best.pt").save(run)
    assert load_config("smoke", init_weights=str(run)).loop_config().init_weights == str(run / "checkpoints/best.pt")
    weights = str(run / "checkpoints" / "best.pt")
    assert load_config("smoke", init_weights=weights).init_weights_file() == weights
    with pytest.raises(ValueError, match="is a fasterrcnn run"):
        load_config("smoke", family="maskrcnn", init_weights=str(run)).loop_config()
    with pytest.raises(FileNotFoundError, match="neither a run folder nor a weights file"):
        load_config("smoke", init_weights=str(tmp_path / "nothing")).loop_config()
    with pytest.raises(ValueError, match="give one"):
        load_config("smoke", pretrained="DEFAULT", init_weights=weights)


def test_committed_cpu_configs_reproduce_the_curated_runs_sizes(tmp_path, monkeypatch):
    """`CONFIG=configs/detect/x.yaml` works from any folder (papermill runs in notebooks/), and the committed
    CPU configs give the input sizes the curated runs were trained with."""
    monkeypatch.chdir(tmp_path)
    for family in ("fasterrcnn", "maskrcnn"):
        by_root = load_config("smoke", f"configs/detect/{family}-ccp-cpu.yaml")
        assert by_root == load_config("smoke", f"{family}-ccp-cpu.yaml")
        assert (by_root.family, by_root.dataset, by_root.light_heads, by_root.rcnn_sizes) == (
            family, "ccp", True, (320, 533))
        assert 0 < by_root.time_budget_h <= 1
    person = load_config("smoke", "person-ccp-cpu").loop_config()
    stored = json.loads((RESULTS_DIR / "person-fasterrcnn-ccp" / "train_config.json").read_text())["config"]
    for key in ("min_size", "max_size", "lr", "batch", "epochs", "scheduler", "warmup_iters", "model_kwargs"):
        assert getattr(person, key) == stored[key], key
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("smoke", "configs/detect/nope.yaml")


def test_committed_configs_for_real_data_use_every_image():
    """default.yaml caps images for smoke runs; an experiment config on a real dataset that forgets to lift the
    cap would train on a handful of images and still finish."""
    configs = [p for p in sorted((PROJECT_ROOT / "configs" / "detect").glob("*.yaml")) if p.name != "default.yaml"]
    assert len(configs) >= 10
    for path in configs:
        cfg = load_config("smoke", str(path))
        if not cfg.dataset.startswith("synthetic"):
            assert (cfg.max_images, cfg.max_eval_images) == (None, None), path.name


@pytest.mark.parametrize("scheduler", ["multistep", "cosine"])
def test_person_full_schedule_warms_up_then_decays(scheduler):
    cfg = load_config("full", classes="person", scheduler=scheduler).loop_config()
    total = 1000
    f = lr_lambda_factory(cfg, total)
    assert f(0) < f(cfg.warmup_iters)
    assert f(total - 1) <= 0.02 * f(cfg.warmup_iters)
    if scheduler == "multistep":
        assert f(int(0.7 * total)) == pytest.approx(0.1)


def test_prepared_dir_names_a_users_folder_safely():
    assert prepared_dir("/data/my df2/", max_images=8).name == "data_my_df2-garments-detect-max8"


def _prepare(name, folder, **kw):
    return prepare_detection_dataset(name, folder, classes=kw.pop("classes", "person"), progress=False, **kw)


def test_split_is_disjoint_reproducible_and_checked(tmp_path):
    a = split_of(_prepare("synthetic-pennfudan", tmp_path / "a", max_images=12, seed=0))
    b = split_of(_prepare("synthetic-pennfudan", tmp_path / "b", max_images=12, seed=0))
    assert a == {k: {**v, "coco_json": a[k]["coco_json"], "image_dir": a[k]["image_dir"]} for k, v in b.items()}
    assert not set(a["train"]["files"]) & set(a["val"]["files"]) and a["val"]["images"] == len(a["val"]["files"]) > 0
    data = _prepare("synthetic-pennfudan", tmp_path / "c", max_images=12, seed=0)
    check_split(a, data)  # the same split: fine
    leaky = {"train": {**a["train"], "files": a["train"]["files"] + a["val"]["files"][:1]}, "val": a["val"]}
    with pytest.raises(SplitMismatch, match="were training images"):
        check_split(leaky, data)
    other = _prepare("synthetic-pennfudan", tmp_path / "d", max_images=12, seed=1)
    with pytest.raises(SplitMismatch, match="differs"):
        check_split(a, other)


def test_official_split_names_images_by_folder(tmp_path):
    """DeepFashion2's train and validation folders reuse file names: they are different images, not a leak."""
    split = split_of(prepare_detection_dataset("synthetic-df2", tmp_path / "df2", max_images=12, progress=False))
    assert all(f.startswith("train/") for f in split["train"]["files"])
    assert all(f.startswith("val/") for f in split["val"]["files"])


@pytest.mark.slow
def test_fit_writes_one_run_record_that_evaluation_and_loading_read(tmp_path):
    cfg = load_config("smoke", classes="person", epochs=1, imgsz=96, max_images=8, batch=2, threads=2)
    run = fit(cfg, tmp_path / "run", log=None)
    record = RunRecord.load(tmp_path / "run")
    assert (record.task, record.family, record.classes, record.category_ids) == (
        "detect", "fasterrcnn", ["person"], [1])
    assert record.weights == "checkpoints/best.pt" and record.imgsz == 96
    assert record.split["val"]["images"] == len(run.predictions.per_image) > 0
    assert record.config["classes"] == "person" and record.provenance["epochs_run"] == 1
    assert load_detector(tmp_path / "run", device="cpu").category_names == {1: "person"}
    again = evaluate_run(tmp_path / "run", device="cpu")  # re-prepared from the record, split checked
    assert again.metrics["bbox_AP"] == pytest.approx(record.metrics["bbox_AP"])
    assert (record.metrics["score_threshold"], record.metrics["tta"]) == (0.001, None)
    assert reproduces(record.metrics, again.metrics)
    flipped = evaluate_run(tmp_path / "run", device="cpu", tta=True)  # a setting to choose on val, recorded
    assert flipped.metrics["tta"] == "hflip" and not reproduces(record.metrics, flipped.metrics)
    assert len(flipped.predictions.per_image) == len(again.predictions.per_image)
    assert not reproduces({k: v for k, v in record.metrics.items() if k != "tta"}, again.metrics)  # older record
    larger = evaluate_run(tmp_path / "run", device="cpu", imgsz=160)  # another input size, same meaning
    transform = larger.predictor.model.transform
    assert (transform.min_size[-1], transform.max_size) == (96, 160) and larger.metrics["imgsz"] == 160
    assert larger.metrics["trained_imgsz"] == 96 and not reproduces(record.metrics, larger.metrics)
    assert load_detector(tmp_path / "run", device="cpu").model.transform.max_size == 96  # the trained size
    tighter = evaluate_run(tmp_path / "run", device="cpu", nms_iou=0.3)  # duplicate suppression, also a setting
    assert tighter.predictor.model.roi_heads.nms_thresh == 0.3 and tighter.metrics["nms_iou"] == 0.3
    assert again.metrics["nms_iou"] == 0.5 and not reproduces(again.metrics, tighter.metrics)
    with pytest.raises(ValueError, match="nms_iou"):
        load_detector(tmp_path / "run", device="cpu", nms_iou=0)
    assert "/" not in json.dumps(record.split["val"]["coco_json"])[:2]  # stored relative to the project
    # a resumed run whose data has another split is refused before training
    with pytest.raises(SplitMismatch):
        fit(cfg.replace(seed=3), tmp_path / "run", resume=True, log=None)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fasterrcnn", "yolo"])
def test_a_final_model_trains_on_train_and_val_and_only_test_scores_it(tmp_path, family):
    cfg = load_config("smoke", family=family, classes="person", epochs=1, imgsz=96, max_images=16, batch=2,
                      threads=2, train_on_val=True)
    plain = split_of(prepare(cfg))
    run = fit(cfg, tmp_path / "run", log=None)
    record = RunRecord.load(tmp_path / "run")
    assert "val" not in record.split and record.split["test"] == plain["test"]
    assert record.split["train"]["files"] == sorted(plain["train"]["files"] + plain["val"]["files"])
    assert Path(record.weights).name == "last.pt" and record.metrics["weights_chosen"] == "last epoch"
    assert run.evals == {} and record.metrics.get("bbox_AP50") is None  # nothing scored on images it saw
    assert not any(c.startswith("val") or c.endswith("AP50") for c in run.history)
    assert learning_curve(tmp_path / "run").empty  # no held-out curve to draw
    assert [p.name for p in plot_run(run, show=False)] == ["training_curves.png"]
    with pytest.raises(SplitMismatch, match="stored no val split"):
        evaluate_run(tmp_path / "run", device="cpu")
    test = evaluate_run(tmp_path / "run", part="test", device="cpu")
    assert test.metrics["split"] == "test" and len(test.predictions.per_image) == plain["test"]["images"]
    assert test.metrics["bbox_AP50"] is not None
    again = fit(cfg, tmp_path / "run", resume=True, log=None)  # a later sitting: the same merged split, and
    assert again.record.split == record.split and again.record.weights == record.weights  # nothing left to train


def _photos(coco: dict, image_dir: Path, label_dir: Path) -> list[tuple]:
    """Each image of a COCO part as (the photo its link reaches, its YOLO labels, its boxes)."""
    boxes = {}
    for a in coco["annotations"]:
        boxes.setdefault(a["image_id"], []).append(tuple(a["bbox"]))
    return sorted((os.path.realpath(image_dir / i["file_name"]),
                   (label_dir / Path(i["file_name"]).with_suffix(".txt").name).read_text(),
                   tuple(sorted(boxes.get(i["id"], [])))) for i in coco["images"])


@pytest.mark.parametrize("dataset", ["synthetic-pennfudan", "synthetic-df2"])  # drawn split / official split
def test_folding_val_into_train_keeps_every_image_and_annotation_once(tmp_path, dataset):
    data = prepare_detection_dataset(dataset, tmp_path / "prep", max_images=16, progress=False)
    merged = with_val_in_train(data)
    assert merged.splits == tuple(p for p in ("train", "test") if p in data.coco_json)
    parts = {p: json.loads(Path(data.coco_json[p]).read_text()) for p in ("train", "val")}
    coco = json.loads(Path(merged.coco_json["train"]).read_text())
    for key in ("images", "annotations"):
        assert len({x["id"] for x in coco[key]}) == len(coco[key]) == sum(len(c[key]) for c in parts.values())
    assert len({i["file_name"] for i in coco["images"]}) == len(coco["images"])  # DeepFashion2's names repeat
    # every photo once, with its own labels and boxes, whatever name it has in the merged part
    assert _photos(coco, merged.image_dir["train"], merged.label_dir["train"]) == sorted(
        x for p, c in parts.items() for x in _photos(c, data.image_dir[p], data.label_dir[p]))
    stale = merged.image_dir["train"] / "from-an-earlier-split.jpg"  # ultralytics lists the folder: gone
    stale.symlink_to(merged.image_dir["train"] / coco["images"][0]["file_name"])
    assert split_of(with_val_in_train(data)) == split_of(merged)  # a second run rebuilds the same part
    assert sorted(p.name for p in merged.image_dir["train"].iterdir()) == sorted(i["file_name"] for i in coco["images"])


def _prepare_df2(folder):
    data = prepare_detection_dataset("synthetic-df2", folder, max_images=12, progress=False)
    return data.reused, split_of(data)


def test_two_trainings_preparing_one_folder_at_once_take_turns(tmp_path):
    """Two runs started together (one per core) share runs/prepared/<name>: one converts, the other reuses."""
    from processes import at_once

    results = at_once(_prepare_df2, [(tmp_path / "prep",)] * 2)
    assert sorted(r for r, _ in results) == [False, True] and results[0][1] == results[1][1]
    again = prepare_detection_dataset("synthetic-df2", tmp_path / "prep", max_images=12, progress=False)
    assert again.reused and split_of(again) == results[0][1]


def test_find_runs_reads_run_folders_named_from_the_project_root(tmp_path, monkeypatch):
    from clothingrec.detect import find_runs

    monkeypatch.chdir(tmp_path)  # as in `make evaluate`: the notebook runs in another directory
    (tmp_path / "here").mkdir()
    found, missing = find_runs("runs/results/detector-yolo-ccp, here, runs/no-such-run")
    assert found == [PROJECT_ROOT / "runs" / "results" / "detector-yolo-ccp", Path("here")]
    assert missing == ["runs/no-such-run: no such run folder"]


def test_yolo_detect_model_on_outline_labels_gets_copy_paste():
    """train_labels=outlines gives a detect model the segment label set; ultralytics then keeps each garment's
    outline, which its copy_paste needs (on box labels it pastes nothing)."""
    import random

    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    with pytest.raises(ValueError, match="train_labels=outlines is for YOLO"):
        load_config("smoke", family="fasterrcnn", train_labels="outlines")
    with pytest.raises(ValueError, match="a segment model trains on outlines"):
        load_config("smoke", family="yolo", task="segment", train_labels="boxes")
    with pytest.raises(ValueError, match="train_labels='masks'"):
        load_config("smoke", family="yolo", train_labels="masks")
    counts = {}
    for labels in ("boxes", "outlines"):
        cfg = load_config("smoke", family="yolo", train_labels=labels)
        assert (cfg.task, cfg.label_task) == ("detect", {"boxes": "detect", "outlines": "segment"}[labels])
        data = prepare(cfg)
        assert data.root == prepared_dir(cfg.dataset, task=cfg.label_task, max_images=cfg.max_images).resolve()
        spec = check_det_dataset(str(data.yolo_yaml))
        for paste in (0.0, 1.0):
            hyp = get_cfg(overrides={"task": "detect", "imgsz": 128, "mosaic": 0.0, "copy_paste": paste,
                                     "copy_paste_mode": "mixup", "fliplr": 0.0, "scale": 0.0, "translate": 0.0})
            dataset = build_yolo_dataset(hyp, spec["train"], 1, spec, mode="train")
            random.seed(0)
            counts[labels, paste] = sum(len(dataset[i]["cls"]) for i in range(len(dataset)))
    assert counts["boxes", 0.0] == counts["outlines", 0.0] == counts["boxes", 1.0]
    assert counts["outlines", 1.0] > counts["outlines", 0.0]
