"""Run the numbered notebooks headlessly (papermill) and render an HTML index of the runs.

``python -m clothingrec.notebooks run 00_environment -p profile smoke``
executes ``notebooks/00_environment.ipynb`` into ``runs/00_environment/<timestamp>/``,
injecting the parameters and ``output_dir``, then points ``runs/00_environment/latest``
at it; the terminal shows each cell (``cell n of m``, elapsed time, the cell's own output lines) and
the executed notebook, its HTML and ``runs/index.html`` are written at the end, also when it fails.
``python -m clothingrec.notebooks index`` writes ``runs/index.html``: the latest run of each notebook
and every curated run under ``runs/results/`` per task, with metrics, plots and provenance.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

from clothingrec.paths import NOTEBOOKS_DIR, RUNS_DIR, configure_environment, point_latest
from clothingrec.runs import prepare_run_folder

KERNEL_NAME = "clothingrec"


def resolve_value(text: str):
    """Type a command-line parameter the way papermill's ``-p`` does: int, float, bool, None, else str."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def notebook_path(name: str) -> Path:
    """``03_train_yolo`` or ``notebooks/03_train_yolo.ipynb`` → the notebook's path."""
    path = Path(name)
    if path.suffix != ".ipynb":
        path = NOTEBOOKS_DIR / f"{path.name}.ipynb"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(NOTEBOOKS_DIR.glob("*.ipynb")))
        raise FileNotFoundError(f"no notebook {path}; known: {known}")
    return path


