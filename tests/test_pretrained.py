"""Every pretrained path, without a network: stand-in weight files where the real loaders look.

Each test writes random tensors in exactly the file name and format the real loader reads, in the
place it reads them from (torchvision: ``$TORCH_HOME/hub/checkpoints/<file of the weights URL>``;
ultralytics: ``weights/<name>.pt``; detectron2's model zoo: iopath's cache ``$FVCORE_CACHE/<URL path>``),
builds the model through the project's own code, checks that a tensor of the model equals the file's
(the weights were loaded, not re-initialised), and fine-tunes a step. The offline "missing file" error
is tested next to each.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from clothingrec.weights import PretrainedWeightsUnavailable

torch.set_num_threads(1)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty torch cache and iopath cache, no network (CLOTHINGREC_OFFLINE), weights/ in tmp."""
    import clothingrec.weights as weights_mod

    monkeypatch.setenv("CLOTHINGREC_OFFLINE", "1")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "iopath"))
    monkeypatch.setattr(weights_mod, "WEIGHTS_DIR", tmp_path / "weights")
    return tmp_path


def _randomise(state: dict, seed: int = 1234) -> dict:
    """Random float tensors (positive, so BatchNorm variances stay valid), other tensors as they are."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(v.shape, generator=gen) * 0.2 + 0.05).to(v.dtype) if v.is_floating_point() else v
            for k, v in state.items()}


def _torchvision_file(enum_member, state: dict) -> Path:
    """Save ``state`` where torchvision's ``load_state_dict_from_url`` finds the weights' file."""
    from clothingrec.weights import torch_checkpoint_dir

    path = torch_checkpoint_dir() / os.path.basename(urlparse(enum_member.url).path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _detector_step(model, num_classes: int, *, masks: bool = False) -> float:
    model.train()
    image = torch.rand(3, 64, 80)
    target = {"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0]]), "labels": torch.tensor([num_classes - 1])}
    if masks:
        m = torch.zeros(1, 64, 80, dtype=torch.uint8)
        m[0, 12:60, 10:50] = 1
        target["masks"] = m
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = sum(model([image], [target]).values())
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    return float(loss)


# ---- torchvision detectors: COCO weights → new heads for N classes ----------------------------
@pytest.mark.slow
def test_torchvision_coco_detector_to_new_heads(offline_cache):
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_FPN_Weights,
        fasterrcnn_mobilenet_v3_large_fpn,
    )

    from clothingrec.detect.models import build_detector

    torch.manual_seed(0)  # the stand-in weights and the step's image: not whatever earlier tests left in the RNG
    with pytest.raises(PretrainedWeightsUnavailable, match="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"):
        build_detector("fasterrcnn", "mobilenet_v3_large_fpn", num_classes=4, pretrained="DEFAULT")
    member = FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT
    coco = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91)
    state = _randomise(coco.state_dict())
    path = _torchvision_file(member, state)
    assert path.name == "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"

    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", num_classes=4, pretrained="DEFAULT",
                           min_size=64, max_size=80)
    key = "backbone.body.0.0.weight"
    assert torch.equal(model.state_dict()[key], state[key])                    # COCO backbone loaded
    assert torch.equal(model.state_dict()["rpn.head.conv.0.0.weight"], state["rpn.head.conv.0.0.weight"])
    assert model.roi_heads.box_predictor.cls_score.out_features == 4            # new head for 3 classes + bg
    coco_head = state["roi_heads.box_predictor.cls_score.weight"]
    assert not torch.equal(model.roi_heads.box_predictor.cls_score.weight[:4], coco_head[:4])
    before = model.roi_heads.box_predictor.cls_score.weight.detach().clone()
    _detector_step(model, 4)
    assert not torch.equal(before, model.roi_heads.box_predictor.cls_score.weight)  # fine-tuned


@pytest.mark.slow
def test_torchvision_imagenet_backbone(offline_cache):
    import torchvision
    from torchvision.models import ResNet18_Weights

    from clothingrec.detect.models import build_detector

    with pytest.raises(PretrainedWeightsUnavailable, match="resnet18-f37072fd.pth"):
        build_detector("maskrcnn", "resnet18_fpn", num_classes=3, pretrained_backbone="DEFAULT")
    state = _randomise(torchvision.models.resnet18().state_dict())
    _torchvision_file(ResNet18_Weights.DEFAULT, state)
    model = build_detector("maskrcnn", "resnet18_fpn", num_classes=3, pretrained_backbone="DEFAULT",
                           min_size=64, max_size=80)
    body = model.backbone.body
    assert torch.equal(body.conv1.weight, state["conv1.weight"])
    assert torch.equal(body.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert torch.equal(body.bn1.running_var, state["bn1.running_var"])         # FrozenBatchNorm2d, loaded
    _detector_step(model, 3, masks=True)
    assert torch.equal(body.conv1.weight, state["conv1.weight"])               # frozen stem stays as loaded


# ---- classifier: ImageNet → 10-class head ---------------------------------------------------------
@pytest.mark.slow
def test_classifier_imagenet_to_ten_classes(offline_cache):
    import torchvision
    from torchvision.models import MobileNet_V3_Small_Weights

    from clothingrec.classify.models import build_classifier

    with pytest.raises(PretrainedWeightsUnavailable, match="mobilenet_v3_small-047dcff4.pth"):
        build_classifier("mobilenet_v3_small", pretrained="DEFAULT")
    state = _randomise(torchvision.models.mobilenet_v3_small().state_dict())
    _torchvision_file(MobileNet_V3_Small_Weights.DEFAULT, state)
    model = build_classifier("mobilenet_v3_small", num_classes=10, pretrained="DEFAULT")
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(model.classifier[0].weight, state["classifier.0.weight"])  # the 1024-d layer too
    assert model.classifier[-1].out_features == 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = torch.nn.functional.cross_entropy(model.train()(torch.rand(4, 3, 64, 64)), torch.tensor([0, 3, 5, 9]))
    loss.backward()
    opt.step()
    assert not torch.equal(model.features[0][0].weight, state["features.0.0.weight"])


# ---- ultralytics: a yolov8n.pt name -------------------------------------------------------------
def _ultralytics_file(path: Path, yaml_name: str, seed: int = 7) -> torch.nn.Module:
    """An ultralytics checkpoint as its ``save_model`` writes it: the pickled model (half) + train_args."""
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel(yaml_name, nc=80, verbose=False)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data = torch.randn_like(module.weight) * 0.05
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"date": "2026-01-01", "version": ultralytics.__version__, "epoch": -1, "best_fitness": None,
                "model": model.half(), "ema": None, "updates": None, "optimizer": None,
                "train_args": {"task": "detect", "imgsz": 640}, "train_metrics": {}, "train_results": {}}, path)
    return model.float()


@pytest.mark.slow
def test_ultralytics_pretrained_name_loads_from_weights_folder(offline_cache, monkeypatch):
    import ultralytics
    from test_detect_yolo import write_yolo_fixture

    from clothingrec.detect.yolo import model_source, train_yolo

    with pytest.raises(PretrainedWeightsUnavailable, match="yolov8n.pt"):
        model_source("yolov8n", pretrained=True)
    stand_in = _ultralytics_file(offline_cache / "weights" / "yolov8n.pt", "yolov8n.yaml")
    assert model_source("yolov8n", pretrained=True) == str(offline_cache / "weights" / "yolov8n.pt")

    seen = {}

    class SpyYOLO(ultralytics.YOLO):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback("on_train_start", lambda trainer: seen.setdefault(
                "first_conv", trainer.model.model[0].conv.weight.detach().clone()))

    monkeypatch.setattr(ultralytics, "YOLO", SpyYOLO)
    data_yaml, _, _ = write_yolo_fixture(offline_cache / "data", n_train=4, n_val=2)
    run = train_yolo(data_yaml, offline_cache / "out", model="yolov8n", pretrained=True, epochs=1, imgsz=64,
                     batch=4, workers=0, device="cpu", name="yolo", plots=False, val=False)
    expected = stand_in.model[0].conv.weight.half().float()  # the file stores fp16
    assert torch.equal(seen["first_conv"].float(), expected)   # the file's weights, before the first step
    assert run.last is not None


# ---- ultralytics families a user names (MODEL=yolov5xu.yaml ...) --------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov5xu.yaml", "yolo11n.yaml", "yolov8n-seg.yaml"])
def test_ultralytics_model_names_build_and_train_a_step(name, tmp_path):
    from ultralytics import YOLO

    from clothingrec.detect.yolo import model_source

    assert model_source(name) == name
    yolo = YOLO(name)
    params = sum(p.numel() for p in yolo.model.parameters())
    if name == "yolov5xu.yaml":
        assert 95e6 < params < 99e6  # YOLOv5x scale (depth 1.33, width 1.25), anchor-free 'u' head
    task = "segment" if "-seg" in name else "detect"
    assert yolo.task == task
    model = yolo.model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    from ultralytics.cfg import get_cfg

    model.args = get_cfg()  # the loss gains (box, cls, dfl) a trainer gives the model
    batch = {"img": torch.rand(2, 3, 64, 64), "batch_idx": torch.tensor([0.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0]]), "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.4, 0.5, 0.2, 0.6]])}
    if task == "segment":
        masks = torch.zeros(2, 16, 16)
        masks[0, 4:12, 4:12] = 1
        masks[1, 2:14, 6:10] = 1
        batch["masks"] = masks
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss, _ = model.loss(batch)
    opt.zero_grad()
    loss.sum().backward()
    opt.step()
    assert torch.isfinite(loss).all()


def test_yolov5x_and_yolov5xu_are_one_anchor_free_model():
    """The published detector is YOLOv5x (ultralytics/yolov5, anchor-based head, 86.7 M parameters). The
    ultralytics package builds YOLOv5 only with its anchor-free ``Detect`` head ("YOLOv5u"): ``yolov5x.yaml``
    and ``yolov5xu.yaml`` are the same model (x scale: depth 1.33, width 1.25; 97.3 M parameters), the
    closest name here; the anchor-based original needs the ultralytics/yolov5 repository."""
    from ultralytics.nn.tasks import yaml_model_load

    x, xu = yaml_model_load("yolov5x.yaml"), yaml_model_load("yolov5xu.yaml")
    assert x["scale"] == xu["scale"] == "x" and x["backbone"] == xu["backbone"] and x["head"] == xu["head"]
    assert x["head"][-1][2] == "Detect" and x["scales"]["x"] == [1.33, 1.25, 1024]


# ---- detectron2 model zoo ---------------------------------------------------------------------
def _d2_available():
    from clothingrec.detect.detectron2_backend import detectron2_available

    return detectron2_available()


@pytest.mark.slow
@pytest.mark.skipif(not _d2_available(), reason="detectron2 is not installed")
def test_detectron2_model_zoo_weights_from_the_iopath_cache(offline_cache):
    from detectron2.modeling import build_model

    from clothingrec.detect import detectron2_backend as d2b
    from clothingrec.detect import load_config
    from clothingrec.detect.recipe import prepare

    data = prepare(load_config("smoke", family="maskrcnn", backend="detectron2", model="resnet50_fpn",
                               imgsz=64, max_images=8))
    args = (data.coco_json["train"], data.image_dir["train"], data.coco_json["val"], data.image_dir["val"])
    kwargs = dict(backbone="resnet50_fpn", num_classes=len(data.categories), iterations=1, batch=2,
                  min_size=38, max_size=64, device="cpu", pretrained=True)
    with pytest.raises(PretrainedWeightsUnavailable, match="model_final_f10217.pkl"):
        d2b.make_config(*args, offline_cache / "out", **kwargs)

    url, cached = d2b.zoo_weights_path("resnet50_fpn")
    assert str(cached).startswith(str(offline_cache / "iopath" / "detectron2" / "COCO-InstanceSegmentation"))
    # the model zoo's own format: a pickle of numpy arrays under "model", with "__author__"
    zoo_cfg = d2b.make_config(*args, offline_cache / "zoo", **{**kwargs, "pretrained": False})
    zoo_cfg.defrost()
    zoo_cfg.MODEL.ROI_HEADS.NUM_CLASSES = 80
    gen = torch.Generator().manual_seed(99)  # the model's own init, moved by noise: random, yet trainable
    state = {k: (v + 0.01 * torch.rand(v.shape, generator=gen)) if v.is_floating_point() else v
             for k, v in build_model(zoo_cfg).state_dict().items()}
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in state.items()}, "__author__": "Detectron2 Model Zoo"}, f)

    cfg = d2b.make_config(*args, offline_cache / "out", **kwargs)
    assert cfg.MODEL.WEIGHTS == url and cfg.MODEL.BACKBONE.FREEZE_AT == 2  # fine-tuning: the zoo's frozen stem
    trainer = d2b._trainer_class()(cfg)
    trainer.resume_or_load(resume=False)
    model = trainer.model
    key = "backbone.bottom_up.res3.0.conv1.weight"
    assert torch.equal(model.state_dict()[key], state[key])
    mask_fcn = "roi_heads.mask_head.mask_fcn1.weight"
    assert torch.equal(model.state_dict()[mask_fcn], state[mask_fcn])
    assert model.roi_heads.box_predictor.cls_score.out_features == len(data.categories) + 1  # new head
    trainer.train()  # one iteration
    assert (offline_cache / "out" / "model_final.pth").is_file()
    final = torch.load(offline_cache / "out" / "model_final.pth", map_location="cpu", weights_only=False)["model"]
    stem = "backbone.bottom_up.stem.conv1.weight"
    assert torch.equal(final[stem], state[stem])            # frozen at stage 2: unchanged by the step
    assert not torch.equal(final[key], state[key])          # res3 fine-tuned
    assert np.isfinite(final["roi_heads.box_predictor.cls_score.weight"].numpy()).all()


# ---- the published figures these pretrained paths reproduce -------------------------------------
def test_published_reference_rows_are_labelled_and_kept_apart():
    from clothingrec import compare
    from clothingrec.reference import references

    rows = {r.name: r for r in references()}
    mask = rows["published Mask R-CNN R101-FPN (DeepFashion2)"]
    assert mask.metrics == {"bbox_AP": 0.602, "bbox_AP50": 0.746, "bbox_AP75": 0.700, "segm_AP": 0.578,
                            "segm_AP50": 0.740}
    assert rows["published Faster R-CNN R50-FPN (DeepFashion2)"].metrics == {"bbox_AP50": 0.70}
    yolo = rows["published YOLOv5x (DeepFashion2)"]
    assert yolo.metrics == {"ultralytics_mAP50": 0.843, "ultralytics_mAP50_95": 0.738}
    assert "validator" in yolo.conditions and "bbox_AP" not in yolo.metrics  # not a pycocotools figure
    for ref in references("detector"):
        if ref.dataset == "DeepFashion2":   # labelled with data, weights and hardware
            assert ref.split == "validation" and "GPU" in ref.conditions and "pretrained" in ref.conditions
            assert {"weights", "hardware"} <= set(ref.extra) and "CCP" in ref.caveat
    mnv3, r50 = rows["published mobilenet_v3_small"], rows["published resnet50"]
    assert "40 epochs" in mnv3.conditions and "40 epochs" in r50.conditions
    assert mnv3.published_compute == {"macs": 62.5e6, "params": 2.54e6, "imgsz": 224, "num_classes": 1000}
    assert r50.published_compute == {"macs": 4.13e9, "params": 25.6e6, "imgsz": 224, "num_classes": 1000}
    # in the comparison they are reference rows of their own dataset, never measured rows
    table = compare.detector_table(compare.Collection(), {})
    df2 = table[table["dataset"] == "DeepFashion2/validation"]
    assert set(df2["source"]) == {"reference"} and len(df2) == 3
