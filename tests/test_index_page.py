"""runs/index.html, the page a reviewer opens first, in headless Chromium from disk (file://).

A small runs/ tree (a latest run, a failed run, curated results, the comparison table) must show per task
the headline metrics, parameters, duration, machine and thumbnails, name the failing cell, and every link
and image on the page must resolve.  The real runs/ page is also opened, checked the same way, and its
screenshot written to docs/results_page.png for the README.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from clothingrec import notebooks as nb_runner
from clothingrec.paths import PROJECT_ROOT, RUNS_DIR

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from app.testing import CHROMIUM, chromium_context  # noqa: E402

pytestmark = pytest.mark.slow
PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d4944415478da63f8cfc0f01f0005000201"
    "a5c1d6a60000000049454e44ae426082")


def _executed(path: Path, error: bool = False) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {"parameters": {"epochs": 3, "output_dir": "x"}, "duration": 75.0,
                                "start_time": "2026-11-30T10:00:00"}
    ok = nbformat.v4.new_code_cell("print('trained')", execution_count=1)
    ok.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# tiny"), ok]
    if error:
        bad = nbformat.v4.new_code_cell("raise ValueError('boom')", execution_count=2)
        bad.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]
        nb.cells.append(bad)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _runs_tree(runs: Path) -> None:
    yolo = runs / "03_train_yolo" / "20261130-100000"
    _executed(yolo / "03_train_yolo.ipynb")
    (yolo / "training_curves.png").write_bytes(PNG)
    (yolo / "pr_curves.png").write_bytes(PNG)
    (yolo / "run.json").write_text(json.dumps({"metrics": {"bbox_AP": 0.25, "bbox_AP50": 0.5}, "provenance": {
        "hardware": {"cpu": "Test CPU", "cores": 2, "device": "cpu"}, "date": "2026-11-30T10:00:00"}}))
    nb_runner.point_latest(yolo)
    broken = runs / "09_train_classifier" / "20261130-110000"
    _executed(broken / "09_train_classifier.ipynb", error=True)
    nb_runner.point_latest(broken)
    nbval_only = runs / "00_environment" / "default"  # a run written by nbval: artifacts, no executed copy
    nbval_only.mkdir(parents=True)
    (nbval_only / "samples.png").write_bytes(PNG)
    nb_runner.point_latest(nbval_only)
    curated = runs / "results" / "classifier-tiny"
    _executed(curated / "10_evaluate_classifier.ipynb")
    (curated / "confusion_matrix.png").write_bytes(PNG)
    (curated / "metrics.json").write_text(json.dumps({"accuracy": 0.828, "macro_f1": 0.785}))
    (curated / "PROVENANCE.md").write_text("# tiny\n\nCurated 2026-11-22 06:19 UTC.\n\n"
                                           "## Hardware and load\nIntel Xeon, 2 cores, no GPU.\n")
    comparison = runs / "results" / "comparison"
    comparison.mkdir(parents=True)
    (comparison / "comparison.md").write_text("# Model comparison\n\n| model | accuracy (%) |\n|---|---|\n"
                                              "| mobilenet_v3_small | 82.8 |\n")
    (comparison / "tradeoffs.png").write_bytes(PNG)


def _check_page(index: Path, screenshot: Path | None = None) -> dict:
    """Open the page from disk; every image must have loaded and every link must point at an existing file."""
    with chromium_context(viewport=(1300, 1800)) as context:
        page = context.new_page()
        failed_requests: list[str] = []
        page.on("requestfailed", lambda req: failed_requests.append(req.url))
        page.goto(index.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.src, ok: e.complete && e.naturalWidth > 0}))")
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        text = page.inner_text("body")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        # every linked page opens too (the rendered notebooks)
        for href in sorted({h.split("#")[0] for h in links if h.endswith(".html")})[:40]:
            assert page.goto(href, wait_until="domcontentloaded") is not None or True
    broken_images = [i["src"] for i in images if not i["ok"]]
    assert not broken_images, broken_images
    assert not failed_requests, failed_requests
    missing = []
    for href in links:
        url = urlparse(href)
        if url.scheme != "file" or not url.path or url.path == urlparse(index.as_uri()).path:
            assert url.scheme == "file" or href.startswith("#"), f"not a relative/static link: {href}"
            continue
        if not Path(unquote(url.path)).exists():
            missing.append(href)
    assert not missing, missing
    return {"images": images, "links": links, "text": text}


@pytest.fixture(autouse=True)
def _need_chromium():
    if not CHROMIUM.exists() and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"{CHROMIUM} is not installed (make browser)")


def test_index_page_shows_tasks_metrics_failures_and_resolves_every_link(tmp_path):
    runs = tmp_path / "runs"
    _runs_tree(runs)
    index = nb_runner.render_index(runs)
    assert index == runs / "index.html"
    source = index.read_text()
    assert "href='/" not in source and "src='/" not in source, "links must be relative"
    seen = _check_page(index)
    text = seen["text"]
    for heading in ("Clothing detection", "Clothing classification", "Comparison", "Data and environment"):
        assert heading in text
    assert "bbox AP50" in text and "0.500" in text  # headline metrics of the latest run
    assert "accuracy" in text and "82.8%" in text and "macro-F1" in text  # curated classifier
    assert "0:01:15" in text and "Test CPU" in text  # duration (papermill metadata) and machine (run.json)
    assert "Intel Xeon, 2 cores, no GPU." in text  # machine from PROVENANCE.md
    assert "FAILED" in text and "cell 3 (In [2]): ValueError: boom" in text  # the failing cell, named
    assert "mobilenet_v3_small" in text  # the comparison table
    assert "no executed notebook in this folder" in text  # the nbval-written run
    srcs = [i["src"] for i in seen["images"]]
    assert any(s.endswith("03_train_yolo/20261130-100000/training_curves.png") for s in srcs)
    assert any(s.endswith("results/classifier-tiny/confusion_matrix.png") for s in srcs)
    assert any(h.endswith("03_train_yolo/20261130-100000/03_train_yolo.html") for h in seen["links"])
    assert any(h.endswith("html/results/classifier-tiny/10_evaluate_classifier.html") for h in seen["links"])
    assert not list((runs / "results").rglob("*.html")), "curated folders (committed) get no rendered files"


def test_the_real_results_page_resolves_and_is_screenshotted():
    if not (RUNS_DIR / "results").is_dir():
        pytest.skip("no runs/results in this checkout")
    index = nb_runner.render_index()
    shot = PROJECT_ROOT / "docs" / "results_page.png"
    seen = _check_page(index, screenshot=shot)
    assert "Comparison" in seen["text"] and "detector-yolo-ccp" in seen["text"]
    assert "Other runs" not in seen["text"], "every curated folder is filed under its task"
    assert len(seen["images"]) >= 5
    assert shot.stat().st_size > 10_000


def test_a_run_resumed_over_sittings_shows_their_summed_duration(tmp_path):
    """A curated folder with one executed notebook per sitting: the card's duration is their sum, not the first's."""
    folder = tmp_path / "runs" / "results" / "detector-long"
    _executed(folder / "04_train_fasterrcnn.ipynb")
    _executed(folder / "sitting2-04_train_fasterrcnn.ipynb")
    card = nb_runner.describe_run(folder, tmp_path / "runs", title="detector-long", kind="curated result")
    assert card["duration"] == "0:02:30 in 2 sittings" and card["when"] == "2026-11-30 10:00"
    single = tmp_path / "runs" / "results" / "detector-short"
    _executed(single / "04_train_fasterrcnn.ipynb")
    assert nb_runner.describe_run(single, tmp_path / "runs", title="x", kind="curated result")["duration"] == "0:01:15"
