"""The notebook runner (clothingrec.notebooks): a parameter the notebook does not declare is refused."""
from __future__ import annotations

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
