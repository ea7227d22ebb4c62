"""Latency and throughput, measured the same way for every backend.

:func:`time_callable` is the primitive (any zero-argument callable: an eager model, an ONNX Runtime
session, a compiled function): warm-up calls first, then ``repeats`` timed calls with
``time.perf_counter`` and, on CUDA, a ``torch.cuda.synchronize()`` before each clock read.  It
returns the raw times and their median, p95 (numpy's linear interpolation), mean, std, min and max
in milliseconds.  :func:`measure_model` wraps it for a torch model: batch-1 latency and batch-N
throughput, with the torch thread count and device recorded.  Figures are reported, never asserted.
"""
from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def _sync_for(device) -> Callable[[], None] | None:
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return None


def time_callable(fn: Callable[[], object], *, repeats: int = 20, warmup: int = 3,
                  sync: Callable[[], None] | None = None, max_seconds: float | None = None) -> dict:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed calls (ms).

    ``max_seconds`` stops the timed loop early (after at least 3 calls) when the budget is spent;
    ``n`` says how many calls were timed.
    """
    if repeats < 1:
        raise ValueError("repeats must be ≥ 1")
    for _ in range(max(warmup, 0)):
        fn()
    if sync:
        sync()
    times = []
    start_all = time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1000.0)
        if max_seconds is not None and i >= 2 and time.perf_counter() - start_all > max_seconds:
            break
    arr = np.asarray(times)
    return {
        "n": len(times), "warmup": int(warmup),
        "median_ms": float(np.median(arr)), "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()), "std_ms": float(statistics.pstdev(times)) if len(times) > 1 else 0.0,
        "min_ms": float(arr.min()), "max_ms": float(arr.max()), "times_ms": [float(t) for t in times],
    }


def environment(device="cpu") -> dict:
    """Where the timing ran: device, torch threads, CPU model, GPU name."""
    device = torch.device(device)
    info = {"device": str(device), "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "cpu": _cpu_model(), "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_model(model: torch.nn.Module, make_input: Callable[[int], object], *,
                  call: Callable[[torch.nn.Module, object], object] | None = None,
                  device="cpu", threads: int | None = None, repeats: int = 20, warmup: int = 3,
                  throughput_batch: int = 32, throughput_repeats: int = 5,
                  max_seconds: float | None = None) -> dict:
    """Batch-1 latency (median, p95) and batch-``throughput_batch`` throughput of ``model``.

    ``make_input(batch)`` builds an input on ``device``; ``call(model, x)`` runs it (default
    ``model(x)``).  Runs in ``eval`` mode under ``torch.inference_mode``.  ``threads`` sets torch's
    intra-op threads for the measurement (restored afterwards).  ``throughput_batch=0`` skips it.
    """
    call = call or (lambda m, x: m(x))
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    sync = _sync_for(device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x1 = make_input(1)
            lat = time_callable(lambda: call(model, x1), repeats=repeats, warmup=warmup, sync=sync,
                                max_seconds=max_seconds)
            result = {"batch1": lat, **environment(device)}
            if throughput_batch:
                xb = make_input(throughput_batch)
                thr = time_callable(lambda: call(model, xb), repeats=throughput_repeats,
                                    warmup=min(warmup, 1), sync=sync, max_seconds=max_seconds)
                thr["batch"] = int(throughput_batch)
                thr["images_per_s"] = throughput_batch / (thr["median_ms"] / 1000.0)
                result["throughput"] = thr
    finally:
        model.train(was_training)
        torch.set_num_threads(previous)
    return result
