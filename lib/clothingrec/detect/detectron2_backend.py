"""Optional detectron2 Mask R-CNN backend (``family: maskrcnn``, ``backend: detectron2``).

detectron2 is not on PyPI: ``make setup`` installs ``../shared/wheels/detectron2-*.whl`` when present
(built for this stack), else build it from source (https://github.com/facebookresearch/detectron2)
matching your torch/CUDA.  Without it :func:`detectron2_available` is False and
:func:`require_detectron2` raises a clear error.  The same COCO JSON trains it, and its predictor
implements the common interface, so the one evaluation scores it like every other family.

Training writes ``<out>/detectron2/``: ``config.yaml`` (the full detectron2 config), ``model_*.pth``
checkpoints, ``last_checkpoint`` (what ``resume`` continues from) and ``metrics.json`` (one line per
iteration), which :func:`read_metrics` turns into the run's per-epoch history and per-step table.
Model-zoo weights (``pretrained``) are read from iopath's cache (:func:`zoo_weights_path`); offline a
missing file raises :class:`clothingrec.weights.PretrainedWeightsUnavailable` naming where to put it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from clothingrec.structures import EXPORT_SCORE_THRESHOLD, Detections

#: detectron2 model-zoo configs by backbone name
CONFIGS = {
    "resnet50_fpn": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    "resnet101_fpn": "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
}


def detectron2_available() -> bool:
    return find_spec("detectron2") is not None


def require_detectron2() -> None:
    if not detectron2_available():
        raise ImportError(
            "backend='detectron2' needs the detectron2 package, which is not installed (it is not on "
            "PyPI: build it from https://github.com/facebookresearch/detectron2 for your torch/CUDA), "
            "or use backend='torchvision'."
        )


def make_config(train_json, train_images, val_json, val_images, out_dir, *, backbone: str = "resnet50_fpn",
                num_classes: int, iterations: int = 1000, batch: int = 2, lr: float = 0.0025,
                min_size: int = 512, max_size: int = 853, workers: int = 2, device: str = "cpu",
                pretrained: bool = False, seed: int = 0, checkpoint_period: int | None = None,
                precision: str = "auto", light_heads: bool = False, name: str = "clothingrec",
                train_min_sizes: tuple = (), train_max_size: int | None = None,
                init_weights: str | None = None, repeat_threshold: float | None = None):
    """A detectron2 config that trains Mask R-CNN on our COCO split (registers the datasets).

    ``precision``: ``16-mixed`` turns on detectron2's AMP trainer (fp16 autocast + GradScaler; CUDA only),
    ``auto`` does so on CUDA, ``32-true`` never; bf16 is not among detectron2's trainer options.
    ``light_heads``: the torchvision loop's :data:`clothingrec.detect.engine.LIGHT_HEADS` in detectron2's
    names (fewer RPN proposals, 128 sampled RoIs per image), for CPU runs.
    ``init_weights``: an earlier detectron2 run's checkpoint to start from (``MODEL.WEIGHTS``; the solver
    starts anew); ``repeat_threshold``: detectron2's ``RepeatFactorTrainingSampler`` with that threshold.
    """
    require_detectron2()
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    if backbone not in CONFIGS:
        raise ValueError(f"detectron2 backbone {backbone!r} unknown; choose one of {sorted(CONFIGS)}")
    for split, js, imgs in (("train", train_json, train_images), ("val", val_json, val_images)):
        key = f"{name}_{split}"
        if key in DatasetCatalog.list():
            DatasetCatalog.remove(key)
        if key in MetadataCatalog.list():
            MetadataCatalog.remove(key)
        register_coco_instances(key, {}, str(js), str(imgs))
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(CONFIGS[backbone]))
    cfg.DATASETS.TRAIN = (f"{name}_train",)
    cfg.DATASETS.TEST = (f"{name}_val",)
    cfg.DATALOADER.NUM_WORKERS = int(workers)
    cfg.MODEL.WEIGHTS = str(init_weights) if init_weights else (zoo_weights(backbone) if pretrained else "")
    if repeat_threshold:
        cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
        cfg.DATALOADER.REPEAT_THRESHOLD = float(repeat_threshold)
    cfg.MODEL.DEVICE = "cuda" if device in ("auto", "cuda") and _cuda() else ("cpu" if device == "auto" else device)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = int(num_classes)
    on_cuda = cfg.MODEL.DEVICE.startswith("cuda")
    if precision not in ("auto", "32-true", "16-mixed"):
        raise ValueError(f"detectron2 precision={precision!r}: its AMP trainer is fp16 (16-mixed), or 32-true / auto")
    if precision == "16-mixed" and not on_cuda:
        raise ValueError("detectron2 precision=16-mixed needs CUDA (its AMPTrainer refuses a CPU); use 32-true")
    cfg.SOLVER.AMP.ENABLED = precision == "16-mixed" or (precision == "auto" and on_cuda)
    if not pretrained:  # from scratch: BatchNorm trains, every stage unfrozen
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.NORM = "BN"
        cfg.MODEL.FPN.NORM = "BN"
    if light_heads:
        from clothingrec.detect.engine import LIGHT_HEADS

        cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = LIGHT_HEADS["rpn_pre_nms_top_n_train"]
        cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = LIGHT_HEADS["rpn_post_nms_top_n_train"]
        cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = LIGHT_HEADS["rpn_pre_nms_top_n_test"]
        cfg.MODEL.RPN.POST_NMS_TOPK_TEST = LIGHT_HEADS["rpn_post_nms_top_n_test"]
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = LIGHT_HEADS["box_batch_size_per_image"]
    # multi-scale training (train_min_sizes): detectron2 draws one shorter side per image ("choice")
    cfg.INPUT.MIN_SIZE_TRAIN = tuple(int(v) for v in train_min_sizes) or (int(min_size),)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.MAX_SIZE_TRAIN = int(train_max_size or max_size)
    cfg.INPUT.MIN_SIZE_TEST = int(min_size)
    cfg.INPUT.MAX_SIZE_TEST = int(max_size)
    cfg.SOLVER.IMS_PER_BATCH = int(batch)
    cfg.SOLVER.BASE_LR = float(lr)
    cfg.SOLVER.MAX_ITER = int(iterations)
    steps = (int(iterations * 0.67), int(iterations * 0.89))
    cfg.SOLVER.STEPS = tuple(sorted({s for s in steps if 0 < s < iterations}))  # fvcore: increasing, inside the run
    cfg.SOLVER.WARMUP_ITERS = min(100, max(1, iterations // 10))
    cfg.SOLVER.CHECKPOINT_PERIOD = int(checkpoint_period or max(1, iterations // 5))
    cfg.TEST.EVAL_PERIOD = 0
    cfg.TEST.DETECTIONS_PER_IMAGE = 100
    cfg.SEED = int(seed)
    cfg.OUTPUT_DIR = str(Path(out_dir).resolve())
    Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    return cfg


def zoo_weights_path(backbone: str = "resnet50_fpn") -> tuple[str, Path]:
    """``(url, local cache file)`` of a model-zoo checkpoint: iopath caches a URL's file at
    ``$FVCORE_CACHE`` (default ``~/.torch/iopath_cache``) ``/<the URL's path without the host>``."""
    require_detectron2()
    from detectron2 import model_zoo
    from iopath.common.file_io import get_cache_dir

    url = model_zoo.get_checkpoint_url(CONFIGS[backbone])
    return url, Path(get_cache_dir()) / urlparse(url).path.lstrip("/")