def declared_parameters(source: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters``, in order ([] if it has none).

    Read with :mod:`ast`: ``papermill.inspect_notebook`` skips any line whose comment holds an ``=``
    (``threads = None  # None = one per core``), which would reject parameters the notebook has.
    """
    import ast

    import nbformat

    nb = nbformat.read(source, as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    names: dict[str, None] = {}  # ordered set
    for node in ast.parse(cell.source).body if cell is not None else []:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names.update((n.id, None) for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name))
    return list(names)


def check_parameters(source: Path, parameters: dict) -> None:
    """Refuse parameters the notebook does not declare (papermill would inject them, and they would do nothing)."""
    declared = declared_parameters(source)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        has = ", ".join(declared) if declared else "none (no cell tagged 'parameters')"
        raise ValueError(f"{source.name} does not declare the parameter(s) {', '.join(unknown)}; "
                         f"its parameters are: {has}")


class _Progress(logging.Handler):
    """Papermill's log (``log_output=True``) → the terminal: ``cell n of m`` with the elapsed time, the
    kernel's own stdout/stderr lines (a training's progress lines), and a heartbeat while a long cell
    is silent.  Only the terminal sees this; the stored outputs are what the kernel wrote (TQDM_DISABLE
    still keeps progress bars out of them)."""

    def __init__(self, label: str, total: int, stream=None, heartbeat_s: float = 60.0):
        super().__init__(logging.INFO)
        self.label, self.total, self.stream = label, total, stream or sys.stdout
        self.start = time.perf_counter()
        self.cell = 0
        self._stop = threading.Event()
        self._last = time.perf_counter()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True)
        self._beat.start()

    def elapsed(self) -> str:
        return str(dt.timedelta(seconds=int(time.perf_counter() - self.start)))

    def say(self, text: str) -> None:
        self._last = time.perf_counter()
        print(f"[{self.label}] {text}", file=self.stream, flush=True)

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(min(every, 5.0)):
            if self.cell and time.perf_counter() - self._last >= every:
                self.say(f"… still in cell {self.cell} of {self.total} ({self.elapsed()} elapsed)")

    def close(self) -> None:
        self._stop.set()
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a log line must never break a run
            return
        if message.startswith("Executing Cell "):
            digits = "".join(ch for ch in message[len("Executing Cell "):] if ch.isdigit())
            self.cell = int(digits) if digits else self.cell + 1
            self.say(f"cell {self.cell} of {self.total} ({self.elapsed()} elapsed)")
        elif message.startswith(("Ending Cell ", "Input Notebook", "Output Notebook", "Executing notebook",
                                 "Executing Cell")) or not message.strip():
            return
        else:  # a cell's own output: print its lines, the last state of each \r-updated line
            for line in message.rstrip("\n").split("\n"):
                line = line.rsplit("\r", 1)[-1].rstrip()
                if line:
                    self.say(f"  {line}")


def machine() -> dict:
    """What a run ran on, cheaply (no torch import): host, CPU model, cores, GPUs seen by nvidia-smi."""
    import platform
    import shutil
    import subprocess

    from clothingrec.envinfo import cpu_model

    gpus: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
            gpus = [g.strip() for g in out.splitlines() if g.strip()]
        except (OSError, subprocess.SubprocessError):
            pass
    return {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(), "gpus": gpus,
            "platform": platform.platform()}


def first_error(nb) -> dict | None:
    """The first cell of an executed notebook with an error output: its index, execution count, error."""
    # papermill inserts markdown "An Exception was encountered" cells (tagged): not counted
    cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    for index, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {"cell": index + 1, "execution_count": cell.get("execution_count"),
                        "error": f"{out.get('ename', '')}: {out.get('evalue', '')}".strip(": ")}
    return None


RENDER_MARK = "<!-- rendered by clothingrec.notebooks (offline, v2) -->"


def render_html(executed: Path, target: Path | None = None) -> Path:
    """nbconvert HTML (lab template) of an executed notebook; re-rendered only when the notebook is newer."""
    import nbformat
    from nbconvert import HTMLExporter

    target = target or executed.with_suffix(".html")
    if (target.exists() and target.stat().st_mtime >= executed.stat().st_mtime
            and RENDER_MARK in target.read_text(encoding="utf-8", errors="replace")[-200:]):
        return target
    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    # offline and static: no CDN scripts (require.js, MathJax) that a machine without network cannot fetch
    body = re.sub(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", "", body)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body.rstrip() + "\n" + RENDER_MARK + "\n", encoding="utf-8")
    return target


def run(name: str, parameters: dict, kernel_name: str | None = KERNEL_NAME, progress: bool = True) -> Path:
    """Execute one notebook with papermill into a new timestamped run folder; return the executed copy.

    Every name in ``parameters`` must be declared in the notebook's ``parameters`` cell (else
    ``ValueError`` before anything runs).  The offline environment is set first; the kernel inherits it.
    With ``progress`` the terminal shows ``cell n of m``, the elapsed time and the cells' own output lines.
    Beside the executed copy: its HTML rendering and ``notebook_run.json`` (status, failing cell, error,
    parameters, times, machine), which ``runs/index.html`` shows.
    """
    import nbformat
    import papermill as pm

    source = notebook_path(name)
    check_parameters(source, parameters)
    configure_environment()
    # progress bars stay out of the stored outputs (the kernel inherits this); the terminal gets the
    # cell-by-cell progress below instead.  TQDM_DISABLE=0 in the environment keeps the bars.
    os.environ.setdefault("TQDM_DISABLE", "1")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if parameters.get("output_dir"):
        # an existing run folder (e.g. `-r output_dir runs/05_train_maskrcnn/<stamp> -p resume True`):
        # the earlier executed copy is kept, this one is written beside it
        run_dir = Path(parameters["output_dir"]).resolve()
        target = run_dir / source.name
        if target.exists():
            target = run_dir / f"{source.stem}-{stamp}.ipynb"
    else:
        run_dir = RUNS_DIR / source.stem / stamp
        target = run_dir / source.name
    prepare_run_folder(run_dir)
    parameters = {**parameters, "output_dir": str(run_dir)}

    def shown(path: Path) -> Path:
        return path.relative_to(RUNS_DIR.parent) if path.is_relative_to(RUNS_DIR.parent) else path

    print(f"[notebook] {source.name} -> {shown(target)}", flush=True)
    print(f"[notebook] parameters: {json.dumps(parameters)}", flush=True)
    total = len(nbformat.read(source, as_version=4).cells) + 1  # + papermill's injected-parameters cell
    handler = _Progress(source.stem, total) if progress else None
    pm_logger = logging.getLogger("papermill")
    saved = (pm_logger.level, pm_logger.propagate)
    if handler is not None:
        pm_logger.addHandler(handler)
        pm_logger.setLevel(logging.INFO)
        pm_logger.propagate = False
    started = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    record = {"notebook": source.name, "executed": target.name, "parameters": parameters,
              "started": started.isoformat(timespec="seconds"), "machine": machine(), "status": "running"}
    error: BaseException | None = None
    try:
        pm.execute_notebook(
            str(source), str(target), parameters=parameters, kernel_name=kernel_name,
            cwd=str(source.parent), progress_bar=False, log_output=progress,
        )
        record["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised
        error = exc
        record["status"] = "failed"
        if getattr(exc, "ename", None) is not None:  # PapermillExecutionError
            record["error"] = f"{exc.ename}: {exc.evalue}"
            record["execution_count"] = exc.exec_count
            record["cell"] = exc.cell_index + 1
        else:
            record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if handler is not None:
            pm_logger.removeHandler(handler)
            handler.close()
            pm_logger.setLevel(saved[0])
            pm_logger.propagate = saved[1]
        record["duration_s"] = round(time.perf_counter() - start, 1)
        record["ended"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        page = None
        if target.exists():
            try:
                page = render_html(target)
                record["html"] = page.name
            except Exception as exc:  # noqa: BLE001 - the run's result matters more than its rendering
                print(f"[notebook] could not render {shown(target)} to HTML: {exc}", file=sys.stderr)
        (run_dir / (target.stem + ".run.json")).write_text(json.dumps(record, indent=1) + "\n")
        # point `latest` at the run even when it failed, so the failing cell is one click away
        point_latest(run_dir)
        took = str(dt.timedelta(seconds=int(record["duration_s"])))
        if error is None:
            print(f"[notebook] {source.name} finished in {took}", flush=True)
        else:
            where = f"cell {record['cell']} (In [{record['execution_count']}])" if "cell" in record else "startup"
            print(f"[notebook] {source.name} FAILED after {took} in {where}: {record['error']}",
                  file=sys.stderr, flush=True)
        print(f"[notebook] executed notebook: {shown(target)}", flush=True)
        if page is not None:
            print(f"[notebook] rendered HTML:     {shown(page)}", flush=True)
    return target


# ---- runs/index.html: the page a reviewer opens first --------------------------------------------------
TASKS = [
    ("detection", "Clothing detection"), ("person", "Person detection"),
    ("pipeline", "Person → crop → clothing pipeline"), ("classification", "Clothing classification"),
    ("analysis", "Model analysis (FLOPs, receptive fields)"), ("comparison", "Comparison"),
    ("bench", "Benchmarks"), ("data", "Data and environment"), ("other", "Other runs"),
]
NOTEBOOK_TASKS = {"00": "data", "01": "data", "02": "data", "03": "detection", "04": "detection",
                  "05": "detection", "06": "detection", "07": "person", "08": "pipeline",
                  "09": "classification", "10": "classification", "11": "analysis", "12": "comparison"}
RESULT_TASKS = [("detector-", "detection"), ("evaluation-", "detection"), ("person-", "person"),
                ("pipeline", "pipeline"), ("classifier-", "classification"), ("analysis", "analysis"),
                ("comparison", "comparison"), ("bench", "bench")]
# plots shown as thumbnails, in this order (file stems containing these words)
KEY_PLOTS = ("training_curves", "history", "training", "pr_curves", "confusion_matrix", "predictions",
             "modes", "tradeoffs", "latency", "erf", "samples", "misclassified", "lr_finder")
#: files whose metrics the index headlines, in this order (a run's held-out test score before its validation one)
METRICS_FILES = ("test_metrics.json", "metrics.json", "results.json", "run.json", "train_summary.json", "analysis.json")
HEADLINE = [  # (key in a metrics record, label, format)
    ("bbox_AP", "bbox AP", "{:.3f}"), ("bbox_AP50", "bbox AP50", "{:.3f}"), ("segm_AP", "segm AP", "{:.3f}"),
    ("segm_AP50", "segm AP50", "{:.3f}"), ("accuracy", "accuracy", "{:.1%}"), ("macro_f1", "macro-F1", "{:.3f}"),
    ("latency_median_ms", "median ms", "{:.1f}"), ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("ms_per_image", "ms / image", "{:.1f}"), ("latency_ms", "ms", "{:.1f}"),
]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt_seconds(seconds) -> str:
    try:
        return str(dt.timedelta(seconds=int(float(seconds))))
    except (TypeError, ValueError):
        return ""


def _split_of(record) -> str | None:
    """The data split a metrics record was measured on (``split`` or ``part``: test, val, ...), if it says."""
    if isinstance(record, dict):
        split = record.get("split") or record.get("part")
        if isinstance(split, str) and split:
            return split
    return None


def _headline(record, prefix: str = "") -> list[tuple[str, str]]:
    """Headline metrics of one metrics record (a dict), or of each named row of a list of records; each
    label names the split the record says it was measured on ("test bbox AP50")."""
    if isinstance(record, list):
        rows = []
        for item in record[:8]:
            if isinstance(item, dict):
                label = str(item.get("mode") or item.get("name") or item.get("model") or "")
                rows += _headline(item, f"{prefix}{label} · " if label else prefix)
        return rows
    if not isinstance(record, dict):
        return []
    split = _split_of(record)
    rows = []
    for key, label, fmt in HEADLINE:
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((f"{prefix}{split} {label}" if split else prefix + label, fmt.format(value)))
    if not rows and isinstance(record.get("modes"), list):  # each mode's row carries the record's split
        rows = _headline([dict(m, split=_split_of(m) or split) if isinstance(m, dict) else m
                          for m in record["modes"]], prefix)
    return rows


def _scalars(mapping, limit: int = 24) -> dict:
    if not isinstance(mapping, dict):
        return {}
    out = {k: v for k, v in mapping.items()
           if k != "output_dir" and v is not None and isinstance(v, (str, int, float, bool))}
    return dict(list(out.items())[:limit])


def _provenance_md(path: Path) -> dict:
    """When / machine / times lines from a curated folder's PROVENANCE.md (free text, read leniently)."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    found: dict[str, str] = {}
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            title = stripped.lstrip("#").strip().lower()
            section = ("machine" if title.startswith(("hardware", "machine")) else
                       "times" if title.startswith(("time", "when")) else None)
            continue
        if not stripped:
            continue
        if section and section not in found:
            found[section] = stripped.lstrip("-* ")
        if "when" not in found and stripped.lower().startswith("curated "):
            found["when"] = stripped
    return found


