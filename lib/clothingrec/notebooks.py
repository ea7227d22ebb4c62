"""Run the numbered notebooks headlessly (papermill) and render an HTML index of the runs.

``python -m clothingrec.notebooks run 00_environment -p profile smoke``
executes ``notebooks/00_environment.ipynb`` into ``runs/00_environment/<timestamp>/``,
injecting the parameters and ``output_dir``, then points ``runs/00_environment/latest``
at it.  ``python -m clothingrec.notebooks index`` renders every ``latest`` run to HTML
and writes ``runs/index.html``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import sys
import time
from pathlib import Path

from clothingrec.paths import NOTEBOOKS_DIR, RUNS_DIR, configure_environment, point_latest

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


def run(name: str, parameters: dict, kernel_name: str | None = KERNEL_NAME) -> Path:
    """Execute one notebook with papermill into a new timestamped run folder; return the executed copy.

    Every name in ``parameters`` must be declared in the notebook's ``parameters`` cell (else
    ``ValueError`` before anything runs).  The offline environment is set first; the kernel inherits it.
    """
    import papermill as pm

    source = notebook_path(name)
    check_parameters(source, parameters)
    configure_environment()
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
    run_dir.mkdir(parents=True, exist_ok=True)
    parameters = {**parameters, "output_dir": str(run_dir)}
    shown = target.relative_to(RUNS_DIR.parent) if target.is_relative_to(RUNS_DIR.parent) else target
    print(f"[notebook] {source.name} -> {shown}")
    print(f"[notebook] parameters: {json.dumps(parameters)}")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(target), parameters=parameters, kernel_name=kernel_name,
            cwd=str(source.parent), progress_bar=False, log_output=False,
        )
    finally:
        # point `latest` at the run even when it failed, so the failing cell is one click away
        point_latest(run_dir)
    print(f"[notebook] {source.name} finished in {time.perf_counter() - start:.1f} s")
    return target


def render_index(runs_dir: Path = RUNS_DIR) -> Path:
    """Render every ``runs/<notebook>/latest/*.ipynb`` to HTML and list them in ``runs/index.html``."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    rows = []
    for link in sorted(runs_dir.glob("*/latest")):
        run_dir = link.resolve()
        for executed in sorted(run_dir.glob("*.ipynb")):
            nb = nbformat.read(executed, as_version=4)
            body, _ = exporter.from_notebook_node(nb)
            page = executed.with_suffix(".html")
            page.write_text(body, encoding="utf-8")
            failed = any(
                o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", [])
            )
            rel = page.relative_to(runs_dir)
            rows.append(
                f"<tr><td><a href='{html.escape(str(rel))}'>{html.escape(executed.stem)}</a></td>"
                f"<td>{html.escape(run_dir.name)}</td><td>{'FAILED' if failed else 'ok'}</td></tr>"
            )
    index = runs_dir / "index.html"
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>clothingrec runs</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}</style>"
        "</head><body><h1>clothingrec: executed notebooks</h1>"
        f"<p>Rendered {dt.datetime.now():%Y-%m-%d %H:%M}. Each link is the latest run of a notebook.</p>"
        "<table><tr><th>notebook</th><th>run</th><th>status</th></tr>"
        + "\n".join(rows)
        + "</table></body></html>",
        encoding="utf-8",
    )
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
    sub.add_parser("index", help="render runs/index.html from the latest run of each notebook")
    args = parser.parse_args(argv)
    if args.command == "run":
        params = {k: resolve_value(v) for k, v in args.parameter}
        params.update({k: v for k, v in args.raw})
        try:
            run(args.notebook, params, kernel_name=args.kernel)
        except Exception as exc:  # papermill raises PapermillExecutionError with the failing cell
            print(f"[notebook] FAILED: {exc}", file=sys.stderr)
            return 1
        return 0
    index = render_index()
    print(f"[notebook] index: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
