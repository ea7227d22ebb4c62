"""Keeps bench/bench_app.py from rotting: `--quick` starts `python -m app` (as `make serve` does) in its
own process, sends a few concurrent requests, stops it.  Zero errors is asserted; timings never are."""
from __future__ import annotations

import importlib.util
import json

from clothingrec.paths import PROJECT_ROOT


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_app", PROJECT_ROOT / "bench" / "bench_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_app_quick_runs_the_server_process(tmp_path):
    result = _bench_module().main(["--quick", "--requests", "4", "--clients", "2", "--mode", "direct",
                                   "--out", str(tmp_path)])
    assert result["requests_sent"] == 4 and result["errors"] == 0, result["error_examples"]
    assert result["status_counts"] == {"200": 4}
    assert result["healthz_after"]["status"] == "ok" and result["healthz_after"]["requests_served"] >= 4
    assert result["weights"] == "untrained (smoke)"
    saved = json.loads((tmp_path / "app_quick.json").read_text())
    assert saved["latency_ms"]["median"] > 0
    assert "| requests | errors |" in (tmp_path / "app_quick.md").read_text()