def _thumbnails(run_dir: Path, limit: int = 6) -> list[Path]:
    pngs = sorted(run_dir.glob("*.png")) or sorted(run_dir.glob("*/*.png"))

    def rank(p: Path):
        return next((i for i, k in enumerate(KEY_PLOTS) if k in p.stem), len(KEY_PLOTS)), p.name

    return sorted(pngs, key=rank)[:limit]


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def describe_run(run_dir: Path, runs_dir: Path, *, title: str, kind: str, html_dir: Path | None = None) -> dict:
    """Everything the index shows for one run folder (a latest run or a curated result)."""
    import nbformat

    card = {"title": title, "kind": kind, "folder": _rel(run_dir, runs_dir), "notebooks": [], "status": "ok",
            "error": None, "metrics": [], "params": {}, "when": "", "duration": "", "machine": "", "plots": []}
    nb_meta: dict = {}
    durations = []  # papermill's, per executed notebook (a run resumed over sittings keeps one per sitting)
    for executed in sorted(run_dir.glob("*.ipynb")):
        try:
            nb = nbformat.read(executed, as_version=4)
        except Exception as exc:  # noqa: BLE001 - a broken file is shown, not fatal
            card["status"], card["error"] = "unreadable", f"{executed.name}: {exc}"
            continue
        target = (html_dir / _rel(executed, runs_dir)).with_suffix(".html") if html_dir else None
        try:
            page = render_html(executed, target)
            card["notebooks"].append((executed.stem, _rel(page, runs_dir)))
        except Exception as exc:  # noqa: BLE001
            card["notebooks"].append((f"{executed.stem} (not rendered: {exc})", _rel(executed, runs_dir)))
        err = first_error(nb)
        if err and card["error"] is None:
            card["status"] = "failed"
            card["error"] = f"{executed.stem}: cell {err['cell']} (In [{err['execution_count']}]): {err['error']}"
        nb_meta = nb_meta or dict(nb.metadata.get("papermill", {}))
        durations.append(nb.metadata.get("papermill", {}).get("duration"))
    runner = {}
    for path in sorted(run_dir.glob("*.run.json")):
        runner = _read_json(path) or runner
    if runner.get("status") == "failed" and card["status"] != "failed":
        card["status"] = "failed"
        where = f"cell {runner['cell']} (In [{runner.get('execution_count')}]): " if "cell" in runner else ""
        card["error"] = where + str(runner.get("error", ""))
    if runner.get("status") == "running":
        card["status"] = "running (or killed)"
    records = [r for r in (_read_json(run_dir / n) for n in METRICS_FILES) if r]
    shown: set = set()  # each split's headline once, test first; a record naming no split only if none did
    for record in records:
        metrics = record.get("metrics", record) if isinstance(record, dict) else record
        splits = {_split_of(m) for m in (metrics if isinstance(metrics, list) else [metrics])}
        key = tuple(sorted(s or "" for s in splits))
        if key in shown or (key == ("",) and card["metrics"]):
            continue
        rows = _headline(metrics)
        if rows:
            card["metrics"] += rows
            shown.add(key)
    run_record = next((r for r in records if isinstance(r, dict) and "provenance" in r), {})
    prov = run_record.get("provenance") or {}
    summary = _read_json(run_dir / "train_summary.json") or {}
    card["params"] = (_scalars(runner.get("parameters")) or _scalars(nb_meta.get("parameters"))
                      or _scalars(prov.get("settings")) or _scalars(run_record.get("config"))
                      or _scalars(summary.get("config")))
    card["when"] = (runner.get("started") or nb_meta.get("start_time") or prov.get("date")
                    or summary.get("started") or "")
    card["duration"] = _fmt_seconds(runner.get("duration_s") or nb_meta.get("duration")
                                    or prov.get("train_seconds") or summary.get("fit_seconds"))
    if not runner.get("duration_s") and len(durations) > 1 and all(durations):
        card["duration"] = f"{_fmt_seconds(sum(map(float, durations)))} in {len(durations)} sittings"
    hw = runner.get("machine") or prov.get("hardware") or next(
        (r.get("hardware") for r in records if isinstance(r, dict) and isinstance(r.get("hardware"), dict)), None)
    if isinstance(hw, dict):
        gpus = hw.get("gpus") or hw.get("cuda_devices") or []
        card["machine"] = ", ".join(str(x) for x in (
            hw.get("host"), hw.get("cpu"), f"{hw['cores']} cores" if hw.get("cores") else None,
            f"device {hw['device']}" if hw.get("device") else None, "; ".join(map(str, gpus)) or None) if x)
    if isinstance(card["when"], str) and len(card["when"]) > 16 and card["when"][10:11] == "T":
        card["when"] = card["when"][:16].replace("T", " ")  # ISO time to the minute
    md = _provenance_md(run_dir / "PROVENANCE.md")
    card["when"] = card["when"] or md.get("when", "")
    card["duration"] = card["duration"] or md.get("times", "")
    card["machine"] = card["machine"] or md.get("machine", "")
    if (run_dir / "PROVENANCE.md").exists():
        card["provenance"] = _rel(run_dir / "PROVENANCE.md", runs_dir)
    card["plots"] = [_rel(p, runs_dir) for p in _thumbnails(run_dir)]
    return card


