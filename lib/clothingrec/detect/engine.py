"""The explicit train-one-epoch / evaluate loop for torchvision detectors, with checkpoints and resume.

    cfg = TrainConfig(family="fasterrcnn", backbone="mobilenet_v3_large_fpn", epochs=2, min_size=224)
    result = train(ds.coco_json["train"], ds.image_dir["train"], ds.coco_json["val"], ds.image_dir["val"],
                   out_dir, cfg)

Optimiser: SGD with momentum and weight decay; the learning rate follows a linear warmup times a
cosine (or multi-step) schedule and is stepped after every iteration (it is logged per step).
Every epoch ends with the one COCO evaluation (:mod:`clothingrec.evaluate`) on the validation split
and a checkpoint ``checkpoints/last.pt`` (model, optimiser, scheduler, position, history); the best
validation bbox AP50 is kept as ``checkpoints/best.pt`` (without a validation split, ``val_json=None``,
nothing is scored and ``last.pt`` is the result).  ``checkpoint_every_steps`` adds mid-epoch
checkpoints; ``resume=True`` continues from ``last.pt`` at the saved step, with the same batches and
flips as an uninterrupted run.  ``time_limit_s`` ends the run at an epoch boundary, after the
epoch's evaluation: the last epoch that the budget still fits (measured on the previous one).
``precision``: ``16-mixed`` / ``bf16-mixed`` train under ``torch.autocast`` (fp16 with a ``GradScaler``,
saved in the checkpoint); ``auto`` is fp32 on a CPU and bf16 (or fp16) on a GPU; evaluation stays fp32.
Multi-GPU: launch with ``torchrun --nproc_per_node N``; the loop uses ``DistributedDataParallel`` (NCCL on
CUDA, gloo on CPU) and rank 0 evaluates and saves.
Files: ``history.csv`` (per epoch), ``steps.csv`` (per step), ``checkpoints/``, ``tb/`` (TensorBoard).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clothingrec.detect.data import (
    CocoDetection,
    EpochBatchSampler,
    batches_per_epoch,
    collate,
    epoch_size,
    repeat_factors,
)
from clothingrec.detect.models import (
    build_detector,
    builder_spec,
    count_parameters,
    own_backbone_file,
    set_score_threshold,
)
from clothingrec.device import PRECISIONS, autocast_dtype, resolve_device, resolve_precision, set_threads
from clothingrec.evaluate import EXPORT_SCORE_THRESHOLD, detections_to_results, evaluate_predictions

#: Fewer proposals and RoI samples: on a CPU at small image sizes the RoI box head (a 12544→1024 FC
#: layer applied to every sampled RoI) dominates the step time; these settings cut it about 4x.
LIGHT_HEADS = {"rpn_pre_nms_top_n_train": 1000, "rpn_post_nms_top_n_train": 500,
               "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 300,
               "box_batch_size_per_image": 128}

LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


@dataclass
class TrainConfig:
    family: str = "fasterrcnn"
    backbone: str = "mobilenet_v3_large_fpn"
    epochs: int = 2
    batch: int = 2
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    scheduler: str = "cosine"  # cosine | multistep | constant
    milestones: tuple = (0.67, 0.89)  # multistep: fractions of the run
    gamma: float = 0.1
    min_size: int = 512
    max_size: int = 853
    #: multi-scale training: shorter sides drawn per image while training (validation and the saved model
    #: keep ``min_size`` / ``max_size``); ``train_max_size`` caps the longer side then
    train_min_sizes: tuple = ()
    train_max_size: int | None = None
    workers: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto | 32-true | 16-mixed | bf16-mixed (clothingrec.device.resolve_precision)
    seed: int = 0
    pretrained: str | None = None
    pretrained_backbone: str | None = None
    #: a checkpoint of an earlier run of this loop (same family, backbone, categories): the model starts
    #: from its weights, the optimiser and schedule start anew (a warm restart / fine-tuning)
    init_weights: str | None = None
    #: repeat-factor sampling of the training images (:func:`clothingrec.detect.data.repeat_factors`)
    repeat_threshold: float | None = None
    trainable_backbone_layers: int | None = None
    hflip: float = 0.5
    clip_grad: float | None = 10.0
    checkpoint_every_steps: int = 0
    max_steps: int | None = None  # stop (as if interrupted) after this global step
    time_limit_s: float | None = None  # wall-clock budget: no epoch is started that would end past it
    eval_every: int = 1
    eval_batch: int = 2
    max_train_images: int | None = None
    max_eval_images: int | None = None
    threads: int | None = None
    log_every: int = 20
    box_detections_per_img: int = 100
    #: extra torchvision model options, e.g. :data:`LIGHT_HEADS` for CPU runs
    model_kwargs: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known: {sorted(names)}")
        d = dict(d)
        if "milestones" in d and d["milestones"] is not None:
            d["milestones"] = tuple(d["milestones"])
        return cls(**d)


@dataclass
class LoopResult:
    out_dir: Path
    history: pd.DataFrame
    steps: pd.DataFrame
    last_checkpoint: Path
    best_checkpoint: Path | None
    global_step: int
    epoch: int  # completed epochs
    interrupted: bool
    params: int
    report: list[str] = field(default_factory=list)
    seconds: float = 0.0
    precision: str = "32-true"  # the resolved precision the loop trained in


def lr_lambda_factory(cfg: TrainConfig, total_iters: int):
    """LR multiplier per iteration: linear warmup × (cosine | multi-step | constant)."""
    warmup = max(0, int(cfg.warmup_iters))
    milestones = [int(m * total_iters) for m in cfg.milestones]

    def factor(it: int) -> float:
        w = 1.0
        if warmup and it < warmup:
            alpha = it / warmup
            w = cfg.warmup_factor * (1 - alpha) + alpha
        if cfg.scheduler == "cosine":
            base = 0.5 * (1 + math.cos(math.pi * min(it, total_iters) / max(1, total_iters)))
            base = max(base, 0.01)
        elif cfg.scheduler == "multistep":
            base = cfg.gamma ** sum(it >= m for m in milestones)
        elif cfg.scheduler == "constant":
            base = 1.0
        else:
            raise ValueError(f"unknown scheduler {cfg.scheduler!r} (cosine | multistep | constant)")
        return w * base

    return factor


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _to_device(images, targets, device):
    images = [im.to(device, non_blocking=True) for im in images]
    targets = [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
               for t in targets]
    return images, targets


@contextlib.contextmanager
def training_sizes(model, cfg: TrainConfig):
    """Multi-scale training: while inside, the model's resize draws each image's shorter side from
    ``cfg.train_min_sizes`` (torchvision picks one per image in train mode); its evaluation sizes after."""
    transform = model.transform
    kept = transform.min_size, transform.max_size
    if cfg.train_min_sizes:
        transform.min_size = tuple(int(v) for v in cfg.train_min_sizes)
        transform.max_size = int(cfg.train_max_size or cfg.max_size)
    try:
        yield
    finally:
        transform.min_size, transform.max_size = kept


def train_one_epoch(model, optimizer, scheduler, loader, device, *, epoch: int, global_step: int,
                    step_in_epoch: int = 0, clip_grad: float | None = None, max_steps: int | None = None,
                    on_step=None, log=None, log_every: int = 20, writer=None, autocast: torch.dtype | None = None,
                    scaler=None):
    """One pass over ``loader`` (which may start mid-epoch). Returns (rows, global_step, step_in_epoch, stopped).

    ``autocast``: run the forward pass under ``torch.autocast`` in this dtype (mixed precision; the weights
    and the optimizer stay fp32); ``scaler``: a ``torch.amp.GradScaler`` (fp16: scaled loss, and a step
    with inf/NaN gradients is skipped and the scale lowered, as torchvision's references do with ``--amp``).
    """
    model.train()
    rows = []
    stopped = False
    bad = 0
    for images, targets in loader:
        images, targets = _to_device(images, targets, device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            losses = model(images, targets)
        losses = {k: v.float() for k, v in losses.items()}
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            bad += 1
            if log:
                log(f"[train] epoch {epoch} step {step_in_epoch}: non-finite loss {float(loss)}, step skipped")
            optimizer.zero_grad(set_to_none=True)
            if bad >= 5:
                raise FloatingPointError(f"loss was not finite for 5 steps in epoch {epoch}: lower lr")
        else:
            bad = 0
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)  # clip the true gradients
            else:
                loss.backward()
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        global_step += 1
        step_in_epoch += 1
        row = {"step": global_step, "epoch": epoch, "step_in_epoch": step_in_epoch, "lr": lr,
               "loss": float(loss.detach()), "seconds": time.perf_counter() - start}
        row.update({k: float(v.detach()) for k, v in losses.items()})
        rows.append(row)
        if writer is not None:  # TensorBoard (rank 0): per-step loss terms and learning rate
            for key in ("loss", "lr", *losses):
                writer.add_scalar(f"train/{key}", row[key], global_step)
        if log and log_every and (global_step % log_every == 0):
            log(f"[train] epoch {epoch} step {step_in_epoch} loss {row['loss']:.4f} lr {lr:.5f}")
        if on_step is not None:  # mid-epoch checkpoint: the position and this epoch's rows so far
            on_step(global_step, step_in_epoch, rows)
        if max_steps is not None and global_step >= max_steps:
            stopped = True
            break
    return rows, global_step, step_in_epoch, stopped


@torch.no_grad()
def predict_results(model, dataset: CocoDetection, device, *, batch: int = 2, max_images: int | None = None,
                    score_threshold: float = EXPORT_SCORE_THRESHOLD) -> tuple[list[dict], list[int]]:
    """COCO results of ``model`` on ``dataset`` (original image coordinates). Returns (results, image_ids)."""
    from clothingrec.structures import Detections

    model.eval()
    set_score_threshold(model, score_threshold)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    with_masks = hasattr(model, "roi_heads") and getattr(model.roi_heads, "mask_predictor", None) is not None
    results, ids = [], []
    for start in range(0, n, batch):
        items = [dataset[i] for i in range(start, min(n, start + batch))]
        images = [im.to(device) for im, _ in items]
        outputs = model(images)
        for (_, target), out in zip(items, outputs):
            labels = out["labels"].cpu().numpy()
            det = Detections(
                out["boxes"].cpu().numpy(), np.array([dataset.label_to_coco[int(v)] for v in labels]),
                out["scores"].cpu().numpy(),
                (out["masks"][:, 0] > 0.5).cpu().numpy() if with_masks and "masks" in out else None,
            )
            ids.append(int(target["image_id"]))
            results.extend(detections_to_results(target["image_id"], det, score_threshold=score_threshold,
                                                 with_masks=with_masks))
    return results, ids


def evaluate(model, dataset: CocoDetection, device, *, batch: int = 2, max_images: int | None = None):
    """The one COCO evaluation of a torchvision detector on a split: {"bbox": ..., "segm": ...}."""
    with_masks = getattr(model.roi_heads, "mask_predictor", None) is not None
    results, ids = predict_results(model, dataset, device, batch=batch, max_images=max_images)
    return evaluate_predictions(dataset.coco, results, segm=with_masks, image_ids=ids)


def _tensorboard(out_dir: Path):
    """A SummaryWriter on ``<out_dir>/tb`` (``make tensorboard`` reads runs/); None without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(Path(out_dir) / "tb"))


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _write_tables(out_dir: Path, epochs: list[dict], steps: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    hist = pd.DataFrame(epochs)
    st = pd.DataFrame(steps)
    hist.to_csv(out_dir / "history.csv", index=False)
    st.to_csv(out_dir / "steps.csv", index=False)
    return hist, st


def load_init_weights(model, path, spec: dict, label_to_coco: dict, *, log=print) -> None:
    """Start ``model`` from the weights of an earlier run's checkpoint (this loop's ``best.pt`` / ``last.pt``).

    The checkpoint must hold the same network (family, backbone, classes, heads) and map its labels to
    the same COCO categories; the input sizes may differ (a fine-tuning at another size).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_weights: {path} is not a checkpoint file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "spec" not in state:
        raise ValueError(f"init_weights: {path} is not a checkpoint of this training loop (no 'model' / 'spec')")
    sizes = ("min_size", "max_size")
    theirs = {k: v for k, v in state["spec"].items() if k not in sizes}
    ours = {k: v for k, v in spec.items() if k not in sizes}
    if theirs != ours:
        raise ValueError(f"init_weights: {path} holds {theirs}, this run builds {ours}")
    saved = {int(k): int(v) for k, v in (state.get("label_to_coco") or {}).items()}
    if saved and saved != {int(k): int(v) for k, v in label_to_coco.items()}:
        raise ValueError(f"init_weights: {path} maps labels to categories {saved}, this dataset to {label_to_coco}")
    model.load_state_dict(state["model"])
    if log:
        log(f"[train] weights from {path} (epoch {state.get('epoch')} of its run); new optimiser and schedule")


def train(train_json, train_images, val_json, val_images, out_dir, config: TrainConfig | dict, *,
          resume: bool = False, log=print) -> LoopResult:
    """Train a torchvision detector; see the module doc. Returns a :class:`LoopResult`."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    if distributed and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    device = resolve_device(cfg.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    set_threads(cfg.threads)
    precision = resolve_precision(cfg.precision, device)
    if precision not in PRECISIONS[1:]:
        raise ValueError(f"precision={cfg.precision!r} is not one of {PRECISIONS}")
    amp_dtype = autocast_dtype(precision)
    # fp16 needs loss scaling (its range is narrow); bf16 has fp32's range and does not
    scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
    torch.manual_seed(cfg.seed)
    masks = cfg.family == "maskrcnn"
    train_ds = CocoDetection(train_json, train_images, masks=masks, hflip=cfg.hflip, seed=cfg.seed,
                             max_images=cfg.max_train_images)
    # no val part (a final model trained on train + val): no per-epoch scoring, the last epoch is kept
    val_ds = CocoDetection(val_json, val_images, masks=masks, hflip=0.0, seed=cfg.seed) if val_json else None
    if len(train_ds) == 0:
        raise ValueError(f"no usable training images in {train_json}: {train_ds.report[:5]}")
    spec = builder_spec(cfg.family, cfg.backbone, train_ds.num_classes, cfg.min_size, cfg.max_size,
                        box_detections_per_img=cfg.box_detections_per_img, **cfg.model_kwargs)
    model = build_detector(cfg.family, cfg.backbone, train_ds.num_classes, cfg.pretrained,
                           pretrained_backbone=cfg.pretrained_backbone, min_size=cfg.min_size,
                           max_size=cfg.max_size, trainable_backbone_layers=cfg.trainable_backbone_layers,
                           box_detections_per_img=cfg.box_detections_per_img, **cfg.model_kwargs)
    if cfg.init_weights:
        load_init_weights(model, cfg.init_weights, spec, train_ds.label_to_coco, log=log)
    elif own_backbone_file(cfg.pretrained_backbone) and log and rank == 0:
        log(f"[train] backbone layers from the classifier {cfg.pretrained_backbone}; FPN and heads start fresh")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    repeats = repeat_factors(train_ds, cfg.repeat_threshold) if cfg.repeat_threshold else None
    images_per_epoch = epoch_size(repeats) if repeats is not None else len(train_ds)
    if repeats is not None and log and rank == 0:
        log(f"[train] repeat-factor sampling (threshold {cfg.repeat_threshold}): {images_per_epoch} images per "
            f"epoch from {len(train_ds)}, {int((repeats > 1).sum())} images repeated, at most {repeats.max():.2f}x")
    n_batches = batches_per_epoch(images_per_epoch, cfg.batch, world)
    total_iters = n_batches * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda_factory(cfg, total_iters))

    epoch, step_in_epoch, global_step = 0, 0, 0
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    best_ap50 = -1.0
    last = ckpt_dir / "last.pt"
    best = ckpt_dir / "best.pt"
    if resume:
        if last.is_file():
            state = torch.load(last, map_location="cpu", weights_only=False)
            if state["spec"] != spec:
                raise ValueError(f"checkpoint {last} was made for {state['spec']}, this run builds {spec}")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
            epoch_rows, step_rows = state["epoch_rows"], state["step_rows"]
            best_ap50 = state.get("best_ap50", -1.0)
            torch.set_rng_state(state["torch_rng"])
            if log:
                log(f"[train] resumed from {last.name}: epoch {epoch}, step {step_in_epoch} of {n_batches}, "
                    f"global step {global_step}")
        elif log:
            log(f"[train] resume asked but no checkpoint at {last}: starting from scratch")
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(path: Path, ep: int, sie: int, gs: int | None = None, epoch_steps: list | None = None) -> None:
        if rank != 0:
            return
        _save(path, {"spec": spec, "categories": train_ds.coco.dataset["categories"],
                     "label_to_coco": train_ds.label_to_coco, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "epoch": ep, "step_in_epoch": sie, "global_step": global_step if gs is None else gs,
                     "epoch_rows": epoch_rows, "step_rows": step_rows + list(epoch_steps or []),
                     "best_ap50": best_ap50, "torch_rng": torch.get_rng_state(), "config": asdict(cfg),
                     "precision": precision, "scaler": scaler.state_dict() if scaler is not None else None})

    def on_step(gs: int, sie: int, epoch_steps: list) -> None:
        if cfg.checkpoint_every_steps and gs % cfg.checkpoint_every_steps == 0 and sie < n_batches:
            checkpoint(last, epoch, sie, gs, epoch_steps)

    writer = _tensorboard(out_dir) if rank == 0 else None
    started = time.time()
    interrupted = False
    epoch_seconds = 0.0  # the last full epoch, training + evaluation
    pin = device.type == "cuda"
    while epoch < cfg.epochs:
        train_ds.set_epoch(epoch)
        sampler = EpochBatchSampler(len(train_ds), cfg.batch, seed=cfg.seed, epoch=epoch, repeats=repeats,
                                    skip_batches=step_in_epoch, rank=rank, world_size=world)
        epoch_len = len(sampler) + step_in_epoch
        # its own generator: creating the iterator must not draw from the global RNG (exact resume)
        loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, num_workers=cfg.workers,
                                             collate_fn=collate, pin_memory=pin,
                                             generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        t0 = time.perf_counter()
        with training_sizes(model, cfg):
            rows, global_step, step_in_epoch, stopped = train_one_epoch(
                net, optimizer, scheduler, loader, device, epoch=epoch, global_step=global_step,
                step_in_epoch=step_in_epoch, clip_grad=cfg.clip_grad, max_steps=cfg.max_steps,
                on_step=on_step, log=log if rank == 0 else None, log_every=cfg.log_every, writer=writer,
                autocast=amp_dtype, scaler=scaler)
        step_rows.extend(rows)
        if step_in_epoch < epoch_len:
            # interrupted mid-epoch: save the position and stop
            checkpoint(last, epoch, step_in_epoch)
            interrupted = True
            if log and rank == 0:
                log(f"[train] stopped at epoch {epoch} step {step_in_epoch} (global {global_step}); "
                    f"resume=True continues from here")
            break
        row = {"epoch": epoch + 1, "step": global_step, "lr": optimizer.param_groups[0]["lr"],
               "train_seconds": time.perf_counter() - t0}
        ep_steps = [r for r in step_rows if r["epoch"] == epoch]
        for key in ("loss",) + LOSS_KEYS:
            vals = [r[key] for r in ep_steps if key in r]
            if vals:
                row[key] = float(np.mean(vals))
        if (rank == 0 and val_ds is not None and cfg.eval_every
                and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)):
            t1 = time.perf_counter()
            evals = evaluate(model, val_ds, device, batch=cfg.eval_batch, max_images=cfg.max_eval_images)
            row["eval_seconds"] = time.perf_counter() - t1
            for iou_type, res in evals.items():
                row[f"{iou_type}_AP"] = res.stats["AP"]
                row[f"{iou_type}_AP50"] = res.stats["AP50"]
            if row["bbox_AP50"] > best_ap50:
                best_ap50 = row["bbox_AP50"]
                _save(best, {"spec": spec, "categories": train_ds.coco.dataset["categories"],
                             "label_to_coco": train_ds.label_to_coco, "model": model.state_dict(),
                             "epoch": epoch + 1, "global_step": global_step, "bbox_AP50": best_ap50})
        epoch_rows.append(row)
        if writer is not None:  # per-epoch AP / AP50 and mean losses
            for key, value in row.items():
                if isinstance(value, float) and key != "lr":
                    writer.add_scalar(f"epoch/{key}", value, epoch + 1)
            writer.flush()
        epoch += 1
        step_in_epoch = 0
        epoch_seconds = time.perf_counter() - t0
        checkpoint(last, epoch, 0)
        if rank == 0:
            _write_tables(out_dir, epoch_rows, step_rows)
            if log:
                msg = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
                log(f"[train] epoch {epoch}/{cfg.epochs}: {msg}")
        out_of_time = cfg.time_limit_s is not None and time.time() - started + epoch_seconds > cfg.time_limit_s
        if stopped or out_of_time:
            interrupted = epoch < cfg.epochs
            if interrupted and log and rank == 0:
                why = "max_steps" if stopped else f"time budget ({cfg.time_limit_s / 3600:.2f} h)"
                log(f"[train] {why}: stopped after epoch {epoch}; resume=True continues")
            break
    hist, steps = _write_tables(out_dir, epoch_rows, step_rows) if rank == 0 else (None, None)
    if writer is not None:
        writer.close()
    if distributed:
        torch.distributed.barrier()
    report = sorted(set(train_ds.report)) + sorted(set(val_ds.report if val_ds is not None else ()))
    return LoopResult(out_dir=out_dir, history=hist, steps=steps, last_checkpoint=last,
                       best_checkpoint=best if best.is_file() else None, global_step=global_step,
                       epoch=epoch, interrupted=interrupted, params=count_parameters(model), report=report,
                       seconds=time.time() - started, precision=precision)
