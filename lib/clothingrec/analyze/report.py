"""One call per model: complexity, memory, receptive fields, latency → a JSON-ready record.

``analysis.json`` (written by :func:`write_analysis`, read by :mod:`clothingrec.compare`) is
``{"schema": 1, "environment": {...}, "settings": {...}, "models": {name: record}}``; each record has
``macs``, ``flops`` (= 2 × macs), ``params``, ``buffers``, ``activation_memory``, ``receptive_field``,
``erf``, ``latency`` (batch-1 ``p50_ms``/``p95_ms``, batch-N ``images_per_s``), ``threads``,
``device`` and ``input_size``, plus every tool's count and what was counted.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from clothingrec.analyze import flops as F
from clothingrec.analyze import models as M
from clothingrec.analyze.latency import environment, measure_model
from clothingrec.analyze.memory import activation_memory, model_size
from clothingrec.analyze.receptive_field import effective_rf, sequential_rf, theoretical_rf

SCHEMA = 1
#: R-CNNs run their images one by one inside the model: on the CPU their throughput batch is capped here
RCNN_CPU_THROUGHPUT_BATCH = 8


@dataclass
class Settings:
    """How much work per model (the notebook's profile picks these)."""

    repeats: int = 20              # timed batch-1 calls
    warmup: int = 3
    throughput_batch: int = 32
    throughput_repeats: int = 3
    erf_images: int = 8
    max_seconds: float | None = None  # per timing loop
    device: str = "cpu"
    threads: int | None = None
    tools: tuple = ("torchscan", "fvcore", "thop")
    latency: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelAnalysis:
    spec: M.ModelSpec
    record: dict
    layers: object = None          # pandas DataFrame, one row per leaf module
    cross_check: object = None     # pandas DataFrame, one row per tool
    rf_layers: object = None       # pandas DataFrame from theoretical_rf
    erf_heat: np.ndarray | None = None
    timings: dict = field(default_factory=dict)


def _num(v):
    if v is None:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return float(v)


def analyze_model(spec: M.ModelSpec, settings: Settings | None = None, *, erf_images: torch.Tensor | None = None,
                  model: torch.nn.Module | None = None, weights_note: str = "random init") -> ModelAnalysis:
    """Count, measure and describe one model (see the module docstring for the record)."""
    from clothingrec.device import resolve_device

    settings = settings or Settings()
    device = resolve_device(settings.device)
    timings = {}
    t0 = time.perf_counter()
    model = model if model is not None else M.build_model(spec)
    model.eval()
    timings["build_s"] = time.perf_counter() - t0

    # ---- complexity: every tool on the same workloads (CPU, batch 1)
    t0 = time.perf_counter()
    loads = M.workloads(spec, model)
    counts = F.count_all(loads, settings.tools)
    timings["count_s"] = time.perf_counter() - t0
    primary = counts.get("torchscan_ops")
    macs = primary.macs if primary is not None and primary.status != "failed" else None
    if macs is None and "fvcore" in counts and counts["fvcore"].core_macs is not None:
        macs = counts["fvcore"].core_macs
    tools = {k: v.as_dict() for k, v in counts.items() if not k.startswith("_")}
    workload_notes = [{"name": w.name, "note": w.note} for w in loads]

    # ---- size and memory
    size = model_size(model)
    t0 = time.perf_counter()
    x = M.example_batch(spec)
    mem = activation_memory(model, x, call=lambda m, inp: M.call_model(spec, m, inp))
    timings["memory_s"] = time.perf_counter() - t0

    # ---- receptive fields
    t0 = time.perf_counter()
    module, example, targets = M.rf_targets(spec, model)
    rf = theoretical_rf(module, example, targets=targets)
    final_name, final = rf.final_name, rf.final
    regular = [(k, v) for k, v in rf.targets.items() if "[pool]" not in k]
    if regular:
        final_name, final = regular[-1]
    seq = None
    if spec.family == "classifier":
        try:
            import torchscan

            fm, _ = M.feature_map_fn(spec, model)
            with F._quiet():
                seq = sequential_rf(torchscan.crawl_module(fm, args=(example,)))
        except Exception as exc:  # reported, not fatal
            seq = f"failed: {type(exc).__name__}: {exc}"
    timings["rf_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    erf = None
    if settings.erf_images:
        fn, fmap_label = M.feature_map_fn(spec, model)
        imgs = erf_images if erf_images is not None else M.example_batch(spec, settings.erf_images, seed=1)
        if spec.family == "classifier" and erf_images is not None:
            mean = torch.tensor(M.IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(M.IMAGENET_STD).view(1, 3, 1, 1)
            imgs = (imgs - mean) / std
        erf = effective_rf(fn, imgs[: settings.erf_images])
        erf["feature_map"] = fmap_label
    timings["erf_s"] = time.perf_counter() - t0

    # ---- latency: always on the CPU (threads recorded), also on the accelerator when there is one
    t0 = time.perf_counter()
    lat, lat_acc = None, None
    if settings.latency:
        lat = _latency(spec, model, torch.device("cpu"), settings)
        if device.type != "cpu":
            lat_acc = _latency(spec, model.to(device), device, settings)
            model.to("cpu")
    timings["latency_s"] = time.perf_counter() - t0

    ultra = None
    if spec.family == "yolo":
        ultra = ultralytics_gflops(model, spec.input_size)

    record = {
        "name": spec.name, "label": spec.display, "dataset": spec.dataset, "kind": spec.kind, "family": spec.family,
        "backbone": spec.backbone, "num_classes": spec.num_classes,
        "input_size": [spec.input_size, spec.input_size],
        "counted": workload_notes, "weights": weights_note,
        "macs": _num(macs), "flops": _num(2 * macs) if macs is not None else None,
        "params": size["params"], "trainable_params": size["trainable_params"],
        "param_bytes": size["param_bytes"], "buffers": size["buffers"], "buffer_bytes": size["buffer_bytes"],
        "tools": tools,
        "activation_memory": mem,
        "receptive_field": {
            "feature_map": final_name,
            "theoretical_px": final["rf_h"] if final else None,
            "theoretical_px_w": final["rf_w"] if final else None,
            "jump_px": final["jump_h"] if final else None,
            "global_context": bool(final["global_context"]) if final else None,
            "exceeds_input": bool(final and final["rf_h"] > spec.input_size),
            "levels": {k: {"rf_px": v["rf_h"], "jump_px": v["jump_h"], "shape": list(v["shape"])}
                       for k, v in rf.targets.items()},
            "sequential_module_walk_px": seq,
        },
        "erf": None if erf is None else {
            "feature_map": erf["feature_map"], "extent95_px": erf["extent95"], "images": erf["images"],
            "feature_size": list(erf["feature_size"]), "position": list(erf["position"]),
        },
        "ultralytics_info_gflops": ultra,
        "timings_s": timings,
    }
    if lat is not None:
        record.update({
            "latency": {"batch1_p50_ms": lat["batch1"]["median_ms"], "batch1_p95_ms": lat["batch1"]["p95_ms"],
                        "batch1_mean_ms": lat["batch1"]["mean_ms"], "repeats": lat["batch1"]["n"],
                        "warmup": lat["batch1"]["warmup"],
                        "throughput_batch": lat.get("throughput", {}).get("batch"),
                        "images_per_s": lat.get("throughput", {}).get("images_per_s"),
                        "throughput_repeats": lat.get("throughput", {}).get("n")},
            "threads": lat["torch_threads"], "device": lat["device"], "cpu": lat["cpu"],
        })
    if lat is None:
        env = environment("cpu")
        record.update({"latency": None, "threads": env["torch_threads"], "device": env["device"],
                       "cpu": env["cpu"]})
    if lat_acc is not None:
        record["latency_gpu"] = {"batch1_p50_ms": lat_acc["batch1"]["median_ms"],
                                 "batch1_p95_ms": lat_acc["batch1"]["p95_ms"],
                                 "repeats": lat_acc["batch1"]["n"],
                                 "throughput_batch": lat_acc.get("throughput", {}).get("batch"),
                                 "images_per_s": lat_acc.get("throughput", {}).get("images_per_s"),
                                 "device": lat_acc["device"], "gpu": lat_acc.get("gpu")}
    return ModelAnalysis(spec=spec, record=record, layers=F.layer_table(counts),
                         cross_check=F.cross_check_table(counts), rf_layers=rf.table(),
                         erf_heat=None if erf is None else erf["heat"], timings=timings)


def _latency(spec, model, device, settings: Settings) -> dict:
    batch = settings.throughput_batch
    if spec.family in M.RCNN_FAMILIES and device.type == "cpu":
        batch = min(batch, RCNN_CPU_THROUGHPUT_BATCH)
    return measure_model(
        model, lambda b: M.example_batch(spec, b, device=device),
        call=lambda m, inp: M.call_model(spec, m, inp), device=device,
        threads=settings.threads if device.type == "cpu" else None,
        repeats=settings.repeats, warmup=settings.warmup, throughput_batch=batch,
        throughput_repeats=settings.throughput_repeats, max_seconds=settings.max_seconds)


def ultralytics_gflops(model, imgsz: int) -> float | None:
    """ultralytics' own figure (``model.info()`` uses it): thop MACs × 2 / 1e9 at ``imgsz``."""
    try:
        from ultralytics.utils.torch_utils import get_flops

        with F._quiet():
            return float(get_flops(model, imgsz))
    except Exception:  # reported as missing, not fatal
        return None


def write_analysis(path, analyses: list[ModelAnalysis], *, settings: Settings, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    env = environment(settings.device if settings.device != "auto" else "cpu")
    data = {"schema": SCHEMA, "environment": env, "settings": settings.as_dict(),
            "models": {a.spec.key: a.record for a in analyses}, **(extra or {})}
    path.write_text(json.dumps(data, indent=2, default=_default), encoding="utf-8")
    return path


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_analysis(path) -> dict:
    """Read ``analysis.json``; raises naming the file and the missing field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read analysis file: {exc}") from exc
    if not isinstance(data, dict) or "models" not in data:
        raise ValueError(f"{path}: field 'models' missing")
    return data


def summary_table(analyses: list[ModelAnalysis]):
    """The headline table: one row per model."""
    import pandas as pd

    rows = []
    for a in analyses:
        r = a.record
        t = r["tools"]
        lat = r.get("latency") or {}
        rows.append({
            "model": r["label"], "input": f"{r['input_size'][0]}×{r['input_size'][1]}",
            "params (M)": r["params"] / 1e6, "buffers (k)": r["buffers"] / 1e3,
            "GMACs": (r["macs"] or float("nan")) / 1e9, "GFLOPs": (r["flops"] or float("nan")) / 1e9,
            "fvcore GMACs": t.get("fvcore", {}).get("macs", float("nan")) / 1e9,
            "thop GMACs": t.get("thop", {}).get("macs", float("nan")) / 1e9,
            "peak act. (MiB)": r["activation_memory"]["peak_live_bytes"] / 2**20,
            "RF (px)": r["receptive_field"]["theoretical_px"],
            "ERF95 (px)": (r.get("erf") or {}).get("extent95_px"),
            "p50 (ms)": lat.get("batch1_p50_ms"), "p95 (ms)": lat.get("batch1_p95_ms"),
            "img/s": lat.get("images_per_s"),
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# what the notebook analyses, per profile

#: the project's models: classifiers with their 10-class heads, each detector at its training size
PROFILES = {
    "smoke": {
        # the smoke trainings' models at their sizes (R-CNNs with the CPU light heads they train with)
        "models": ["mobilenet_v3_small@112", "resnet50@112", "yolov8n@128",
                   "fasterrcnn_mobilenet_v3_large_fpn@128+light", "maskrcnn_mobilenet_v3_large_fpn@128+light",
                   "person:fasterrcnn_mobilenet_v3_large_fpn@192+light"],
        "settings": dict(repeats=3, warmup=1, throughput_batch=2, throughput_repeats=1, erf_images=2, threads=1,
                         max_seconds=5.0),
    },
    "full": {
        "models": ["mobilenet_v3_small@224", "resnet50@224", "yolov8n@320", "fasterrcnn_mobilenet_v3_large_fpn@512",
                   "fasterrcnn_resnet50_fpn@512", "maskrcnn_resnet50_fpn@512", "person:fasterrcnn_resnet50_fpn@512"],
        "settings": dict(repeats=30, warmup=5, throughput_batch=32, throughput_repeats=3, erf_images=16,
                         threads=None, max_seconds=120.0),
    },
}


def specs_from_results(results: list) -> list[M.ModelSpec]:
    """A spec for every trained model in ``metrics.json`` results: architecture, training size, head size.

    ``results`` holds metrics dicts or :class:`clothingrec.compare.Result` objects (then a
    ``train_config.json`` beside the metrics file supplies the run's test-time model options, e.g. the
    CPU light heads, and its number of classes).  Classifier/YOLO ``model`` names are used as they are;
    R-CNN ``model`` may be the full name or only the backbone (``family`` completes it).  Without a
    config the number of categories comes from ``per_category`` (R-CNN heads add the background);
    person detectors (``task == "person"`` or a Penn-Fudan dataset) get the ``person`` label.
    An R-CNN is analysed at its shorter side (``analysis_imgsz``: :func:`clothingrec.compare.rcnn_input`
    reads it from the run's recipe config, whose ``imgsz`` is the longer side).  Unknown architectures are
    skipped.
    """
    specs = []
    for item in results:
        d = getattr(item, "data", item)
        config = {}
        path = getattr(item, "path", None)
        if path is not None and (Path(path).parent / "train_config.json").is_file():
            try:
                config = json.loads((Path(path).parent / "train_config.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                config = {}
        try:
            model, size = str(d["model"]), int(d.get("analysis_imgsz") or d["imgsz"])
            family = d.get("family")
            if d.get("kind") == "detector" and family in M.RCNN_FAMILIES and not model.startswith(family):
                model = f"{family}_{model}"
            per_cat = d.get("per_category") or {}
            cats = len(per_cat.get("bbox") or []) or None
            is_person = d.get("task") == "person" or "penn" in str(d.get("dataset", "")).lower()
            classes = (config.get("spec") or {}).get("num_classes")
            if classes is None and d.get("kind") == "detector" and cats:
                classes = cats + 1 if family in M.RCNN_FAMILIES else cats
            prov = d.get("provenance") or {}
            kwargs = (config.get("config") or {}).get("model_kwargs") or {}
            test_kwargs = {k: v for k, v in kwargs.items() if k.endswith("_test")}
            light = bool(test_kwargs) or any(bool((src or {}).get("light_heads"))
                                             for src in (d, prov, prov.get("settings")))
            label = f"{'person ' if is_person else ''}{M.parse_spec(model, size).name}@{size}"
            spec = M.parse_spec(model, size, num_classes=classes, label=label + (" (light heads)" if light else ""),
                                dataset="person" if is_person else None)
            if light:
                spec.extra = test_kwargs or M.light_heads()
        except (KeyError, TypeError, ValueError):
            continue
        if all((s.name, s.input_size, s.num_classes, s.dataset) != (spec.name, spec.input_size, spec.num_classes,
                                                                      spec.dataset) for s in specs):
            specs.append(spec)
    return specs


def analysis_plan(profile: str = "smoke", models: list[str] | None = None, *, trained: list[dict] | None = None,
                  **overrides) -> tuple[list, Settings]:
    """``(specs, settings)`` for a profile; ``models`` (``"name@size"`` strings) and keyword overrides win.

    ``trained``: committed runs (metrics dicts or ``compare.Result``); in the full profile their models are
    added (at their training size) when the list does not already hold the same architecture, size, head
    and task.  The smoke profile ignores them: it stays small and reproducible for CI.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    plan = PROFILES[profile]
    if isinstance(models, str):   # "a@224,b@512" from the command line (make ... PARAMS='-p models ...')
        models = [m for m in models.replace(" ", ",").split(",") if m]
    specs = [M.parse_spec(m) for m in (models or plan["models"])]
    for extra in specs_from_results(trained if profile != "smoke" else []):
        if all((s.name, s.input_size, s.num_classes, s.dataset) != (extra.name, extra.input_size, extra.num_classes,
                                                                      extra.dataset) for s in specs):
            specs.append(extra)
    keys = [s.key for s in specs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"models {dup} appear twice; give them distinct labels (e.g. 'person:' prefix)")
    values = dict(plan["settings"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return specs, Settings(**values)


def erf_image_batch(n: int, size: int, dataset: str = "clothing-dataset-small", split: str = "test"):
    """``(images in [0, 1], note)``: the first ``n`` images (sorted paths, spread over the classes) of a
    real dataset, centre-cropped to squares and resized to ``size``; seeded noise when it is absent."""
    from PIL import Image

    from clothingrec.paths import find_dataset

    root = find_dataset(dataset, required=False)
    files = sorted((root / split).glob("*/*.jpg")) if root is not None else []
    if not files:
        g = torch.Generator().manual_seed(1)
        return torch.rand(n, 3, size, size, generator=g), f"seeded uniform noise ({dataset} not found)"
    step = max(len(files) // n, 1)
    chosen = files[::step][:n]
    out = []
    for path in chosen:
        with Image.open(path) as im:
            im = im.convert("RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
            out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out), f"{len(out)} {dataset}/{split} images (every {step}th of {len(files)} sorted paths)"
