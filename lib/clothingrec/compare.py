"""The comparison across every trained model, built only from saved results files.

Inputs (never recomputed here):

* the run record (``run.json``: its ``metrics``) of every training run and the ``metrics.json`` of every
  evaluation — committed real runs under ``runs/results/<name>/`` first (source ``committed``), then the
  newest run of each notebook under ``runs/<notebook>/latest/`` (source ``smoke``, or the ``profile`` the
  run recorded in its provenance);
* ``analysis.json`` from ``11_analyze_models`` (MACs, FLOPs, parameters, latency per architecture),
  joined on the ``model`` field;
* :mod:`clothingrec.reference` for published figures, shown as labelled reference rows.

A file that cannot be read or lacks a required field is skipped with a message naming the file and
the field; everything else goes on (:attr:`Collection.skipped`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clothingrec.paths import RESULTS_DIR, RUNS_DIR, project_relative
from clothingrec.reference import Reference, references

ANALYSIS_NOTEBOOK = "11_analyze_models"
REQUIRED = {
    "classifier": ("name", "model", "accuracy", "macro_f1"),
    "detector": ("name", "model", "bbox_AP", "bbox_AP50"),
}
FRACTIONS = {"classifier": ("accuracy", "macro_f1", "weighted_f1"),
             "detector": ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50")}


@dataclass
class Result:
    path: Path
    source: str          # "committed", "smoke", or another profile name for uncommitted runs
    data: dict

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def origin(self) -> str:
        """Where the file lives: ``results/<name>`` or the notebook folder of the run."""
        parts = self.path.parts
        if "results" in parts:
            i = len(parts) - 1 - parts[::-1].index("results")
            return "/".join(parts[i:i + 2])
        if "latest" in parts:
            return parts[parts.index("latest") - 1]
        return self.path.parent.name


@dataclass
class Collection:
    results: list[Result] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Result]:
        return [r for r in self.results if r.kind == kind]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v))


def validate_metrics(data, path) -> str | None:
    """None when ``data`` is a usable metrics dict, else the reason (naming file and field)."""
    if not isinstance(data, dict):
        return f"{path}: not a JSON object"
    kind = data.get("kind")
    if kind not in REQUIRED:
        return f"{path}: field 'kind' is {kind!r}, expected 'classifier' or 'detector'"
    for key in REQUIRED[kind]:
        if key not in data or data[key] is None:
            return f"{path}: field '{key}' missing"
    for key in FRACTIONS[kind]:
        v = data.get(key)
        if v is None:
            continue
        if not _is_number(v):
            return f"{path}: field '{key}' is not a number ({v!r})"
        if not 0.0 <= float(v) <= 1.0:
            return f"{path}: field '{key}' = {v} is outside [0, 1] (fractions expected, not percent)"
    return None


def _read(path: Path, source: str, out: Collection) -> None:
    name = project_relative(path)  # reasons name files as the repository does, not this machine
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.skipped.append(f"{name}: cannot read JSON ({exc})")
        return
    record = data if path.name == "run.json" else None
    if record is not None and isinstance(data, dict):
        if data.get("task") != "detect":
            return  # a classifier's record holds validation scores only; its test metrics.json is read instead
        metrics = data.get("metrics") or {}
        part = (data.get("split") or {}).get(metrics.get("split")) if isinstance(data.get("split"), dict) else None
        data = {"backend": data.get("backend"), **metrics, "provenance": {**(data.get("provenance") or {}),
                                          **({"split_digest": part["digest"]} if isinstance(part, dict) and
                                             part.get("digest") else {})}}
    problem = validate_metrics(data, name)
    if problem:
        out.skipped.append(problem)
        return
    if data.get("kind") == "detector" and "analysis_imgsz" not in data:
        record = record if record is not None else _read_record(Path(path).parent)
        data = rcnn_input(data, (record or {}).get("config") if isinstance(record, dict) else None)
    if source != "committed":
        prof = (data.get("provenance") or {}).get("profile")
        source = str(prof) if prof and prof != "smoke" else "smoke"
    key = _identity(data)
    if any(_identity(r.data) == key for r in out.results):
        return  # the same run and figures, already listed (a copy in a sub-folder, or written by another notebook)
    out.results.append(Result(path, source, data))


def _read_record(run_dir: Path) -> dict | None:
    """The ``run.json`` beside a metrics file, or None."""
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def rcnn_input(data: dict, config: dict | None) -> dict:
    """An R-CNN metrics dict with the input its run resized to: ``analysis_imgsz`` (the shorter side, the size
    notebook 11 analyses an R-CNN at) and ``light_heads``, from the run's recipe ``config`` (its ``imgsz`` is
    the longer side).  Other metrics, and runs without a recipe config, come back unchanged."""
    from clothingrec.detect.config import RCNN_FAMILIES, short_side

    if data.get("family") not in RCNN_FAMILIES or not isinstance(config, dict):
        return data
    try:
        analysis_imgsz = short_side(config["imgsz"])
    except (KeyError, TypeError, ValueError):
        return data
    return {**data, "analysis_imgsz": analysis_imgsz,
            "light_heads": bool(config.get("light_heads", data.get("light_heads", False)))}


def _identity(data: dict) -> tuple:
    metric_keys = FRACTIONS.get(data.get("kind"), ())
    return (data.get("kind"), data.get("name"), data.get("model"), data.get("split"),
            tuple(data.get(k) for k in metric_keys))


def collect_results(results_dir: Path | str = RESULTS_DIR, runs_dir: Path | str | None = RUNS_DIR,
                    include_latest: bool = True) -> Collection:
    """Committed results (``results_dir/**/{run,metrics}.json``), then every ``runs_dir/*/latest/**/…`` one."""
    out = Collection()
    results_dir = Path(results_dir)
    if results_dir.exists():
        for path in _result_files(results_dir):
            _read(path, "committed", out)
    if include_latest and runs_dir is not None and Path(runs_dir).exists():
        for link in sorted(Path(runs_dir).glob("*/latest")):
            if link.parent.resolve() == results_dir.resolve():
                continue
            for path in _result_files(link):
                _read(path, "smoke", out)
    return out


def _result_files(folder: Path) -> list[Path]:
    """Run records and metrics files under ``folder``, in path order.  A run whose held-out test part was
    scored (``test_metrics.json`` beside its ``run.json``) is listed by that score: its ``run.json`` holds
    the validation score its checkpoint was chosen on, which the comparison does not report."""
    tested = {p.parent for p in folder.glob("**/test_metrics.json")}
    records = [p for p in folder.glob("**/run.json") if p.parent not in tested]
    return sorted([*records, *folder.glob("**/metrics.json"), *folder.glob("**/test_metrics.json")])


def find_analysis(results_dir: Path | str = RESULTS_DIR, runs_dir: Path | str | None = RUNS_DIR) -> Path | None:
    """The committed ``runs/results/analysis/analysis.json`` if present, else the latest smoke one."""
    candidates = [Path(results_dir) / "analysis" / "analysis.json"]
    if runs_dir is not None:
        candidates.append(Path(runs_dir) / ANALYSIS_NOTEBOOK / "latest" / "analysis.json")
    return next((p for p in candidates if p.is_file()), None)


def load_analysis_models(path: Path | str | None, skipped: list[str] | None = None) -> dict:
    """``{model name: record}`` from an analysis.json; an unreadable file adds to ``skipped``."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' is not an object")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        if skipped is not None:
            skipped.append(f"{path}: cannot use analysis file ({type(exc).__name__}: {exc}; field 'models')")
        return {}
    for name, rec in models.items():
        rec.setdefault("name", name)
    return models


