"""Shared pytest setup.

Nothing here may change the environment that nbval's notebook kernels inherit (for example
MPLBACKEND would stop inline figures): `make test` runs tests/ and notebooks/ in one session.
The offline-safe environment (project caches, no network, a local font for ultralytics) is the
exception: it is set here explicitly, before any test module imports ultralytics.
"""
from clothingrec.paths import configure_environment

configure_environment()


def pytest_terminal_summary(terminalreporter):
    """After nbval: name each notebook whose stored outputs went stale (or that failed) and how to refresh it.

    nbval reports one cell at a time ("Notebook cell execution failed" / an output mismatch); a user who
    edited a notebook in JupyterLab needs the notebook's name and the command that rewrites its outputs.
    """
    from pathlib import Path

    stale: dict[str, list[str]] = {}
    broken: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", []):
        path, _, cell = report.nodeid.partition("::")
        if not path.endswith(".ipynb"):
            continue
        text = getattr(report, "longreprtext", "") or ""
        target = broken if "caused an exception" in text or "Timeout of" in text else stale
        target.setdefault(path, []).append(cell or "?")
    if not (stale or broken):
        return
    tr = terminalreporter
    tr.write_sep("=", "notebooks whose stored outputs no longer match")
    for path, cells in sorted(stale.items()):
        tr.write_line(f"STALE  {path}: {', '.join(cells)} differ from the outputs stored in the notebook")
    for path, cells in sorted(broken.items()):
        tr.write_line(f"FAILS  {path}: {', '.join(cells)} raised an error (fix the code or the notebook first)")
    names = " ".join(sorted({Path(p).stem for p in {**stale, **broken}}))
    tr.write_line("If the change is intended (e.g. you edited or re-ran the notebook in JupyterLab), rewrite")
    tr.write_line("the stored outputs with the notebook's defaults, review `git diff`, and commit:")
    tr.write_line(f"    make notebooks-refresh NB='{names}'")
