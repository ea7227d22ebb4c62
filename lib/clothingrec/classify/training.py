"""Training entry point: ``train(cfg, output_dir)`` (the notebook) or ``python -m clothingrec.classify.training``.

Fits on train, validates every epoch, keeps the checkpoint with the best validation
``cfg.monitor`` (never looks at test), and exports that checkpoint's weights as
``<output_dir>/<model>.pt``.  Logs go to ``<output_dir>/logs`` (CSV) and ``<output_dir>/tb``
(TensorBoard).

Resumable in chunks: ``checkpoints/last.ckpt`` is written (atomically) after every validation;
``cfg.resume`` (a run folder, a ``.ckpt`` or ``true`` for ``output_dir``'s own) continues from it with
the optimizer, LR schedule (per step over ``epochs``), EMA/SWA state and best-checkpoint bookkeeping.
``cfg.time_budget_h`` ends a sitting at an epoch boundary: after each epoch, training stops when the
next epoch (timed like the slowest one so far) would not finish inside the budget.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.optim.swa_utils import get_ema_multi_avg_fn

from clothingrec.classify.config import ClassifierConfig, load_config, monitor_mode
from clothingrec.classify.data import ClothingDataModule
from clothingrec.classify.inference import export_weights
from clothingrec.classify.models import count_parameters
from clothingrec.classify.module import ClassifierModule
from clothingrec.classify.simclr import module_class
from clothingrec.device import resolve_device, resolve_precision, set_threads
from clothingrec.paths import CLOTHING_SMALL
from clothingrec.runs import RunRecord, prepare_run_folder, relative


class ThroughputMeter(Callback):
    """Training images per second of each epoch (data + forward + backward + step; validation excluded)."""

    def __init__(self):
        self.images = 0
        self.seconds = 0.0
        self.per_epoch: list[float] = []
        self._start = None
        self._epoch_images = 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start, self._epoch_images, self._last = time.perf_counter(), 0, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._epoch_images += int(batch[1].numel())
        self._last = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module):
        self._close_epoch(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self._close_epoch(trainer, pl_module)

    def _close_epoch(self, trainer, pl_module):
        if not trainer.training or self._start is None or self._last is None or not self._epoch_images:
            return
        seconds = self._last - self._start
        self.images += self._epoch_images
        self.seconds += seconds
        rate = self._epoch_images / max(seconds, 1e-9)
        self.per_epoch.append(rate)
        pl_module.log("train_img_per_s", rate, on_step=False, on_epoch=True)
        self._start = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else float("nan")


class EpochTimeBudget(Callback):
    """Stop at an epoch boundary so that this sitting ends within ``hours``.

    Lightning's ``max_time`` stops mid-epoch (a checkpoint that resumes into a half epoch, no
    validation of the last weights).  Here, after each training epoch (its validation included:
    in Lightning 2 validation runs before ``on_train_epoch_end``), training stops when the elapsed
    time plus ``margin`` × the longest epoch so far would overrun the budget.
    """

    def __init__(self, hours: float, margin: float = 1.1):
        self.budget_s = float(hours) * 3600.0
        self.margin = margin
        self.stopped = False
        self.epoch_seconds: list[float] = []
        self._t0 = self._epoch_t0 = None

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.monotonic()

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_t0 = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module):
        if self._t0 is None or self._epoch_t0 is None:
            return
        now = time.monotonic()
        self.epoch_seconds.append(now - self._epoch_t0)
        if now - self._t0 + self.margin * max(self.epoch_seconds) > self.budget_s:
            if trainer.current_epoch + 1 < (trainer.max_epochs or 0):
                self.stopped = True
            trainer.should_stop = True

    def remaining_s(self) -> float | None:
        return None if self._t0 is None else self.budget_s - (time.monotonic() - self._t0)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, then ``os.replace``: a checkpoint file is
    always complete, even if the process is killed while writing (Lightning's own save goes through an
    fsspec transaction whose temporary file lives in $TMPDIR, atomic only on the same filesystem)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def earlier_fit_seconds(ckpt_path: Path | None) -> float:
    """Fit seconds of the sittings before one resumed from ``ckpt_path`` (``<run>/checkpoints/*.ckpt``): the
    ``total_fit_seconds`` (else ``fit_seconds``) of that run's ``train_summary.json``; 0 for a fresh start. A
    sitting killed before it wrote its summary is not counted."""
    if ckpt_path is None:
        return 0.0
    summary = Path(ckpt_path).parent.parent / "train_summary.json"
    if not summary.is_file():
        return 0.0
    data = json.loads(summary.read_text(encoding="utf-8"))
    value = data.get("total_fit_seconds")
    return float(value if value is not None else data.get("fit_seconds") or 0.0)


def resolve_resume(resume: Any, output_dir: str | Path) -> Path | None:
    """``cfg.resume`` → the checkpoint to continue from (None: start fresh).

    ``true``/``last``: ``output_dir``'s ``checkpoints/last.ckpt`` if it exists (a first sitting starts
    fresh); a run folder: its ``checkpoints/last.ckpt``; a file: that checkpoint.
    """
    if resume is None or resume is False or str(resume).strip().lower() in ("", "none", "false", "0", "no"):
        return None
    if resume is True or str(resume).strip().lower() in ("true", "1", "yes", "last"):
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        return last if last.is_file() else None
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {path}")
    return path.resolve()


def _continue_csv_log(logger: CSVLogger) -> None:
    """A resumed run appends to ``logs/metrics.csv``.  Lightning's CSV writer deletes an existing file when
    it is created and, on its first save, rewrites it with only the columns it has seen; so the old rows are
    put back after the writer exists and the writer starts from their header."""
    import csv

    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    text = path.read_text()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Experiment logs directory.*exists and is not empty.*")
        experiment = logger.experiment  # deletes metrics.csv
    path.write_text(text)
    header = next(csv.reader(text.splitlines()), [])
    experiment.metrics_keys = sorted(set(experiment.metrics_keys) | set(header))


class AveragedWeights(WeightAveraging):
    """SWA (equal average of epoch-end weights from ``start_epoch``) or EMA (every step).

    Until the first update the averaged model is the initial one: validation and checkpoints
    then use the current weights (Lightning's callback would validate the initial weights).
    """

    def __init__(self, mode: str, start_epoch: int = 0, decay: float = 0.998):
        kwargs = {"multi_avg_fn": get_ema_multi_avg_fn(decay)} if mode == "ema" else {}
        super().__init__(use_buffers=True, **kwargs)
        self.mode, self.start_epoch = mode, start_epoch

    def should_update(self, step_idx=None, epoch_idx=None) -> bool:
        return self.mode == "ema" and step_idx is not None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # SWA: average the weights at the last step of each epoch from start_epoch on, *before* that
        # epoch's validation, so the validated and the checkpointed weights are the same average
        if (self.mode == "swa" and trainer.current_epoch >= self.start_epoch
                and batch_idx + 1 >= trainer.num_training_batches):
            self._average_model.update_parameters(pl_module)

    def _active(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer, pl_module):
        if self._active():
            self._swap_models(pl_module)
            self._swapped = True
        else:
            self._swapped = False

    def on_validation_epoch_end(self, trainer, pl_module):
        if getattr(self, "_swapped", False):
            self._swap_models(pl_module)
            self._swapped = False

    def on_train_end(self, trainer, pl_module):
        if self._active():
            self._copy_average_to_current(pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if self._active():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)


def _accelerator(device: torch.device) -> str:
    return {"cuda": "gpu", "mps": "mps"}.get(device.type, "cpu")


@dataclass
class TrainResult:
    output_dir: Path
    config: ClassifierConfig
    best_checkpoint: str | None
    best_score: float | None
    best_epoch: int | None
    monitor: str
    weights_path: Path | None
    epochs_run: int
    stopped_reason: str
    train_images_per_s: float
    fit_seconds: float
    store_seconds: float
    params: int
    precision: str
    device: str
    lr_used: float
    lr_finder: Any = None
    batch_found: int | None = None
    resumed_from: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    started: str = ""
    ended: str = ""
    global_step: int = 0
    total_fit_seconds: float | None = None  # every sitting's fit time (a fresh run: this one's)

    def history(self) -> pd.DataFrame:
        return read_history(self.output_dir)

    def summary(self) -> dict[str, Any]:
        return {"name": self.config.name, "model": self.config.model, "best_checkpoint": relative(self.best_checkpoint),
                "best_epoch": self.best_epoch, "monitor": self.monitor, "best_score": self.best_score,
                "weights": relative(self.weights_path), "epochs_run": self.epochs_run,
                "stopped_reason": self.stopped_reason, "train_images_per_s": self.train_images_per_s,
                "fit_seconds": self.fit_seconds, "total_fit_seconds": self.total_fit_seconds,
                "store_seconds": self.store_seconds, "params": self.params,
                "precision": self.precision, "device": self.device, "lr_used": self.lr_used,
                "batch_found": self.batch_found, "resumed_from": self.resumed_from, "global_step": self.global_step,
                "started": self.started, "ended": self.ended, "counts": self.counts,
                "skipped": [list(s) for s in self.skipped],
                "config": self.config.to_dict()}


def read_history(output_dir: str | Path) -> pd.DataFrame:
    """Per-epoch metrics from the CSV logger (one row per epoch)."""
    csv = Path(output_dir) / "logs" / "metrics.csv"
    if not csv.is_file():
        return pd.DataFrame()
    df = pd.read_csv(csv)
    if "epoch" not in df:
        return df
    df["epoch"] = df["epoch"].bfill()  # epoch-start rows (learning rate) carry no epoch yet
    df = df.drop(columns=[c for c in ("step",) if c in df]).groupby("epoch").first().reset_index()
    return df


def weights_filename(cfg: ClassifierConfig) -> str:
    return f"{cfg.model.replace('/', '_').replace(':', '_')}.pt"


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True):
    """Lightning's info lines (GPU available…, tips) and the LR finder's tqdm bar off while training."""
    if not enabled:
        yield
        return
    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    old_tqdm = os.environ.get("TQDM_DISABLE")
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        os.environ["TQDM_DISABLE"] = "1"
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
        if old_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old_tqdm


def _git(*args: str) -> str:
    from clothingrec.paths import PROJECT_ROOT

    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() if out.returncode == 0 else f"unavailable ({out.stderr.strip()[:120]})"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"


def provenance(result: TrainResult | None = None, command: str | None = None) -> dict[str, Any]:
    """Where a result comes from: git commit and status, hardware, threads, times, selection rule."""
    from clothingrec.device import cpu_count
    from clothingrec.envinfo import cpu_model

    status = _git("status", "--short")
    info: dict[str, Any] = {
        "command": command, "git_commit": _git("rev-parse", "HEAD"),
        "git_status_lines": 0 if not status or status.startswith("unavailable") else len(status.splitlines()),
        "cpu": cpu_model(), "cores": cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "lightning": L.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if result is not None:
        info.update({"started": result.started, "ended": result.ended,
                     "selected_on": f"validation {result.monitor} (best epoch {result.best_epoch})",
                     "best_val_score": result.best_score, "epochs_run": result.epochs_run,
                     "stopped": result.stopped_reason, "train_images_per_s": round(result.train_images_per_s, 2),
                     "fit_seconds": round(result.fit_seconds, 1), "precision": result.precision,
                     "device": result.device, "config": result.config.to_dict()})
    return info


def build_callbacks(cfg: ClassifierConfig, output_dir: Path) -> dict[str, Callback]:
    mode = monitor_mode(cfg.monitor)
    callbacks: dict[str, Callback] = {
        "checkpoint": ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best-{epoch:03d}",
                                      monitor=cfg.monitor, mode=mode, save_top_k=1, save_last=False,
                                      auto_insert_metric_name=False),
        # checkpoints/last.ckpt after every validation, to resume from.  Its own callback: Lightning 2.6's
        # save_last only writes when the monitored checkpoint improved in that step.  Listed after the best
        # checkpoint so the best-checkpoint bookkeeping it stores is the current one.
        "last_checkpoint": ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", monitor=None,
                                           save_top_k=1, save_last=False, enable_version_counter=False),
        "throughput": ThroughputMeter(),
        "lr_monitor": LearningRateMonitor(logging_interval="epoch"),
    }
    if cfg.patience and cfg.patience > 0:
        callbacks["early_stopping"] = EarlyStopping(monitor=cfg.monitor, mode=mode, patience=cfg.patience)
    if cfg.time_budget_h:
        callbacks["time_budget"] = EpochTimeBudget(cfg.time_budget_h)
    if cfg.averaging != "none":
        start = int(cfg.swa_start * cfg.epochs) if cfg.averaging == "swa" else 0
        callbacks["averaging"] = AveragedWeights(cfg.averaging, start_epoch=min(start, cfg.epochs - 1),
                                                 decay=cfg.ema_decay)
    return callbacks


def find_batch_size(cfg: ClassifierConfig, module: ClassifierModule, dm: ClothingDataModule,
                    trainer_kwargs: dict, output_dir: Path) -> int | None:
    """Lightning's batch-size finder (``mode="power"``): the largest batch, doubling from ``cfg.batch``
    for ``cfg.batch_find_trials`` trials, that runs a few training steps without running out of memory.
    Reported only: the model and the datamodule are left as they were (``cfg.batch`` is used)."""
    from lightning.pytorch.tuner import Tuner

    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    tune_trainer = L.Trainer(**{**trainer_kwargs, "logger": False, "callbacks": [],
                                "default_root_dir": output_dir / "batch_find"})
    try:
        found = Tuner(tune_trainer).scale_batch_size(module, datamodule=dm, mode="power", steps_per_trial=2,
                                                     init_val=cfg.batch, max_trials=cfg.batch_find_trials,
                                                     batch_arg_name="batch_size")
    finally:
        dm.batch_size = cfg.batch
        module.load_state_dict(state)
    return int(found) if found else None


def train(cfg: ClassifierConfig, output_dir: str | Path, enable_progress_bar: bool = False,
          extra_callbacks: list[Callback] | None = None, module: ClassifierModule | None = None) -> TrainResult:
    """Fit ``cfg`` into ``output_dir``; return where the best checkpoint and exported weights are."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    output_dir = prepare_run_folder(output_dir)
    cfg.validate()
    cfg.to_yaml(output_dir / "config.yaml")
    set_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)

    dm = ClothingDataModule(cfg)
    t0 = time.perf_counter()
    dm.setup("fit")
    store_seconds = time.perf_counter() - t0
    counts = {s: len(dm.store(s)) for s in ("train", "validation")}
    if counts["train"] == 0 or counts["validation"] == 0:
        raise RuntimeError(f"no usable images (counts {counts}); skipped: {dm.skipped()[:5]}")
    module = module or module_class(cfg.objective)(cfg, dm.classes)
    ckpt_path = resolve_resume(cfg.resume, output_dir)
    earlier_seconds = earlier_fit_seconds(ckpt_path)  # read before this sitting's summary replaces it

    callbacks = build_callbacks(cfg, output_dir)
    loggers = [CSVLogger(output_dir, name="logs", version=""), TensorBoardLogger(output_dir, name="tb", version="")]
    if ckpt_path is not None:
        _continue_csv_log(loggers[0])
    steps_per_epoch = max(1, counts["train"] // cfg.batch)
    trainer_kwargs = dict(
        accelerator=_accelerator(device), devices=cfg.devices, strategy=cfg.strategy, precision=precision,
        max_epochs=cfg.epochs, gradient_clip_val=cfg.grad_clip or None, logger=loggers,
        callbacks=list(callbacks.values()) + list(extra_callbacks or []),
        enable_progress_bar=enable_progress_bar, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, steps_per_epoch)), default_root_dir=output_dir,
        plugins=[AtomicCheckpointIO()],
        deterministic=False, benchmark=device.type == "cuda",
    )
    with warnings.catch_warnings(), quiet_lightning(not enable_progress_bar):
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*Experiment logs directory.*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*The number of training batches.*")
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*weights_only.*")
        lr_finder = batch_found = None
        if cfg.batch_find and ckpt_path is None:
            batch_found = find_batch_size(cfg, module, dm, trainer_kwargs, output_dir)
        if cfg.lr_find and ckpt_path is None:  # a resumed run keeps the LR of its first sitting
            from lightning.pytorch.tuner import Tuner

            tune_trainer = L.Trainer(**{**trainer_kwargs, "logger": False, "callbacks": [],
                                        "default_root_dir": output_dir / "lr_find"})
            lr_finder = Tuner(tune_trainer).lr_find(module, datamodule=dm, num_training=cfg.lr_find_steps,
                                                    min_lr=1e-5, max_lr=1.0, update_attr=False,
                                                    early_stop_threshold=None)
            if cfg.lr_find_apply and lr_finder is not None and lr_finder.suggestion():
                module.lr = float(lr_finder.suggestion())
        trainer = L.Trainer(**trainer_kwargs)
        t1 = time.perf_counter()
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
        fit_seconds = time.perf_counter() - t1

    ckpt: ModelCheckpoint = callbacks["checkpoint"]
    best_path = ckpt.best_model_path or None
    best_score = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
    best_epoch = None
    weights_path = None
    if trainer.is_global_zero:
        if best_path:
            state = torch.load(best_path, map_location="cpu", weights_only=False)
            best_epoch = int(state.get("epoch", -1))
            # this run's architecture, whichever sitting saved it; its state replaces any start weights, and
            # the exported model needs no teachers
            best_module = module_class(cfg.objective)(cfg.replace(init_weights=None, teachers=None), dm.classes)
            best_module.load_state_dict(state["state_dict"])
            model = best_module.model
        else:  # no validation finished (time limit inside the first epoch): export the final weights
            model = module.model
        weights_path = export_weights(
            model, output_dir / weights_filename(cfg), arch=cfg.model, classes=dm.classes, imgsz=cfg.imgsz,
            resize_size=cfg.resize_size, config=cfg.to_dict(),
            extra={"best_epoch": best_epoch, "monitor": cfg.monitor, "best_score": best_score,
                   "objective": cfg.objective})
    if trainer.interrupted:
        reason = "interrupted"
    elif "early_stopping" in callbacks and callbacks["early_stopping"].stopped_epoch > 0:
        reason = f"early stopping after epoch {callbacks['early_stopping'].stopped_epoch}"
    elif "time_budget" in callbacks and callbacks["time_budget"].stopped:
        reason = (f"time_budget_h ({cfg.time_budget_h} h) at the end of epoch {trainer.current_epoch - 1}: "
                  f"resume to continue to {cfg.epochs} epochs")
    elif trainer.current_epoch < cfg.epochs:
        reason = f"stopped after {trainer.current_epoch} of {cfg.epochs} epochs"
    else:
        reason = "max_epochs"
    result = TrainResult(
        output_dir=output_dir, config=cfg, best_checkpoint=best_path, best_score=best_score, best_epoch=best_epoch,
        monitor=cfg.monitor, weights_path=weights_path, epochs_run=int(trainer.current_epoch),
        stopped_reason=reason, train_images_per_s=callbacks["throughput"].images_per_s, fit_seconds=fit_seconds,
        store_seconds=store_seconds, params=count_parameters(module.model), precision=precision,
        device=str(device), lr_used=float(module.lr), lr_finder=lr_finder, skipped=dm.skipped(), counts=counts,
        started=started, ended=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        batch_found=batch_found, resumed_from=str(ckpt_path) if ckpt_path else None,
        global_step=int(trainer.global_step), total_fit_seconds=earlier_seconds + fit_seconds)
    (output_dir / "train_summary.json").write_text(json.dumps(result.summary(), indent=2, default=str))
    if trainer.is_global_zero:
        RunRecord(task="classify", family="classifier", arch=cfg.model, classes=list(dm.classes),
                  dataset=Path(cfg.dataset).name if cfg.dataset else CLOTHING_SMALL, imgsz=cfg.imgsz,
                  weights=relative(weights_path, output_dir) if weights_path else None, backend="lightning",
                  split={"train": {"images": counts["train"]}, "val": {"images": counts["validation"]}},
                  metrics={f"val_{cfg.monitor.removeprefix('val_')}": best_score, "best_epoch": best_epoch},
                  config=cfg.to_dict(), provenance=provenance(result), name=cfg.name).save(output_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    from clothingrec.paths import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser(prog="python -m clothingrec.classify.training", description=__doc__)
    parser.add_argument("--config", default="smoke", help="profile (smoke/full) or YAML path")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"))
    args = parser.parse_args(argv)
    cfg = load_config(args.config, **dict(args.param))
    result = train(cfg, args.output_dir)
    print(json.dumps(result.summary(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
