"""ONNX export, ONNX Runtime sessions, int8 quantisation and an ``nn.Module`` over a session.

- :func:`export_onnx` — ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``):
  it handles torchvision's convolution backbones and heads with dynamic batch / height / width axes.
- :func:`ort_session` — a CPU (or CUDA, when asked and available) ``InferenceSession`` with an explicit
  intra-op thread count (the same count the eager baseline uses, for fair comparisons).
- :func:`quantize_static_int8` (QDQ, per-channel weights, calibrated on real inputs) and
  :func:`quantize_dynamic_int8` (``MatMul``/``Gemm`` weights int8, activations quantised at run time:
  the path that helps the R-CNN box head's 12544→1024 fully connected layer on a VNNI CPU).
- :class:`OrtModule` — an ``nn.Module`` whose ``forward`` runs the session, so a torchvision model can
  keep its eager orchestration (transform, RPN, NMS, RoI align) with sub-modules served by ORT.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clothingrec.paths import CACHE_DIR

SERVE_CACHE = CACHE_DIR / "serve"
DEFAULT_OPSET = 17


def cpu_flags() -> dict[str, bool]:
    """The instruction-set extensions that matter for int8 / bf16 inference on this CPU."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {name: name in flags for name in wanted}


def state_fingerprint(module: nn.Module, extra: str = "") -> str:
    """A short hash of a module's parameters and buffers (names, shapes, bytes): an export cache key."""
    h = hashlib.sha1(extra.encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's tracer warnings and prints (they would leak into notebook outputs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "root")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_onnx(module: nn.Module, args: tuple, path: str | os.PathLike, *, input_names: Sequence[str],
                output_names: Sequence[str], dynamic_axes: dict | None = None,
                opset: int = DEFAULT_OPSET) -> Path:
    """Export ``module(*args)`` (eval mode, on CPU) to ``path`` and check the file with ``onnx.checker``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    modes = [(m, m.training) for m in module.modules()]  # restored per module: wrappers share sub-modules
    module.eval()
    tmp = path.with_suffix(".tmp.onnx")
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(module, tuple(args), str(tmp), dynamo=False, opset_version=int(opset),
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic_axes or {}, do_constant_folding=True)
        onnx.checker.check_model(str(tmp))
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export of {type(module).__name__} to {path} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    finally:
        for m, training in modes:
            m.training = training
    return path


def ort_session(path: str | os.PathLike, threads: int | None = None, device: str = "cpu"):
    """An ONNX Runtime session: all graph optimisations, ``threads`` intra-op threads (default: torch's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)


def quantize_dynamic_int8(src: str | os.PathLike, dst: str | os.PathLike,
                          op_types: Sequence[str] = ("MatMul", "Gemm"), per_channel: bool = True) -> Path:
    """int8 weights (per output channel) for ``op_types``, activations quantised per call: FC layers."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    with _quiet():
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(op_types), weight_type=QuantType.QInt8,
                         per_channel=per_channel)
    return dst


def quantize_static_int8(src: str | os.PathLike, dst: str | os.PathLike, batches: Sequence[dict],
                         per_channel: bool = True) -> Path:
    """QDQ int8 (uint8 activations, int8 per-channel weights) calibrated on ``batches`` (input dicts)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not batches:
        raise ValueError("static int8 quantisation needs at least one calibration batch")

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            return next(self._it, None)

    dst = Path(dst)
    pre = dst.with_suffix(".pre.onnx")
    with _quiet():
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            source = pre
        except Exception:  # pre-processing is an optimisation; quantise the plain graph otherwise
            source = Path(src)
        quantize_static(str(source), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    pre.unlink(missing_ok=True)
    return dst


class OrtModule(nn.Module):
    """``forward(*tensors)`` → the session's outputs as CPU tensors (one tensor, or a tuple).

    ``fallback`` (an eager module) handles inputs with a zero-sized first dimension (e.g. no RoIs),
    which some int8 kernels reject.  ``_anchor`` is an empty parameter so callers that read
    ``next(model.parameters()).device`` (the eager predictor does) see the CPU.
    """

    def __init__(self, session, *, fallback: nn.Module | None = None, name: str = "onnx", path=None):
        super().__init__()
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.fallback = fallback
        self.backend_name = name
        self.path = None if path is None else str(path)
        self._anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def run_numpy(self, *arrays: np.ndarray) -> list[np.ndarray]:
        feeds = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.input_names, arrays)}
        return self.session.run(None, feeds)

    def forward(self, *tensors):
        if self.fallback is not None and tensors and tensors[0].shape[0] == 0:
            return self.fallback(*tensors)
        device = tensors[0].device if tensors else torch.device("cpu")
        outs = self.run_numpy(*[t.detach().float().cpu().contiguous().numpy() for t in tensors])
        outs = [torch.from_numpy(o).to(device) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def extra_repr(self) -> str:
        return f"backend={self.backend_name}, inputs={self.input_names}, outputs={self.output_names}"