def _markdown(path: Path) -> str:
    import mistune

    return mistune.create_markdown(plugins=["table"])(path.read_text(encoding="utf-8"))


def _card_html(card: dict) -> str:
    e = html.escape
    status = card["status"]
    badge = f"<span class='badge {'bad' if status != 'ok' else 'ok'}'>{e(status)}</span>"
    links = " · ".join(f"<a href='{e(href)}'>{e(label)}</a>" for label, href in card["notebooks"])
    if card.get("provenance"):
        links += (" · " if links else "") + f"<a href='{e(card['provenance'])}'>PROVENANCE.md</a>"
    if not card["notebooks"]:
        links += (" · " if links else "") + "<span class='muted'>no executed notebook in this folder</span>"
    first = card["notebooks"][0][1] if card["notebooks"] else None
    parts = [f"<div class='card {e(status.split()[0])}' id='{e(card['folder'])}'>",
             f"<h3>{e(card['title'])} <small>{e(card['kind'])} · {e(card['folder'])}</small> {badge}</h3>",
             f"<p class='links'>{links}</p>"]
    if card["error"]:
        parts.append(f"<p class='error'>FAILED: {e(card['error'])}</p>")
    if card["metrics"]:
        parts.append("<table class='metrics'><tr>" + "".join(f"<th>{e(k)}</th>" for k, _ in card["metrics"])
                     + "</tr><tr>" + "".join(f"<td>{e(v)}</td>" for _, v in card["metrics"]) + "</tr></table>")
    facts = [("when", card["when"]), ("duration", card["duration"]), ("machine", card["machine"])]
    parts.append("<p class='facts'>" + " · ".join(f"<b>{k}</b> {e(str(v))}" for k, v in facts if v) + "</p>")
    if card["params"]:
        parts.append("<details><summary>parameters</summary><p class='params'>"
                     + ", ".join(f"<code>{e(k)}={e(json.dumps(v))}</code>" for k, v in card["params"].items())
                     + "</p></details>")
    if card["plots"]:
        parts.append("<div class='thumbs'>" + "".join(
            f"<a href='{e(first or p)}' title='{e(p)}'><img src='{e(p)}' alt='{e(Path(p).stem)}' loading='eager'>"
            f"<span>{e(Path(p).stem)}</span></a>" for p in card["plots"]) + "</div>")
    parts.append("</div>")
    return "\n".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1400px}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{margin:.2em 0}h3 small{font-weight:normal;color:#777;font-size:.7em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:.8em 0;background:#fafafa}
.card.failed{border-color:#c33;background:#fff5f5}.error{color:#b00;font-family:monospace}
.badge{font-size:.65em;padding:.1em .5em;border-radius:3px;vertical-align:middle}
.badge.ok{background:#d8f0d8;color:#264}.badge.bad{background:#f6d0d0;color:#900}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.2em .7em;border:1px solid #ddd;text-align:left}
th{background:#f0f0f0}.facts{color:#444;font-size:.9em}.muted{color:#999}
.thumbs{display:flex;flex-wrap:wrap;gap:.6em}.thumbs a{display:flex;flex-direction:column;align-items:center;
font-size:.75em;color:#555;text-decoration:none}.thumbs img{height:130px;max-width:260px;object-fit:contain;
border:1px solid #ccc;background:#fff}
nav a{margin-right:1em}.params code{font-size:.85em}
"""


def collect_cards(runs_dir: Path) -> dict[str, list[dict]]:
    """Cards per task: the latest run of each notebook, then every curated run under runs/results/."""
    by_task: dict[str, list[dict]] = {task: [] for task, _ in TASKS}
    for link in sorted(runs_dir.glob("*/latest")):
        if not link.exists():
            continue
        stem = link.parent.name
        task = NOTEBOOK_TASKS.get(stem[:2], "other")
        run_dir = link.resolve()
        by_task[task].append(describe_run(run_dir, runs_dir, title=stem, kind=f"latest run ({run_dir.name})"))
    results = runs_dir / "results"
    for folder in sorted(p for p in results.glob("*") if p.is_dir()) if results.is_dir() else []:
        task = next((t for prefix, t in RESULT_TASKS if folder.name.startswith(prefix)), "other")
        card = describe_run(folder, runs_dir, title=folder.name, kind="curated result", html_dir=runs_dir / "html")
        by_task[task].insert(sum(c["kind"] == "curated result" for c in by_task[task]), card)  # curated first
    return by_task


def render_index(runs_dir: Path | None = None) -> Path:
    """Write ``runs/index.html``: per task the latest run of each notebook and every curated result with
    headline metrics, parameters, duration, when and where it ran, plot thumbnails linking to the rendered
    notebook, and the comparison table.  Static, relative links only (open it from disk)."""
    runs_dir = Path(runs_dir or RUNS_DIR)
    by_task = collect_cards(runs_dir)
    e = html.escape
    now = dt.datetime.now(dt.UTC)
    body = [f"<h1>clothingrec results</h1><p class='muted'>Written {now:%Y-%m-%d %H:%M} "
            "UTC by <code>make index</code> (also after every <code>make &lt;notebook&gt;</code>). Latest run of "
            "each notebook and every curated run under <code>runs/results/</code>; thumbnails open the "
            "rendered notebook.</p>"]
    body.append("<nav>" + "".join(f"<a href='#{t}'>{e(label)} ({len(by_task[t])})</a>"
                                  for t, label in TASKS if by_task[t]) + "</nav>")
    curated = [(label, c) for t, label in TASKS for c in by_task[t] if c["kind"] == "curated result"]
    if curated:
        body.append("<h2>Curated results at a glance</h2><table class='glance'><tr><th>task</th><th>run</th>"
                    "<th>headline metrics</th><th>when</th><th>duration</th></tr>" + "".join(
                        f"<tr><td>{e(label)}</td><td><a href='#{e(c['folder'])}'>{e(c['title'])}</a></td>"
                        f"<td>{e(', '.join(f'{k} {v}' for k, v in c['metrics'][:6]))}</td>"
                        f"<td>{e(str(c['when'])[:40])}</td><td>{e(str(c['duration'])[:40])}</td></tr>"
                        for label, c in curated) + "</table>")
    failed = [c for cards in by_task.values() for c in cards if c["status"] == "failed"]
    if failed:
        body.append("<div class='card failed'><b>Failed runs:</b><ul>" + "".join(
            f"<li>{e(c['title'])} ({e(c['folder'])}): {e(c['error'] or '')}</li>" for c in failed) + "</ul></div>")
    comparison = runs_dir / "results" / "comparison" / "comparison.md"
    for task, label in TASKS:
        if not by_task[task] and not (task == "comparison" and comparison.exists()):
            continue
        body.append(f"<h2 id='{task}'>{e(label)}</h2>")
        if task == "comparison" and comparison.exists():
            body.append(f"<div class='comparison'>{_markdown(comparison)}"
                        f"<p><a href='{e(_rel(comparison, runs_dir))}'>comparison.md</a></p></div>")
        for card in by_task[task]:
            body.append(_card_html(card))
            if task == "bench" and card["kind"] == "curated result":
                folder = runs_dir / card["folder"]
                for md in sorted(folder.glob("*.md")):
                    if md.name in ("PROVENANCE.md", "README.md"):
                        continue
                    body.append(f"<details><summary><a href='{e(_rel(md, runs_dir))}'>{e(md.name)}</a></summary>"
                                f"{_markdown(md)}</details>")
    index = runs_dir / "index.html"
    index.write_text("<!doctype html><html><head><meta charset='utf-8'><title>clothingrec results</title>"
                     f"<style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n",
                     encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clothingrec.notebooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute one notebook with papermill")
    run_p.add_argument("notebook")
    run_p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="papermill parameter (typed like papermill -p)")
    run_p.add_argument("-r", "--raw", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="parameter kept as a string")
    run_p.add_argument("--kernel", default=KERNEL_NAME)
    run_p.add_argument("--quiet", action="store_true", help="no cell-by-cell progress on the terminal")
    run_p.add_argument("--no-index", dest="index", action="store_false",
                       help="do not rewrite runs/index.html after the run")
    sub.add_parser("index", help="render runs/index.html from the latest run of each notebook")
    args = parser.parse_args(argv)
    if args.command == "run":
        params = {k: resolve_value(v) for k, v in args.parameter}
        params.update({k: v for k, v in args.raw})
        code = 0
        try:
            run(args.notebook, params, kernel_name=args.kernel, progress=not args.quiet)
        except Exception as exc:  # papermill raises PapermillExecutionError with the failing cell
            print(f"[notebook] FAILED: {exc}", file=sys.stderr)
            code = 1
        if args.index and RUNS_DIR.exists():
            try:
                print(f"[notebook] index: {render_index()}")
            except Exception as exc:  # noqa: BLE001 - the run's status is what matters
                print(f"[notebook] could not write runs/index.html: {exc}", file=sys.stderr)
        return code
    index = render_index()
    print(f"[notebook] index: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
