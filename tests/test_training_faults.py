"""Training under faults: a process killed mid-epoch or while writing a checkpoint resumes to the result of
an uninterrupted run; a run folder that cannot hold a run fails before training; the detector keeps its
better epoch as best.pt.  The kills are real (SIGKILL of a child process) at a chosen point."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from clothingrec.paths import PROJECT_ROOT
from clothingrec.runs import RunFolderError, prepare_run_folder

TESTS = PROJECT_ROOT / "tests"


def _run_until_killed(code: str, tmp_path) -> None:
    """Run ``code`` in a fresh interpreter and require that it died of SIGKILL (the fault it injects)."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -9, f"the child was to be killed, it exited {proc.returncode}:\n{proc.stderr[-3000:]}"


# ---- detector (torchvision loop) ----------------------------------------------------------------

_DETECTOR_CHILD = """
import os, signal, torch
from test_detect import tiny_config, write_fixture
from clothingrec.detect import engine
from pathlib import Path

root = Path({root!r})
path, img_dir = write_fixture(root, n=4)
real_save = torch.save

def save(obj, f, *a, **kw):
    step = obj.get("global_step") if isinstance(obj, dict) else None
    if {during!r} and step == 3 and str(f).endswith("last.tmp"):
        Path(f).write_bytes(b"half a checkpoint")  # the write is cut short
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, f, *a, **kw)
    if not {during!r} and step == 3 and str(f).endswith("last.tmp"):
        os.replace(f, str(f)[:-4] + ".pt")
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-epoch, right after a step's checkpoint

engine.torch.save = save
engine.train(path, img_dir, path, img_dir, root / "run",
             tiny_config(family={family!r}, epochs=2, checkpoint_every_steps=1), log=None)
"""


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fasterrcnn", "maskrcnn"])
@pytest.mark.parametrize("during_write", [False, True], ids=["mid-epoch", "while-writing-checkpoint"])
def test_detector_killed_resumes_to_the_uninterrupted_result(tmp_path, during_write, family):
    from test_detect import tiny_config, write_fixture

    from clothingrec.detect.engine import train

    path, img_dir = write_fixture(tmp_path, n=4)  # 2 steps per epoch; step 3 is inside epoch 2
    cfg = tiny_config(family=family, epochs=2, checkpoint_every_steps=1)
    ref = train(path, img_dir, path, img_dir, tmp_path / "ref", cfg, log=None)

    _run_until_killed(_DETECTOR_CHILD.format(root=str(tmp_path), during=during_write, family=family), tmp_path)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=False)  # complete, whatever the kill interrupted
    # killed while writing step 3: the checkpoint of step 2 (end of epoch 1) is intact
    assert state["global_step"] == (2 if during_write else 3)
    assert (tmp_path / "run" / "checkpoints" / "last.tmp").is_file() == during_write

    resumed = train(path, img_dir, path, img_dir, tmp_path / "run", cfg, resume=True, log=None)
    assert not resumed.interrupted and resumed.global_step == ref.global_step == 4
    assert list(resumed.steps["step"]) == [1, 2, 3, 4]
    assert np.allclose(resumed.steps["loss"], ref.steps["loss"], rtol=1e-4, atol=1e-5)
    a = torch.load(ref.last_checkpoint, weights_only=False)["model"]
    b = torch.load(resumed.last_checkpoint, weights_only=False)["model"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key


@pytest.mark.slow
@pytest.mark.parametrize("ap50s, best_epoch", [([0.5, 0.3], 1), ([0.3, 0.5], 2)])
def test_detector_best_checkpoint_is_its_best_validated_epoch(tmp_path, monkeypatch, ap50s, best_epoch):
    from types import SimpleNamespace

    from test_detect import tiny_config, write_fixture

    from clothingrec.detect import engine

    scripted = iter(ap50s)

    def evaluate(model, dataset, device, **kw):
        ap50 = next(scripted)
        return {"bbox": SimpleNamespace(stats={"AP": ap50 / 2, "AP50": ap50})}

    monkeypatch.setattr(engine, "evaluate", evaluate)
    path, img_dir = write_fixture(tmp_path, n=4)
    res = engine.train(path, img_dir, path, img_dir, tmp_path / "run", tiny_config(epochs=2, eval_every=1), log=None)
    best = torch.load(res.best_checkpoint, weights_only=False)
    assert (best["epoch"], best["bbox_AP50"]) == (best_epoch, max(ap50s))
    assert list(res.history["bbox_AP50"]) == ap50s
    last = torch.load(res.last_checkpoint, weights_only=False)
    same = all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])
    assert same == (best_epoch == 2)  # the best of epoch 1 holds epoch 1's weights, not the last ones


# ---- classifier (Lightning) ---------------------------------------------------------------------

_CLASSIFIER_CHILD = """
import os, signal, torch
from pathlib import Path
from test_classify import _smoke
from clothingrec.classify.training import train

real_save = torch.save

def save(obj, f, *a, **kw):
    if isinstance(obj, dict) and obj.get("epoch") == 1 and Path(f).name.startswith(".last.ckpt"):
        Path(f).write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)  # killed while writing the second epoch's last.ckpt
    real_save(obj, f, *a, **kw)

torch.save = save
train(_smoke(Path({root!r}), **{changes!r}), Path({root!r}) / "run")
"""


