"""Detector serving paths with the same interface as the eager predictors, chosen by measurement.

torchvision Faster / Mask R-CNN — a *hybrid*: torchvision's eager orchestration (resize transform,
anchors, proposal decoding, NMS, RoI align, box decoding, mask pasting) is kept, and the dense
sub-modules that carry the FLOPs run in ONNX Runtime:

- ``backbone`` (body + FPN) and the RPN head's convolutions: ORT fp32 (dynamic height / width),
- the RoI box head (``TwoMLPHead``: 12544→1024→1024 fully connected, applied to every proposal):
  ORT fp32 or ORT int8 (dynamic quantisation of its ``Gemm``/``MatMul`` weights — VNNI kernels),
- the mask head + mask predictor (Mask R-CNN): ORT fp32.

Whole-model ONNX export of ``GeneralizedRCNN`` (legacy exporter, fixed input size) also works here but
was not faster than eager on this CPU (RoI align and NMS dominate it there) and fixes the input size,
so it is not a candidate.  The serving predictor is a shallow copy of the eager predictor whose
``model`` is the hybrid model: same class, same ``predict``, same post-processing.

ultralytics YOLO — ``YOLO.export(format="onnx", dynamic=True)`` (ultralytics' maintained path) and
ultralytics' own ONNX Runtime backend (``onnx-fp32``), or ``YOLO.export(format="openvino", dynamic=True)``
and ultralytics' OpenVINO backend (``openvino-fp32``, compiled again with
:func:`clothingrec.serve.openvino_backend.ov_config`); the serving predictor is a copy of the eager
:class:`~clothingrec.detect.yolo.YoloPredictor` whose ``model`` is ``YOLO(<file>.onnx)`` /
``YOLO(<folder>_openvino_model)``: same letterbox (dynamic exports keep eager's minimal padding), same NMS;
or the same ONNX file called directly with the project's own letterbox and NMS (``onnx-fp32-direct``,
:mod:`clothingrec.serve.yolo_direct`: no ultralytics predict machinery around the three stages).

Threads: one count (``threads``, default torch's) is given to torch, to ONNX Runtime
(``intra_op_num_threads``, ``inter_op_num_threads`` = 1) and to OpenVINO (``INFERENCE_NUM_THREADS``,
``NUM_STREAMS`` = 1, ``PERFORMANCE_HINT`` = LATENCY, fp32); ``serving["threads"]`` states them.

:func:`fastest_predictor` builds the candidates, measures agreement with the eager predictor on the
given images (:func:`clothingrec.serve.agreement.detector_agreement`) and batch-1 latency side by
side, and returns the fastest candidate that agrees, with ``serving`` (backend, agreement, latency,
all candidates) attached.
"""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clothingrec.serve import agreement as agree
from clothingrec.serve.onnx import (
    SERVE_CACHE,
    OrtModule,
    export_onnx,
    ort_session,
    quantize_dynamic_int8,
    state_fingerprint,
)
from clothingrec.serve.timing import compare_latency
from clothingrec.serve.yolo_direct import yolo_direct_backend

#: torchvision candidates: which sub-modules run where
RCNN_BACKENDS = {
    "onnx-fp32": {"backbone": "fp32", "rpn_head": "fp32", "box_head": "fp32", "mask_head": "fp32"},
    "onnx-fp32+int8-boxhead": {"backbone": "fp32", "rpn_head": "fp32", "box_head": "int8", "mask_head": "fp32"},
}
#: ultralytics YOLO candidates: its ONNX Runtime and its OpenVINO backends (both fp32, same pre/post-processing)
YOLO_BACKENDS = ("onnx-fp32", "openvino-fp32", "onnx-fp32-direct")


