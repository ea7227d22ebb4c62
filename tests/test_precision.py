"""Mixed precision: bf16 autocast steps on CPU (slower on this machine, but it must work), and the
fp16/bf16 choice on CUDA handed to Lightning and ultralytics in the form they expect."""
from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def test_resolve_precision_maps_devices_to_lightning_values(monkeypatch):
    from clothingrec.device import resolve_precision

    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda) == "bf16-mixed"          # Ampere and later
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", cuda) == "16-mixed"            # older GPUs: fp16 autocast + GradScaler
    assert resolve_precision("auto", torch.device("cpu")) == "32-true"
    assert resolve_precision("auto", torch.device("mps")) == "16-mixed"
    for explicit in ("bf16-mixed", "16-mixed", "32-true", "bf16-true"):
        assert resolve_precision(explicit, cuda) == explicit       # a user's choice is passed through
    from lightning.fabric.connector import _PRECISION_INPUT_STR

    assert {"bf16-mixed", "16-mixed", "32-true"} <= set(_PRECISION_INPUT_STR.__args__)


def test_yolo_amp_is_passed_to_ultralytics(tmp_path, monkeypatch):
    """ultralytics' AMP is fp16 autocast on CUDA (``amp=True``, its default; it has no bf16 switch);
    ``ultralytics: {amp: false}`` in a detection config turns it off."""
    import ultralytics

    from clothingrec.detect import load_config
    from clothingrec.detect.yolo import train_yolo

    seen = {}

    class FakeYOLO:
        def __init__(self, source, task=None):
            pass

        def train(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    cfg = load_config("smoke", family="yolo", ultralytics={"amp": False})
    train_yolo(tmp_path / "d.yaml", tmp_path / "o", model=cfg.model, epochs=1, imgsz=64, batch=2, device="0",
               **cfg.ultralytics)
    assert seen["amp"] is False and seen["device"] == "0"
    from ultralytics.cfg import get_cfg

    assert get_cfg().amp is True


@pytest.mark.slow
def test_classifier_step_in_bf16_mixed_on_cpu(tmp_path):
    from test_classify import CLASSES, make_dataset, tiny_config

    from clothingrec.classify.module import ClassifierModule
    from clothingrec.classify.training import train

    root = make_dataset(tmp_path / "data", per_class=2, splits=("train", "validation"))
    cfg = tiny_config(root, epochs=1, precision="bf16-mixed", precise_bn_batches=0)
    module = ClassifierModule(cfg, tuple(CLASSES))
    dtypes = []
    first_conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    result = train(cfg, tmp_path / "run", module=module)
    assert result.precision == "bf16-mixed" and result.global_step >= 1
    assert dtypes and set(dtypes) == {torch.bfloat16}              # autocast ran the convolutions in bf16
    assert module.model.classifier[-1].weight.dtype == torch.float32  # master weights stay fp32
    hist = result.history()
    assert torch.isfinite(torch.tensor(hist["train_loss"].dropna().to_numpy())).all()


@pytest.mark.slow
def test_torchvision_detector_step_under_cpu_bf16_autocast():
    from clothingrec.detect.engine import LIGHT_HEADS
    from clothingrec.detect.models import build_detector

    torch.manual_seed(0)
    model = build_detector("maskrcnn", "mobilenet_v3_large_fpn", num_classes=3, min_size=64, max_size=96,
                           **{**LIGHT_HEADS, "rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 100,
                              "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50,
                              "box_batch_size_per_image": 32}).train()
    dtypes = []
    model.backbone.body["0"].register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    image = torch.rand(3, 64, 96)
    mask = torch.zeros(1, 64, 96, dtype=torch.uint8)
    mask[0, 10:50, 20:70] = 1
    target = {"boxes": torch.tensor([[20.0, 10.0, 70.0, 50.0]]), "labels": torch.tensor([2]), "masks": mask}
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model([image], [target])
    loss = sum(losses.values())
    opt.zero_grad()
    loss.float().backward()
    opt.step()
    assert dtypes == [torch.bfloat16]
    assert all(torch.isfinite(v).all() for v in losses.values()) and {"loss_mask", "loss_classifier"} <= set(losses)
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model([image])[0]
    assert out["boxes"].shape[1] == 4


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_torchvision_detector_loop_trains_and_resumes_in_mixed_precision(tmp_path, precision):
    """The detection loop's `precision`: autocast in the forward pass, fp32 weights, fp16 with a GradScaler
    whose state is checkpointed and restored on resume (torchvision's references do this with --amp)."""
    from test_detect import tiny_config, write_fixture

    from clothingrec.detect import train
    from clothingrec.detect.engine import autocast_dtype

    path, img_dir = write_fixture(tmp_path, n=4)  # 2 steps per epoch
    cfg = tiny_config(epochs=2, precision=precision, threads=1)
    dtypes = []
    real_autocast = torch.autocast

    class Spy(real_autocast):
        def __enter__(self):
            if self._enabled:
                dtypes.append(self.fast_dtype)
            return super().__enter__()

    torch.autocast = Spy
    try:
        stopped = train(path, img_dir, path, img_dir, tmp_path / "run", tiny_config(
            epochs=2, precision=precision, threads=1, max_steps=3), log=None)
    finally:
        torch.autocast = real_autocast
    assert stopped.precision == precision and dtypes == [autocast_dtype(precision)] * 3
    state = torch.load(stopped.last_checkpoint, weights_only=False)
    assert state["precision"] == precision
    assert all(v.dtype in (torch.float32, torch.int64) for v in state["model"].values())  # master weights fp32
    assert (state["scaler"] is not None) == (precision == "16-mixed")
    resumed = train(path, img_dir, path, img_dir, tmp_path / "run", cfg, resume=True, log=None)
    assert resumed.global_step == 4 and list(resumed.steps["step"]) == [1, 2, 3, 4]
    assert np.isfinite(resumed.steps["loss"]).all()
    if precision == "16-mixed":  # the scale went on from the saved one, not from a fresh scaler's 65536
        saved = state["scaler"]["scale"]
        final = torch.load(resumed.last_checkpoint, weights_only=False)["scaler"]["scale"]
        assert final <= saved


def test_precision_reaches_each_detection_backend(tmp_path, monkeypatch):
    """One `precision` field: ultralytics gets amp (fp16 only), detectron2 SOLVER.AMP (fp16, CUDA only),
    the torchvision loop autocast; a combination a backend cannot do is refused before any data is read."""
    import ultralytics

    from clothingrec.detect import load_config
    from clothingrec.detect.recipe import _train_yolo, trained_precision

    with pytest.raises(ValueError, match="ultralytics' AMP is fp16 only"):
        load_config("smoke", family="yolo", precision="bf16-mixed").validate()
    with pytest.raises(ValueError, match="detectron2's AMP is fp16 only"):
        load_config("smoke", family="maskrcnn", backend="detectron2", precision="bf16-mixed").validate()
    with pytest.raises(ValueError, match="precision='fp16'"):
        load_config("smoke", family="fasterrcnn", precision="fp16").validate()
    assert load_config("smoke", family="fasterrcnn", precision="bf16-mixed").loop_config().precision == "bf16-mixed"

    seen = []

    class FakeYOLO:
        def __init__(self, source, task=None):
            pass

        def train(self, **kwargs):
            seen.append(kwargs)

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)

    class Data:
        yolo_yaml = tmp_path / "d.yaml"

    import clothingrec.detect.yolo as yolo_mod

    monkeypatch.setattr(yolo_mod, "yolo_history", lambda run: np.zeros(0))
    for precision, ultra, expected in (("32-true", {}, False), ("16-mixed", {}, True), ("auto", {}, None),
                                       ("16-mixed", {"amp": False}, False)):  # an explicit ultralytics arg wins
        cfg = load_config("smoke", family="yolo", precision=precision, ultralytics=ultra)
        _train_yolo(cfg, Data, tmp_path / "o", resume=False)
        assert seen[-1].get("amp") == expected, (precision, ultra)
    assert trained_precision(load_config("smoke", family="yolo", device="cpu")) == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert trained_precision(load_config("smoke", family="yolo", device="0,1")) == "16-mixed"
    assert trained_precision(load_config("smoke", family="fasterrcnn", device="cuda")) == "bf16-mixed"


def test_detectron2_precision_maps_to_its_amp_switch(tmp_path):
    pytest.importorskip("detectron2")
    from clothingrec.detect import detectron2_backend as d2b

    def make(**kw):
        return d2b.make_config(tmp_path / "t.json", tmp_path, tmp_path / "v.json", tmp_path, tmp_path / "o",
                               num_classes=2, iterations=4, **kw)

    assert make(device="cpu", precision="auto").SOLVER.AMP.ENABLED is False
    assert make(device="cpu", precision="32-true").SOLVER.AMP.ENABLED is False
    with pytest.raises(ValueError, match="needs CUDA"):
        make(device="cpu", precision="16-mixed")
    assert make(device="cuda", precision="16-mixed").SOLVER.AMP.ENABLED is True
    assert make(device="cuda", precision="auto").SOLVER.AMP.ENABLED is True
    with pytest.raises(ValueError, match="bf16-mixed"):
        make(device="cuda", precision="bf16-mixed")
