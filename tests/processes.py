"""Run one function in several forked processes that start together (tests of code shared by concurrent runs)."""
from __future__ import annotations

import multiprocessing as mp


def _child(fn, args, barrier, queue, index):
    barrier.wait()
    queue.put((index, fn(*args)))


def at_once(fn, args_per_process: list[tuple], timeout: float = 300) -> list:
    """``fn(*args)`` in one process per entry, released by one barrier; their return values in entry order.

    A child that raises or hangs fails the calling test (its exit code, or the timeout)."""
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(args_per_process)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(fn, args, barrier, queue, i)) for i, args in enumerate(args_per_process)]
    for p in procs:
        p.start()
    results = {}
    try:
        for _ in procs:
            index, value = queue.get(timeout=timeout)
            results[index] = value
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return [results[i] for i in range(len(procs))]