def zoo_weights(backbone: str = "resnet50_fpn") -> str:
    """The ``MODEL.WEIGHTS`` of a model-zoo checkpoint: its URL when cached or downloadable, else a clear error."""
    from clothingrec.weights import PretrainedWeightsUnavailable, _reachable

    url, cached = zoo_weights_path(backbone)
    if cached.is_file() or _reachable(url):
        return url
    raise PretrainedWeightsUnavailable(
        f"detectron2 model-zoo weights {CONFIGS[backbone]} need the file {cached.name!r}, which is not in "
        f"{cached.parent} and cannot be downloaded from {url} (offline). Download it on a machine with a "
        f"network and place it at {cached} (or set FVCORE_CACHE), or train from scratch (pretrained=false).")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class OutOfTime(Exception):
    """Raised by :class:`_EpochTimeBudget` to end training at an epoch boundary (caught in
    :func:`train_detectron2`)."""


def _time_budget_hook(budget_s: float, iterations_per_epoch: int):
    from detectron2.engine import HookBase

    class _EpochTimeBudget(HookBase):
        """Ends training after the epoch whose successor would end past ``budget_s`` (the next epoch's
        length is the last one's, measured), once that epoch's checkpoint is written."""

        def before_train(self):
            self.started = self.epoch_started = time.time()
            self.out_of_time = False

        def after_step(self):
            done = self.trainer.iter + 1
            if done % iterations_per_epoch or done >= self.trainer.max_iter:
                return
            now = time.time()
            epoch_s, self.epoch_started = now - self.epoch_started, now
            self.out_of_time = now - self.started + epoch_s > budget_s

        def before_step(self):
            # raised here, not in after_step: the loop's writers then close on a new iteration (detectron2's
            # metric printer divides by the iterations since its last write)
            if self.out_of_time:
                raise OutOfTime(self.trainer.iter)

    return _EpochTimeBudget()