# ------------------------------------------------------------------ torchvision hybrid
class _FlatRPNHead(nn.Module):
    """RPN head over features given as separate inputs; outputs (logits..., deltas...)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, *features):
        logits, deltas = self.head(list(features))
        return (*logits, *deltas)


class _TupleBackbone(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return tuple(self.backbone(x).values())


class _MaskHeadAndPredictor(nn.Module):
    def __init__(self, head: nn.Module, predictor: nn.Module):
        super().__init__()
        self.head, self.predictor = head, predictor

    def forward(self, x):
        return self.predictor(self.head(x))


class OrtBackbone(nn.Module):
    """The backbone (+FPN) in ORT: ``forward(images) -> OrderedDict`` of feature maps, like torchvision's."""

    def __init__(self, runner: OrtModule, names: Sequence[str], out_channels: int):
        super().__init__()
        self.runner = runner
        self.names = list(names)
        self.out_channels = out_channels

    def forward(self, x):
        outs = self.runner(x)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return OrderedDict(zip(self.names, outs))


class OrtRPNHead(nn.Module):
    """The RPN head in ORT: ``forward(list of features) -> (objectness list, deltas list)``."""

    def __init__(self, runner: OrtModule, levels: int):
        super().__init__()
        self.runner = runner
        self.levels = levels

    def forward(self, features):
        outs = self.runner(*features)
        return list(outs[:self.levels]), list(outs[self.levels:])


def _example_image(model: nn.Module) -> torch.Tensor:
    """A backbone input the size the transform produces for a 4:3 image (a multiple of 32)."""
    t = model.transform
    size = int(t.min_size[-1])
    h, w = size, int(round(size * 4 / 3))
    h, w = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    return torch.rand(1, 3, h, w)


def hybrid_rcnn(model: nn.Module, plan: dict, *, threads: int | None = None, workdir=None, log=None) -> nn.Module:
    """A copy of a torchvision R-CNN whose dense sub-modules run in ORT per ``plan`` (see RCNN_BACKENDS).

    Exports are cached under ``workdir`` (default ``.cache/serve``) by a hash of the weights.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("hybrid_rcnn serves on the CPU (onnxruntime CPU build); the model is on an accelerator")
    model = model.eval()
    folder = Path(workdir or SERVE_CACHE) / f"rcnn-{state_fingerprint(model, 'rcnn')}"
    hybrid = copy.deepcopy(model).eval()
    x = _example_image(model)
    with torch.no_grad():
        feats = model.backbone(x)
    names = list(feats.keys())
    levels = len(names)
    dyn_img = {0: "batch", 2: "height", 3: "width"}

    if plan.get("backbone") == "fp32":
        path = folder / "backbone-fp32.onnx"
        if not path.is_file():
            outs = [f"feat_{n}" for n in names]
            export_onnx(_TupleBackbone(model.backbone), (x,), path, input_names=["images"], output_names=outs,
                        dynamic_axes={"images": dyn_img, **{o: dyn_img for o in outs}})
        hybrid.backbone = OrtBackbone(OrtModule(ort_session(path, threads), name="backbone-fp32", path=path),
                                      names, model.backbone.out_channels)
    if plan.get("rpn_head") == "fp32":
        path = folder / "rpn_head-fp32.onnx"
        if not path.is_file():
            ins = [f"feat_{i}" for i in range(levels)]
            outs = [f"objectness_{i}" for i in range(levels)] + [f"deltas_{i}" for i in range(levels)]
            export_onnx(_FlatRPNHead(model.rpn.head), tuple(feats.values()), path, input_names=ins,
                        output_names=outs, dynamic_axes={n: dyn_img for n in ins + outs})
        hybrid.rpn.head = OrtRPNHead(OrtModule(ort_session(path, threads), name="rpn_head-fp32", path=path), levels)
    box_mode = plan.get("box_head")
    if box_mode in ("fp32", "int8"):
        fp32 = folder / "box_head-fp32.onnx"
        head = model.roi_heads.box_head
        rois = torch.rand(8, model.backbone.out_channels, *_roi_size(model.roi_heads.box_roi_pool))
        if not fp32.is_file():
            export_onnx(head, (rois,), fp32, input_names=["rois"], output_names=["features"],
                        dynamic_axes={"rois": {0: "n"}, "features": {0: "n"}})
        path = fp32
        if box_mode == "int8":
            path = folder / "box_head-int8-dynamic-pc.onnx"
            if not path.is_file():
                quantize_dynamic_int8(fp32, path)
        hybrid.roi_heads.box_head = OrtModule(ort_session(path, threads), fallback=copy.deepcopy(head),
                                              name=f"box_head-{box_mode}", path=path)
    if plan.get("mask_head") == "fp32" and getattr(model.roi_heads, "mask_head", None) is not None:
        path = folder / "mask_head-fp32.onnx"
        both = _MaskHeadAndPredictor(model.roi_heads.mask_head, model.roi_heads.mask_predictor)
        if not path.is_file():
            rois = torch.rand(4, model.backbone.out_channels, *_roi_size(model.roi_heads.mask_roi_pool))
            export_onnx(both, (rois,), path, input_names=["rois"], output_names=["mask_logits"],
                        dynamic_axes={"rois": {0: "n"}, "mask_logits": {0: "n"}})
        hybrid.roi_heads.mask_head = OrtModule(ort_session(path, threads), fallback=copy.deepcopy(both).eval(),
                                               name="mask_head-fp32", path=path)
        hybrid.roi_heads.mask_predictor = nn.Identity()
    return hybrid


def _roi_size(pool) -> tuple[int, int]:
    size = pool.output_size
    return (size, size) if isinstance(size, int) else tuple(size)


def is_torchvision_rcnn(predictor) -> bool:
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    return isinstance(getattr(predictor, "model", None), GeneralizedRCNN)


def is_yolo(predictor) -> bool:
    return type(predictor).__name__ == "YoloPredictor" or getattr(predictor, "family", None) == "yolo"


# ------------------------------------------------------------------ ultralytics
def export_yolo_onnx(weights: str | Path, imgsz: int, workdir=None, opset: int = 17) -> Path:
    """ultralytics' ONNX export (dynamic axes, no simplifier download), cached by weights hash."""
    import hashlib
    import shutil

    from clothingrec.detect.yolo import quiet_ultralytics

    weights = Path(weights)
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:16]
    target = Path(workdir or SERVE_CACHE) / f"yolo-{digest}-{imgsz}" / f"{weights.stem}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    local = target.parent / weights.name
    shutil.copyfile(weights, local)  # ultralytics writes the .onnx beside the weights
    from ultralytics import YOLO

    with quiet_ultralytics(True):
        out = YOLO(str(local)).export(format="onnx", imgsz=int(imgsz), dynamic=True, simplify=False,
                                      opset=opset, device="cpu", verbose=False)
    out = Path(out)
    if out.resolve() != target.resolve():
        out.replace(target)
    local.unlink(missing_ok=True)
    return target


