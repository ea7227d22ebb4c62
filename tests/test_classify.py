"""Clothing classifier: reader, store, augmentation, metrics, config, selection, a tiny run that learns."""
from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import classification_report, f1_score

from clothingrec.classify import (
    ClassifierConfig,
    build_classifier,
    config_fields,
    export_weights,
    load_classifier,
    load_config,
    predict,
    report,
    resolve_config,
    to_params,
)
from clothingrec.classify.augment import AugmentParams, eval_batch, train_batch
from clothingrec.classify.store import build_store
from clothingrec.datasets.clothing_small import CLASSES, read_split
from clothingrec.paths import NOTEBOOKS_DIR
from clothingrec.weights import PretrainedWeightsUnavailable

torch.set_num_threads(1)

# one colour and one stripe orientation per class: learnable from a few images
_COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40), (220, 40, 220),
            (40, 220, 220), (250, 150, 30), (120, 60, 20), (150, 150, 150), (20, 20, 20)]


def _write_image(path, label: int, rng: np.random.Generator, size=(40, 52)):
    w, h = size
    img = np.full((h, w, 3), _COLOURS[label], dtype=np.float32)
    if label % 2:
        img[::6] *= 0.4
    else:
        img[:, ::6] *= 0.4
    img += rng.normal(0, 12, img.shape)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path, quality=95)


def make_dataset(root, per_class: int = 6, splits=("train", "validation", "test"), seed: int = 0):
    rng = np.random.default_rng(seed)
    for split in splits:
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                _write_image(folder / f"{i:03d}.jpg", label, rng)
    return root


def tiny_config(root, **changes) -> ClassifierConfig:
    base = dict(name="tiny", dataset=str(root), imgsz=32, crop_frac=1.0, epochs=3, batch=20, lr=0.01,
                warmup_epochs=0, weight_decay=0.0, label_smoothing=0.0, sampler="shuffle", aug_scale_min=1.0,
                aug_ratio=1.0, aug_rotation=0, aug_hflip=0, aug_brightness=0, aug_contrast=0, aug_saturation=0,
                aug_hue=0, bn_momentum=0.1, precise_bn_batches=4, threads=1, store_workers=1, cache_store=False,
                device="cpu", lr_find=False)
    base.update(changes)
    return load_config(base)


