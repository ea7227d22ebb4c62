"""The foundation: paths, offline weights, the notebook runner, Make → papermill parameters, nbval."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from clothingrec import notebooks as nb_runner
from clothingrec import paths
from clothingrec.weights import PretrainedWeightsUnavailable, torchvision_weights, ultralytics_weights

ROOT = paths.PROJECT_ROOT
NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


# ---------------------------------------------------------------- offline weights
def test_torchvision_weights_offline_fails_fast_and_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CLOTHINGREC_OFFLINE", raising=False)  # the real network probe, not a shortcut
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        torchvision_weights("ResNet50_Weights.IMAGENET1K_V2")
    elapsed = time.perf_counter() - start
    message = str(err.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert elapsed < 20, f"took {elapsed:.1f} s: an offline machine must not wait on a download"


def test_torchvision_weights_uses_a_cached_file(monkeypatch, tmp_path):
    from torchvision.models import MobileNet_V3_Small_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CLOTHINGREC_OFFLINE", "1")
    weights = MobileNet_V3_Small_Weights.IMAGENET1K_V1
    cached = tmp_path / "hub" / "checkpoints" / Path(weights.url).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"placeholder")
    assert torchvision_weights(weights) is weights
    assert torchvision_weights(None) is None


def test_ultralytics_weights_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ultralytics_weights("yolov8n.yaml") == "yolov8n.yaml"  # config: train from scratch
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable, match=r"yolov8n\.pt.*weights"):
        ultralytics_weights("yolov8n.pt")
    assert time.perf_counter() - start < 20
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    assert ultralytics_weights(local) == str(local)


def test_environment_is_project_local():
    for var in ("TORCH_HOME", "MPLCONFIGDIR", "YOLO_CONFIG_DIR"):
        assert Path(os.environ[var]).resolve().is_relative_to(ROOT) or "CI_KEEP_HOME" in os.environ, var
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert (Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf").exists()


# ---------------------------------------------------------------- paths and runner
def test_find_dataset_missing_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no-such-dataset.*make data"):
        paths.find_dataset("no-such-dataset")
    assert paths.find_dataset("no-such-dataset", required=False) is None


def test_default_output_dir_is_pointed_at_by_latest(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path)
    out = paths.resolve_output_dir("99_demo")
    assert out == tmp_path / "99_demo" / "default" and out.is_dir()
    assert (tmp_path / "99_demo" / "latest").resolve() == out.resolve()
    assert paths.resolve_output_dir("99_demo", tmp_path / "x") == (tmp_path / "x").resolve()


@pytest.mark.parametrize("text,value", [("3", 3), ("0.5", 0.5), ("True", True), ("None", None),
                                        ("cpu", "cpu"), ("1e-3", 1e-3)])
def test_parameter_typing(text, value):
    assert nb_runner.resolve_value(text) == value


def test_index_lists_latest_runs(tmp_path):
    run = tmp_path / "00_demo" / "20260101-000000"
    run.mkdir(parents=True)
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(book, run / "00_demo.ipynb")
    paths.point_latest(run)
    index = nb_runner.render_index(tmp_path)
    text = index.read_text()
    assert "00_demo/20260101-000000/00_demo.html" in text and (run / "00_demo.html").exists()


# ---------------------------------------------------------------- notebooks are well-formed
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(notebook):
    book = nbformat.read(notebook, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code, "no code cells"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    assert re.search(r"^profile\s*=", first.source, re.M) and re.search(r"^output_dir\s*=", first.source, re.M)
    assert book.metadata["kernelspec"]["name"] == "clothingrec"
    assert any(c.get("outputs") for c in code), "committed without outputs: nbval would compare nothing"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^NOTEBOOK_[\w-]+\s*:=\s*{notebook.stem}\s*$", makefile, re.M), "no make target"


# ---------------------------------------------------------------- Make → papermill, nbval can fail
def test_make_variables_reach_the_notebook():
    """`make env DEVICE=cpu PARAMS='-p threads 1'` → the executed copy shows the injected values."""
    proc = subprocess.run(["make", "--no-print-directory", "env", "DEVICE=cpu", "PARAMS=-p threads 1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = paths.latest_run("00_environment") / "00_environment.ipynb"
    assert executed.parent.name != "default"  # a timestamped papermill run, not the nbval one
    book = nbformat.read(executed, as_version=4)
    injected = [c for c in book.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "threads = 1" in injected[0].source and 'device = "cpu"' in injected[0].source
    printed = "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []))
    assert "device='cpu' threads=1" in printed
    env = json.loads((executed.parent / "environment.json").read_text())
    assert env["machine"]["torch_threads"] == 1


def test_runner_reuses_a_given_run_folder_and_keeps_the_earlier_copy(tmp_path):
    """`PARAMS='-r output_dir runs/<nb>/<stamp> -p resume True'` continues a run in its own folder: the first
    executed copy stays, the second is written beside it with a timestamp."""
    run_dir = tmp_path / "run"
    first = nb_runner.run("00_environment", {"output_dir": str(run_dir), "threads": 1})
    time.sleep(1.1)
    second = nb_runner.run("00_environment", {"output_dir": str(run_dir), "threads": 1})
    assert first == run_dir / "00_environment.ipynb" and first.is_file()
    assert second.parent == run_dir and second != first and second.name.startswith("00_environment-")
    assert second.is_file() and (run_dir / "environment.json").is_file()


def _nbval(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
         str(SANITIZE), str(notebook), "-p", "no:cacheprovider", "-q"],
        cwd=notebook.parent, capture_output=True, text=True, timeout=600)


def test_nbval_fails_when_a_stored_output_changes(tmp_path):
    source = paths.NOTEBOOKS_DIR / "00_environment.ipynb"
    untouched = tmp_path / "untouched" / source.name
    changed = tmp_path / "changed" / source.name
    for target in (untouched, changed):
        target.parent.mkdir()
        shutil.copy(source, target)
    book = nbformat.read(changed, as_version=4)
    cell = next(c for c in book.cells if c.cell_type == "code" and "dataset_report" in c.source)
    table = cell.outputs[0]["data"]
    table["text/plain"] = table["text/plain"].replace("3781", "3780")  # clothing-dataset-small image count
    assert "3780" in table["text/plain"], "the stored output no longer shows the count this test edits"
    nbformat.write(book, changed)

    ok = _nbval(untouched)
    assert ok.returncode == 0, ok.stdout[-3000:]
    bad = _nbval(changed)
    assert bad.returncode != 0 and "mismatch" in bad.stdout.lower(), bad.stdout[-3000:]