def yolo_backend(predictor, workdir=None, threads: int | None = None):
    """A copy of a :class:`~clothingrec.detect.yolo.YoloPredictor` running ultralytics' ONNX Runtime backend.

    ultralytics opens its session with ONNX Runtime's default thread count; after a warm-up call the
    session is replaced by one with ``threads`` intra-op threads (default: torch's, as eager uses).
    """
    from ultralytics import YOLO

    path = export_yolo_onnx(predictor.weights, predictor.imgsz, workdir)
    served = copy.copy(predictor)
    served.model = YOLO(str(path), task=predictor.task)
    served.weights = path
    served.device = "cpu"
    served.predict(np.zeros((predictor.imgsz, predictor.imgsz, 3), dtype=np.uint8))  # builds the backend
    backend = getattr(getattr(getattr(served.model, "predictor", None), "model", None), "backend", None)
    if backend is not None and hasattr(backend, "session"):
        backend.session = ort_session(path, threads)
    return served


def yolo_openvino_backend(predictor, workdir=None, threads: int | None = None):
    """A copy of a :class:`~clothingrec.detect.yolo.YoloPredictor` running ultralytics' OpenVINO backend.

    ultralytics compiles with ``PERFORMANCE_HINT=LATENCY`` only; after a warm-up call the compiled model is
    replaced by one compiled with :func:`~clothingrec.serve.openvino_backend.ov_config` (``threads``).
    """
    from functools import partial

    from ultralytics import YOLO

    from clothingrec.serve import openvino_backend as ovb

    ok, reason = ovb.available()
    if not ok:
        raise RuntimeError(reason)
    folder = ovb.export_yolo_openvino(predictor.weights, predictor.imgsz, workdir)
    served = copy.copy(predictor)
    served.model = YOLO(str(folder), task=predictor.task)
    served.weights = folder
    served.device = "cpu"
    with ovb.keep_signal_stack():
        served.predict(np.zeros((predictor.imgsz, predictor.imgsz, 3), dtype=np.uint8))  # builds the backend
    backend = getattr(getattr(getattr(served.model, "predictor", None), "model", None), "backend", None)
    if backend is None or not hasattr(backend, "ov_compiled_model"):
        raise RuntimeError("ultralytics' OpenVINO backend not found where expected (predictor.model.backend)")
    import openvino as ov

    with ovb.keep_signal_stack():  # builds one engine and releases ultralytics' own
        core = ov.Core()
        xml = next(Path(folder).glob("*.xml"))
        backend.compile_model = partial(core.compile_model, device_name="CPU", config=ovb.ov_config(threads))
        backend.ov_compiled_model = backend.compile_model(core.read_model(str(xml), str(xml.with_suffix(".bin"))))
    served.ov_settings = ovb.compiled_settings(backend.ov_compiled_model)
    return served


