"""The classifier's serving path: ONNX Runtime (fp32 or int8), OpenVINO or torch.compile, chosen by measurement.

``serving_classifier(path_or_loaded)`` loads a trained classifier, builds the candidate backends,
checks each against eager PyTorch on real images (:mod:`clothingrec.serve.agreement`), times batch-1
latency side by side and returns a :class:`ServingClassifier`: the eager
:class:`~clothingrec.classify.ImageClassifier` (the same ``Classifier`` protocol, preparation and crop
loop) whose logits come from the fastest backend that agrees, with ``backend``, ``agreement``,
``latency`` and every candidate's figures.

Backends: ``eager`` (the baseline, channels-last like ``classify.predict``), ``onnx-fp32`` (ORT, all
graph optimisations: BatchNorm folded, activations fused), ``onnx-int8`` (static QDQ int8, calibrated
on training images; chosen only when its top-1 agreement ≥ ``INT8_MIN_TOP1``), ``openvino-fp32``
(OpenVINO's CPU plugin compiling the same fp32 ONNX file, fp32 precision; reported as failed when
openvino is not installed), ``compile``
(``torch.compile``, inductor; opt-in: it compiles for tens of seconds to minutes on a small CPU).

Threads: one count (``threads``, default torch's) for torch, ONNX Runtime (``intra_op_num_threads``) and
OpenVINO (``INFERENCE_NUM_THREADS``, ``NUM_STREAMS`` = 1, ``PERFORMANCE_HINT`` = LATENCY); stated in
:meth:`ServingClassifier.describe` (``threads``).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clothingrec.classify.inference import ImageClassifier, Predictions, load_classifier, split_tensor
from clothingrec.serve import agreement as agree
from clothingrec.serve.onnx import (
    SERVE_CACHE,
    OrtModule,
    export_onnx,
    ort_session,
    quantize_static_int8,
    state_fingerprint,
)
from clothingrec.serve.openvino_backend import OvModule
from clothingrec.serve.timing import compare_latency
from clothingrec.structures import Classification

CLASSIFIER_BACKENDS = ("eager", "onnx-fp32", "onnx-int8", "openvino-fp32", "compile")
DEFAULT_BACKENDS = ("onnx-fp32", "onnx-int8", "openvino-fp32")


class EagerModule(nn.Module):
    """The eager baseline as the predictor runs it: channels-last input, inference mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        self.model.to(memory_format=torch.channels_last)

    def forward(self, x):
        return self.model(x.contiguous(memory_format=torch.channels_last))


@dataclass
class ServingClassifier:
    """An :class:`~clothingrec.classify.ImageClassifier` served by another backend (see module doc).

    Holds the eager classifier and the chosen backend module; ``classify``, ``classify_crops`` and
    ``predict`` are the eager classifier's, with the backend computing the logits.
    """

    eager: ImageClassifier
    module: nn.Module | None  # None: the eager model itself (on its device)
    backend: str = "eager"
    agreement: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    candidates: list = field(default_factory=list)
    threads: dict = field(default_factory=dict)

    def __post_init__(self):
        self.served = replace(self.eager, forward=self.module)
        self.classes, self.imgsz = self.eager.classes, self.eager.imgsz

    def classify(self, image: np.ndarray) -> Classification:
        return self.served.classify(image)

    def classify_crops(self, image: np.ndarray, boxes_xyxy) -> list[Classification]:
        return self.served.classify_crops(image, boxes_xyxy)

    def predict(self, images, batch_size: int = 32) -> Predictions:
        return self.served.predict(images, batch_size)

    def describe(self) -> dict:
        return {"backend": self.backend, "imgsz": self.imgsz, "agreement": self.agreement,
                "latency": self.latency, "threads": self.threads, "candidates": self.candidates}


def _export_dir(model: nn.Module, imgsz: int, workdir) -> Path:
    key = state_fingerprint(model, f"classifier|{type(model).__name__}|{imgsz}")
    return Path(workdir or SERVE_CACHE) / f"classifier-{key}"