EPOCHS_FILE = "epochs.jsonl"  # one line per scored epoch, written by the evaluation hook
BEST_WEIGHTS = "model_best.pth"


def _epoch_evaluation_hook(score, iterations_per_epoch: int, eval_every: int, output_dir: Path):
    from detectron2.engine import HookBase
    from detectron2.utils import comm

    class _EpochEvaluation(HookBase):
        """After an epoch's checkpoint is written, score it with ``score(weights) -> {iou_type: CocoEvalResult}``
        (the one evaluation, on val), append ``epoch, iteration, train_seconds, eval_seconds, <iou>_AP,
        <iou>_AP50`` to ``epochs.jsonl``, and keep the best val bbox AP50 as ``model_best.pth`` -- what the
        torchvision loop does each epoch."""

        def before_train(self):
            self.started = time.perf_counter()

        def after_step(self):
            done = self.trainer.iter + 1
            if done % iterations_per_epoch or not comm.is_main_process():
                return
            epoch = done // iterations_per_epoch
            if not (epoch % eval_every == 0 or done >= self.trainer.max_iter):
                return
            train_seconds = time.perf_counter() - self.started
            weights = output_dir / f"model_{self.trainer.iter:07d}.pth"
            t0 = time.perf_counter()
            evals = score(weights)
            row = {"epoch": epoch, "iteration": done, "train_seconds": train_seconds,
                   "eval_seconds": time.perf_counter() - t0}
            for iou_type, res in evals.items():
                row[f"{iou_type}_AP"] = float(res.stats["AP"])
                row[f"{iou_type}_AP50"] = float(res.stats["AP50"])
            earlier = [r["bbox_AP50"] for r in read_epochs(output_dir) if r["epoch"] < epoch]
            if not earlier or row["bbox_AP50"] > max(earlier):
                tmp = output_dir / (BEST_WEIGHTS + ".tmp")
                shutil.copyfile(weights, tmp)
                os.replace(tmp, output_dir / BEST_WEIGHTS)
            with open(output_dir / EPOCHS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            self.started = time.perf_counter()

    return _EpochEvaluation()


def read_epochs(output_dir) -> list[dict]:
    """The rows of ``epochs.jsonl`` (a re-scored epoch keeps its last row), by epoch."""
    path = Path(output_dir) / EPOCHS_FILE
    rows = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[int(row["epoch"])] = row
    return [rows[k] for k in sorted(rows)]


class _QuietOutOfTime(logging.Filter):
    """detectron2's loop logs every exception that ends training; the time budget's is not an error."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], OutOfTime))


def _trainer_class():
    from detectron2.engine import DefaultTrainer, hooks

    class Trainer(DefaultTrainer):
        """detectron2's trainer without its own evaluation (the recipe scores the run with the one
        pycocotools evaluation), with ``metrics.json`` written every ``log_period`` iterations and an
        optional epoch-boundary time budget."""

        log_period = 1
        extra_hooks: list = []

        def build_hooks(self):
            kept = []
            for hook in super().build_hooks():
                if isinstance(hook, hooks.EvalHook):
                    continue
                if isinstance(hook, hooks.PeriodicWriter):
                    hook._period = int(self.log_period)
                kept.append(hook)
            return kept + list(self.extra_hooks)  # after the checkpointer: the epoch is saved first

    return Trainer


def train_detectron2(cfg, *, resume: bool = False, log_period: int = 1, time_budget_s: float | None = None,
                     iterations_per_epoch: int | None = None, score=None, eval_every: int = 1) -> tuple[Path, bool]:
    """Train with detectron2's ``DefaultTrainer`` (checkpoints in ``cfg.OUTPUT_DIR``; ``resume`` continues
    from its ``last_checkpoint`` up to ``cfg.SOLVER.MAX_ITER``). With ``iterations_per_epoch`` (which must
    equal ``cfg.SOLVER.CHECKPOINT_PERIOD``): ``score`` (``weights -> {iou_type: CocoEvalResult}``) scores
    every ``eval_every``-th epoch's checkpoint into ``epochs.jsonl`` and keeps the best bbox AP50 as
    ``model_best.pth``; ``time_budget_s`` ends the sitting at the last epoch boundary the budget fits (its
    evaluation included); ``resume`` continues from there.
    Returns ``(weights, stopped_early)``: the best scored checkpoint, else the final weights, else the last
    checkpoint."""
    require_detectron2()
    trainer_cls = _trainer_class()
    trainer_cls.log_period = max(1, int(log_period))
    trainer_cls.extra_hooks = []
    out = Path(cfg.OUTPUT_DIR)
    if score is not None or time_budget_s:
        per_epoch = int(iterations_per_epoch or 0)
        if per_epoch < 1 or per_epoch != int(cfg.SOLVER.CHECKPOINT_PERIOD):
            raise ValueError("per-epoch scoring and the time budget need iterations_per_epoch equal to "
                             f"cfg.SOLVER.CHECKPOINT_PERIOD (got {iterations_per_epoch} and "
                             f"{cfg.SOLVER.CHECKPOINT_PERIOD})")
        if score is not None and eval_every:
            trainer_cls.extra_hooks.append(_epoch_evaluation_hook(score, per_epoch, int(eval_every), out))
        if time_budget_s:
            trainer_cls.extra_hooks.append(_time_budget_hook(float(time_budget_s), per_epoch))
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=resume)
    stopped = False
    if trainer.start_iter < trainer.max_iter:
        loop_log = logging.getLogger("detectron2.engine.train_loop")
        quiet = _QuietOutOfTime()
        loop_log.addFilter(quiet)
        try:
            trainer.train()
        except OutOfTime:
            stopped = True
        finally:
            loop_log.removeFilter(quiet)
    if (out / BEST_WEIGHTS).is_file():
        return out / BEST_WEIGHTS, stopped
    if (out / "model_final.pth").is_file() and not stopped:
        return out / "model_final.pth", False
    return out / (out / "last_checkpoint").read_text().strip(), stopped


LOSS_RENAMES = {"total_loss": "loss"}


def read_metrics(output_dir, iterations_per_epoch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(history per epoch, steps per iteration)`` from detectron2's ``metrics.json``.

    ``steps``: ``step`` (1-based iteration), ``loss`` (detectron2's ``total_loss``), each ``loss_*``,
    ``lr``; ``history``: per epoch the mean of each loss and the last ``lr``, and where the epoch was scored
    its ``epochs.jsonl`` row (the columns the torchvision loop writes, so
    :func:`clothingrec.detect.plots.plot_run` and the learning curves read both). A resumed run appends to the
    file; a repeated iteration keeps its last line.
    """
    path = Path(output_dir) / "metrics.json"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                row = json.loads(line)
                if "iteration" in row and "total_loss" in row:
                    rows.append(row)
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    raw = pd.DataFrame(rows).drop_duplicates("iteration", keep="last").sort_values("iteration")
    keep = ["iteration", "lr"] + [c for c in raw if "loss" in c]
    steps = raw[[c for c in keep if c in raw]].rename(columns=LOSS_RENAMES)
    steps.insert(0, "step", steps.pop("iteration").astype(int) + 1)
    steps = steps.reset_index(drop=True)
    per_epoch = max(1, int(iterations_per_epoch))
    epoch = (steps["step"] - 1) // per_epoch + 1
    losses = [c for c in steps if c.startswith("loss")]
    history = steps.groupby(epoch)[losses].mean()
    if "lr" in steps:
        history["lr"] = steps.groupby(epoch)["lr"].last()
    history = history.rename_axis("epoch").reset_index()
    history["iterations"] = steps.groupby(epoch)["step"].max().to_numpy()
    scored = read_epochs(output_dir)
    if scored:
        scores = pd.DataFrame(scored).drop(columns=["iteration"], errors="ignore")
        history = history.merge(scores, on="epoch", how="left")
    return history, steps


