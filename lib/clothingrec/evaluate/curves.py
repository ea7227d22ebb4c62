"""Accuracy against training cost: each run's per-epoch validation AP50 against the compute spent so far.

The question a CPU user asks first is how much AP an hour of a core buys, per family.  ``learning_curve``
reads a detection run folder (``run.json`` + ``history.csv``, whatever the backend) and returns one row per
evaluated epoch; ``plot_learning_curves`` draws several on one axis.  The per-epoch AP is each trainer's own
validation figure (ultralytics' mAP50 for YOLO, the recipe's pycocotools AP50 on the capped per-epoch
validation images for the R-CNNs); the final, comparable number is the run's one pycocotools evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clothingrec.runs import RunRecord


def learning_curve(run_dir) -> pd.DataFrame:
    """``epoch, hours, core_hours, AP50`` (and ``segm_AP50`` where there are masks) of one run.

    ``hours`` is cumulative training wall time including the per-epoch evaluations; ``core_hours`` scales
    it by the torch threads of a CPU run (on an accelerator it equals ``hours``).  ``attrs``: ``name``,
    ``family``, ``split`` (the val digest) and ``label`` (family, model, input size, the range of a multi-scale
    training's sizes, backend).  A run started from an earlier run's weights (``init_weights``) continues that
    run's curve, stored in its record: its epochs and hours count on from the earlier run's last.  One started
    from a backbone pretrained here counts that pretraining's hours first.
    """
    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir)
    sizes = record.config.get("train_imgsz") or []
    trained_at = f", trained at {min(sizes)}–{max(sizes)}" if len(sizes) > 1 else ""  # multi-scale R-CNNs
    before = (record.provenance.get("started_from") or {}).get("curve")
    before = pd.DataFrame(before) if before else None
    if before is not None:
        trained_at += f", restarted after epoch {int(before['epoch'].iloc[-1])}"
    backbone = (record.provenance.get("started_from") or {}).get("backbone")
    if backbone:
        sources = [Path(str(d)).name for d in [backbone.get("dataset"), *(backbone.get("extra_train") or [])]]
        trained_at += f", backbone pretrained on {' + '.join(sources)}"
    attrs = dict(name=record.name, run=run_dir.name, family=record.family,
                 split=record.split.get("val", {}).get("digest"),
                 label=f"{record.family} {record.arch} @{record.imgsz} px{trained_at} ({record.backend})")
    if not (run_dir / "history.csv").is_file():  # stopped before its first epoch ended
        empty = pd.DataFrame(columns=["epoch", "hours", "AP50", "core_hours"])
        empty.attrs.update(attrs)
        return empty
    history = pd.read_csv(run_dir / "history.csv")
    if "time" in history:  # ultralytics: cumulative seconds
        seconds = history["time"].astype(float)
        ap50 = history.get("val_mAP50", pd.Series(np.nan, index=history.index))  # a train_on_val run has none
        segm = history.get("val_mask_mAP50")
    else:  # the torchvision loop and detectron2: seconds per epoch
        spent = history.get("train_seconds", pd.Series(0.0, index=history.index)).fillna(0)
        spent = spent + history.get("eval_seconds", pd.Series(0.0, index=history.index)).fillna(0)
        seconds = spent.cumsum()
        ap50 = history.get("bbox_AP50", pd.Series(np.nan, index=history.index))
        segm = history.get("segm_AP50")
    hardware = record.provenance.get("hardware") or {}
    device = str(hardware.get("device") or record.config.get("device") or "cpu")
    threads = int(hardware.get("torch_threads") or record.config.get("threads") or 1)
    on_cpu = not device.startswith(("cuda", "mps", "xpu"))
    if record.config.get("train_on_val"):  # trained on val: no held-out curve to draw
        ap50, segm = pd.Series(np.nan, index=history.index), None
    curve = pd.DataFrame({"epoch": history["epoch"].astype(int), "hours": seconds / 3600,
                          "AP50": ap50.astype(float)})
    curve["core_hours"] = curve["hours"] * (threads if on_cpu else 1)
    if segm is not None:
        curve["segm_AP50"] = segm.astype(float)
    curve = curve.dropna(subset=["AP50"]).reset_index(drop=True)
    if backbone:
        curve["hours"] += float(backbone.get("hours") or 0)
        curve["core_hours"] += float(backbone.get("core_hours") or 0)
    if before is not None:
        last = before.iloc[-1]
        for column in ("epoch", "hours", "core_hours"):
            curve[column] = curve[column] + last[column]
        curve = pd.concat([before[[c for c in curve.columns if c in before]], curve], ignore_index=True)
        curve["epoch"] = curve["epoch"].astype(int)
    curve.attrs.update(attrs)
    return curve


def labelled(curves) -> dict[str, pd.DataFrame]:
    """``{legend label: curve}`` for :func:`learning_curve` results: each run's ``label``; runs that share one
    (the same family, model and size trained two ways) add their run name, and their folder where those agree."""
    curves = list(curves)
    shared = pd.Series([c.attrs["label"] for c in curves]).value_counts()
    named = pd.Series([f"{c.attrs['label']} [{c.attrs['name']}]" for c in curves]).value_counts()
    out = {}
    for curve in curves:
        label = curve.attrs["label"]
        if shared[label] > 1:
            label = f"{label} [{curve.attrs['name']}]"
            if named[label] > 1:
                label = f"{label[:-1]}, {curve.attrs['run']}]"
        out[label] = curve
    return out


def plot_learning_curves(curves: dict[str, pd.DataFrame], ax=None, *, x: str = "core_hours", goals=None):
    """One line per run (``{label: learning_curve(...)}``), AP50 against ``x``; ``goals`` ``{label: AP50}``
    are drawn as dotted lines in the same colour."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.2))[1]
    for label, curve in curves.items():
        line, = ax.plot(curve[x], curve["AP50"], marker="o", ms=3, label=f"{label} bbox")
        if "segm_AP50" in curve and curve["segm_AP50"].notna().any():
            ax.plot(curve[x], curve["segm_AP50"], marker="s", ms=3, ls="--", color=line.get_color(),
                    label=f"{label} segm")
        if goals and label in goals:
            ax.axhline(goals[label], ls=":", color=line.get_color(), lw=1)
    ax.set_xlabel("CPU core-hours of training" if x == "core_hours" else "hours of training")
    ax.set_ylabel("validation AP50 (per epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # beside the curves
    return ax