# ---- reader and store -------------------------------------------------------------------------
def test_reader_fixed_class_order_and_skipped_items(tmp_path):
    make_dataset(tmp_path, per_class=2, splits=("train",))
    (tmp_path / "train" / "socks").mkdir()
    (tmp_path / "train" / "hat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "hat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "train" / "skirt" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    index = read_split("train", tmp_path)
    assert index.classes == CLASSES
    assert all(CLASSES[r.label] == r.class_name == r.path.parent.name for r in index.records)
    assert index.class_counts()["skirt"] == 3 and index.class_counts()["dress"] == 2
    reasons = {p.split("/")[-1]: why for p, why in index.skipped}
    assert "unknown class folder" in reasons["socks"]
    assert "not an image" in reasons["notes.txt"]
    assert reasons["empty.jpg"] == "empty file"
    store = build_store(index, 24, workers=1, cache=False)
    assert store.images.shape == (20, 3, 24, 24) and store.images.dtype == torch.uint8
    bad = [(p, why) for p, why in store.skipped if p.endswith("broken.jpg")]
    assert bad and "cannot decode" in bad[0][1]
    assert store.class_counts().tolist() == [2] * 10
    with pytest.raises(FileNotFoundError, match="validation"):
        read_split("validation", tmp_path)


def test_store_matches_inference_transform(tmp_path):
    make_dataset(tmp_path, per_class=1, splits=("train",))
    index = read_split("train", tmp_path)
    store = build_store(index, 40, workers=1, cache=False)
    x_store = eval_batch(store.images[:3], 32, channels_last=False)
    model = build_classifier("mobilenet_v3_small")
    path = export_weights(model, tmp_path / "m.pt", arch="mobilenet_v3_small", classes=CLASSES, imgsz=32,
                          resize_size=40)
    loaded = load_classifier(path)
    x_infer = torch.stack([loaded.transform(str(r.path)) for r in index.records[:3]])
    assert torch.allclose(x_store, x_infer)
    # exported weights reproduce the model; predict() on paths equals predict() on tensors
    model.eval()
    with torch.no_grad():
        direct = model(x_store).softmax(1)
    via_paths = predict(loaded, [str(r.path) for r in index.records[:3]])
    assert torch.allclose(via_paths.probs, direct, atol=1e-5)
    assert via_paths.labels == [CLASSES[i] for i in direct.argmax(1).tolist()]
    assert loaded.classes == CLASSES and loaded.imgsz == 32


def test_image_classifier_is_the_classifier_protocol(tmp_path):
    """Whole images and crops go through one preparation: a box equal to the image is ``classify(image)``."""
    from clothingrec.structures import Classification, Classifier

    torch.manual_seed(0)
    path = export_weights(build_classifier("mobilenet_v3_small"), tmp_path / "m.pt", arch="mobilenet_v3_small",
                          classes=CLASSES, imgsz=32, resize_size=40)
    clf = load_classifier(path)
    assert isinstance(clf, Classifier)
    image = (np.random.default_rng(0).random((70, 50, 3)) * 255).astype(np.uint8)
    whole = clf.classify(image)
    assert isinstance(whole, Classification) and whole.label in CLASSES and len(whole.probs) == len(CLASSES)
    assert clf.classify_crops(image, [[0, 0, 50, 70]]) == [whole]
    assert torch.allclose(torch.tensor(whole.probs), clf.predict([Image.fromarray(image)]).probs[0], atol=1e-6)
    crops = clf.classify_crops(image, np.array([[5.5, 5, 30, 45], [-3, -3, 80, 90], [49, 69, 60, 80]]))
    assert len(crops) == 3 and crops[1] == whole and all(0 <= c.score <= 1 for c in crops)
    assert clf.classify_crops(image, np.zeros((0, 4))) == []


def test_augmentation_geometry_is_exact_without_randomness():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=g)
    plain = AugmentParams(scale_min=1.0, ratio=1.0, hflip=0.0, rotation=0.0, brightness=0, contrast=0,
                          saturation=0, hue=0)
    same = train_batch(images, 16, plain, channels_last=False)
    assert torch.allclose(same, eval_batch(images, 16, channels_last=False), atol=1e-5)
    flipped = train_batch(images, 16, AugmentParams(**{**plain.__dict__, "hflip": 1.0}), channels_last=False)
    assert torch.allclose(flipped, eval_batch(images, 16, channels_last=False).flip(-1), atol=1e-5)
    full = AugmentParams()
    a = train_batch(images, 12, full, generator=torch.Generator().manual_seed(1))
    b = train_batch(images, 12, full, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 12, 12) and torch.equal(a, b) and a.is_contiguous(memory_format=torch.channels_last)


