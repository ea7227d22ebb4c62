"""clothingrec.paths: importing the package has no side effects; the offline environment is one explicit call."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import clothingrec
from clothingrec import paths

LIB = Path(clothingrec.__file__).resolve().parents[1]
VARS = ("TORCH_HOME", "MPLCONFIGDIR", "YOLO_CONFIG_DIR", "HF_HOME", "YOLO_OFFLINE", "YOLO_AUTOINSTALL",
        "HF_HUB_OFFLINE")


def _python(code: str, root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    env.update(CLOTHINGREC_ROOT=str(root), PYTHONPATH=os.pathsep.join([str(LIB), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_package_changes_nothing(tmp_path):
    seen = _python(
        "import json, os\n"
        "import clothingrec, clothingrec.paths, clothingrec.notebooks\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {VARS!r}}}))\n", tmp_path)
    assert seen == dict.fromkeys(VARS), seen
    assert not (tmp_path / ".cache").exists(), "importing created cache folders"


def test_configure_environment_sets_caches_offline_and_the_font(tmp_path):
    seen = _python(
        "import json, os\n"
        "from clothingrec.paths import configure_environment\n"
        "configure_environment()\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {VARS!r}}}))\n", tmp_path)
    assert seen["YOLO_OFFLINE"] == "1" and seen["HF_HUB_OFFLINE"] == "1" and seen["YOLO_AUTOINSTALL"] == "0"
    for var in ("TORCH_HOME", "MPLCONFIGDIR", "YOLO_CONFIG_DIR", "HF_HOME"):
        assert Path(seen[var]).is_relative_to(tmp_path / ".cache") and Path(seen[var]).is_dir(), var
    assert (Path(seen["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf").is_file()


def test_the_kernel_spec_carries_the_offline_environment():
    """`make setup` writes offline_environment() into the clothingrec kernel's kernel.json."""
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "clothingrec" / "kernel.json"
    if not spec.is_file():
        pytest.skip(f"no clothingrec kernel at {spec} (run `make setup`)")
    env = json.loads(spec.read_text()).get("env", {})
    missing = sorted(set(paths.offline_environment()) - set(env))
    assert not missing, f"{spec} lacks {missing}: the kernel was registered without `make setup`'s env step"
    assert env["YOLO_OFFLINE"] == "1" and env["HF_HUB_OFFLINE"] == "1"


def test_project_relative_paths_round_trip():
    inside = paths.RUNS_DIR / "03_train_yolo" / "x" / "best.pt"
    assert paths.project_relative(inside) == "runs/03_train_yolo/x/best.pt"
    assert paths.from_project("runs/03_train_yolo/x/best.pt") == inside
    assert paths.project_relative(paths.DATA_DIR / "clothing-co-parsing") == "data/clothing-co-parsing"
    assert paths.project_relative("/elsewhere/file.json") == "/elsewhere/file.json"
    assert paths.from_project("/elsewhere/file.json") == Path("/elsewhere/file.json")



def _hold_and_log(folder, log, hold_s):
    import time

    with paths.building(folder):
        with open(log, "a") as f:
            f.write(f"in {os.getpid()}\n")
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(f"out {os.getpid()}\n")


def test_building_lets_one_process_in_at_a_time(tmp_path):
    from processes import at_once

    log = tmp_path / "log.txt"
    at_once(_hold_and_log, [(tmp_path / "cache" / "x", log, 0.3)] * 3)
    lines = log.read_text().split()
    events = list(zip(lines[0::2], lines[1::2]))
    assert [e for e, _ in events] == ["in", "out"] * 3  # never two inside at once
    assert all(events[i][1] == events[i + 1][1] for i in range(0, 6, 2))


def _point_many(run_dir, times):
    for _ in range(times):
        paths.point_latest(run_dir)


def test_point_latest_from_two_processes_at_once_leaves_a_valid_link(tmp_path):
    from processes import at_once

    dirs = [tmp_path / f"run{i}" for i in range(2)]
    for d in dirs:
        d.mkdir()
    at_once(_point_many, [(d, 200) for d in dirs], timeout=60)
    link = tmp_path / "latest"
    assert link.is_symlink() and os.readlink(link) in {"run0", "run1"} and link.resolve().is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run0", "run1"]  # no temporary link left
