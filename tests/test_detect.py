"""torchvision detectors: data reading, augmentation, LR schedule, training lowers the loss, exact resume."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from clothingrec.detect import LIGHT_HEADS, TrainConfig, build_detector, load_detector, train
from clothingrec.detect.data import CocoDetection, EpochBatchSampler, hflip
from clothingrec.detect.engine import lr_lambda_factory
from clothingrec.weights import PretrainedWeightsUnavailable

SIZE = 64


def write_fixture(root, n=6, seed=0, size=SIZE):
    """n images with one or two solid shapes: red squares (category 1) and blue bars (category 2)."""
    rng = np.random.default_rng(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(1, n + 1):
        canvas = np.full((size, size, 3), 128, dtype=np.uint8)
        for k in range(1 + i % 2):
            cat = 1 + (i + k) % 2
            w, h = (30, 30) if cat == 1 else (16, 44)
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            canvas[y:y + h, x:x + w] = (220, 30, 30) if cat == 1 else (30, 30, 220)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0,
                         "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
        Image.fromarray(canvas).save(img_dir / f"{i:03d}.png")
        images.append({"id": i, "file_name": f"{i:03d}.png", "width": size, "height": size})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path, img_dir


def tiny_config(**kw):
    base = dict(family="fasterrcnn", backbone="mobilenet_v3_large_fpn", epochs=1, batch=2, lr=0.01,
                warmup_iters=2, min_size=SIZE, max_size=SIZE, threads=2, eval_every=0, hflip=0.5,
                model_kwargs=dict(LIGHT_HEADS), log_every=0)
    base.update(kw)
    return TrainConfig(**base)


def test_dataset_reads_boxes_masks_and_reports_bad_input(tmp_path):
    path, img_dir = write_fixture(tmp_path)
    coco = json.loads(path.read_text())
    coco["images"].append({"id": 50, "file_name": "gone.png", "width": SIZE, "height": SIZE})
    coco["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10],
                                "area": 0, "iscrowd": 0})
    path.write_text(json.dumps(coco))
    ds = CocoDetection(path, img_dir, masks=True)
    assert len(ds) == 6 and ds.num_classes == 3
    image, target = ds[1]  # image 2: one square
    assert image.shape == (3, SIZE, SIZE) and 0 <= float(image.min()) and float(image.max()) <= 1
    assert target["boxes"].shape == (1, 4) and target["masks"].shape == (1, SIZE, SIZE)
    x1, y1, x2, y2 = target["boxes"][0].tolist()
    assert target["masks"][0].sum() == pytest.approx((x2 - x1) * (y2 - y1), rel=0.15)
    report = "\n".join(ds.report)
    assert "gone.png" in report and "file_name" in report
    assert "annotation 99" in report and "'bbox'" in report


def test_hflip_mirrors_boxes_and_masks():
    image = torch.zeros(3, 10, 20)
    image[:, 2:5, 1:4] = 1
    masks = (image[:1] > 0).to(torch.uint8)
    target = {"boxes": torch.tensor([[1.0, 2.0, 4.0, 5.0]]), "labels": torch.tensor([1]), "masks": masks}
    flipped, t = hflip(image, target)
    assert t["boxes"].tolist() == [[16.0, 2.0, 19.0, 5.0]]
    ys, xs = torch.nonzero(t["masks"][0], as_tuple=True)
    assert xs.min() == 16 and xs.max() == 18
    assert torch.equal(flipped[:, 2:5, 16:19], image[:, 2:5, 1:4])


def test_flip_is_deterministic_per_epoch_and_index(tmp_path):
    path, img_dir = write_fixture(tmp_path)
    ds = CocoDetection(path, img_dir, hflip=0.5, seed=3)
    flips = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        flips.append([ds[i][1]["boxes"].tolist() for i in range(len(ds))])
    ds.set_epoch(2)
    assert [ds[i][1]["boxes"].tolist() for i in range(len(ds))] == flips[2]
    assert any(flips[0] != f for f in flips[1:])  # flips change between epochs


def test_epoch_batches_skip_and_split_by_rank():
    full = EpochBatchSampler(10, 3, seed=0, epoch=1)
    assert sorted(sum(full.batches, [])) == list(range(10)) and len(full) == 4
    assert EpochBatchSampler(10, 3, seed=0, epoch=1, skip_batches=2).batches == full.batches[2:]
    assert EpochBatchSampler(10, 3, seed=0, epoch=2).batches != full.batches
    r0 = EpochBatchSampler(10, 2, seed=0, epoch=0, rank=0, world_size=2)
    r1 = EpochBatchSampler(10, 2, seed=0, epoch=0, rank=1, world_size=2)
    assert sorted(sum(r0.batches, []) + sum(r1.batches, [])) == list(range(10))


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(warmup_iters=10, warmup_factor=0.001, scheduler="cosine")
    f = lr_lambda_factory(cfg, total_iters=100)
    values = [f(i) for i in range(100)]
    assert values[0] == pytest.approx(0.001)
    assert values[10] == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.1)))
    assert all(a < b for a, b in zip(values[:10], values[1:11]))
    assert values[99] < 0.05
    ms = lr_lambda_factory(TrainConfig(warmup_iters=0, scheduler="multistep", milestones=(0.5,)), 100)
    assert ms(49) == 1.0 and ms(50) == pytest.approx(0.1)


def test_builder_validates_and_pretrained_fails_fast_offline(monkeypatch):
    with pytest.raises(ValueError, match="family"):
        build_detector("retinanet", "resnet50_fpn", 3)
    with pytest.raises(ValueError, match="backbone"):
        build_detector("fasterrcnn", "vgg16", 3)
    with pytest.raises(ValueError, match="COCO-pretrained"):
        build_detector("maskrcnn", "resnet18_fpn", 3, pretrained="DEFAULT")
    monkeypatch.setenv("CLOTHINGREC_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")
    with pytest.raises(PretrainedWeightsUnavailable, match="fasterrcnn_mobilenet_v3_large_fpn"):
        build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, pretrained="DEFAULT")
    with pytest.raises(PretrainedWeightsUnavailable, match="resnet50"):
        build_detector("maskrcnn", "resnet50_fpn", 3, pretrained_backbone=True)


def _export_classifier(path, arch, seed=0):
    from clothingrec.classify.inference import export_weights
    from clothingrec.classify.models import build_classifier

    torch.manual_seed(seed)
    model = build_classifier(arch, num_classes=10)
    export_weights(model, path, arch=arch, classes=[str(i) for i in range(10)], imgsz=64, resize_size=72)
    return model


def test_a_classifier_trained_here_starts_the_rcnn_backbone(tmp_path):
    """pretrained_backbone naming a classifier the classifier recipe exported: the detector's backbone body holds
    its feature layers bit for bit (not its head), and trains whole with learning BatchNorm, as from scratch."""
    classifier = _export_classifier(tmp_path / "mobilenet_v3_large.pt", "mobilenet_v3_large")
    torch.manual_seed(1)
    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3,
                           pretrained_backbone=str(tmp_path / "mobilenet_v3_large.pt"))
    body = model.backbone.body.state_dict()
    theirs = {k.removeprefix("features."): v for k, v in classifier.state_dict().items() if k.startswith("features.")}
    assert set(body) <= set(theirs)
    assert all(torch.equal(body[k], theirs[k]) for k in body)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())
    assert all(p.requires_grad for p in model.backbone.parameters())
    torch.manual_seed(1)
    scratch = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3).backbone.body.state_dict()
    assert not torch.equal(scratch["0.0.weight"], body["0.0.weight"])

    resnet = _export_classifier(tmp_path / "resnet18.pt", "resnet18")
    body = build_detector("maskrcnn", "resnet18_fpn", 3, pretrained_backbone=tmp_path / "resnet18.pt").backbone.body
    assert torch.equal(body.state_dict()["layer4.1.conv2.weight"], resnet.state_dict()["layer4.1.conv2.weight"])

    with pytest.raises(ValueError, match="holds a resnet18, this backbone is a mobilenet_v3_large"):
        build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, pretrained_backbone=tmp_path / "resnet18.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a classifier exported"):
        build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, pretrained_backbone=str(tmp_path / "other.pt"))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, pretrained_backbone=str(tmp_path / "missing.pt"))


def test_pretrained_backbone_takes_a_classifier_run_folder_and_records_its_cost(tmp_path):
    """A classifier run folder stands for the weights its train_summary.json names (in the run, or beside the
    summary in a curated copy); the detector's record keeps the classifier's data and hours; YOLO refuses it."""
    from clothingrec.detect.config import DetectConfig
    from clothingrec.detect.recipe import started_from

    run = tmp_path / "runs" / "09_train_classifier" / "t"
    run.mkdir(parents=True)
    _export_classifier(run / "mobilenet_v3_large.pt", "mobilenet_v3_large")
    (run / "train_summary.json").write_text(json.dumps({
        "model": "mobilenet_v3_large", "weights": "runs/09_train_classifier/t/mobilenet_v3_large.pt",
        "best_score": 0.7, "monitor": "val_macro_f1", "fit_seconds": 1800.0, "device": "cpu", "epochs_run": 9,
        "config": {"threads": 2, "extra_train": "ccp-crops", "imgsz": 144, "dataset": None}}))
    cfg = DetectConfig(family="fasterrcnn", pretrained_backbone=str(run)).validate()
    assert cfg.pretrained_backbone_file() == str(run / "mobilenet_v3_large.pt")
    assert cfg.loop_config().pretrained_backbone == str(run / "mobilenet_v3_large.pt")
    assert DetectConfig(family="fasterrcnn", pretrained_backbone="DEFAULT").pretrained_backbone_file() == "DEFAULT"
    origin = started_from(cfg.pretrained_backbone_file())
    backbone = origin["backbone"]
    assert backbone["hours"] == pytest.approx(0.5) and backbone["core_hours"] == pytest.approx(1.0)
    assert backbone["extra_train"] == ["ccp-crops"] and backbone["best_val"] == 0.7
    assert backbone["dataset"].endswith("clothing-dataset-small") and "curve" not in origin
    with pytest.raises(FileNotFoundError, match="train_summary.json"):
        DetectConfig(family="fasterrcnn", pretrained_backbone=str(tmp_path)).pretrained_backbone_file()
    with pytest.raises(ValueError, match="pretrained_backbone is for the torchvision R-CNNs"):
        DetectConfig(family="yolo", pretrained_backbone=str(run)).validate()
    with pytest.raises(ValueError, match="give one"):
        DetectConfig(family="fasterrcnn", pretrained_backbone=str(run), init_weights=str(run)).validate()


def test_mask_model_forward_shapes():
    torch.manual_seed(0)
    model = build_detector("maskrcnn", "resnet18_fpn", 3, min_size=64, max_size=64, **LIGHT_HEADS).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 64, 80)])[0]
    assert set(out) >= {"boxes", "labels", "scores", "masks"}
    assert out["masks"].shape[1:] == (1, 64, 80)


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_checkpoint_predicts(tmp_path):
    path, img_dir = write_fixture(tmp_path, n=4)
    cfg = tiny_config(epochs=4, lr=0.01, hflip=0.0, eval_every=4, max_eval_images=2, scheduler="constant")
    res = train(path, img_dir, path, img_dir, tmp_path / "run", cfg, log=None)
    losses = res.steps["loss"].to_numpy()
    assert len(losses) == 8
    assert losses[-2:].mean() < 0.75 * losses[:2].mean(), losses
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(hist["epoch"]) == [1, 2, 3, 4] and "bbox_AP50" in hist and hist["bbox_AP50"].notna().iloc[-1]
    steps = pd.read_csv(tmp_path / "run" / "steps.csv")
    assert steps["lr"].iloc[0] < steps["lr"].iloc[-1]  # warmup stepped per iteration
    predictor = load_detector(tmp_path / "run", device="cpu")
    det = predictor.predict(np.asarray(Image.open(img_dir / "001.png").convert("RGB")))
    assert det.boxes_xyxy.shape[1] == 4 and set(det.labels.tolist()) <= {1, 2}
    assert predictor.category_names == {1: "square", 2: "bar"}


@pytest.mark.slow
def test_resume_after_interrupted_epoch_continues_from_saved_step(tmp_path):
    path, img_dir = write_fixture(tmp_path, n=4)  # 2 steps per epoch
    cfg = tiny_config(epochs=2, checkpoint_every_steps=1)
    ref = train(path, img_dir, path, img_dir, tmp_path / "ref", cfg, log=None)
    assert ref.global_step == 4 and not ref.interrupted

    stopped = train(path, img_dir, path, img_dir, tmp_path / "run", tiny_config(epochs=2, max_steps=3), log=None)
    assert stopped.interrupted and stopped.global_step == 3 and stopped.epoch == 1
    state = torch.load(stopped.last_checkpoint, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 1, 3)

    resumed = train(path, img_dir, path, img_dir, tmp_path / "run", cfg, resume=True, log=None)
    assert not resumed.interrupted and resumed.global_step == 4
    assert list(resumed.steps["step"]) == [1, 2, 3, 4]
    assert list(resumed.steps["step_in_epoch"]) == [1, 2, 1, 2]
    # same batches, flips, RNG and schedule: the resumed run ends where the uninterrupted one does
    assert np.allclose(resumed.steps["lr"], ref.steps["lr"])
    assert np.allclose(resumed.steps["loss"], ref.steps["loss"], rtol=1e-4, atol=1e-5)
    a = torch.load(ref.last_checkpoint, weights_only=False)["model"]
    b = torch.load(resumed.last_checkpoint, weights_only=False)["model"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key


@pytest.mark.slow
def test_time_budget_ends_at_an_epoch_boundary_with_its_evaluation(tmp_path):
    path, img_dir = write_fixture(tmp_path, n=4)  # 2 steps per epoch
    res = train(path, img_dir, path, img_dir, tmp_path / "run",
                tiny_config(epochs=3, time_limit_s=1e-6, eval_every=1, max_eval_images=2), log=None)
    assert res.interrupted and res.epoch == 1 and res.global_step == 2  # the first epoch ran whole, no more
    assert list(res.history["epoch"]) == [1] and res.history["bbox_AP50"].notna().all()
    state = torch.load(res.last_checkpoint, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 0)  # a resume starts the next epoch


def test_multi_scale_training_draws_train_sizes_and_keeps_the_evaluation_size(tmp_path):
    """train_min_sizes: every training image is resized to one of them; validation, the checkpoint and
    the reloaded model use min_size."""
    from clothingrec.detect.engine import training_sizes

    path, img_dir = write_fixture(tmp_path, n=4)
    cfg = tiny_config(epochs=2, train_min_sizes=(48, 96), train_max_size=96, eval_every=1, max_eval_images=2)
    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 2, None, min_size=SIZE, max_size=SIZE,
                           **LIGHT_HEADS)
    with training_sizes(model, cfg):
        assert (model.transform.min_size, model.transform.max_size) == ((48, 96), 96)
    assert (model.transform.min_size, model.transform.max_size) == ((SIZE,), SIZE)

    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    seen = {"train": set(), "eval": set()}
    original = GeneralizedRCNNTransform.resize

    def spy(self, image, target=None):
        image, target = original(self, image, target)
        seen["train" if self.training else "eval"].add(int(min(image.shape[-2:])))
        return image, target

    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GeneralizedRCNNTransform, "resize", spy)
        res = train(path, img_dir, path, img_dir, tmp_path / "run", cfg, log=None)
    assert not res.interrupted and res.history["bbox_AP50"].notna().all()
    assert seen["train"] == {48, 96}  # 8 images drawn at random: both sizes (fixed seed)
    assert seen["eval"] == {SIZE}
    assert load_detector(tmp_path / "run", device="cpu").model.transform.min_size == (SIZE,)


def test_repeat_factors_boost_images_of_rare_categories(tmp_path):
    """LVIS rule: r_c = max(1, sqrt(t / f_c)); an image takes its rarest category's factor."""
    from clothingrec.detect.data import repeat_factors

    path, img_dir = write_fixture(tmp_path, n=6)
    coco = json.loads(path.read_text())
    # make "bar" (category 2) rare: only image 1 keeps it
    coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] == 1 or a["image_id"] == 1]
    path.write_text(json.dumps(coco))
    ds = CocoDetection(path, img_dir)
    with_bar = [info["id"] == 1 for info in ds.images]
    r = repeat_factors(ds, 0.5)
    f_bar = 1 / len(ds)
    assert np.allclose(r[with_bar], np.sqrt(0.5 / f_bar))
    assert np.all(r[~np.array(with_bar)] == 1.0)  # squares are common (or images are empty): seen as before
    with pytest.raises(ValueError, match="repeat_threshold"):
        repeat_factors(ds, 0)