# ---- metrics --------------------------------------------------------------------------------
def test_metrics_match_scikit_learn_on_fixed_predictions():
    rng = np.random.default_rng(3)
    y_true = np.repeat(np.arange(10), [15, 12, 72, 38, 42, 26, 73, 30, 12, 52])
    y_pred = np.where(rng.random(len(y_true)) < 0.8, y_true, rng.integers(0, 10, len(y_true)))
    table = report.classification_table(y_true, y_pred)
    ref = classification_report(y_true, y_pred, target_names=list(CLASSES), output_dict=True, zero_division=0)
    for name in CLASSES:
        for col, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert table.loc[name, col] == pytest.approx(100 * ref[name][key], abs=0.006)
        assert table.loc[name, "num_samples"] == ref[name]["support"]
    assert table.loc["macro", "f1"] == pytest.approx(100 * ref["macro avg"]["f1-score"], abs=0.006)
    assert table.loc["weighted", "f1"] == pytest.approx(100 * ref["weighted avg"]["f1-score"], abs=0.006)
    correct = int((y_true == y_pred).sum())
    assert table.loc["test", "accuracy"].endswith(f"[{correct}/372]")
    summary = report.summary_metrics(y_true, y_pred)
    assert summary["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert summary["accuracy"] == pytest.approx(correct / 372)
    # the training-time metric (torchmetrics) agrees with scikit-learn
    from torchmetrics.classification import MulticlassF1Score
    tm = MulticlassF1Score(10, average="macro")(torch.as_tensor(y_pred), torch.as_tensor(y_true))
    assert float(tm) == pytest.approx(summary["macro_f1"], abs=1e-6)


@pytest.mark.parametrize("model", ["mobilenet_v3_small", "resnet50"])
def test_published_table_matches_its_confusion_matrix(model):
    """The transcribed per-class numbers are what scikit-learn computes from the published confusion matrix."""
    published = report.published_table(model)
    recomputed = report.published_table_from_confusion(model)
    assert list(published.index) == list(recomputed.index)
    numeric = published.drop(index="test")
    for row in numeric.index:
        for col in ("precision", "recall", "f1"):
            assert numeric.loc[row, col] == pytest.approx(recomputed.loc[row, col], abs=0.011), (row, col)
    assert published.loc["test", "accuracy"] == recomputed.loc["test", "accuracy"]


# ---- config ---------------------------------------------------------------------------------
def test_config_yaml_and_parameters_round_trip(tmp_path):
    for source in ("smoke", "full", "configs/classifier/resnet50_scratch.yaml"):
        cfg = load_config(source)
        assert load_config(str(_write(tmp_path / "c.yaml", cfg.to_yaml()))) == cfg
        assert resolve_config("smoke", None, to_params(cfg)) == cfg  # every field is a parameter
    # papermill -r gives strings; they are typed like the YAML
    cfg = resolve_config("smoke", None, {"lr": "0.003", "epochs": "4", "channels_last": "false", "pretrained": "None",
                                         "imgsz": None})
    assert (cfg.lr, cfg.epochs, cfg.channels_last, cfg.pretrained, cfg.imgsz) == (0.003, 4, False, None, 64)
    with pytest.raises(KeyError, match="unknown classifier config field 'lrr'"):
        load_config({"lrr": 1})
    with pytest.raises(ValueError, match="sampler"):
        load_config("smoke", sampler="oversample")
    # the notebook's parameters cell names every field, plus profile / config / output_dir
    import nbformat
    nb = nbformat.read(NOTEBOOKS_DIR / "09_train_classifier.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {t.id for node in ast.parse(cell.source).body for t in node.targets}
    assert names == set(config_fields()) | {"profile", "config", "output_dir"}


def _write(path, text):
    path.write_text(text)
    return path


# ---- models ---------------------------------------------------------------------------------
def test_build_classifier_names_and_offline_pretrained(monkeypatch):
    x = torch.randn(2, 3, 64, 64)
    for name in ("mobilenet_v3_small", "timm/resnet10t"):
        model = build_classifier(name, num_classes=10).eval()
        assert model(x).shape == (2, 10)
    monkeypatch.setenv("CLOTHINGREC_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")
    with pytest.raises(PretrainedWeightsUnavailable, match="mobilenet_v3_small"):
        build_classifier("mobilenet_v3_small", pretrained="DEFAULT")
    with pytest.raises(ValueError, match="unknown classifier backbone"):
        build_classifier("no_such_net_xyz")


# ---- training -------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_run_learns(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=6)
    cfg = tiny_config(root, epochs=8, imgsz=48, lr=0.003, averaging="none")
    result = train(cfg, tmp_path / "run")
    hist = result.history()
    assert hist["train_loss"].iloc[-1] < 0.6 * hist["train_loss"].iloc[0]
    ev = report.evaluate(result.weights_path, "train", dataset=root, device="cpu", cache_store=False)
    assert len(ev.y_true) == 60
    assert (ev.y_true == ev.y_pred).mean() > 0.3  # chance is 0.1
    # the exported weights are the selected checkpoint: they reproduce its validation score
    ev_val = report.evaluate(result.weights_path, "validation", dataset=root, device="cpu", cache_store=False)
    assert ev_val.metrics()["macro_f1"] == pytest.approx(result.best_score, abs=1e-4)
    record = report.metrics_record(ev, name="tiny", model=cfg.model, imgsz=cfg.imgsz, params=result.params,
                                   provenance={})
    from sklearn.metrics import f1_score

    assert record["kind"] == "classifier" and record["macro_f1"] == pytest.approx(
        f1_score(ev.y_true, ev.y_pred, labels=list(range(len(ev.classes))), average="macro", zero_division=0))
    assert (tmp_path / "run" / "logs" / "metrics.csv").is_file() and any((tmp_path / "run" / "tb").iterdir())
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["best_epoch"] == result.best_epoch


def train(cfg, out, **kwargs):
    from clothingrec.classify.training import train as _train
    return _train(cfg, out, **kwargs)


@pytest.mark.slow
def test_best_checkpoint_is_the_best_validation_epoch(tmp_path):
    from clothingrec.classify.module import ClassifierModule

    scripted = [0.2, 0.9, 0.5, 0.4]

    class Scripted(ClassifierModule):
        """Reports a fixed validation score per epoch and remembers the weights it had then."""

        snapshots: dict = {}

        def validation_step(self, batch, batch_idx):
            self.log("val_macro_f1", scripted[self.current_epoch], on_epoch=True, batch_size=1)

        def on_validation_epoch_end(self):
            self.snapshots[self.current_epoch] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    root = make_dataset(tmp_path / "data", per_class=2, splits=("train", "validation"))
    cfg = tiny_config(root, epochs=len(scripted))
    module = Scripted(cfg, CLASSES)
    result = train(cfg, tmp_path / "run", module=module)
    assert result.best_epoch == 1 and result.best_score == pytest.approx(0.9)
    exported = torch.load(result.weights_path, weights_only=False)["state_dict"]
    for key in ("features.0.0.weight", "classifier.3.weight"):
        assert torch.equal(exported[key], module.snapshots[1][key])
        assert not torch.equal(exported[key], module.snapshots[3][key])


@pytest.mark.slow
def test_swa_checkpoint_holds_the_validated_average(tmp_path):
    """With SWA the best checkpoint stores the averaged weights that were validated (not the raw ones)."""
    root = make_dataset(tmp_path / "data", per_class=3, splits=("train", "validation"))
    cfg = tiny_config(root, epochs=3, imgsz=40, lr=0.003, averaging="swa", swa_start=0.34)
    result = train(cfg, tmp_path / "run")
    ckpt = torch.load(result.best_checkpoint, weights_only=False)
    if result.best_epoch >= 1:  # averaging active from epoch 1
        assert "current_model_state" in ckpt and int(ckpt["averaging_state"]["n_averaged"]) == result.best_epoch
    ev_val = report.evaluate(result.weights_path, "validation", dataset=root, device="cpu", cache_store=False)
    assert ev_val.metrics()["macro_f1"] == pytest.approx(result.best_score, abs=1e-4)


# ---- recipe: mixup / cutmix, resumable chunks, batch-size finder ------------------------------
def test_mixup_and_cutmix_soft_targets_and_images():
    from clothingrec.classify.augment import mix_batch, smooth_targets

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 20, 20)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    base = smooth_targets(y, 10, 0.1)
    assert torch.allclose(base.sum(1), torch.ones(6)) and base[0, 0] == pytest.approx(0.91)
    seen = set()
    for _ in range(12):
        mixed, targets, info = mix_batch(x, y, 10, mixup_alpha=0.4, cutmix_alpha=1.0, smoothing=0.1, generator=gen)
        lam, perm = info["lam"], info["perm"]
        seen.add(info["kind"])
        assert torch.allclose(targets.sum(1), torch.ones(6), atol=1e-6)
        assert torch.allclose(targets, lam * base + (1 - lam) * base[perm], atol=1e-6)
        if info["kind"] == "mixup":  # the image is the same convex combination as its target
            assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm], atol=1e-6)
        else:  # cutmix: every pixel from one of the two images, the kept fraction is λ
            from_self = (mixed == x).all(dim=1)
            from_partner = (mixed == x[perm]).all(dim=1)
            assert (from_self | from_partner).all()
            kept = (from_self & ~from_partner).float().mean(dim=(1, 2))
            moved = perm != torch.arange(6)
            assert torch.allclose(kept[moved], torch.full_like(kept[moved], lam), atol=1e-6)
    assert seen == {"mixup", "cutmix"}
    # off: unchanged images, plain smoothed targets
    same, targets, info = mix_batch(x, y, 10, smoothing=0.1, generator=gen)
    assert info["kind"] == "none" and same is x and torch.equal(targets, base)


