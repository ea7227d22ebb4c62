"""Model analysis: receptive fields on hand-checkable networks, closed-form FLOPs, memory, latency."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from clothingrec.analyze import (
    Settings,
    activation_memory,
    analyze_model,
    compose_sequential,
    conv2d_macs,
    conv2d_out_size,
    count_fvcore,
    count_thop,
    count_torchscan,
    effective_rf,
    erf_extent,
    linear_macs,
    load_analysis,
    measure_model,
    parse_spec,
    theoretical_rf,
    time_callable,
    write_analysis,
)
from clothingrec.analyze.flops import Workload
from clothingrec.analyze.models import build_model, workloads

torch.set_num_threads(1)  # 2 shared cores: one thread avoids spin-waiting under load


def _chain(*layers):
    return nn.Sequential(*layers).eval()


# ---- theoretical receptive field -------------------------------------------------------------

def test_three_3x3_convs_have_rf_7():
    net = _chain(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                 nn.Conv2d(4, 4, 3, padding=1))
    rep = theoretical_rf(net, torch.zeros(1, 1, 32, 32))
    assert rep.final["rf_h"] == 7 and rep.final["rf_w"] == 7
    assert rep.final["jump_h"] == 1
    assert compose_sequential([(3, 1, 1)] * 3) == 7


def test_stride_dilation_and_pooling_compose():
    # conv3 s2 → r 3, j 2; maxpool 2 s2 → r 3+1*2 = 5, j 4; conv3 dilation 2 → r 5 + 2*2*4 = 21, j 4
    net = _chain(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=2, dilation=2))
    rep = theoretical_rf(net, torch.zeros(1, 1, 64, 64))
    assert (rep.final["rf_h"], rep.final["jump_h"]) == (21, 4)
    assert compose_sequential([(3, 2, 1), (2, 2, 1), (3, 1, 2)]) == 21


def test_non_square_kernel_tracks_axes_separately():
    net = _chain(nn.Conv2d(1, 1, (1, 5)), nn.Conv2d(1, 1, (3, 1)))
    rep = theoretical_rf(net, torch.zeros(1, 1, 16, 16))
    assert (rep.final["rf_h"], rep.final["rf_w"]) == (3, 5)


class _Residual(nn.Module):
    """main: conv3 s2 → conv3; shortcut: conv1 s2; then one more conv3 after the join."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.short = nn.Conv2d(1, 2, 1, stride=2)
        self.c = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.c(self.b(self.a(x)) + self.short(x))


def test_residual_join_follows_the_graph_not_the_module_list():
    rep = theoretical_rf(_Residual().eval(), torch.zeros(1, 1, 32, 32))
    # main path: 1 + 2 (a) + 2*2 (b) = 7, jump 2; the shortcut (r 1) does not add; c: 7 + 2*2 = 11
    assert rep.final["rf_h"] == 11 and rep.final["jump_h"] == 2
    # a walk over the module list in call order multiplies the shortcut's stride in: 15
    assert compose_sequential([(3, 2, 1), (3, 1, 1), (1, 2, 1), (3, 1, 1)]) == 15


