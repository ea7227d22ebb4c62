"""Device and thread selection: always a parameter, never assumed."""
from __future__ import annotations

import os

import torch


def resolve_device(device: str | None = "auto") -> torch.device:
    """``auto`` → ``cuda`` when available, else ``mps``, else ``cpu``; anything else is passed to torch."""
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (``None`` keeps the default: one per core). Returns the count in use."""
    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: The precision names every trainer takes (Lightning's vocabulary; ``auto`` resolves per device).
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: fp32 on CPU (bf16 autocast is slower on CPUs without AMX), bf16/fp16 mixed on GPUs."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device.type == "mps":
        return "16-mixed"
    return "32-true"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved mixed precision; None for full precision."""
    return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
