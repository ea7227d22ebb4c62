"""Every bench/bench_*.py runs end to end in its ``--quick`` mode (figures are not asserted).

Each script runs in a subprocess; scripts that accept ``--out`` write into a temporary folder, so a
test run never overwrites the figures of a real ``make bench``.  The test checks the exit status and
that the script wrote its JSON and markdown table.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clothingrec.paths import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("bench_*.py"))


def _options(script: Path) -> set[str]:
    """The command-line options a script declares (read from its source: no extra interpreter start)."""
    text = script.read_text(encoding="utf-8")
    return {opt for opt in ("--quick", "--out", "--workdir") if f'"{opt}"' in text or f"'{opt}'" in text}


def test_bench_scripts_exist():
    names = {p.name for p in SCRIPTS}
    assert {"bench_inference.py", "bench_pipeline.py"} <= names, names


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_quick(script: Path, tmp_path: Path):
    usage = _options(script)
    assert "--quick" in usage, f"{script.name} has no --quick mode"
    cmd = [sys.executable, str(script), "--quick"]
    out_dir = None
    if "--out" in usage:
        out_dir = tmp_path / "bench"
        cmd += ["--out", str(out_dir)]
    if "--workdir" in usage:
        cmd += ["--workdir", str(tmp_path / "work")]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT, env=env)
    wall = time.perf_counter() - t0
    print(f"\n{script.name} --quick: {wall:.1f} s")
    assert proc.returncode == 0, f"{script.name} --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    if out_dir is not None:
        written = sorted(p.suffix for p in out_dir.glob("*") if p.suffix in (".json", ".md"))
        assert ".json" in written and ".md" in written, f"{script.name} wrote {list(out_dir.glob('*'))}"
        # a model or backend that failed is reported in the record, and must not pass here unnoticed
        for path in out_dir.glob("*.json"):
            record = json.loads(path.read_text())
            results = record.get("results", []) if isinstance(record, dict) else []
            for result in [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []:
                failed = [result.get("error")] + [row.get("error") for row in result.get("rows", [])
                                                  if isinstance(row, dict)]
                assert not any(failed), f"{path.name}: {result.get('model')}: {[f for f in failed if f]}"
