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
