"""Several devices on the engines that exist, proven on CPU with 2 processes (gloo):

- the classifier through Lightning (``strategy=ddp``, ``devices=2``, accelerator cpu), launched the way a
  user launches it (``python -m clothingrec.classify.training``; Lightning starts the second process);
- a torchvision detector through ``torchrun --nproc_per_node 2 -m clothingrec.detect``;
- YOLO's ``device=0,1``, handed to ultralytics as its docs expect (checked with a mock: no GPUs here).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clothingrec.paths import PROJECT_ROOT

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")}
    env.update({"TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "CLOTHINGREC_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_classifier_lightning_ddp_two_cpu_processes(tmp_path):
    from test_classify import make_dataset

    from clothingrec.classify import report

    root = make_dataset(tmp_path / "data", per_class=4, splits=("train", "validation"))
    config = tmp_path / "ddp.yaml"
    config.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in dict(
        name="ddp", dataset=str(root), imgsz=32, crop_frac=1.0, epochs=1, batch=10, lr=0.01, warmup_epochs=0,
        sampler="shuffle", aug_scale_min=1.0, aug_rotation=0, precise_bn_batches=0, threads=1, store_workers=1,
        cache_store=False, device="cpu", lr_find=False, devices=2, strategy="ddp").items()) + "\n")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "clothingrec.classify.training", "--config", str(config),
                           "--output-dir", str(out)], cwd=PROJECT_ROOT, env=_env(MASTER_PORT=str(_free_port())),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from clothingrec.runs import RunRecord

    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["epochs_run"] == 1
    # 40 training images, batch 10 per process, 2 processes: 2 optimiser steps (one per half of the data)
    assert summary["global_step"] == 2
    # checkpoints written once (rank 0): one best, one last, one exported weights file, one run.json
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best-000.ckpt", "last.ckpt"]
    assert len(list(out.glob("*.pt"))) == 1
    record = RunRecord.load(out)
    # metrics gathered across both processes: the logged val_macro_f1 is the one on all 40 validation images
    ev = report.evaluate(record.weights_path(out), "validation", dataset=root, device="cpu", cache_store=False)
    assert len(ev.y_true) == 40
    assert ev.metrics()["macro_f1"] == pytest.approx(record.metrics["val_macro_f1"], abs=1e-4)


@pytest.mark.slow
def test_torchvision_detector_under_torchrun_two_cpu_processes(tmp_path):
    from clothingrec.runs import RunRecord

    config = tmp_path / "ddp.yaml"
    config.write_text("family: fasterrcnn\nmodel: mobilenet_v3_large_fpn\nimgsz: 64\nmax_images: 8\nepochs: 1\n"
                      "batch: 2\ndevice: cpu\nthreads: 1\nmax_eval_images: 4\nlog_every: 1\n")
    out = tmp_path / "run"
    proc = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(_free_port()),
                           "-m", "clothingrec.detect", "--config", str(config), "--out", str(out)],
                          cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = RunRecord.load(out)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    # the recorded final evaluation covers every validation image: a single process re-scoring the saved
    # detector on the same split gets the same 12 COCO numbers
    from clothingrec.detect import evaluate_run

    rescored = evaluate_run(out, device="cpu").metrics
    assert rescored["coco_stats"]["bbox"] == pytest.approx(record.metrics["coco_stats"]["bbox"], abs=1e-6)
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    n_train = record.split["train"]["images"]
    # each process took its share of every batch: ceil(n_train / (batch * 2)) steps per epoch, not n_train / batch
    assert state["global_step"] == -(-n_train // 4)
    assert state["epoch_rows"][0]["epoch"] == 1 and "bbox_AP50" in state["epoch_rows"][0]
    assert proc.stdout.count("[train] epoch 1/1") == 1  # rank 0 alone logs and evaluates


def test_yolo_several_gpus_are_passed_to_ultralytics(tmp_path, monkeypatch):
    """``DEVICE=0,1``: ultralytics takes ``device="0,1"`` and runs its own DDP (its docs: ``device=0,1``)."""
    import ultralytics

    from clothingrec.detect.yolo import train_yolo, yolo_device

    calls = []

    class FakeYOLO:
        def __init__(self, source, task=None):
            calls.append(("init", source, task))

        def train(self, **kwargs):
            calls.append(("train", kwargs))

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    for device, expected in (("0,1", "0,1"), ("cuda:1", "1"), ("cuda", "0"), ("cpu", "cpu"), ("0,1,2,3", "0,1,2,3")):
        calls.clear()
        train_yolo(tmp_path / "data.yaml", tmp_path / "out", model="yolov8n", epochs=1, imgsz=64, batch=16,
                   device=device)
        (_, source, task), (_, kwargs) = calls
        assert (source, task) == ("yolov8n.yaml", "detect")
        assert kwargs["device"] == expected and kwargs["batch"] == 16  # ultralytics splits batch over the GPUs
        assert yolo_device(device) == expected
    # the recipe hands the config's device through unchanged (DEVICE=0,1 → device: "0,1")
    from clothingrec.detect import load_config

    assert load_config("smoke", family="yolo", device="0,1").device == "0,1"
