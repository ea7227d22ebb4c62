"""Activation memory of one forward pass.

Two figures, both in bytes, both for one inference forward pass (``eval``, ``no_grad``):

* ``peak_live_bytes`` — the largest total size of tensors produced by operators that were alive at
  the same time (a :class:`~torch.utils._python_dispatch.TorchDispatchMode` counts each storage once
  when an operator returns it and releases it when the last tensor viewing it is freed).  Inputs,
  parameters, buffers (and views of them, such as a transposed weight) and kernel-internal
  workspaces are not included.  This is what inference needs beyond the weights.
* ``sum_leaf_outputs_bytes`` — the sum of the outputs of every leaf-module call: roughly what a
  training step keeps for the backward pass (before in-place tricks and checkpointing).

On CUDA ``cuda_peak_bytes`` adds ``torch.cuda.max_memory_allocated`` above the pre-call level.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from clothingrec.analyze.receptive_field import _tensors


class LiveTensorTracker(TorchDispatchMode):
    """Tracks bytes of live operator outputs (by storage) and their peak."""

    def __init__(self, exclude: set[int] | None = None):
        super().__init__()
        self.exclude = set(exclude or ())   # storages that are not activations (weights, inputs)
        self.live = 0
        self.peak = 0
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.ops = 0

    def _release(self, key: int) -> None:
        n = self.refs.get(key, 0) - 1
        if n <= 0:
            self.refs.pop(key, None)
            self.live -= self.sizes.pop(key, 0)
        else:
            self.refs[key] = n

    def _track(self, t: torch.Tensor) -> None:
        if t.device.type == "meta":
            return
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return
        key = storage.data_ptr()
        if key == 0 or key in self.exclude:
            return
        if key not in self.refs:
            self.refs[key] = 0
            self.sizes[key] = storage.nbytes()
            self.live += self.sizes[key]
            self.peak = max(self.peak, self.live)
        self.refs[key] += 1
        weakref.finalize(t, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in _tensors(out):
            self._track(t)
        return out


def activation_memory(model: nn.Module, example, *, call=None) -> dict:
    """Peak live activation bytes and the sum of leaf-module outputs for one forward pass."""
    call = call or (lambda m, x: m(x))
    sums = {"bytes": 0, "calls": 0}

    def hook(module, inputs, output):
        for t in _tensors(output):
            sums["bytes"] += t.numel() * t.element_size()
        sums["calls"] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(m.children())]
    was_training = model.training
    model.eval()
    cuda = next((p.device.type == "cuda" for p in model.parameters()), False)
    try:
        with torch.no_grad():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            exclude = {t.untyped_storage().data_ptr()
                       for t in [*model.parameters(), *model.buffers(), *_tensors(example)]}
            tracker = LiveTensorTracker(exclude)
            with tracker:
                out = call(model, example)
            peak = tracker.peak
            if cuda:
                torch.cuda.synchronize()
                cuda_peak = torch.cuda.max_memory_allocated() - base
            del out
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    result = {"peak_live_bytes": int(peak), "sum_leaf_outputs_bytes": int(sums["bytes"]),
              "leaf_calls": int(sums["calls"]), "operators": int(tracker.ops)}
    if cuda:
        result["cuda_peak_bytes"] = int(cuda_peak)
    return result


def model_size(model: nn.Module) -> dict:
    """Parameters (count, trainable, bytes) and buffers (count, bytes)."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    return {
        "params": int(sum(p.numel() for p in params)),
        "trainable_params": int(sum(p.numel() for p in params if p.requires_grad)),
        "param_bytes": int(sum(p.numel() * p.element_size() for p in params)),
        "buffers": int(sum(b.numel() for b in buffers)),
        "buffer_bytes": int(sum(b.numel() * b.element_size() for b in buffers)),
    }