def test_epoch_indices_keep_every_image_and_a_fixed_length():
    from clothingrec.detect.data import epoch_indices, epoch_size

    r = np.array([1.0, 1.0, 2.5, 1.5, 3.0, 1.0])  # sums to a whole number: no rounding of the length
    counts = []
    for epoch in range(400):
        idx = epoch_indices(r, seed=0, epoch=epoch)
        assert len(idx) == epoch_size(r) == 10
        c = np.bincount(idx, minlength=len(r))
        assert np.all(c >= np.floor(r)) and np.all(c <= np.ceil(r))
        counts.append(c)
    assert np.allclose(np.mean(counts, axis=0), r, atol=0.1)  # on average r_i times
    assert np.array_equal(epoch_indices(r, seed=0, epoch=3), epoch_indices(r, seed=0, epoch=3))
    sampler = EpochBatchSampler(len(r), 3, seed=0, epoch=0, repeats=r)
    assert sorted(sum(sampler.batches, [])) == sorted(epoch_indices(r, seed=0, epoch=0).tolist())
    assert EpochBatchSampler(len(r), 3, seed=0, epoch=0, repeats=r, skip_batches=1).batches == sampler.batches[1:]
    with pytest.raises(ValueError, match="≥ 1"):
        epoch_indices([0.5, 1.0], seed=0, epoch=0)


