"""OpenVINO's CPU plugin swaps the calling thread's alternate signal stack when it builds and releases
engines; released out of order, a thread was left with a signal stack in freed memory and the next
Python-handled signal (SIGCHLD of a subprocess) killed the test process with SIGSEGV.  Every engine the
project builds or drops keeps the thread's own signal stack."""
from __future__ import annotations

import gc
import signal
import subprocess
import sys

import pytest
import torch

from clothingrec.serve import openvino_backend as ovb

pytestmark = pytest.mark.skipif(not ovb.available()[0] or ovb.signal_stack() is None,
                                reason="needs openvino and Linux")


def _tiny_onnx(path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), str(path), dynamo=False)
    return path


def test_building_and_dropping_engines_in_any_order_keeps_the_threads_signal_stack(tmp_path):
    onnx_file = _tiny_onnx(tmp_path / "tiny.onnx")
    before = ovb.signal_stack()
    first = ovb.compile_model(onnx_file, threads=1)
    second = ovb.compile_model(onnx_file, threads=1)
    assert ovb.signal_stack() == before
    del first  # released before the engine built after it: the order that left a dangling stack
    gc.collect()
    assert ovb.signal_stack() == before
    del second
    gc.collect()
    assert ovb.signal_stack() == before


def test_a_python_signal_handler_still_runs_after_openvino_engines_came_and_went(tmp_path):
    onnx_file = _tiny_onnx(tmp_path / "tiny.onnx")
    engines = [ovb.compile_model(onnx_file, threads=1) for _ in range(3)]
    del engines[0], engines[-1]
    gc.collect()
    seen = []
    previous = signal.signal(signal.SIGCHLD, lambda *_: seen.append(1))  # handled on the alternate stack
    try:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert seen  # the process is alive and the handler ran