def model_key(text) -> str:
    """Normalise a model name for joining: ``'yolov8n.yaml'`` → ``'yolov8n'``, case/dashes ignored."""
    s = str(text or "").strip().lower().replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".yaml", ".yml", ".pt", ".ckpt", ".onnx"):
        if s.endswith(ext):
            s = s[: -len(ext)]
    return s.replace("-", "_")


_DATASET_TAGS = {"person": ("penn", "person"), "deepfashion2": ("deepfashion", "df2"),
                 "clothing-dataset-small": ("clothing",)}


def _dataset_score(rec: dict, dataset: str) -> int:
    tag = str(rec.get("dataset") or "").lower()
    words = _DATASET_TAGS.get(tag, (tag,) if tag else ())
    return int(any(w and w in dataset for w in words))


def match_analysis(metrics: dict, analysis: dict) -> dict | None:
    """The analysis record for a metrics dict.

    Candidates share the architecture (``model``, then ``family_model``, ``family_backbone``, names
    normalised by :func:`model_key`); among several (the same architecture trained for two tasks, e.g. a
    person detector) the one whose ``dataset`` tag fits the metrics' dataset wins, then the one analysed
    at the metrics' input size (an R-CNN's ``analysis_imgsz``, see :func:`rcnn_input`, else ``imgsz``), then
    the one with the same heads (``light_heads``).
    """
    if metrics.get("backend") in UNANALYSED_BACKENDS:
        return None  # the same architecture's figures from another implementation would pass for its own
    by_arch: dict[str, list[dict]] = {}
    for key, rec in analysis.items():
        for k in {model_key(key), model_key(rec.get("name"))}:
            if k:
                by_arch.setdefault(k, []).append(rec)
    family = metrics.get("family")
    candidates = [metrics.get("analysis_model"), metrics.get("model"), metrics.get("arch")]
    if family:
        candidates += [f"{family}_{metrics.get('model')}", f"{family}_{metrics.get('backbone')}"]
    dataset = str(metrics.get("dataset") or "").lower()
    imgsz = metrics.get("analysis_imgsz") or metrics.get("imgsz")
    light = metrics.get("light_heads")
    for c in candidates:
        recs = by_arch.get(model_key(c)) if c else None
        if recs:
            unique = list({id(r): r for r in recs}.values())

            def score(rec):
                size = (rec.get("input_size") or [None])[0]
                heads = light is None or ("light heads" in str(rec.get("label") or rec.get("name"))) == bool(light)
                return (_dataset_score(rec, dataset), int(size is not None and size == imgsz), int(heads))
            return max(unique, key=score)
    return None