def test_repeat_sampling_lengthens_the_epoch_and_init_weights_starts_from_a_run(tmp_path):
    path, img_dir = write_fixture(tmp_path, n=4)
    first = train(path, img_dir, path, img_dir, tmp_path / "a", tiny_config(epochs=1), log=None)
    assert first.global_step == 2
    # the second starts from the first's weights and sees the rarer category's images more often
    coco = json.loads(path.read_text())
    coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] == 1 or a["image_id"] == 1]
    path.write_text(json.dumps(coco))
    logged = []
    second = train(path, img_dir, path, img_dir, tmp_path / "b",
                   tiny_config(epochs=1, init_weights=str(first.last_checkpoint), repeat_threshold=1.0),
                   log=logged.append)
    assert any("weights from" in line for line in logged)
    line = next(line for line in logged if "repeat-factor" in line)
    # image 1 holds the bar, in 1 of 4 images: repeated sqrt(1 / 0.25) = 2 times → 5 images, 3 batches of 2
    assert "5 images per epoch from 4" in line and second.global_step == 3

    from clothingrec.detect.engine import load_init_weights

    state = torch.load(first.last_checkpoint, weights_only=False)
    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, None, min_size=SIZE, max_size=SIZE,
                           box_detections_per_img=100, **LIGHT_HEADS)
    load_init_weights(model, first.last_checkpoint, state["spec"], state["label_to_coco"], log=None)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state["model"].items())
    with pytest.raises(ValueError, match="maps labels"):
        load_init_weights(model, first.last_checkpoint, state["spec"], {1: 2, 2: 1}, log=None)
    with pytest.raises(ValueError, match="init_weights"):
        train(path, img_dir, path, img_dir, tmp_path / "c",
              tiny_config(family="maskrcnn", init_weights=str(first.last_checkpoint)), log=None)


