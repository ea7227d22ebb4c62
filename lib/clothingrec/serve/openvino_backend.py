"""OpenVINO (CPU plugin, fp32) as a serving candidate, with the thread settings fixed and stated.

- :func:`ov_config` — the compile settings every OpenVINO candidate uses: ``INFERENCE_NUM_THREADS`` =
  ``threads`` (the count torch and ONNX Runtime's ``intra_op_num_threads`` get), ``NUM_STREAMS`` = 1,
  ``PERFORMANCE_HINT`` = ``LATENCY`` and ``INFERENCE_PRECISION_HINT`` = ``f32`` (on CPUs with bf16 / AMX
  the plugin would otherwise compute in bf16, which is not the fp32 model eager runs).
- :func:`compile_model` — ``ov.Core().compile_model`` of an ONNX file or an IR ``.xml`` with that config.
- :class:`OvModule` — an ``nn.Module`` over a compiled model (the classifier's ``openvino-fp32`` backend
  compiles the same ONNX file its ``onnx-fp32`` backend runs in ONNX Runtime).
- :func:`export_yolo_openvino` — ultralytics' ``export(format="openvino", dynamic=True)`` (offline:
  openvino is installed, nothing is downloaded), cached by a hash of the weights; ultralytics' own
  OpenVINO backend loads it for predict, with the same letterbox / NMS as eager.
- :func:`keep_signal_stack` — every call that builds or drops an OpenVINO CPU engine runs inside it.

OpenVINO's CPU plugin installs an alternate signal stack of its own on the calling thread when it builds
an engine and puts back the one it found when the engine is released.  Released in another order than
built, a thread is left with a signal stack in freed memory, and the next signal Python handles there
(SIGCHLD of any subprocess, SIGINT) kills the process with SIGSEGV.  :func:`keep_signal_stack` puts the
thread's own signal stack back right after each such call, so every engine records, and restores, a
valid one.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clothingrec.serve.onnx import SERVE_CACHE


class _SignalStack(ctypes.Structure):  # stack_t (Linux)
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def signal_stack() -> tuple[int | None, int, int] | None:
    """The calling thread's alternate signal stack ``(address, flags, size)`` (None off Linux)."""
    libc = _libc()
    if libc is None:
        return None
    current = _SignalStack()
    if libc.sigaltstack(None, ctypes.byref(current)) != 0:
        return None
    return current.ss_sp, current.ss_flags, current.ss_size


@contextlib.contextmanager
def keep_signal_stack():
    """Run a block that may build or release an OpenVINO engine; afterwards the calling thread has the
    alternate signal stack it had before (see module doc)."""
    saved = signal_stack()
    try:
        yield
    finally:
        if saved is not None and signal_stack() != saved:
            address, flags, size = saved
            restore = _SignalStack(address, flags & 0x2, size)  # SS_DISABLE kept, SS_ONSTACK cannot be set
            _libc().sigaltstack(ctypes.byref(restore), None)


def available() -> tuple[bool, str]:
    """``(True, version)`` when openvino imports, else ``(False, reason)``."""
    try:
        import openvino as ov
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken native library
        return False, f"openvino not importable: {type(exc).__name__}: {exc}"
    return True, str(ov.__version__)


def resolve_threads(threads: int | None) -> int:
    return int(threads or torch.get_num_threads())


def ov_config(threads: int | None = None) -> dict:
    """The CPU compile config (see module doc); ``threads`` default: torch's current count."""
    return {"INFERENCE_NUM_THREADS": resolve_threads(threads), "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"}


def compile_model(path: str | os.PathLike, threads: int | None = None, device: str = "CPU"):
    """An OpenVINO compiled model of ``path`` (ONNX or IR ``.xml``) with :func:`ov_config`."""
    import openvino as ov

    with keep_signal_stack():
        core = ov.Core()
        path = Path(path)
        model = core.read_model(str(path)) if path.suffix != ".xml" else \
            core.read_model(str(path), str(path.with_suffix(".bin")))
        return core.compile_model(model, device, ov_config(threads))


def compiled_settings(compiled) -> dict:
    """The settings a compiled model actually runs with (read back from the plugin)."""
    out = {}
    for key in ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT"):
        try:
            value = compiled.get_property(key)
            out[key] = value.to_string() if hasattr(value, "to_string") else str(value)
        except Exception:  # noqa: BLE001 - a property this plugin version does not report
            pass
    return out


class OvModule(nn.Module):
    """``forward(*tensors)`` → the compiled model's outputs as CPU tensors (one tensor, or a tuple)."""

    def __init__(self, compiled, *, name: str = "openvino", path=None):
        super().__init__()
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.n_outputs = len(compiled.outputs)
        self.backend_name = name
        self.path = None if path is None else str(path)
        self._anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def run_numpy(self, *arrays: np.ndarray) -> list[np.ndarray]:
        res = self.request.infer([np.ascontiguousarray(a, dtype=np.float32) for a in arrays])
        return [np.array(res[i], copy=True) for i in range(self.n_outputs)]  # the request reuses its buffers

    def forward(self, *tensors):
        device = tensors[0].device if tensors else torch.device("cpu")
        outs = self.run_numpy(*[t.detach().float().cpu().contiguous().numpy() for t in tensors])
        outs = [torch.from_numpy(o).to(device) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def extra_repr(self) -> str:
        return f"backend={self.backend_name}, settings={compiled_settings(self.compiled)}"


def export_yolo_openvino(weights: str | Path, imgsz: int, workdir=None) -> Path:
    """ultralytics' OpenVINO IR export (dynamic height / width, fp32) → the ``*_openvino_model`` folder."""
    import hashlib
    import shutil

    from clothingrec.detect.yolo import quiet_ultralytics

    weights = Path(weights)
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:16]
    folder = Path(workdir or SERVE_CACHE) / f"yolo-{digest}-{imgsz}"
    target = folder / f"{weights.stem}_openvino_model"
    if (target / f"{weights.stem}.xml").is_file() and (target / "metadata.yaml").is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / f"ov-src-{weights.name}"
    shutil.copyfile(weights, local)  # ultralytics writes <stem>_openvino_model/ beside the weights
    from ultralytics import YOLO

    try:
        with quiet_ultralytics(True), keep_signal_stack():
            YOLO(str(local)).export(format="openvino", imgsz=int(imgsz), dynamic=True, half=False, int8=False,
                                    device="cpu", verbose=False)
        written = local.with_name(f"{local.stem}_openvino_model")
        if not (written / f"{local.stem}.xml").is_file():
            raise RuntimeError(f"ultralytics' OpenVINO export did not write {written}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for f in written.iterdir():  # <stem>.xml/.bin named after the original weights
            name = f.name.replace(local.stem, weights.stem, 1) if f.suffix in (".xml", ".bin") else f.name
            f.replace(target / name)
        shutil.rmtree(written, ignore_errors=True)
    finally:
        local.unlink(missing_ok=True)
    return target