def detector_task(metrics: dict) -> str:
    """``person`` (person detectors, Penn-Fudan) or ``clothing`` (DeepFashion2-style categories)."""
    dataset = str(metrics.get("dataset", "")).lower()
    return "person" if metrics.get("task") == "person" or "penn" in dataset or "person" in dataset else "clothing"


#: backends whose models notebook 11 does not analyse (its compute figures are torchvision's and ultralytics')
UNANALYSED_BACKENDS = ("detectron2",)


def architecture(metrics: dict) -> str:
    """The full architecture name: an R-CNN ``model`` given as its backbone gets its family prefix, and a
    model of another implementation than torchvision's / ultralytics' its backend (``… (detectron2)``)."""
    model, family = str(metrics.get("model", "")), metrics.get("family")
    if family in ("fasterrcnn", "maskrcnn") and not model.startswith(family):
        model = f"{family}_{model}"
    backend = metrics.get("backend")
    return f"{model} ({backend})" if backend in UNANALYSED_BACKENDS else model


def _cost_columns(rec: dict | None) -> dict:
    if not rec:
        return {"GMACs": math.nan, "GFLOPs": math.nan, "params (M)": math.nan, "latency p50 (ms)": math.nan,
                "latency p95 (ms)": math.nan, "throughput (img/s)": math.nan, "analysed at": ""}
    lat = rec.get("latency") or {}
    size = rec.get("input_size") or [None]

    def num(v, scale=1.0):
        return float(v) / scale if _is_number(v) else math.nan

    return {
        "GMACs": num(rec.get("macs"), 1e9), "GFLOPs": num(rec.get("flops"), 1e9),
        "params (M)": num(rec.get("params"), 1e6),
        "latency p50 (ms)": num(lat.get("batch1_p50_ms")), "latency p95 (ms)": num(lat.get("batch1_p95_ms")),
        "throughput (img/s)": num(lat.get("images_per_s")),
        "analysed at": f"{rec.get('label') or rec.get('name')}: {size[0]} px, {rec.get('device', '?')}, "
                       f"{rec.get('threads', '?')} threads",
    }