YOLO_BUILDERS = {"onnx-fp32": yolo_backend, "openvino-fp32": yolo_openvino_backend,
                 "onnx-fp32-direct": yolo_direct_backend}


def thread_settings(threads: int | None = None) -> dict:
    """The thread settings every backend of one measurement gets (see module doc)."""
    from clothingrec.serve.openvino_backend import ov_config

    n = int(threads or torch.get_num_threads())
    return {"threads": n, "torch_num_threads": n, "onnxruntime": {"intra_op_num_threads": n, "inter_op_num_threads": 1},
            "openvino": ov_config(n)}


# ------------------------------------------------------------------ choice
def detector_candidates(predictor, *, backends: Sequence[str] | None = None, threads: int | None = None,
                        workdir=None, log=None) -> dict[str, dict]:
    """``{name: {"predictor", "build_s", "error"}}`` — ``eager`` (the given predictor) first."""
    out = {"eager": {"predictor": predictor, "build_s": 0.0, "error": None}}
    device = str(getattr(predictor, "device", "cpu"))
    if not device.startswith("cpu"):
        if log:
            log(f"[serve] {type(predictor).__name__} runs on {device}: eager is served there "
                "(the ONNX Runtime backends here are CPU builds)")
        return out
    if is_torchvision_rcnn(predictor):
        names = list(backends) if backends is not None else list(RCNN_BACKENDS)
        for name in [n for n in names if n != "eager"]:
            if name not in RCNN_BACKENDS:
                raise ValueError(f"unknown torchvision backend {name!r}; choose from {sorted(RCNN_BACKENDS)}")
            t0 = time.perf_counter()
            entry = {"predictor": None, "error": None}
            try:
                served = copy.copy(predictor)
                served.model = hybrid_rcnn(predictor.model, RCNN_BACKENDS[name], threads=threads, workdir=workdir)
                entry["predictor"] = served
            except Exception as exc:  # noqa: BLE001 - reported, the others go on
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["build_s"] = time.perf_counter() - t0
            out[name] = entry
    elif is_yolo(predictor):
        names = list(backends) if backends is not None else list(YOLO_BACKENDS)
        for name in [n for n in names if n != "eager"]:
            if name not in YOLO_BACKENDS:
                raise ValueError(f"unknown YOLO backend {name!r}; choose from {YOLO_BACKENDS}")
            t0 = time.perf_counter()
            entry = {"predictor": None, "error": None}
            try:
                entry["predictor"] = YOLO_BUILDERS[name](predictor, workdir, threads)
            except Exception as exc:  # noqa: BLE001
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["build_s"] = time.perf_counter() - t0
            out[name] = entry
    elif log:
        log(f"[serve] {type(predictor).__name__}: no serving backend known; eager is served")
    for name, entry in out.items():
        if entry["error"] and log:
            log(f"[serve] detector backend {name} failed: {entry['error']}")
    return out