def _smoke(tmp_path, **changes):
    return load_config("smoke", **{"lr_find": False, "time_budget_h": None, "cache_store": False,
                                   "store_workers": 1, "device": "cpu", "train_per_class": 4,
                                   "eval_per_class": 2, **changes})


def _ckpt_state(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return (ckpt["global_step"], ckpt["optimizer_states"][0]["param_groups"][0]["lr"],
            ckpt["lr_schedulers"][0]["last_epoch"], int(ckpt["averaging_state"]["n_averaged"]))


@pytest.mark.slow
def test_resumed_run_continues_schedule_steps_and_ema(tmp_path):
    from lightning.pytorch.callbacks import Callback

    class StopAfterFirstEpoch(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.should_stop = True

    cfg = _smoke(tmp_path, epochs=2, batch=8, warmup_epochs=0.5, averaging="ema", mixup_alpha=0.2, cutmix_alpha=1.0,
                 schedule_time=False)
    full = train(cfg, tmp_path / "full")
    part = train(cfg, tmp_path / "chunked", extra_callbacks=[StopAfterFirstEpoch()])
    assert part.epochs_run == 1 and (tmp_path / "chunked" / "checkpoints" / "last.ckpt").is_file()
    resumed = train(cfg.replace(resume=str(tmp_path / "chunked")), tmp_path / "chunked")
    assert resumed.resumed_from and resumed.epochs_run == full.epochs_run == 2
    steps, lr, sched_steps, n_avg = _ckpt_state(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert steps == 2 * (40 // 8) == sched_steps == n_avg  # one EMA update per optimizer step
    assert _ckpt_state(tmp_path / "chunked" / "checkpoints" / "last.ckpt") == pytest.approx((steps, lr, steps, steps))
    assert lr == pytest.approx(cfg.lr * 0.01, rel=1e-3)  # the cosine ends at its floor after all chunks
    assert list(resumed.history()["epoch"]) == [0, 1]  # the CSV log continues
    # its cost is every sitting's (what a backbone record counts as the pretraining's hours)
    assert part.total_fit_seconds == part.fit_seconds
    assert resumed.total_fit_seconds == pytest.approx(part.fit_seconds + resumed.fit_seconds)
    summary = json.loads((tmp_path / "chunked" / "train_summary.json").read_text())
    assert summary["total_fit_seconds"] == pytest.approx(resumed.total_fit_seconds)
    # `resume: true` on a fresh folder starts from scratch
    from clothingrec.classify.training import resolve_resume
    assert resolve_resume("true", tmp_path / "new") is None and resolve_resume(None, tmp_path) is None


@pytest.mark.slow
def test_batch_size_finder_returns_a_power_of_two(tmp_path):
    cfg = _smoke(tmp_path, epochs=1, batch=4, batch_find=True, batch_find_trials=2)
    result = train(cfg, tmp_path / "run")
    assert result.batch_found and result.batch_found & (result.batch_found - 1) == 0
    assert result.batch_found >= cfg.batch and result.config.batch == 4


def test_epoch_sampler_order_is_a_function_of_seed_and_epoch():
    """What makes a resumed run draw what the uninterrupted one drew: the order depends on (seed, epoch) only."""
    from clothingrec.classify.data import EpochSampler, class_balanced_weights

    a, b = EpochSampler(50, seed=0), EpochSampler(50, seed=0)
    first = list(a)
    a.set_epoch(3)
    b.set_epoch(3)
    assert sorted(first) == list(range(50)) and list(a) == list(b) != first  # a permutation, fresh each epoch
    assert list(a) == list(a)                                                # iterating twice: the same epoch
    labels = torch.tensor([0] * 90 + [1] * 10)
    weighted = EpochSampler(len(labels), seed=1, weights=class_balanced_weights(labels, 2))
    draws = torch.tensor([int(labels[i]) for e in range(20) for i in (weighted.set_epoch(e) or weighted)])
    assert len(draws) == 2000 and 0.45 < float(draws.float().mean()) < 0.55  # class-balanced, with replacement


def test_extra_train_adds_a_second_training_set_only_to_train(tmp_path):
    """`extra_train`: the training store holds both sets; validation and test stay the dataset's own."""
    from clothingrec.classify.data import ClothingDataModule, with_extra_train
    from clothingrec.datasets.clothing_small import read_split

    main = make_dataset(tmp_path / "small", per_class=2)
    extra = make_dataset(tmp_path / "extra", per_class=3, splits=("train", "validation"), seed=1)
    dm = ClothingDataModule(tiny_config(main, extra_train=str(extra)))
    assert len(dm.store("train")) == 10 * (2 + 3)
    assert len(dm.store("validation")) == 10 * 2  # the extra set's validation images are not used
    merged = with_extra_train(read_split("train", main), str(extra))
    assert {r.path.parent.parent.parent for r in merged.records} == {main, extra}
    assert merged.class_counts() == dict.fromkeys(CLASSES, 5)
    with pytest.raises(ValueError, match="is neither 'ccp-crops', 'ccp-photos' nor a folder"):
        tiny_config(main, extra_train=str(tmp_path / "missing"))
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no training images"):
        with_extra_train(read_split("train", main), str(tmp_path / "empty"))


def test_extra_train_ccp_crops_are_the_train_part_of_the_shared_split():
    from clothingrec.classify.data import with_extra_train
    from clothingrec.datasets import ccp_crops
    from clothingrec.datasets.clothing_small import read_split

    if not ccp_crops.read_index().shape[0]:
        pytest.fail("data/ccp-crops is missing: run `make data`")
    small = read_split("train")
    merged = with_extra_train(small, "ccp-crops")
    added = merged.records[len(small.records):]
    assert len(added) == len(ccp_crops.read_crops("train").records) > 0
    test_photos = {p.name.split("_")[0] for p in (r.path for r in ccp_crops.read_crops("test").records)}
    assert not test_photos & {r.path.name.split("_")[0] for r in added}  # no test photo's garment is trained on


@pytest.mark.parametrize("monitor, mode", [("val_loss", "min"), ("val_macro_f1", "max"), ("val_acc", "max")])
def test_checkpoint_and_early_stopping_follow_the_monitor_direction(tmp_path, monitor, mode):
    from clothingrec.classify.training import build_callbacks

    callbacks = build_callbacks(tiny_config(tmp_path, monitor=monitor, patience=3), tmp_path)
    assert callbacks["checkpoint"].monitor == monitor and callbacks["checkpoint"].mode == mode
    assert callbacks["early_stopping"].mode == mode