def _pct(v):
    return 100.0 * float(v) if _is_number(v) else math.nan


def classifier_table(collection: Collection, analysis: dict, refs: list[Reference] | None = None) -> pd.DataFrame:
    """Classifiers: accuracy and macro-F1 (%), MACs, FLOPs, parameters, latency; reference rows last."""
    rows = []
    for r in collection.of_kind("classifier"):
        d = r.data
        rec = match_analysis(d, analysis)
        rows.append({"model": d["model"], "run": d["name"], "source": r.source, "from": r.origin,
                     "dataset": f"{d.get('dataset', '?')}/{d.get('split', '?')}",
                     "accuracy (%)": _pct(d["accuracy"]), "macro-F1 (%)": _pct(d["macro_f1"]),
                     **_cost_columns(rec),
                     "note": "" if rec else "no analysis record for this model"})
    for ref in (references("classifier") if refs is None else [x for x in refs if x.kind == "classifier"]):
        rec = match_analysis({"model": ref.model}, analysis)
        cost = _cost_columns(rec)
        pub = ref.published_compute
        if pub:  # the published model's own MACs / parameters (its 1000-class head); latency measured here
            cost.update({"GMACs": pub["macs"] / 1e9, "GFLOPs": 2 * pub["macs"] / 1e9,
                         "params (M)": pub["params"] / 1e6})
        rows.append({"model": ref.model, "run": ref.name, "source": "reference", "from": "clothingrec.reference",
                     "dataset": f"{ref.dataset}/{ref.split}",
                     "accuracy (%)": _pct(ref.metrics.get("accuracy")),
                     "macro-F1 (%)": _pct(ref.metrics.get("macro_f1")), **cost,
                     "note": f"published: {ref.conditions}; {ref.source}"
                             + (f"; MACs and parameters as published ({pub['num_classes']}-class head, "
                                f"{pub['imgsz']} px)" if pub else "")
                             + ("; latency measured here for the same architecture" if rec else "")})
    return _order(pd.DataFrame(rows, columns=CLASSIFIER_COLUMNS))


def _dataset_label(d: dict) -> str:
    """``dataset/split``, and the stored split's digest where the record has it: two runs scored on a part
    named alike but holding other photos (an earlier split's val) never read as one data split."""
    digest = (d.get("provenance") or {}).get("split_digest")
    label = f"{d.get('dataset', '?')}/{d.get('split', '?')}"
    return f"{label} [{str(digest)[:8]}]" if digest else f"{label} (split not recorded)"


