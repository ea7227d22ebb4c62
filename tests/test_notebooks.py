"""The notebook runner (clothingrec.notebooks): a parameter the notebook does not declare is refused."""
from __future__ import annotations

import json

import nbformat
import pytest

from clothingrec import notebooks as nb_runner


def _notebook(path, parameters_source: str | None):
    nb = nbformat.v4.new_notebook()
    if parameters_source is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters_source, metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("print(alpha)"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


PARAMETERS = (
    'alpha = 1          # the first; None = off (an "=" in a comment: papermill\'s own parser skips this line)\n'
    "beta: int = 2\n"
    "output_dir = None\n"
)


def test_declared_parameters_reads_the_parameters_cell(tmp_path):
    nb = _notebook(tmp_path / "99_tiny.ipynb", PARAMETERS)
    assert nb_runner.declared_parameters(nb) == ["alpha", "beta", "output_dir"]
    assert nb_runner.declared_parameters(_notebook(tmp_path / "none.ipynb", None)) == []


def test_an_undeclared_parameter_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(nb_runner, "RUNS_DIR", tmp_path / "runs")
    nb = _notebook(tmp_path / "99_tiny.ipynb", PARAMETERS)
    with pytest.raises(ValueError, match=r"99_tiny\.ipynb does not declare the parameter\(s\) model; "
                                         r"its parameters are: alpha, beta, output_dir"):
        nb_runner.run(str(nb), {"alpha": 3, "model": "x"})
    assert not (tmp_path / "runs").exists(), "no run folder may be created for a refused parameter"
    nb_runner.check_parameters(nb, {"alpha": 3, "beta": 4, "output_dir": "x"})  # declared ones pass


def test_a_notebook_without_parameters_cell_refuses_every_parameter(tmp_path):
    nb = _notebook(tmp_path / "98_plain.ipynb", None)
    with pytest.raises(ValueError, match=r"98_plain\.ipynb .* its parameters are: none"):
        nb_runner.check_parameters(nb, {"alpha": 1})


def test_the_command_line_fails_and_names_the_parameters(tmp_path, monkeypatch, capsys):
    """`make train-fasterrcnn MODEL=x` ends here: `-r model x` for a notebook without `model` exits 1."""
    monkeypatch.setattr(nb_runner, "RUNS_DIR", tmp_path / "runs")
    nb = _notebook(tmp_path / "99_tiny.ipynb", PARAMETERS)
    assert nb_runner.main(["run", str(nb), "-r", "model", "x", "-p", "alpha", "2"]) == 1
    err = capsys.readouterr().err
    assert "99_tiny.ipynb does not declare the parameter(s) model" in err and "alpha, beta, output_dir" in err


def test_every_make_variable_notebook_pair_in_use_is_declared():
    """The committed notebooks declare what their Make targets document (profile, output_dir everywhere)."""
    for path in sorted(nb_runner.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        declared = nb_runner.declared_parameters(path)
        assert {"profile", "output_dir"} <= set(declared), (path.name, declared)


def test_make_test_names_the_stale_notebook_and_the_refresh_command(tmp_path):
    """A notebook whose stored output no longer matches: nbval fails the cell, and the summary from
    tests/conftest.py names the notebook and `make notebooks-refresh NB=...` (not only "cell differs")."""
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    fresh = nbformat.v4.new_code_cell("print('fresh')")
    fresh.outputs = [nbformat.v4.new_output("stream", name="stdout", text="fresh\n")]
    stale = nbformat.v4.new_code_cell("print(1 + 1)")
    stale.outputs = [nbformat.v4.new_output("stream", name="stdout", text="3\n")]  # edited code, old output
    fresh.execution_count, stale.execution_count = 1, 2
    nb.cells = [fresh, stale]
    nbformat.write(nb, tmp_path / "97_stale.ipynb")
    broken = nbformat.v4.new_notebook(metadata=nb.metadata)
    broken.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nbformat.write(broken, tmp_path / "96_broken.ipynb")

    # tests/conftest.py as a plugin: the notebooks live outside tests/, as notebooks/ does under `make test`
    env = {**__import__("os").environ, "PYTHONPATH": str(tests_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "conftest",
         "-p", "no:cacheprovider", "-q", "97_stale.ipynb", "96_broken.ipynb"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "notebooks whose stored outputs no longer match" in out, out
    assert "STALE  97_stale.ipynb: Cell 1 differ" in out, out
    assert "FAILS  96_broken.ipynb: Cell 0 raised an error" in out, out
    assert "make notebooks-refresh NB='96_broken 97_stale'" in out, out


def _run_cli(tmp_path, nb_path, run_dir):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "clothingrec.notebooks", "run", str(nb_path), "-r", "output_dir", str(run_dir),
         "--no-index"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**__import__("os").environ, "TQDM_DISABLE": "1"},
    )


@pytest.mark.slow
def test_a_headless_run_talks_on_the_terminal_but_not_in_the_stored_outputs(tmp_path):
    """`make <notebook>`: cell n of m with elapsed time, the cells' own progress lines, and the paths of the
    executed notebook and its HTML at the end; the stored notebook holds only what the cells printed."""
    path = _notebook(tmp_path / "95_talk.ipynb", "alpha = 1\noutput_dir = None\n")
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = "for epoch in range(3):\n    print(f'epoch {epoch} loss {1 / (epoch + 1):.2f}')"
    nbformat.write(nb, path)
    proc = _run_cli(tmp_path, path, tmp_path / "run")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "[95_talk] cell 1 of 3 (0:00:0" in out and "[95_talk] cell 3 of 3" in out, out
    assert "[95_talk]   epoch 2 loss 0.33" in out, out  # the notebook's own progress line
    assert "[notebook] executed notebook: " in out and str(tmp_path / "run" / "95_talk.ipynb") in out
    assert "[notebook] rendered HTML:" in out and (tmp_path / "run" / "95_talk.html").is_file()
    stored = nbformat.read(tmp_path / "run" / "95_talk.ipynb", as_version=4)
    texts = "".join(o.get("text", "") for c in stored.cells for o in c.get("outputs", []))
    assert texts == "epoch 0 loss 1.00\nepoch 1 loss 0.50\nepoch 2 loss 0.33\n", texts  # no progress text
    record = json.loads((tmp_path / "run" / "95_talk.run.json").read_text())
    assert record["status"] == "ok" and record["machine"]["cores"] and record["duration_s"] >= 0


@pytest.mark.slow
def test_a_failing_run_names_the_cell_and_the_error_in_the_terminal_and_the_index(tmp_path):
    path = _notebook(tmp_path / "94_fail.ipynb", "output_dir = None\n")
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = "raise ValueError('boom')"
    nbformat.write(nb, path)
    runs = tmp_path / "runs"
    run_dir = runs / "94_fail" / "20261201-000000"
    proc = _run_cli(tmp_path, path, run_dir)
    assert proc.returncode == 1
    assert "94_fail.ipynb FAILED after 0:00:0" in proc.stderr and "in cell 3 (In [3]): ValueError: boom" \
        in proc.stderr, proc.stderr
    assert "[notebook] executed notebook: " in proc.stdout and (run_dir / "94_fail.html").is_file()
    assert json.loads((run_dir / "94_fail.run.json").read_text())["error"] == "ValueError: boom"
    page = nb_runner.render_index(runs).read_text()
    assert "FAILED: 94_fail: cell 3 (In [3]): ValueError: boom" in page


def test_progress_lines_and_heartbeat_while_a_cell_is_silent():
    import io
    import logging
    import time

    stream = io.StringIO()
    handler = nb_runner._Progress("03_train_yolo", 12, stream=stream, heartbeat_s=0.2)
    log = logging.LogRecord("papermill", logging.INFO, __file__, 0, "", None, None)
    try:
        for message in ("Executing Cell 4---------", "epoch 1/3 loss 2.1\r\repoch 1/3 loss 1.9\n", "Ending Cell 4--"):
            log.msg = message
            handler.emit(log)
        time.sleep(1.0)  # silent for five heartbeat periods
    finally:
        handler.close()
    out = stream.getvalue()
    assert "[03_train_yolo] cell 4 of 12 (0:00:00 elapsed)" in out
    assert "[03_train_yolo]   epoch 1/3 loss 1.9\n" in out and "loss 2.1" not in out  # last state of a \r line
    assert "[03_train_yolo] … still in cell 4 of 12 (0:00:0" in out, out
    assert "Ending Cell" not in out


def test_the_index_headlines_a_runs_test_score_before_its_validation_score_and_names_each_split(tmp_path):
    run = tmp_path / "runs" / "results" / "detector-tiny-heldout"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"metrics": {"split": "val", "bbox_AP": 0.226, "bbox_AP50": 0.475}}))
    (run / "test_metrics.json").write_text(json.dumps({"split": "test", "bbox_AP": 0.204, "bbox_AP50": 0.431}))
    card = nb_runner.describe_run(run, tmp_path / "runs", title=run.name, kind="curated result")
    assert card["metrics"] == [("test bbox AP", "0.204"), ("test bbox AP50", "0.431"),
                               ("val bbox AP", "0.226"), ("val bbox AP50", "0.475")]
    # a record naming no split is shown only when nothing else is; one per split, the first file wins
    (run / "metrics.json").write_text(json.dumps({"split": "val", "bbox_AP50": 0.9}))
    (run / "train_summary.json").write_text(json.dumps({"accuracy": 0.5}))
    card = nb_runner.describe_run(run, tmp_path / "runs", title=run.name, kind="curated result")
    assert [v for _, v in card["metrics"]] == ["0.204", "0.431", "0.900"]
    evaluation = tmp_path / "runs" / "results" / "evaluation-tiny"
    evaluation.mkdir()
    (evaluation / "results.json").write_text(json.dumps([{"name": "yolo", "split": "test", "bbox_AP50": 0.49}]))
    card = nb_runner.describe_run(evaluation, tmp_path / "runs", title="e", kind="curated result")
    assert card["metrics"] == [("yolo · test bbox AP50", "0.490")]
    pipeline = tmp_path / "runs" / "results" / "pipeline-tiny"
    pipeline.mkdir()
    modes = [{"mode": "direct", "bbox_AP50": 0.49}]
    (pipeline / "metrics.json").write_text(json.dumps({"part": "test", "modes": modes}))
    card = nb_runner.describe_run(pipeline, tmp_path / "runs", title="p", kind="curated result")
    assert card["metrics"] == [("direct · test bbox AP50", "0.490")]
