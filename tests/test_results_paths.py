"""Curated results under runs/results/ name files relative to the repository, never by a machine's absolute path.

Run records, PROVENANCE files, tables and the executed notebooks are read on other machines; a path like
``/work/main/runs/...`` names the checkout of the machine that made them.  Text files are checked whole;
in JSON files and notebooks every string is checked except embedded images (base64 could spell anything).
Binary files (weights, images) are not checked.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clothingrec.paths import PROJECT_ROOT, RESULTS_DIR

#: the home, temporary and checkout folders of Linux, macOS and Windows machines (a drive letter only at the
#: start of a line or after a space, quote or parenthesis: COCO RLE mask strings hold ``=f:\\B``)
ABSOLUTE = re.compile(r"/work/|/root/|/home/|/tmp/|/Users/|(?:^|(?<=[\s\"'(]))[A-Za-z]:\\[A-Za-z]", re.M)


def _text_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            head = path.read_bytes()
            try:
                if b"\0" not in head:
                    head.decode("utf-8")
                    files.append(path)
            except UnicodeDecodeError:
                pass
    return files


def _strings(obj, key: str = ""):
    """Every string of a JSON document, except the values of ``image/*`` keys (notebook figures)."""
    if isinstance(obj, str):
        if not key.startswith("image/"):
            yield obj
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value, key)
    elif isinstance(obj, dict):
        for k, value in obj.items():
            yield from _strings(value, k)


def absolute_paths(path: Path) -> list[str]:
    """The absolute machine paths in one text file, each with a little context."""
    text = path.read_text(encoding="utf-8")
    chunks = list(_strings(json.loads(text))) if path.suffix in (".json", ".ipynb") else [text]
    found = []
    for chunk in chunks:
        for m in ABSOLUTE.finditer(chunk):
            found.append(chunk[max(0, m.start() - 30): m.end() + 50].replace("\n", " "))
    return found


def test_the_checker_finds_machine_paths(tmp_path):
    (tmp_path / "PROVENANCE.md").write_text("    cd /work/main && make train-yolo\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"weights": "/home/me/x/best.pt", "ok": "runs/x"}))
    nb = {"cells": [{"outputs": [{"data": {"image/png": "iVBOR/tmp/x/Users/y", "text/plain": "C:\\Users\\me\\a"}}]}]}
    (tmp_path / "run.ipynb").write_text(json.dumps(nb))
    (tmp_path / "clean.csv").write_text("name,path\nyolo,runs/results/detector-yolo-ccp/weights/best.pt\n")
    (tmp_path / "best.pt").write_bytes(b"\x80\x02/work/main/runs\0")
    hits = {p.name: absolute_paths(p) for p in _text_files(tmp_path)}
    assert [len(hits[n]) for n in ("PROVENANCE.md", "metrics.json", "run.ipynb", "clean.csv")] == [1, 1, 1, 0]
    assert "best.pt" not in hits


def test_curated_results_carry_repository_relative_paths():
    if not RESULTS_DIR.is_dir():
        pytest.skip(f"{RESULTS_DIR} is absent")
    files = _text_files(RESULTS_DIR)
    assert files, f"no text files under {RESULTS_DIR}"
    offenders = {str(p.relative_to(PROJECT_ROOT)): hits for p in files if (hits := absolute_paths(p))}
    assert not offenders, (
        "absolute machine paths under runs/results/ (write them relative to the repository root, e.g. "
        "runs/03_train_yolo/<stamp> or `make ...` instead of `cd /work/... && make ...`):\n"
        + "\n".join(f"{name}: {hits[:3]}" for name, hits in offenders.items()))


def test_stored_notebook_outputs_carry_no_machine_paths():
    """The notebooks' stored outputs (what a reader sees on the repository page, what nbval compares) show
    paths from the repository root, as the curated results do."""
    notebooks = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks"
    offenders = {p.name: hits for p in notebooks if (hits := absolute_paths(p))}
    assert not offenders, ("absolute machine paths in stored notebook outputs (print them with "
                           "clothingrec.paths.project_relative):\n"
                           + "\n".join(f"{name}: {hits[:3]}" for name, hits in offenders.items()))
