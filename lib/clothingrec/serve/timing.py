"""Side-by-side timing of several backends in one run, robust to a noisy (shared) machine.

Backends are timed in interleaved rounds (A, B, C, A, B, C, …) with
:func:`clothingrec.analyze.latency.time_callable`, and each backend's timed calls from all rounds
are pooled before the median / p95 are taken: a burst of load from another process then hits every
backend instead of the one that happened to run during it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clothingrec.analyze.latency import time_callable

#: a serving backend replaces eager only when its batch-1 median is at least this many times faster
MIN_SPEEDUP = 1.1


def compare_latency(fns: dict[str, Callable[[], object]], *, rounds: int = 3, repeats: int = 5,
                    warmup: int = 1, max_seconds: float | None = None) -> dict[str, dict]:
    """``{name: {median_ms, p95_ms, mean_ms, min_ms, n}}`` for each zero-argument callable."""
    if not fns:
        return {}
    pooled: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(max(1, rounds)):
        for name, fn in fns.items():
            per_round = None if max_seconds is None else max_seconds / max(1, rounds)
            res = time_callable(fn, repeats=repeats, warmup=warmup if r == 0 else 0, max_seconds=per_round)
            pooled[name].extend(res["times_ms"])
    out = {}
    for name, times in pooled.items():
        arr = np.asarray(times)
        out[name] = {"n": int(arr.size), "median_ms": float(np.median(arr)), "p95_ms": float(np.percentile(arr, 95)),
                     "mean_ms": float(arr.mean()), "min_ms": float(arr.min()), "rounds": int(max(1, rounds))}
    return out