def test_the_rcnn_predictor_keeps_every_score_down_to_its_threshold():
    # ultralytics (conf) and detectron2 (SCORE_THRESH_TEST) keep scores down to the predictor's
    # threshold; torchvision's R-CNN would drop everything under its own 0.05 first
    from clothingrec.detect.models import build_detector
    from clothingrec.detect.predictor import TorchvisionPredictor

    torch.manual_seed(0)
    classes = 30  # an untrained head scores about 1 / 31 per class: under 0.05
    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", classes + 1, min_size=96, max_size=160)
    names = {i: f"c{i}" for i in range(1, classes + 1)}
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    low = TorchvisionPredictor(model, {i: i for i in names}, names, score_threshold=0.001).predict(image)
    assert len(low.scores) > 0 and low.scores.min() >= 0.001 and low.scores.max() < 0.05
    high = TorchvisionPredictor(model, {i: i for i in names}, names, score_threshold=0.05)
    assert model.roi_heads.score_thresh == 0.05 and len(high.predict(image).scores) == 0
    with pytest.raises(ValueError, match="score threshold"):
        TorchvisionPredictor(model, {i: i for i in names}, names, score_threshold=5)


class _SquareFinder:
    """Finds the one bright square; sees it better on the left half, and only on the right calls it class 2 too."""

    category_names = {1: "square", 2: "right square"}

    def predict(self, image):
        from clothingrec.structures import Detections

        mask = image[..., 0] > 200
        ys, xs = np.nonzero(mask)
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        left = (box[0] + box[2]) / 2 < image.shape[1] / 2
        if left:
            return Detections([box], [1], [0.9], mask[None])
        return Detections([box, box], [1, 2], [0.6, 0.4], np.stack([mask, mask]))


def test_flip_tta_maps_the_mirror_view_back_and_merges_per_class():
    from clothingrec.detect.tta import FlipTTAPredictor

    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[10:20, 5:15] = 255
    tta = FlipTTAPredictor(_SquareFinder())
    assert tta.category_names == _SquareFinder.category_names and tta.iou == 0.5 and tta.tta == "hflip"
    det = tta.predict(image)
    # class 1 seen in both views at the same place: one box, the better score; class 2 only in the mirror view
    assert sorted(det.labels.tolist()) == [1, 2]
    np.testing.assert_allclose(det.boxes_xyxy, [[5, 10, 15, 20]] * 2)
    assert det.scores[det.labels == 1].tolist() == pytest.approx([0.9])
    assert all((m == (image[..., 0] > 200)).all() for m in det.masks)  # masks mirrored back too
    assert len(FlipTTAPredictor(_SquareFinder(), max_detections=1).predict(image)) == 1
    with pytest.raises(ValueError, match="merge IoU"):
        FlipTTAPredictor(_SquareFinder(), iou=0)