def build_backends(model: nn.Module, imgsz: int, *, backends: Sequence[str] = DEFAULT_BACKENDS,
                   calibration: torch.Tensor | None = None, threads: int | None = None, workdir=None,
                   log=None) -> dict[str, dict]:
    """``{name: {"module": nn.Module, "build_s": seconds, "path": file or None, "error": str or None}}``.

    A backend that fails to build is reported with its error (the others go on).
    """
    model = model.eval().cpu()
    out: dict[str, dict] = {}
    folder = _export_dir(model, imgsz, workdir)
    fp32 = folder / "model-fp32.onnx"
    for name in ["eager", *[b for b in backends if b != "eager"]]:
        if name not in CLASSIFIER_BACKENDS:
            raise ValueError(f"unknown classifier backend {name!r}; choose from {CLASSIFIER_BACKENDS}")
        t0 = time.perf_counter()
        entry = {"module": None, "path": None, "error": None}
        try:
            if name == "eager":
                entry["module"] = EagerModule(model)
            elif name == "compile":
                compiled = torch.compile(EagerModule(model), dynamic=False)
                with torch.inference_mode():
                    compiled(torch.zeros(1, 3, imgsz, imgsz))  # compile now, not on the first request
                entry["module"] = compiled
            else:
                if not fp32.is_file():
                    export_onnx(model, (torch.zeros(1, 3, imgsz, imgsz),), fp32, input_names=["images"],
                                output_names=["logits"],
                                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
                path = fp32
                if name == "onnx-int8":
                    if calibration is None or len(calibration) == 0:
                        raise ValueError("onnx-int8 needs calibration images")
                    path = folder / f"model-int8-static-c{len(calibration)}.onnx"
                    if not path.is_file():
                        batches = [{"images": calibration[i:i + 8].float().numpy()}
                                   for i in range(0, len(calibration), 8)]
                        quantize_static_int8(fp32, path, batches)
                entry["path"] = str(path)
                if name == "openvino-fp32":
                    from clothingrec.serve import openvino_backend as ovb

                    ok, reason = ovb.available()
                    if not ok:
                        raise RuntimeError(reason)
                    entry["module"] = OvModule(ovb.compile_model(path, threads), name=name, path=path)
                else:
                    entry["module"] = OrtModule(ort_session(path, threads), name=name, path=path)
        except Exception as exc:  # noqa: BLE001 - a failing backend is reported, the others are measured
            entry["error"] = f"{type(exc).__name__}: {exc}"
            if log:
                log(f"[serve] classifier backend {name} failed: {entry['error']}")
        entry["build_s"] = time.perf_counter() - t0
        out[name] = entry
    return out


@torch.inference_mode()
def _logits(module: nn.Module, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    return torch.cat([module(x[i:i + batch]).float() for i in range(0, len(x), batch)]) if len(x) else \
        torch.zeros((0, 0))


def evaluate_backends(entries: dict[str, dict], images: torch.Tensor, *, rounds: int = 3, repeats: int = 10,
                      throughput_batch: int = 0, throughput_repeats: int = 3) -> list[dict]:
    """Agreement with eager on ``images`` and interleaved batch-1 (and batch-N) timing of every backend."""
    ref = _logits(entries["eager"]["module"], images)
    rows = []
    ok = {name: e for name, e in entries.items() if e["module"] is not None}
    for name, e in entries.items():
        row = {"backend": name, "build_s": round(e["build_s"], 2), "error": e["error"]}
        if e["module"] is not None:
            got = ref if name == "eager" else _logits(e["module"], images)
            row["agreement"] = agree.classifier_agreement(ref, got, exact=(name != "onnx-int8"))
        rows.append(row)
    x1 = images[:1].contiguous()
    with torch.inference_mode():
        lat = compare_latency({n: (lambda m=e["module"]: m(x1)) for n, e in ok.items()}, rounds=rounds,
                              repeats=repeats)
        thr = {}
        if throughput_batch:
            xb = images[:throughput_batch]
            if len(xb) < throughput_batch:
                xb = xb.repeat((throughput_batch + len(xb) - 1) // len(xb), 1, 1, 1)[:throughput_batch]
            xb = xb.contiguous()
            thr = compare_latency({n: (lambda m=e["module"]: m(xb)) for n, e in ok.items()},
                                  rounds=max(1, rounds - 1), repeats=throughput_repeats)
    base = lat.get("eager", {}).get("median_ms")
    for row in rows:
        if row["backend"] in lat:
            row["batch1"] = lat[row["backend"]]
            row["speedup_vs_eager"] = base / lat[row["backend"]]["median_ms"] if base else float("nan")
        if row["backend"] in thr:
            t = thr[row["backend"]]
            row["throughput"] = {**t, "batch": int(throughput_batch),
                                 "images_per_s": throughput_batch / (t["median_ms"] / 1000.0)}
    return rows


def choose(rows: list[dict], min_speedup: float | None = None) -> dict:
    """The row with the lowest batch-1 median among backends that agree (eager always qualifies); a backend
    other than eager is taken only when it is at least ``min_speedup`` (default :data:`MIN_SPEEDUP`) times
    faster than eager, so timing noise on a busy machine never swaps in a slower path."""
    from clothingrec.serve.timing import MIN_SPEEDUP

    usable = [r for r in rows if r.get("agreement", {}).get("agrees") and "batch1" in r]
    if not usable:
        raise RuntimeError("no classifier backend agreed with eager (not even eager itself)")
    best = min(usable, key=lambda r: r["batch1"]["median_ms"])
    eager = next((r for r in usable if r["backend"] == "eager"), None)
    margin = MIN_SPEEDUP if min_speedup is None else min_speedup
    if eager is not None and best is not eager and \
            eager["batch1"]["median_ms"] < margin * best["batch1"]["median_ms"]:
        return eager
    return best


def serving_classifier(source, *, images: torch.Tensor | None = None, calibration: torch.Tensor | None = None,
                       backends: Sequence[str] = DEFAULT_BACKENDS, threads: int | None = None, workdir=None,
                       device: str = "cpu", rounds: int = 3, repeats: int = 10, agreement_split: str = "validation",
                       max_agreement_images: int | None = 100, calibration_per_class: int = 4,
                       log=None) -> ServingClassifier:
    """The fastest backend that agrees with eager, as a :class:`ServingClassifier` (see module doc).

    ``source``: a weights path or an :class:`~clothingrec.classify.ImageClassifier`.  ``images``: normalised agreement
    inputs (default: ``agreement_split`` of clothing-dataset-small, at most ``max_agreement_images``).
    ``calibration``: int8 calibration inputs (default: ``calibration_per_class`` training images per
    class — never the agreement images).  ``device``: ``cpu`` (default) or ``auto``/``cuda``/…; on an
    accelerator the eager model is served on it (this onnxruntime build serves on the CPU).
    """
    from clothingrec.device import resolve_device

    loaded = source if isinstance(source, ImageClassifier) else load_classifier(source, device="cpu")
    if threads:
        torch.set_num_threads(int(threads))
    target = resolve_device(device)
    if target.type != "cpu":  # this onnxruntime build serves on the CPU: on an accelerator eager is served
        loaded.model.to(target).eval()
        return ServingClassifier(loaded, None, agreement={
            "agrees": True, "criterion": f"eager on {target}: the reference itself"})
    if images is None:
        images, _, _ = split_tensor(loaded, agreement_split, max_images=max_agreement_images)
    if "onnx-int8" in backends and calibration is None:
        calibration, _, _ = split_tensor(loaded, "train", per_class=calibration_per_class)
    entries = build_backends(loaded.model, loaded.imgsz, backends=backends, calibration=calibration,
                             threads=threads, workdir=workdir, log=log)
    rows = evaluate_backends(entries, images, rounds=rounds, repeats=repeats)
    best = choose(rows)
    if log:
        log(f"[serve] classifier backend: {best['backend']} "
            f"({best['batch1']['median_ms']:.2f} ms batch 1, {best['speedup_vs_eager']:.2f}x eager)")
    from clothingrec.serve.detector import thread_settings

    return ServingClassifier(loaded, entries[best["backend"]]["module"], best["backend"], best["agreement"],
                             best["batch1"], [dict(r) for r in rows], thread_settings(threads))