@pytest.mark.slow
def test_classifier_killed_while_writing_a_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    from test_classify import _ckpt_state, _smoke

    from clothingrec.classify.training import train

    changes = dict(epochs=3, batch=8, warmup_epochs=0.5, averaging="ema", schedule_time=False)
    full = train(_smoke(tmp_path, **changes), tmp_path / "full")
    _run_until_killed(_CLASSIFIER_CHILD.format(root=str(tmp_path), changes=changes), tmp_path)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 0  # the first epoch's checkpoint survived the torn write of the second

    resumed = train(_smoke(tmp_path, **changes, resume="true"), tmp_path / "run")
    assert resumed.resumed_from and resumed.epochs_run == full.epochs_run == 3
    assert _ckpt_state(tmp_path / "run" / "checkpoints" / "last.ckpt") == pytest.approx(
        _ckpt_state(tmp_path / "full" / "checkpoints" / "last.ckpt"))
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key
    assert list(resumed.history()["epoch"]) == [0, 1, 2]


# ---- run folders --------------------------------------------------------------------------------

def test_a_run_folder_that_cannot_be_written_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunFolderError, match="a-file/run is not writable"):
        prepare_run_folder(blocker / "run")
    assert prepare_run_folder(tmp_path / "ok" / "run").is_dir()
    assert not list((tmp_path / "ok" / "run").iterdir())  # the probe is gone


def test_a_nearly_full_disk_fails_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(RunFolderError, match=r"only 1 MB free"):
        prepare_run_folder(tmp_path / "run")


@pytest.mark.parametrize("task", ["detect", "classify", "notebook"])
def test_every_entry_point_refuses_an_unwritable_run_folder_before_reading_data(tmp_path, task):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RunFolderError, match="a-file/run is not writable"):
        if task == "detect":
            from clothingrec.detect import fit, load_config

            fit(load_config("smoke"), blocker / "run", log=None)
        elif task == "classify":
            from test_classify import _smoke

            from clothingrec.classify.training import train

            train(_smoke(tmp_path), blocker / "run")
        else:
            from clothingrec import notebooks

            notebooks.run("03_train_yolo", {"output_dir": str(blocker / "run")}, progress=False)


# ---- YOLO (ultralytics' own resume) ----------------------------------------------------------------

_YOLO_CHILD = """
import os, signal
from pathlib import Path
from ultralytics import YOLO
from test_detect_yolo import write_yolo_fixture
from clothingrec.detect.yolo import train_yolo

original = YOLO.train

def train(self, **kw):
    def killer(trainer):
        if trainer.epoch == 1:  # right after the second epoch's last.pt is written
            os.kill(os.getpid(), signal.SIGKILL)
    self.add_callback("on_model_save", killer)
    return original(self, **kw)

YOLO.train = train
root = Path({root!r})
train_yolo(root / "data" / "data.yaml", root / "run", **{kwargs!r})
"""


@pytest.mark.slow
def test_yolo_killed_after_an_epoch_resumes_where_it_stopped(tmp_path, monkeypatch):
    """SIGKILL after epoch 2 of 3: resume=True runs epoch 3 only, on the schedule of an uninterrupted run,
    and keeps the first sitting's rows (the same numbers as the uninterrupted run's first two epochs)."""
    import pandas as pd
    from test_detect_yolo import write_yolo_fixture

    from clothingrec.detect.yolo import train_yolo

    data_yaml, _, _ = write_yolo_fixture(tmp_path / "data")
    kwargs = dict(epochs=3, imgsz=64, batch=4, workers=0, device="cpu", name="yolo", close_mosaic=0)
    ref = train_yolo(data_yaml, tmp_path / "ref", **kwargs)
    _run_until_killed(_YOLO_CHILD.format(root=str(tmp_path), kwargs=kwargs), tmp_path)
    killed = pd.read_csv(tmp_path / "run" / "yolo" / "results.csv")
    assert killed["epoch"].tolist() == [1, 2]
    from ultralytics import YOLO

    original, epochs_run = YOLO.train, []

    def counting_train(self, **kw):
        self.add_callback("on_train_epoch_end", lambda trainer: epochs_run.append(trainer.epoch))
        return original(self, **kw)

    monkeypatch.setattr(YOLO, "train", counting_train)
    resumed = train_yolo(data_yaml, tmp_path / "run", resume=True, **kwargs)
    assert epochs_run == [2]  # only the third epoch was trained in the second sitting
    a, b = ref.results, resumed.results
    assert b["epoch"].tolist() == a["epoch"].tolist() == [1, 2, 3]
    losses = [c for c in a.columns if c.startswith("train/")]
    pd.testing.assert_frame_equal(b.loc[:1, losses], a.loc[:1, losses])   # the first sitting's epochs, as run
    lr = [c for c in a.columns if c.startswith("lr/")]
    assert np.allclose(b[lr].to_numpy(), a[lr].to_numpy())              # epoch 3 on the same schedule
    assert np.isfinite(b.loc[2, losses].to_numpy(dtype=float)).all()
    assert resumed.best is not None and resumed.best.is_file()