class Detectron2Predictor:
    """The common predictor interface over a detectron2 model (COCO category ids = contiguous id + 1)."""

    family = "detectron2-maskrcnn"

    def __init__(self, cfg, weights, category_names: dict[int, str], *,
                 score_threshold: float = EXPORT_SCORE_THRESHOLD, device: str = "auto"):
        require_detectron2()
        from detectron2.engine import DefaultPredictor

        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_threshold)
        self.score_threshold = float(score_threshold)
        if device == "auto":
            device = "cuda" if _cuda() else "cpu"
        elif str(device).split(":")[0] not in ("cpu", "cuda"):
            device = f"cuda:{device}"  # a GPU index
        cfg.MODEL.DEVICE = str(device)
        self.cfg = cfg
        self.predictor = DefaultPredictor(cfg)
        self.model = self.predictor.model
        self.category_names = {int(k): v for k, v in dict(category_names).items()}
        self.category_ids = sorted(self.category_names)

    def predict(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        # DefaultPredictor takes the image in cfg.INPUT.FORMAT's channel order (BGR, as it was trained)
        bgr = np.ascontiguousarray(image[:, :, ::-1]) if self.cfg.INPUT.FORMAT == "BGR" else image
        inst = self.predictor(bgr)["instances"].to("cpu")
        labels = np.array([self.category_ids[int(c)] for c in inst.pred_classes.numpy()], dtype=np.int64)
        masks = inst.pred_masks.numpy() if inst.has("pred_masks") else None
        return Detections(inst.pred_boxes.tensor.numpy(), labels, inst.scores.numpy(), masks)


def load_predictor(config_yaml, weights, category_names: dict[int, str], *,
                   score_threshold: float = EXPORT_SCORE_THRESHOLD, device: str = "auto",
                   imgsz: int | None = None, nms_iou: float | None = None) -> Detectron2Predictor:
    """The predictor of a trained run from its dumped config (``detectron2/config.yaml``) and weights;
    ``imgsz``: the inference size (longest side) when not the trained one; ``nms_iou``: the NMS IoU."""
    require_detectron2()
    from detectron2.config import get_cfg

    from clothingrec.detect.config import short_side

    cfg = get_cfg()
    cfg.set_new_allowed(True)
    cfg.merge_from_file(str(config_yaml))
    if imgsz is not None:
        cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = short_side(imgsz), int(imgsz)
    if nms_iou is not None:
        cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = float(nms_iou)
    return Detectron2Predictor(cfg, weights, category_names, score_threshold=score_threshold, device=device)
