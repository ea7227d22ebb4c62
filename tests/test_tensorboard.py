"""Every training writes TensorBoard logs: the torchvision loop (tb/ in the run folder: per-step loss/lr,
per-epoch AP), YOLO (ultralytics' own callback, switched on), and `make tensorboard` reads runs/."""
from __future__ import annotations

import subprocess

import pytest

from clothingrec.paths import PROJECT_ROOT


def _scalars(log_dir) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_the_torchvision_loop_writes_tensorboard_scalars(tmp_path):
    from test_detect import tiny_config, write_fixture

    from clothingrec.detect.engine import train

    path, img_dir = write_fixture(tmp_path, n=4)
    cfg = tiny_config(epochs=2, eval_every=1, max_eval_images=2)
    train(path, img_dir, path, img_dir, tmp_path / "run", cfg, log=None)
    scalars = _scalars(tmp_path / "run" / "tb")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4], scalars.keys()
    assert "train/lr" in scalars and any(k.startswith("train/loss_") for k in scalars)
    assert [s for s, _ in scalars["epoch/bbox_AP50"]] == [1, 2] and "epoch/bbox_AP" in scalars


def test_yolo_trainings_have_ultralytics_tensorboard_callback_on(monkeypatch):
    from ultralytics.utils import SETTINGS

    from clothingrec.detect import yolo

    saved = SETTINGS.get("tensorboard")
    try:
        yolo._enable_tensorboard()
        assert SETTINGS["tensorboard"] is True
    finally:
        SETTINGS.update({"tensorboard": saved})


def test_make_tensorboard_points_at_runs():
    out = subprocess.run(["make", "-n", "-o", ".venv/.setup-stamp", "tensorboard"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "tensorboard --logdir runs --host 127.0.0.1 --port 6006" in out
