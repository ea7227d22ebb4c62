"""The person detector: leak-free stored split, configuration, a few real training steps, evaluation."""
from __future__ import annotations

import json

import pytest

from clothingrec import person
from clothingrec.convert import prepare_detection_dataset
from clothingrec.paths import CCP, find_dataset


def _prepare(name, folder, **kw):
    return prepare_detection_dataset(name, folder, classes=kw.pop("classes", "person"), progress=False, **kw)


def test_split_is_disjoint_and_reproducible(tmp_path):
    a = _prepare("synthetic-pennfudan", tmp_path / "a", max_images=12, seed=0)
    b = _prepare("synthetic-pennfudan", tmp_path / "b", max_images=12, seed=0, force=True)
    ra = person.SplitRecord.from_coco("synthetic-pennfudan", 0, a.coco_json)
    rb = person.SplitRecord.from_coco("synthetic-pennfudan", 0, b.coco_json)
    assert ra.train and ra.val
    assert not set(ra.train) & set(ra.val)
    assert (ra.train, ra.val) == (rb.train, rb.val)
    # a cap never moves an image across sides: the capped val set is part of the full one
    full = person.SplitRecord.from_coco("synthetic-pennfudan", 0, _prepare("synthetic-pennfudan", tmp_path / "c").coco_json)
    assert set(ra.val) <= set(full.val) and set(ra.train) <= set(full.train)
    assert not set(full.train) & set(full.val)
    # another seed is another split (so the seed is what fixes it)
    other = person.SplitRecord.from_coco("synthetic-pennfudan", 1, _prepare("synthetic-pennfudan", tmp_path / "d", seed=1).coco_json)
    assert other.val != full.val


@pytest.mark.skipif(find_dataset(CCP, required=False) is None, reason="CCP dataset not present")
def test_ccp_person_and_garment_splits_hold_out_the_same_photos(tmp_path):
    persons = _prepare("ccp", tmp_path / "p", max_images=20)
    garments = _prepare("ccp", tmp_path / "g", max_images=20, classes="garments")
    rp = person.SplitRecord.from_coco("ccp", 0, persons.coco_json)
    rg = person.SplitRecord.from_coco("ccp", 0, garments.coco_json)
    assert not set(rp.train) & set(rp.val)
    # the pipeline's evaluation photos (clothing val) are never person-detector training photos
    assert not set(rg.val) & set(rp.train)
    assert rp.val == rg.val


def test_stored_split_is_checked_before_evaluation(tmp_path):
    data = _prepare("synthetic-pennfudan", tmp_path / "data", max_images=12)
    record = person.record_split(data, tmp_path / "run", seed=0, max_images=12)
    stored = person.SplitRecord.load(tmp_path / "run")
    assert (stored.train, stored.val) == (record.train, record.val)
    assert json.loads((tmp_path / "run" / "split.json").read_text())["prepare"]["max_images"] == 12
    person.verify_split(stored, data.coco_json)  # same split: fine

    leaky = person.SplitRecord("synthetic-pennfudan", 0, stored.train + stored.val[:1], stored.val[1:])
    with pytest.raises(person.SplitMismatch, match="were training images"):
        person.verify_split(leaky, data.coco_json)
    moved = person.SplitRecord("synthetic-pennfudan", 0, stored.train[1:], stored.val + stored.train[:1])
    with pytest.raises(person.SplitMismatch, match="differs"):
        person.verify_split(moved, data.coco_json)
    with pytest.raises(person.SplitMismatch, match="both train and val"):
        person.SplitRecord("x", 0, ["a.png", "b.png"], ["b.png"]).check_disjoint()
    with pytest.raises(person.SplitMismatch, match="trained on"):
        person.verify_split(stored, data.coco_json, dataset="ccp")


def test_split_record_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="split.json"):
        person.SplitRecord.load(tmp_path)
    (tmp_path / "split.json").write_text(json.dumps({"dataset": "x", "seed": 0, "train": []}))
    with pytest.raises(ValueError, match=r"split.json has no field 'val'"):
        person.SplitRecord.load(tmp_path / "split.json")


def test_build_config_profiles_and_overrides():
    dataset, max_images, cfg = person.build_config("smoke")
    assert dataset == "synthetic-pennfudan" and max_images == 12
    assert (cfg.family, cfg.backbone, cfg.device) == ("fasterrcnn", "mobilenet_v3_large_fpn", "auto")
    assert cfg.model_kwargs and cfg.hflip == 0.5
    _, _, cfg = person.build_config("full", dataset="ccp", model="maskrcnn_resnet50_fpn", imgsz=300,
                                    scheduler="cosine", light_heads=False)
    assert (cfg.family, cfg.backbone, cfg.min_size, cfg.max_size) == ("maskrcnn", "resnet50_fpn", 300, 500)
    assert cfg.scheduler == "cosine" and cfg.model_kwargs == {}
    with pytest.raises(ValueError, match="family"):
        person.build_config("smoke", model="retinanet_resnet50_fpn")
    with pytest.raises(ValueError, match="person dataset"):
        person.build_config("smoke", dataset="deepfashion2")
    with pytest.raises(ValueError, match="profile"):
        person.build_config("huge")


@pytest.mark.parametrize("scheduler", ["multistep", "cosine"])
def test_learning_rate_schedule_steps(scheduler):
    from clothingrec.detect.engine import lr_lambda_factory

    _, _, cfg = person.build_config("full", dataset="ccp", scheduler=scheduler)
    total = 1000
    f = lr_lambda_factory(cfg, total)
    assert f(0) < f(cfg.warmup_iters)  # warmup rises
    assert f(total - 1) <= 0.02 * f(cfg.warmup_iters)  # and the schedule has decayed by the end
    if scheduler == "multistep":
        assert f(int(0.7 * total)) == pytest.approx(0.1)


def test_a_few_training_steps_then_leak_checked_evaluation(tmp_path):
    data = _prepare("synthetic-pennfudan", tmp_path / "data", max_images=8)
    _, _, cfg = person.build_config("smoke", imgsz=128, epochs=1, threads=2)
    cfg.max_steps = 2
    result = person.train_person(data, tmp_path / "run", cfg, max_images=8, log=None)
    assert result.global_step == 2 and (tmp_path / "run" / "split.json").is_file()
    assert len(result.steps) == 2 and {"loss", "lr"} <= set(result.steps.columns)
    evals, run, predictor = person.evaluate_run(tmp_path / "run", data, device="cpu")
    assert set(run.per_image) == {im["id"] for im in json.loads(data.coco_json["val"].read_text())["images"]}
    assert 0.0 <= evals["bbox"].stats["AP"] <= 1.0
    assert predictor.category_names == {1: "person"}
    # a resumed run on a different split is refused
    other = _prepare("synthetic-pennfudan", tmp_path / "other", max_images=8, seed=3)
    with pytest.raises(person.SplitMismatch):
        person.train_person(other, tmp_path / "run", cfg, max_images=8, resume=True, log=None)
    with pytest.raises(ValueError, match="classes='person'"):
        person.train_person(_prepare("synthetic-df2", tmp_path / "df2", max_images=8, classes="garments"),
                            tmp_path / "run2", cfg, log=None)