def detector_table(collection: Collection, analysis: dict, refs: list[Reference] | None = None) -> pd.DataFrame:
    """Detectors: bbox AP/AP50 (segm AP for mask models), FLOPs, parameters, latency; reference rows last."""
    rows = []
    for r in collection.of_kind("detector"):
        d = r.data
        rec = match_analysis(d, analysis)
        rows.append({"model": architecture(d), "family": d.get("family", ""), "task": detector_task(d),
                     "run": d["name"], "source": r.source, "from": r.origin,
                     "dataset": _dataset_label(d),
                     "bbox AP": _num(d["bbox_AP"]), "bbox AP50": _num(d["bbox_AP50"]),
                     "segm AP": _num(d.get("segm_AP")), "segm AP50": _num(d.get("segm_AP50")),
                     **_cost_columns(rec), "note": "" if rec else "no analysis record for this model"})
    for ref in (references("detector") if refs is None else [x for x in refs if x.kind == "detector"]):
        rec = match_analysis({"model": ref.model}, analysis)
        rows.append({"model": ref.model, "family": ref.model.split("_", 1)[0], "task": detector_task(
                         {"dataset": ref.dataset}), "run": ref.name,
                     "source": "reference", "from": "clothingrec.reference", "dataset": f"{ref.dataset}/{ref.split}",
                     "bbox AP": _num(ref.metrics.get("bbox_AP")), "bbox AP50": _num(ref.metrics.get("bbox_AP50")),
                     "segm AP": _num(ref.metrics.get("segm_AP")), "segm AP50": _num(ref.metrics.get("segm_AP50")),
                     **_cost_columns(rec),
                     "note": f"reference, {ref.caveat}; {ref.source}"
                             + ("; compute columns computed here for the same architecture (project head)"
                                if rec else "")})
    return _order(pd.DataFrame(rows, columns=DETECTOR_COLUMNS))


def _num(v):
    return float(v) if _is_number(v) else math.nan


CLASSIFIER_COLUMNS = ["model", "run", "source", "from", "dataset", "accuracy (%)", "macro-F1 (%)", "GMACs", "GFLOPs",
                      "params (M)", "latency p50 (ms)", "latency p95 (ms)", "throughput (img/s)", "analysed at",
                      "note"]
DETECTOR_COLUMNS = ["model", "family", "task", "run", "source", "from", "dataset", "bbox AP", "bbox AP50", "segm AP",
                    "segm AP50", "GMACs", "GFLOPs", "params (M)", "latency p50 (ms)", "latency p95 (ms)",
                    "throughput (img/s)", "analysed at", "note"]
_SOURCE_ORDER = {"committed": 0, "reference": 9}


