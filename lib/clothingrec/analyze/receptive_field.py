"""Receptive fields: theoretical (composed along the real computation graph) and effective (gradients).

Theoretical receptive field
---------------------------
For one layer with kernel ``k``, stride ``s`` and dilation ``d`` acting on a feature map whose units
see ``r`` input pixels and are ``j`` input pixels apart ("jump"), the output units see::

    k_eff = d * (k - 1) + 1
    r_out = r + (k_eff - 1) * j
    j_out = j * s

:func:`theoretical_rf` applies this rule to every operator of one real forward pass, following the
data flow instead of the module list: a :class:`~torch.overrides.TorchFunctionMode` attaches a
``(r, j)`` state to every tensor an operator produces.  Element-wise joins (residual ``add``,
``cat``, ``mul``) take the largest field of their inputs, so a ResNet shortcut (a 1×1 stride-2 conv
beside the 3×3 path) no longer inflates the result the way a sequential walk over the module list
does.  Global operators (``adaptive_avg_pool2d`` to 1×1, spatial means, flatten → linear) produce a
*global* tensor: it sees the whole image.  When a global tensor gates a local one (squeeze-and-
excitation in MobileNetV3), the local field is kept and the result is flagged ``global_context``:
the theoretical receptive field of such a network is "local r px, plus global context", not a
number of pixels — composing the SE pooling as if it were a strided layer of the main path is what
produces absurd figures (``sequential_rf`` reproduces that mistake for comparison).

Effective receptive field
-------------------------
:func:`effective_rf` back-propagates a unit gradient from the central position of a feature map to
the input (Luo et al., 2016, "Understanding the Effective Receptive Field in Deep CNNs") and averages
``|∂y/∂x|`` over images; :func:`erf_extent` turns the heat map into the side of the smallest centred
square holding a given share (95 %) of the gradient mass.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# ---------------------------------------------------------------------------------------------
# per-tensor state


@dataclass(frozen=True)
class RF:
    """Receptive field of the units of one feature map (per axis: height, width)."""

    r: tuple[float, float] = (1.0, 1.0)   # receptive field size in input pixels
    j: tuple[float, float] = (1.0, 1.0)   # distance between neighbouring units, in input pixels
    global_: bool = False                 # the tensor itself pools the whole image (no spatial field)
    global_context: bool = False          # a local map modulated by a global branch (SE gates)

    def apply(self, kernel, stride, dilation=(1, 1)) -> RF:
        r = tuple(self.r[i] + (dilation[i] * (kernel[i] - 1)) * self.j[i] for i in range(2))
        j = tuple(self.j[i] * stride[i] for i in range(2))
        return RF(r, j, self.global_, self.global_context)

    def as_dict(self) -> dict:
        return {"rf_h": self.r[0], "rf_w": self.r[1], "jump_h": self.j[0], "jump_w": self.j[1],
                "global": self.global_, "global_context": self.global_context}


def _pair(value, default=None) -> tuple[int, int]:
    if value is None:
        value = default
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[-2]), int(value[-1]))
    return (int(value), int(value))


def _arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    if len(args) > index:
        return args[index]
    return default


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _join(states: list[RF]) -> RF:
    """Element-wise combination of feature maps: the largest local field wins."""
    local = [s for s in states if not s.global_]
    if not local:
        return RF(states[0].r, states[0].j, True, True)
    r = (max(s.r[0] for s in local), max(s.r[1] for s in local))
    j = (max(s.j[0] for s in local), max(s.j[1] for s in local))
    ctx = any(s.global_ or s.global_context for s in states)
    return RF(r, j, False, ctx)


_CONV = {"conv2d", "conv1d", "_conv_forward"}
_POOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "lp_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_max_pool2d",
             "adaptive_max_pool2d_with_indices"}
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm"}
_STOP = {"roi_align", "roi_pool", "ps_roi_align", "multi_scale_roi_align", "nms", "batched_nms"}


class _RFMode(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.states: dict[int, tuple[weakref.ref, RF]] = {}
        self.unknown_ops: dict[str, int] = {}

    # -- state bookkeeping
    def get(self, t: torch.Tensor) -> RF | None:
        entry = self.states.get(id(t))
        if entry is None or entry[0]() is not t:
            return None
        return entry[1]

    def set(self, t: torch.Tensor, state: RF) -> None:
        self.states[id(t)] = (weakref.ref(t), state)

    # -- the rule for one operator
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in ("__get__", "__set__", "dim", "size", "numel", "__len__"):
            return out
        inputs = [t for t in _tensors((args, kwargs))]
        states = [s for s in (self.get(t) for t in inputs) if s is not None]
        if not states:
            return out
        x = args[0] if args and isinstance(args[0], torch.Tensor) else (inputs[0] if inputs else None)
        first = self.get(x) if isinstance(x, torch.Tensor) else None
        new = self._rule(name, args, kwargs, x, first, states, out)
        if new is not None:
            for t in _tensors(out):
                self.set(t, new)
        return out

    def _rule(self, name, args, kwargs, x, first, states, out) -> RF | None:
        if name in _STOP:
            return None
        if name in ("conv2d", "conv1d") and first is not None:
            weight = _arg(args, kwargs, 1, "weight")
            k = _pair(tuple(weight.shape[2:]))
            s = _pair(_arg(args, kwargs, 3, "stride", 1))
            d = _pair(_arg(args, kwargs, 5, "dilation", 1))
            return first.apply(k, s, d)
        if name in ("conv_transpose2d",) and first is not None:
            weight = _arg(args, kwargs, 1, "weight")
            k = _pair(tuple(weight.shape[2:]))
            s = _pair(_arg(args, kwargs, 3, "stride", 1))
            d = _pair(_arg(args, kwargs, 7, "dilation", 1))
            # output units are 1/s apart; each sees k_eff output-grid positions of the input
            j = tuple(first.j[i] / s[i] for i in range(2))
            r = tuple(first.r[i] + (d[i] * (k[i] - 1)) * j[i] for i in range(2))
            return RF(r, j, first.global_, first.global_context)
        if name in _POOL and first is not None:
            k = _pair(_arg(args, kwargs, 1, "kernel_size"))
            stride = _arg(args, kwargs, 2, "stride", None)
            s = _pair(stride if stride not in (None, (), []) else k)
            d = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            return first.apply(k, s, d)
        if name in _ADAPTIVE and first is not None and isinstance(x, torch.Tensor):
            y = next(_tensors(out))
            hin, win = x.shape[-2:]
            hout, wout = y.shape[-2:]
            if hout == 1 and wout == 1 and (hin > 1 or win > 1):
                return RF(first.r, first.j, True, True)
            k = (math.ceil(hin / hout), math.ceil(win / wout))
            s = (max(hin // hout, 1), max(win // wout, 1))
            return first.apply(k, s)
        if name == "interpolate" and first is not None and isinstance(x, torch.Tensor):
            y = next(_tensors(out))
            fh = y.shape[-2] / x.shape[-2]
            fw = y.shape[-1] / x.shape[-1]
            return RF(first.r, (first.j[0] / fh, first.j[1] / fw), first.global_, first.global_context)
        if name in ("linear",) and first is not None:
            # a linear layer mixes its last dimension: spatial only when applied to a flattened map
            return RF(first.r, first.j, True, True) if (x is not None and x.dim() <= 2) else first
        if name in ("flatten", "view", "reshape") and first is not None and isinstance(x, torch.Tensor):
            y = next(_tensors(out))
            if x.dim() == 4 and (y.dim() != 4 or tuple(y.shape[-2:]) != tuple(x.shape[-2:])):
                return RF(first.r, first.j, True, True)
            return first
        if name in _REDUCE and first is not None and isinstance(x, torch.Tensor) and x.dim() == 4:
            dim = _arg(args, kwargs, 1, "dim", None)
            dims = set() if dim is None else {d % 4 for d in (dim if isinstance(dim, (list, tuple)) else [dim])
                                              if isinstance(d, int)}
            if dim is None or dims & {2, 3}:
                return RF(first.r, first.j, True, True)
            return first
        # everything else (activations, norms, add, mul, cat, split, slicing): element-wise join
        return _join(states)


# ---------------------------------------------------------------------------------------------
# public API


@dataclass
class RFReport:
    """Result of :func:`theoretical_rf`."""

    input_size: tuple[int, int]
    layers: list[dict] = field(default_factory=list)     # one row per module call with a tracked output
    targets: dict[str, dict] = field(default_factory=dict)  # requested feature maps → RF dict
    final_name: str | None = None
    final: dict | None = None

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.layers)


def theoretical_rf(model: nn.Module, example, *, targets: list[str] | None = None,
                   call=None) -> RFReport:
    """Compose kernel, stride and dilation along one forward pass of ``model`` on ``example``.

    ``example`` is a 4-D tensor (or whatever ``call(model, example)`` needs; the first 4-D tensors
    reachable in it are the image inputs).  ``targets`` are module paths whose outputs are the
    feature maps of interest (a dict output such as an FPN's records one entry per key).  Without
    targets, ``final`` is the last module output that is still a local 4-D map.
    """
    mode = _RFMode()
    images = [t for t in _tensors(example) if t.dim() in (3, 4)]
    if not images:
        raise ValueError("theoretical_rf needs an image tensor in the example input")
    size = tuple(int(v) for v in images[0].shape[-2:])
    rows: list[dict] = []
    wanted = set(targets or [])
    found: dict[str, dict] = {}
    handles = []

    def hook_for(path):
        def hook(module, inputs, output):
            items = output.items() if isinstance(output, dict) else [("", output)]
            for key, value in items:
                tensor = next(_tensors(value), None)
                if tensor is None:
                    continue
                state = mode.get(tensor)
                if state is None:
                    continue
                base = path or "<model>"
                label = f"{base}[{key}]" if key != "" else base
                row = {"module": label, "type": type(module).__name__,
                       "shape": tuple(tensor.shape), **state.as_dict()}
                rows.append(row)
                if path in wanted:
                    found[label] = row
        return hook

    for path, module in model.named_modules():
        handles.append(module.register_forward_hook(hook_for(path)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), mode:
            for img in images:
                mode.set(img, RF())
            if call is None:
                model(example)
            else:
                call(model, example)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    report = RFReport(input_size=size, layers=rows, targets=found)
    if found:
        name, row = list(found.items())[-1]
    else:
        local = [r for r in rows if len(r["shape"]) == 4 and not r["global"]
                 and (r["shape"][-1] > 1 or r["shape"][-2] > 1)]
        name, row = (local[-1]["module"], local[-1]) if local else (None, None)
    report.final_name, report.final = name, row
    return report


def compose_sequential(layers: list[tuple[int, int, int]]) -> float:
    """Receptive field of a plain chain of layers given as ``(kernel, stride, dilation)``."""
    r, j = 1.0, 1.0
    for k, s, d in layers:
        r += d * (k - 1) * j
        j *= s
    return r


def sequential_rf(torchscan_report: dict) -> float:
    """Compose torchscan's per-module (kernel, stride) in call order, as a module-list walk does.

    This ignores the graph (branches, shortcuts, squeeze-excitation pooling) and is shown only to
    explain how a naive tool inflates the figure.
    """
    r, j = 1.0, 1.0
    for layer in torchscan_report["layers"]:
        m = layer["metrics"]
        rf, st = m.get("receptive_field"), m.get("effective_stride")
        if not rf or not st or rf.get("value") is None or st.get("value") is None:
            continue
        k, s = float(rf["value"]), float(st["value"])
        if k <= 0:   # transposed conv: torchscan stores -k
            continue
        r += (k - 1) * j
        j *= s
    return r


def effective_rf(feature_fn, images: torch.Tensor, *, position: tuple[int, int] | None = None,
                 device: str | torch.device = "cpu") -> dict:
    """Mean ``|∂ y[c, h0, w0] / ∂ x|`` over images, summed over channels (in and out).

    ``feature_fn(x)`` maps a batch (N, 3, H, W) to a feature map (N, C, h, w); the central unit
    ``(h // 2, w // 2)`` is used unless ``position`` is given.  Images are processed one by one so
    the heat map is the average of per-image gradients.  Returns the (H, W) heat map normalised to a
    maximum of 1, the output position, the feature map size and the 95 % extent.
    """
    device = torch.device(device)
    heat = None
    fmap_size = None
    for i in range(images.shape[0]):
        x = images[i:i + 1].to(device).clone().requires_grad_(True)
        y = feature_fn(x)
        h, w = y.shape[-2:]
        fmap_size = (int(h), int(w))
        ph, pw = position if position is not None else (h // 2, w // 2)
        seed = torch.zeros_like(y)
        seed[:, :, ph, pw] = 1.0
        (grad,) = torch.autograd.grad(y, x, grad_outputs=seed)
        g = grad.detach().abs().sum(dim=1)[0].cpu().double()
        heat = g if heat is None else heat + g
    heat = (heat / images.shape[0]).numpy()
    total = heat.sum()
    norm = heat / heat.max() if heat.max() > 0 else heat
    return {"heat": norm, "position": (int(ph), int(pw)), "feature_size": fmap_size,
            "extent95": erf_extent(heat, 0.95) if total > 0 else float("nan"),
            "images": int(images.shape[0])}


def erf_extent(heat: np.ndarray, share: float = 0.95) -> int:
    """Side (px) of the smallest square centred on the gradient's centre of mass holding ``share``."""
    heat = np.asarray(heat, dtype=float)
    total = heat.sum()
    if total <= 0:
        return 0
    ys, xs = np.indices(heat.shape)
    cy = float((heat * ys).sum() / total)
    cx = float((heat * xs).sum() / total)
    cy_i, cx_i = int(round(cy)), int(round(cx))
    limit = max(heat.shape) * 2
    for half in range(0, limit):
        y0, y1 = max(cy_i - half, 0), min(cy_i + half + 1, heat.shape[0])
        x0, x1 = max(cx_i - half, 0), min(cx_i + half + 1, heat.shape[1])
        if heat[y0:y1, x0:x1].sum() >= share * total - 1e-12:
            return min(2 * half + 1, int(max(heat.shape)))
    return int(max(heat.shape))
