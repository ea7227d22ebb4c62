"""MACs and FLOPs with three maintained counters, cross-checked, plus the closed-form counts.

Conventions (they differ between tools; every number here says which one it uses):

* **MAC** — one multiply-accumulate.  A 2-D convolution costs
  ``N · C_out · H_out · W_out · (C_in / groups) · k_h · k_w`` MACs (:func:`conv2d_macs`), a linear
  layer ``N · out_features · in_features``.  Bias additions are folded into the accumulation.
* **FLOP** — ``FLOPs = 2 × MACs`` (one multiply and one add), the convention of PyTorch's own
  ``torch.utils.flop_counter.FlopCounterMode``.

The project's headline figure is the **operator count** from torchscan, which runs PyTorch's
``FlopCounterMode`` (FLOPs of convolutions and matrix products, = 2 × their MACs) on the real forward
pass; ``macs = operator FLOPs / 2``.  The cross-checks:

* **fvcore** ``FlopCountAnalysis`` traces the model with TorchScript and counts *one fused
  multiply-add as one flop*, i.e. it reports MACs.  On top of convolutions and matrix products it
  counts batch norm (1–2 per element), adaptive average pooling and upsampling; it skips activations,
  element-wise ``add``/``mul`` (residuals, SE gates) and max pooling (listed as unsupported).
* **thop** ``profile`` hooks *leaf modules of known types* and returns MACs; it also counts batch norm
  (2 per element), average pooling and ``nn.Upsample`` but sees nothing done with functional calls
  (``F.interpolate``, ``torch.add``, ``x * y``, ``F.max_pool2d``).
* **torchscan** module formulas (``macs`` total) use per-module rules and report the total as
  "partial" when a module type (Hardswish, SiLU, …) has no rule.

So ``conv+linear`` MACs agree exactly between the three tools (tests check it); totals differ by the
cheap element-wise operators each tool chooses to count, shown per operator in the tables.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import warnings
from dataclasses import dataclass, field

from torch import nn

#: fvcore operator names that are multiply-accumulate heavy (conv / matmul family)
FVCORE_CORE_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum", "mm", "_convolution")
#: aten operators counted by torch.utils.flop_counter (all conv / matmul family)
TORCH_CORE_OPS = ("aten.convolution", "aten.addmm", "aten.mm", "aten.bmm", "aten.baddbmm",
                  "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_flash_attention",
                  "aten.convolution_backward")


#: module types whose MACs are the multiply-accumulate core (thop / torchscan module rules)
CORE_MODULE_TYPES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear")


def conv2d_macs(c_in: int, c_out: int, kernel, out_hw, groups: int = 1, batch: int = 1) -> int:
    """Closed-form MACs of one 2-D convolution."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    oh, ow = (out_hw, out_hw) if isinstance(out_hw, int) else out_hw
    if c_in % groups or c_out % groups:
        raise ValueError(f"channels {c_in}->{c_out} not divisible by groups={groups}")
    return int(batch * c_out * oh * ow * (c_in // groups) * kh * kw)


def conv2d_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def linear_macs(in_features: int, out_features: int, batch: int = 1) -> int:
    return int(batch * in_features * out_features)


@dataclass
class Workload:
    """One module call to count: ``module(*args)``; ``prefix`` names it inside the whole model."""

    name: str
    module: nn.Module
    args: tuple
    prefix: str = ""
    note: str = ""


@dataclass
class CountResult:
    """What one tool counted for one or more workloads (summed)."""

    tool: str
    convention: str
    total: float                       # in the tool's own unit (see ``convention``)
    macs: float                        # the total expressed in MACs
    core_macs: float | None = None     # conv + linear + matmul MACs only (comparable across tools)
    by_operator: dict[str, float] = field(default_factory=dict)
    by_module: dict[str, float] = field(default_factory=dict)   # leaf module path → MACs
    skipped: dict[str, int] = field(default_factory=dict)       # operators / modules not counted
    status: str = "complete"
    error: str | None = None

    def as_dict(self) -> dict:
        return {"tool": self.tool, "convention": self.convention, "total": self.total, "macs": self.macs,
                "core_macs": self.core_macs, "by_operator": self.by_operator, "skipped": self.skipped,
                "status": self.status, "error": self.error}


@contextlib.contextmanager
def _quiet():
    """Silence tracer warnings, fvcore's logger and thop's prints while counting."""
    loggers = [logging.getLogger(n) for n in ("fvcore", "fvcore.nn.jit_analysis")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for lg, lvl in zip(loggers, levels):
                lg.setLevel(lvl)


def _leaf_paths(model: nn.Module) -> set[str]:
    return {n for n, m in model.named_modules() if n and not any(m.children())}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else (prefix or name)


# ---------------------------------------------------------------------------------------------
# the three tools


def count_fvcore(workloads: list[Workload]) -> CountResult:
    """fvcore ``FlopCountAnalysis`` (TorchScript trace; one fused multiply-add = one "flop" = 1 MAC)."""
    from fvcore.nn import FlopCountAnalysis

    total, by_op, by_mod, skipped = 0.0, {}, {}, {}
    for w in workloads:
        with _quiet():
            fa = FlopCountAnalysis(w.module, w.args)
            fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            total += fa.total()
            for op, v in fa.by_operator().items():
                by_op[op] = by_op.get(op, 0) + v
            leaves = _leaf_paths(w.module)
            for path, v in fa.by_module().items():
                if path in leaves and v:
                    key = _join(w.prefix, path)
                    by_mod[key] = by_mod.get(key, 0) + v
            for op, n in fa.unsupported_ops().items():
                skipped[op] = skipped.get(op, 0) + int(n)
    core = sum(v for op, v in by_op.items() if op in FVCORE_CORE_OPS)
    return CountResult("fvcore", "flop = one fused multiply-add (MACs)", total, total, core,
                       by_op, by_mod, skipped)


def _thop_core_types():
    return (nn.modules.conv._ConvNd, nn.Linear)


def count_thop(workloads: list[Workload]) -> CountResult:
    """thop ``profile`` on a deep copy (it adds and removes buffers); returns MACs of known leaf modules."""
    import thop

    total, by_mod, by_op, skipped = 0.0, {}, {}, {}
    core = 0.0
    import sys

    rules = getattr(sys.modules.get("thop.profile"), "register_hooks", {}) or {}

    def has_rule(m: nn.Module) -> bool:
        return any(t in rules for t in type(m).__mro__)
    for w in workloads:
        module = copy.deepcopy(w.module)
        with _quiet():
            macs, _params, info = thop.profile(module, inputs=w.args, verbose=False, ret_layer_info=True)
        total += float(macs)
        mods = dict(module.named_modules())

        def walk(tree, prefix="", mods=mods, w=w):
            nonlocal core
            for name, (ops, _p, sub) in tree.items():
                path = _join(prefix, name)
                if sub:
                    walk(sub, path, mods, w)
                    continue
                m = mods.get(path)
                if m is None or any(m.children()):
                    continue
                key = _join(w.prefix, path)
                if ops:
                    by_mod[key] = by_mod.get(key, 0) + ops
                t = type(m).__name__
                by_op[t] = by_op.get(t, 0) + ops
                if isinstance(m, _thop_core_types()):
                    core += ops
        walk(info)
        for path, m in mods.items():
            if path and not any(m.children()) and not has_rule(m):
                skipped[type(m).__name__] = skipped.get(type(m).__name__, 0) + 1
    version = getattr(thop, "__version__", "?")
    return CountResult(f"thop {version}", "MACs of hooked leaf modules", total, total, core, by_op, by_mod,
                       skipped)


def count_torchscan(workloads: list[Workload]) -> tuple[CountResult, CountResult, list[dict]]:
    """torchscan ``crawl_module``: operator FLOPs (PyTorch FlopCounterMode) and module-formula MACs.

    Returns (operator count, module-formula count, per-layer rows).
    """
    import torchscan

    op_total, op_by, op_skipped = 0.0, {}, {}
    mod_total, mod_by, mod_skipped, mod_types, mod_core = 0.0, {}, {}, {}, 0.0
    op_status, mod_status = "complete", "complete"
    layers = []
    for w in workloads:
        with _quiet():
            rep = torchscan.crawl_module(w.module, args=w.args)
        of = rep["totals"]["operator_flops"]
        op_total += of["value"] if of["value"] is not None else of["known_value"]
        if of["status"] != "complete":
            op_status = "partial"
        for op, v in rep["operator_flops"]["by_operator"].items():
            op_by[op] = op_by.get(op, 0) + v
        for d in rep["operator_flops"]["diagnostics"]:
            op = d.get("operator", d["message"].split(" ")[0])
            calls = re.search(r"observed (\d+) time", d["message"])
            op_skipped[op] = op_skipped.get(op, 0) + (int(calls.group(1)) if calls else 1)
        mm = rep["totals"]["macs"]
        mod_total += mm["value"] if mm["value"] is not None else (mm["known_value"] or 0)
        if mm["status"] != "complete":
            mod_status = "partial"
        for layer in rep["layers"]:
            macs = layer["metrics"].get("macs")
            path = _join(w.prefix, layer["path"])
            if macs is not None:
                value = macs["value"] if macs["value"] is not None else None
                if value:
                    mod_by[path] = mod_by.get(path, 0) + value
                    mod_types[layer["type"]] = mod_types.get(layer["type"], 0) + value
                    if layer["type"] in CORE_MODULE_TYPES:
                        mod_core += value
                if macs["status"] != "complete":
                    mod_skipped[layer["type"]] = mod_skipped.get(layer["type"], 0) + 1
            out = layer["output"]
            rf = layer["metrics"].get("receptive_field") or {}
            st = layer["metrics"].get("effective_stride") or {}
            layers.append({
                "module": path, "type": layer["type"],
                "output_shape": tuple(out.get("shape", ())) if out.get("kind") == "tensor" else None,
                "params": layer["parameters"]["trainable"] + layer["parameters"]["frozen"],
                "leaf": not any(dict(w.module.named_modules()).get(layer["path"], nn.Identity()).children())
                if layer["path"] else False,
                "kernel_extent": rf.get("value"), "stride": st.get("value"),
            })
    op_res = CountResult("torchscan (operators)", "FLOPs = 2 × MACs (torch.utils.flop_counter)",
                         op_total, op_total / 2, op_total / 2, op_by, {}, op_skipped, op_status)
    mod_res = CountResult("torchscan (modules)", "MACs (per-module formulas)", mod_total, mod_total,
                          mod_core, mod_types, mod_by, mod_skipped, mod_status)
    return op_res, mod_res, layers


def count_all(workloads: list[Workload], tools=("torchscan", "fvcore", "thop")) -> dict[str, CountResult]:
    """Run every tool on the workloads; a tool that fails is reported with its error, the rest go on."""
    results: dict[str, CountResult] = {}
    layers: list[dict] = []
    for tool in tools:
        try:
            if tool == "torchscan":
                op_res, mod_res, layers = count_torchscan(workloads)
                results["torchscan_ops"] = op_res
                results["torchscan_modules"] = mod_res
            elif tool == "fvcore":
                results["fvcore"] = count_fvcore(workloads)
            elif tool == "thop":
                results["thop"] = count_thop(workloads)
            else:
                raise ValueError(f"unknown counter {tool!r}; choose torchscan, fvcore or thop")
        except Exception as exc:  # a counter that cannot handle a model must not stop the analysis
            results[tool] = CountResult(tool, "", float("nan"), float("nan"), status="failed",
                                        error=f"{type(exc).__name__}: {exc}")
    results["_layers"] = layers  # type: ignore[assignment]
    return results


def cross_check_table(results: dict[str, CountResult]):
    """One row per tool: total, its convention, conv+linear MACs, what it skipped."""
    import pandas as pd

    rows = []
    for key, r in results.items():
        if key.startswith("_"):
            continue
        rows.append({
            "tool": r.tool, "convention": r.convention,
            "total (tool unit)": r.total, "total as MACs": r.macs,
            "conv+linear MACs": r.core_macs, "status": r.status,
            "not counted": ", ".join(f"{k}×{v}" for k, v in sorted(r.skipped.items())[:12])
            + (" …" if len(r.skipped) > 12 else "") if r.error is None else r.error,
        })
    return pd.DataFrame(rows)


def layer_table(results: dict[str, CountResult], model: nn.Module | None = None):
    """Per leaf module: output shape, parameters and the MACs each tool attributes to it."""
    import pandas as pd

    base = [r for r in results.get("_layers", []) if r.get("leaf")]
    seen, rows = set(), []
    for r in base:
        if r["module"] in seen:
            continue
        seen.add(r["module"])
        rows.append({k: r[k] for k in ("module", "type", "output_shape", "params")})
    df = pd.DataFrame(rows, columns=["module", "type", "output_shape", "params"])
    for key, col in (("torchscan_modules", "MACs torchscan"), ("fvcore", "MACs fvcore"), ("thop", "MACs thop")):
        res = results.get(key)
        by = res.by_module if isinstance(res, CountResult) else {}
        df[col] = [by.get(m, 0.0) for m in df["module"]]
    return df


def explain_differences(tools: dict, top: int = 4) -> list[str]:
    """Why the tools' totals differ, from their own per-operator breakdowns (``record["tools"]``)."""
    lines = []
    core = (tools.get("torchscan_ops") or {}).get("core_macs")
    if core is None:
        return ["no operator count available"]
    for key in ("fvcore", "thop", "torchscan_modules"):
        t = tools.get(key) or {}
        if t.get("status") == "failed" or t.get("macs") is None:
            lines.append(f"{key.replace('_', ' ')}: failed ({t.get('error')})")
            continue
        extra = t["macs"] - core
        core_diff = (t.get("core_macs") or 0) - core
        ops = t.get("by_operator") or {}
        core_names = set(FVCORE_CORE_OPS) | set(CORE_MODULE_TYPES)
        parts = sorted(((k, v) for k, v in ops.items() if k not in core_names and v), key=lambda kv: -kv[1])
        desc = ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in parts[:top]) or "nothing"
        line = (f"{key.replace('_', ' ')}: {extra / 1e6:+.2f} M MACs vs conv+linear; extra operators counted: {desc}")
        if abs(core_diff) > 0.5:
            line += f"; its conv+linear count differs by {core_diff / 1e6:+.2f} M"
            if ops.get("ConvTranspose2d"):
                line += " (transposed conv counted on the output grid: k²·C_in MACs per output element)"
        skipped = t.get("skipped") or {}
        if skipped:
            line += "; not counted: " + ", ".join(sorted(skipped)[:6]) + (" …" if len(skipped) > 6 else "")
        lines.append(line)
    ts = tools.get("torchscan_ops") or {}
    if ts.get("skipped"):
        names = sorted(ts["skipped"])
        lines.append("torchscan operators (conv/matmul only by design) saw but did not count: "
                     + ", ".join(n.replace("aten.", "") for n in names[:8]) + (" …" if len(names) > 8 else ""))
    return lines