class _SE(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(self.fc(self.pool(y)))


def test_squeeze_excitation_is_global_context_not_a_huge_rf():
    rep = theoretical_rf(_SE().eval(), torch.zeros(1, 1, 32, 32), targets=[""])
    last = [r for r in rep.layers if r["module"] == "conv"][0]
    assert last["rf_h"] == 3
    assert rep.final["rf_h"] == 3 and rep.final["global_context"]


def test_mobilenet_v3_small_rf_is_finite_and_flagged():
    spec = parse_spec("mobilenet_v3_small", 96)
    model = build_model(spec)
    rep = theoretical_rf(model, torch.zeros(1, 3, 96, 96), targets=["features"])
    assert rep.final_name == "features"
    assert rep.final["jump_h"] == 32
    assert 100 < rep.final["rf_h"] < 2000          # not 1e12
    assert rep.final["global_context"]             # SE blocks see the whole image


# ---- effective receptive field ---------------------------------------------------------------

def test_erf_support_matches_theoretical_rf_on_positive_net():
    net = _chain(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.Conv2d(1, 1, 3, padding=1, bias=False),
                 nn.Conv2d(1, 1, 3, padding=1, bias=False))
    for m in net:
        nn.init.constant_(m.weight, 1.0)
    out = effective_rf(net, torch.rand(2, 1, 33, 33))
    support = np.argwhere(out["heat"] > 0)
    assert support[:, 0].max() - support[:, 0].min() + 1 == 7
    assert support[:, 1].max() - support[:, 1].min() + 1 == 7
    assert out["heat"].max() == pytest.approx(1.0)
    assert out["position"] == (16, 16) and out["feature_size"] == (33, 33)
    # the gradient of a sum of three box filters is peaked: 95 % sits inside a 5x5 or 7x7 square
    assert out["extent95"] in (5, 7)


def test_erf_extent_of_point_and_uniform():
    heat = np.zeros((11, 11))
    heat[5, 5] = 1.0
    assert erf_extent(heat) == 1
    assert erf_extent(np.ones((9, 9)), 1.0) == 9


# ---- FLOPs: closed form vs the three tools ---------------------------------------------------

@pytest.mark.parametrize("cin,cout,k,stride,groups", [(8, 16, 3, 2, 1), (16, 16, 3, 1, 16), (6, 12, 5, 1, 3)])
def test_single_conv_flops_equal_closed_form(cin, cout, k, stride, groups):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups).eval()
    x = torch.rand(1, cin, 32, 32)
    out = conv2d_out_size(32, k, stride, k // 2)
    expected = conv2d_macs(cin, cout, k, out, groups)
    assert expected == cout * out * out * (cin // groups) * k * k
    w = [Workload("conv", conv, (x,))]
    assert count_fvcore(w).total == expected                    # fvcore: 1 "flop" per fused multiply-add
    assert count_thop(w).total == expected                      # thop: MACs
    ops, mods, _ = count_torchscan(w)
    assert ops.total == 2 * expected                            # torch FlopCounterMode: FLOPs = 2 × MACs
    assert ops.macs == expected
    assert mods.total == expected                               # torchscan module formula: MACs


def test_linear_and_batch_scale():
    lin = nn.Linear(100, 7).eval()
    w = [Workload("fc", lin, (torch.rand(3, 100),))]
    assert count_fvcore(w).total == linear_macs(100, 7, batch=3) == 2100
    assert count_torchscan(w)[0].total == 2 * 2100


def test_classifier_head_is_counted_with_project_classes():
    """The published analysis profiled the 1000-class head: the difference is exactly 1024 × 990 MACs."""
    x = torch.rand(1, 3, 64, 64)
    import torchvision

    m10 = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    m1000 = torchvision.models.mobilenet_v3_small(num_classes=1000).eval()
    a = count_fvcore([Workload("n", m10, (x,))]).core_macs
    b = count_fvcore([Workload("n", m1000, (x,))]).core_macs
    assert b - a == 1024 * 990
    assert sum(p.numel() for p in m1000.parameters()) - sum(p.numel() for p in m10.parameters()) == 1025 * 990


def test_rcnn_box_head_workload_uses_fixed_proposals():
    spec = parse_spec("fasterrcnn_mobilenet_v3_large_fpn", 128)
    model = build_model(spec).eval()
    loads = {w.name: w for w in workloads(spec, model)}
    assert set(loads) == {"backbone+fpn", "rpn head", "box head"}
    box = loads["box head"]
    n = box.args[0].shape[0]
    assert n == model.rpn._post_nms_top_n["testing"]
    rep = model.roi_heads.box_head.fc6.out_features
    inp = model.roi_heads.box_head.fc6.in_features
    classes = spec.num_classes
    expected = n * (inp * rep + rep * rep + rep * classes + rep * 4 * classes)
    assert count_fvcore([box]).total == expected
    assert count_torchscan([box])[0].macs == expected


# ---- memory and latency ---------------------------------------------------------------------

def test_activation_memory_of_a_chain():
    net = _chain(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    mem = activation_memory(net, torch.rand(1, 3, 16, 16))
    one = 8 * 16 * 16 * 4
    assert mem["sum_leaf_outputs_bytes"] == 3 * one
    assert mem["leaf_calls"] == 3
    # at most two activations are alive at once (an input and an output of one layer)
    assert mem["peak_live_bytes"] == 2 * one


def test_time_callable_statistics():
    calls = []
    stats = time_callable(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and stats["n"] == 7 and len(stats["times_ms"]) == 7
    assert stats["min_ms"] <= stats["median_ms"] <= stats["p95_ms"] <= stats["max_ms"]
    with pytest.raises(ValueError):
        time_callable(lambda: None, repeats=0)


def test_measure_model_records_threads_and_restores_them():
    before = torch.get_num_threads()
    net = _chain(nn.Conv2d(3, 4, 3), nn.ReLU())
    res = measure_model(net, lambda b: torch.rand(b, 3, 16, 16), threads=1, repeats=3, warmup=1,
                        throughput_batch=4, throughput_repeats=2)
    assert res["torch_threads"] == 1 and res["device"] == "cpu"
    assert res["batch1"]["n"] == 3 and res["throughput"]["batch"] == 4
    assert res["throughput"]["images_per_s"] > 0
    assert torch.get_num_threads() == before


# ---- specs and the whole record --------------------------------------------------------------

def test_parse_spec_names():
    assert parse_spec("yolov8n.yaml", 320).family == "yolo"
    s = parse_spec("maskrcnn_resnet50_fpn", 512)
    assert (s.family, s.backbone, s.num_classes) == ("maskrcnn", "resnet50_fpn", 14)
    assert parse_spec("resnet50", 224).num_classes == 10
    with pytest.raises(ValueError, match="unknown model"):
        parse_spec("not_a_model", 224)


def test_analyze_model_record_roundtrip(tmp_path):
    spec = parse_spec("mobilenet_v3_small", 64)
    a = analyze_model(spec, Settings(repeats=2, warmup=1, throughput_batch=2, throughput_repeats=1, erf_images=1))
    r = a.record
    assert r["num_classes"] == 10 and r["input_size"] == [64, 64]
    assert r["flops"] == 2 * r["macs"]
    # the three tools agree on conv + linear MACs
    assert r["tools"]["fvcore"]["core_macs"] == r["macs"] == r["tools"]["thop"]["core_macs"]
    assert r["params"] == sum(p.numel() for p in build_model(spec).parameters())
    assert r["receptive_field"]["global_context"] is True
    assert r["latency"]["repeats"] == 2 and r["threads"] >= 1
    assert not a.layers.empty and {"MACs fvcore", "MACs thop", "MACs torchscan"} <= set(a.layers.columns)
    path = write_analysis(tmp_path / "analysis.json", [a], settings=Settings())
    data = load_analysis(path)
    assert data["models"]["mobilenet_v3_small"]["macs"] == r["macs"]
    json.dumps(data)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json.*'models'"):
        load_analysis(bad)


def test_activation_memory_ignores_weight_views():
    # a linear layer reaches the dispatcher as t(weight) + addmm: the transposed weight is not an activation
    net = _chain(nn.Linear(256, 512), nn.ReLU())
    mem = activation_memory(net, torch.rand(1, 256))
    assert mem["peak_live_bytes"] == 2 * 512 * 4


def test_specs_from_committed_metrics():
    from clothingrec.analyze.report import analysis_plan, specs_from_results

    person = {"kind": "detector", "family": "fasterrcnn", "model": "resnet50_fpn", "imgsz": 512,
              "dataset": "PennFudanPed", "per_category": {"bbox": [{"category": "person"}]}}
    df2 = {"kind": "detector", "family": "maskrcnn", "model": "maskrcnn_resnet50_fpn", "imgsz": 384,
           "dataset": "ccp", "per_category": {"bbox": [{}] * 13}}
    cls = {"kind": "classifier", "model": "mobilenet_v3_small", "imgsz": 112}
    broken = {"kind": "classifier", "model": "not_a_model", "imgsz": 1}
    specs = specs_from_results([person, df2, cls, broken, cls])
    assert [(s.key, s.num_classes, s.input_size) for s in specs] == [
        ("person fasterrcnn_resnet50_fpn@512", 2, 512), ("maskrcnn_resnet50_fpn@384", 14, 384),
        ("mobilenet_v3_small@112", 10, 112)]
    plan, settings = analysis_plan("full", ["mobilenet_v3_small@112", "resnet50@64"], trained=[cls, df2], repeats=7)
    assert [s.key for s in plan] == ["mobilenet_v3_small", "resnet50", "maskrcnn_resnet50_fpn@384"]
    assert settings.repeats == 7 and settings.threads is None
    smoke, settings = analysis_plan("smoke", ["resnet50@64"], trained=[df2])
    assert [s.key for s in smoke] == ["resnet50"] and settings.threads == 1    # smoke ignores committed runs
    with pytest.raises(ValueError, match="appear twice"):
        analysis_plan("smoke", ["resnet50@64", "resnet50@96"])


def test_known_networks_vgg16_and_resnet50():
    """Published values: VGG-16 conv5_3 sees 196 px, pool5 212 px; torchvision ResNet-50 layer4 427 px."""
    import torchvision
    from torchvision.models.vgg import cfgs, make_layers

    vgg = make_layers(cfgs["D"]).eval()
    rep = theoretical_rf(vgg, torch.zeros(1, 3, 64, 64), targets=["28", "30"])
    assert rep.targets["28"]["rf_h"] == 196 and rep.targets["28"]["jump_h"] == 16
    assert rep.targets["30"]["rf_h"] == 212 and rep.targets["30"]["jump_h"] == 32
    r50 = torchvision.models.resnet50(num_classes=10).eval()
    rep = theoretical_rf(r50, torch.zeros(1, 3, 64, 64), targets=["layer4"])
    assert (rep.final["rf_h"], rep.final["jump_h"], rep.final["global_context"]) == (427, 32, False)


def test_specs_read_the_runs_train_config(tmp_path):
    from clothingrec.analyze.report import specs_from_results
    from clothingrec.compare import Result

    run = tmp_path / "results" / "person"
    run.mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps({
        "config": {"model_kwargs": {"rpn_post_nms_top_n_train": 500, "rpn_post_nms_top_n_test": 300}},
        "spec": {"num_classes": 2}}))
    metrics = {"kind": "detector", "family": "fasterrcnn", "model": "fasterrcnn_mobilenet_v3_large_fpn",
               "imgsz": 256, "dataset": "ccp", "task": "person"}
    (spec,) = specs_from_results([Result(run / "metrics.json", "committed", metrics)])
    assert spec.key == "person fasterrcnn_mobilenet_v3_large_fpn@256 (light heads)"
    assert spec.num_classes == 2 and spec.extra == {"rpn_post_nms_top_n_test": 300}
    model = build_model(spec)
    assert model.rpn._post_nms_top_n["testing"] == 300