def _order(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    rank = df["source"].map(lambda s: _SOURCE_ORDER.get(s, 5))
    return df.assign(_r=rank).sort_values(["_r", "model", "run"], kind="stable").drop(columns="_r") \
        .reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# verdict


def _fmt(v, unit="", digits=1):
    return "n/a" if not _is_number(v) else f"{v:.{digits}f}{unit}"


def _delta(v, unit, digits):
    return f"{v:+.{digits}f} points" if unit == "%" else f"{v:+.{digits}f}"


def verdict(classifiers: pd.DataFrame, detectors: pd.DataFrame) -> list[str]:
    """A few sentences computed from the tables (measured rows only; reference rows for the gap), ranked
    within one data split at a time: a run scored on other photos is never called better or worse."""
    lines = _verdict_by_split(classifiers, "accuracy (%)", "accuracy", "%", "classifier")
    if detectors is None or detectors.empty or "task" not in detectors:
        return lines + _verdict_by_split(detectors, "bbox AP", "bbox AP", "", "detector", digits=3)
    for task in sorted(detectors["task"].unique()):
        lines += _verdict_by_split(detectors[detectors["task"] == task].reset_index(drop=True), "bbox AP", "bbox AP",
                                   "", f"{task} detector", digits=3)
    return lines


def _verdict_by_split(df: pd.DataFrame, metric: str, label: str, unit: str, kind: str,
                      digits: int = 1) -> list[str]:
    if df is None or df.empty:
        return [f"{kind}s: no results files found."]
    is_ref = df["source"] == "reference"
    measured = df[~is_ref].dropna(subset=[metric])
    if measured.empty:
        return _verdict_kind(df, metric, label, unit, kind, digits)
    committed = measured[measured["source"] == "committed"]
    counts = (committed if not committed.empty else measured)["dataset"].value_counts()
    # splits named by their stored digest (today's) first, then the most runs
    splits = sorted(counts.index, key=lambda d: ("[" not in d, -counts[d], d))
    lines = []
    for split in splits:
        lines += _verdict_kind(df[df["dataset"] == split].reset_index(drop=True), metric, label, unit,
                               f"{kind}s on {split}", digits, plural=False)
    for _, ref in df[is_ref & ~df["dataset"].isin(splits)].dropna(subset=[metric]).iterrows():
        lines.append(f"Reference {ref['run']}: {_fmt(ref[metric], unit, digits)} {label} on {ref['dataset']} "
                     f"({ref['note'].split(';')[0]}); no measured run on that data to compare.")
    return lines


def _verdict_kind(df: pd.DataFrame, metric: str, label: str, unit: str, kind: str, digits: int = 1,
                  plural: bool = True) -> list[str]:
    what = f"{kind}s" if plural else kind
    if df is None or df.empty:
        return [f"{what}: no results files found."]
    measured = df[df["source"] != "reference"].dropna(subset=[metric])
    if measured.empty:
        return [f"{what}: only reference rows, nothing measured yet."]
    committed = measured[measured["source"] == "committed"]
    pool = committed if not committed.empty else measured
    scope = "committed runs" if not committed.empty else "smoke runs only, not meaningful figures"
    # best result per model
    best = pool.sort_values(metric, ascending=False).drop_duplicates("model")
    top = best.iloc[0]
    lines = [f"{what} ({scope}): best {label} {_fmt(top[metric], unit, digits)} by {top['model']} "
             f"({top['run']}; {_fmt(top['GFLOPs'], ' GFLOPs', 2)}, {_fmt(top['params (M)'], ' M params', 2)}, "
             f"{_fmt(top['latency p50 (ms)'], ' ms', 1)} batch-1 CPU latency)."]
    costed = best.dropna(subset=["GFLOPs"])
    if not _is_number(top["GFLOPs"]) and len(costed) >= 2:
        top = costed.iloc[0]  # the cost sentences compare analysed models only
        lines.append(f"Cost below among the analysed models (notebook 11 has no record of the best one at its "
                     f"size); the most accurate of them: {top['model']} ({_fmt(top[metric], unit, digits)}).")
    if len(costed) >= 2:
        cheap = costed.sort_values("GFLOPs").iloc[0]
        if cheap["model"] != top["model"]:
            ratio_f = top["GFLOPs"] / cheap["GFLOPs"] if cheap["GFLOPs"] else math.nan
            ratio_l = (top["latency p50 (ms)"] / cheap["latency p50 (ms)"]
                       if _is_number(cheap["latency p50 (ms)"]) and cheap["latency p50 (ms)"] else math.nan)
            gain = top[metric] - cheap[metric]
            lines.append(f"{top['model']} costs {_fmt(ratio_f, '×')} the FLOPs and {_fmt(ratio_l, '×')} the "
                         f"latency of {cheap['model']} for {_delta(gain, unit, digits)} {label}.")
        else:
            lines.append(f"{top['model']} is both the most accurate and the cheapest measured one.")
        # Pareto front on (FLOPs ↓, metric ↑)
        front, best_so_far = [], -math.inf
        for _, row in costed.sort_values(["GFLOPs", metric], ascending=[True, False]).iterrows():
            if row[metric] > best_so_far:
                front.append(row["model"])
                best_so_far = row[metric]
        lines.append(f"Pareto front (fewer FLOPs, higher {label}): {', '.join(front)}.")
    refs = df[df["source"] == "reference"].dropna(subset=[metric])
    for _, ref in refs.iterrows():
        ours = best[best["model"] == ref["model"]]
        if ours.empty:
            lines.append(f"Reference {ref['run']}: {_fmt(ref[metric], unit, digits)} {label} "
                         f"({ref['note'].split(';')[0]}); no measured run of this architecture to compare.")
            continue
        gap = ref[metric] - ours.iloc[0][metric]
        lines.append(f"Reference {ref['run']}: {_fmt(ref[metric], unit, digits)} {label}, "
                     f"{_delta(gap, unit, digits)} versus ours — {ref['note'].split(';')[0]}.")
    return lines


# ---------------------------------------------------------------------------------------------
# plots and markdown


_MARKERS = {"committed": "o", "reference": "*", "smoke": "x"}


def plot_tradeoff(df: pd.DataFrame, x: str, y: str, ax=None, *, logx: bool = True, title: str | None = None):
    """Scatter ``y`` against ``x``; marker by source, each point labelled with its model."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    data = df.dropna(subset=[x, y]) if not df.empty else df
    for source, group in data.groupby("source", sort=False):
        ax.scatter(group[x], group[y], marker=_MARKERS.get(source, "s"), s=80 if source == "reference" else 45,
                   label=source)
        for _, row in group.iterrows():
            ax.annotate(row["model"], (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if logx and not data.empty and (data[x] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title or f"{y} vs {x}")
    ax.grid(True, alpha=0.3)
    if not data.empty:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no rows with both values", ha="center", va="center", transform=ax.transAxes)
    return ax


def to_markdown(df: pd.DataFrame, columns: list[str] | None = None, floatfmt: str = ".3g") -> str:
    """A GitHub markdown table (for the README) of the given columns."""
    cols = columns or [c for c in df.columns if c != "note"]
    sub = df[cols]

    def cell(v):
        if isinstance(v, float):
            return "–" if math.isnan(v) else format(v, floatfmt)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in sub.itertuples(index=False)]
    return "\n".join(lines)


#: what the detectors' cost columns measure (notebook 11's analysis of the architecture)
DETECTOR_COST_NOTE = (
    "GFLOPs, params and latency: notebook 11's analysis of each architecture at the run's input size, batch 1, "
    "one thread, without NMS. R-CNN heads are counted at their test-time caps (1000 proposals; Mask R-CNN's "
    "mask head on 100 detections), an upper bound: a trained model that keeps fewer detections costs less "
    "(the serving latencies of trained models are in `runs/results/bench/inference.md`).")


def write_comparison(out_dir, classifiers: pd.DataFrame, detectors: pd.DataFrame, verdict_lines: list[str],
                     collection: Collection, analysis_path) -> dict:
    """comparison.json, the two CSV tables and comparison.md (tables + verdict) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classifiers.to_csv(out / "classifiers.csv", index=False)
    detectors.to_csv(out / "detectors.csv", index=False)
    md_cls = ["model", "run", "source", "accuracy (%)", "macro-F1 (%)", "GMACs", "GFLOPs", "params (M)",
              "latency p50 (ms)", "latency p95 (ms)"]
    # detectors by folder ("from"): several runs of one recipe share a record name
    md_det = ["model", "from", "source", "dataset", "bbox AP", "bbox AP50", "segm AP", "GFLOPs", "params (M)",
              "latency p50 (ms)", "latency p95 (ms)"]
    text = ["# Model comparison", "", "## Classifiers", "", to_markdown(classifiers, md_cls, ".4g"), "",
            "## Detectors", "", to_markdown(detectors, md_det, ".4g"), "", DETECTOR_COST_NOTE, "", "## Verdict", "",
            *[f"- {line}" for line in verdict_lines], ""]
    (out / "comparison.md").write_text("\n".join(text), encoding="utf-8")
    summary = {"classifiers": json.loads(classifiers.to_json(orient="records")),
               "detectors": json.loads(detectors.to_json(orient="records")),
               "verdict": verdict_lines, "skipped": collection.skipped,
               "inputs": [project_relative(r.path) for r in collection.results],
               "analysis": project_relative(analysis_path) if analysis_path else None}
    (out / "comparison.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