def detection_capacity(predictor) -> int | None:
    """Most detections the predictor returns per image (its top-k cut-off), when known."""
    roi_heads = getattr(getattr(predictor, "model", None), "roi_heads", None)
    if roi_heads is not None and hasattr(roi_heads, "detections_per_img"):
        return int(roi_heads.detections_per_img)
    max_det = getattr(predictor, "max_det", None)
    return int(max_det) if max_det else None


def evaluate_candidates(candidates: dict[str, dict], images: Sequence[np.ndarray], *, rounds: int = 2,
                        repeats: int = 3, score_threshold: float = 0.0, timing_images: int = 1) -> list[dict]:
    """Agreement with eager over ``images`` and interleaved batch-1 latency over ``timing_images`` of them."""
    if not images:
        raise ValueError("detector agreement needs at least one image")
    eager = candidates["eager"]["predictor"]
    reference = [eager.predict(im) for im in images]
    capacity = detection_capacity(eager)
    rows = []
    ok = {}
    for name, entry in candidates.items():
        row = {"backend": name, "build_s": round(entry["build_s"], 2), "error": entry["error"]}
        pred = entry["predictor"]
        if pred is not None:
            try:
                outs = reference if name == "eager" else [pred.predict(im) for im in images]
                row["agreement"] = agree.detector_agreement(zip(reference, outs), score_threshold=score_threshold,
                                                            capacity=capacity)
                ok[name] = pred
            except Exception as exc:  # noqa: BLE001 - a backend that fails at run time is reported
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    timed = list(images[:max(1, timing_images)])

    def runner(p):
        state = {"i": 0}

        def call():
            p.predict(timed[state["i"] % len(timed)])
            state["i"] += 1
        return call

    lat = compare_latency({n: runner(p) for n, p in ok.items()}, rounds=rounds, repeats=repeats)
    base = lat.get("eager", {}).get("median_ms")
    for row in rows:
        if row["backend"] in lat:
            row["batch1"] = lat[row["backend"]]
            row["speedup_vs_eager"] = base / lat[row["backend"]]["median_ms"] if base else float("nan")
    return rows


def fastest_predictor(predictor, images: Sequence[np.ndarray], *, backends: Sequence[str] | None = None,
                      threads: int | None = None, workdir=None, rounds: int = 2, repeats: int = 3,
                      score_threshold: float = 0.0, log=None):
    """The fastest serving path of an eager detector predictor that agrees with it on ``images``.

    Returns a predictor of the same class (same ``predict(image) -> Detections``, ``family``,
    ``category_names``) with ``serving`` = {"backend", "agreement", "latency", "candidates"} and
    ``serving_backend`` attached.  Eager always qualifies, so something is always returned.
    """
    if threads:
        torch.set_num_threads(int(threads))
    candidates = detector_candidates(predictor, backends=backends, threads=threads, workdir=workdir, log=log)
    rows = evaluate_candidates(candidates, images, rounds=rounds, repeats=repeats, score_threshold=score_threshold)
    from clothingrec.serve.classifier import choose

    usable = [r for r in rows if r.get("agreement", {}).get("agrees") and "batch1" in r]
    best = choose(usable) if usable else rows[0]
    chosen = candidates[best["backend"]]["predictor"]
    if chosen is predictor:
        chosen = copy.copy(predictor)  # never annotate the caller's object
    chosen.serving_backend = best["backend"]
    chosen.serving = {"backend": best["backend"], "agreement": best.get("agreement"),
                      "latency": best.get("batch1"), "threads": thread_settings(threads), "candidates": rows}
    if log:
        log(f"[serve] {getattr(predictor, 'family', type(predictor).__name__)} backend: {best['backend']} "
            f"({best.get('speedup_vs_eager', float('nan')):.2f}x eager)")
    return chosen
