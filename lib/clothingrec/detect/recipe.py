"""The one detection recipe: ``fit(cfg, out) -> Run`` for every family, clothing or person.

    cfg = load_config("smoke", family="yolo")          # default.yaml ← experiment YAML ← parameters
    run = fit(cfg, out_dir)                             # prepare → record split → train → evaluate → run.json
    run.record.metrics["bbox_AP50"], run.history, run.predictor

Steps, the same for every family:

1. :func:`prepare` converts the dataset (cached under ``runs/prepared/``; the split is seeded and
   stored by the converter);
2. the run's split (file lists and digests) goes into its ``run.json`` before training; a resumed
   run must find the same split (:class:`SplitMismatch` otherwise);
3. the family's trainer: ultralytics for YOLO, the explicit torchvision loop
   (:mod:`clothingrec.detect.engine`) for Faster / Mask R-CNN, detectron2's ``DefaultTrainer``;
4. the best checkpoint is loaded through :func:`clothingrec.detect.load_detector` and scored on every
   validation image by the one pycocotools evaluation (:mod:`clothingrec.evaluate`);
5. the run record (:class:`clothingrec.runs.RunRecord`) is written: weights, classes, split, metrics,
   config, provenance.

Several GPUs: YOLO takes ``device=0,1`` (ultralytics' own DDP); the R-CNNs run under ``torchrun``:
``torchrun --nproc_per_node 2 -m clothingrec.detect --config X --out DIR``.
"""
from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clothingrec.detect.config import DetectConfig, load_config
from clothingrec.detect.models import own_backbone_file
from clothingrec.device import set_threads
from clothingrec.paths import RUNS_DIR
from clothingrec.runs import RunRecord, digest, prepare_run_folder, relative
from clothingrec.structures import EXPORT_SCORE_THRESHOLD

PREPARED_DIR = RUNS_DIR / "prepared"
PARTS = ("train", "val", "test")


class SplitMismatch(RuntimeError):
    """The split about to be used is not the one stored with the run (or leaks training images)."""


# ---------------------------------------------------------------------------------------- data
def prepared_dir(dataset: str, *, classes: str = "garments", task: str = "detect",
                 max_images: int | None = None) -> Path:
    """The shared cache folder of a converted dataset (a user's path becomes a safe folder name)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(dataset).strip("/"))[-60:]
    suffix = f"-max{max_images}" if max_images else ""
    return PREPARED_DIR / f"{name}-{classes}-{task}{suffix}"


def prepare(cfg: DetectConfig):
    """The config's dataset converted to COCO + YOLO (reused when current); see :mod:`clothingrec.convert`."""
    from clothingrec.convert import prepare_detection_dataset

    out = prepared_dir(cfg.dataset, classes=cfg.classes, task=cfg.label_task, max_images=cfg.max_images)
    return prepare_detection_dataset(cfg.dataset, out, task=cfg.label_task, classes=cfg.classes,
                                     max_images=cfg.max_images, seed=cfg.seed, progress=False)


#: the training part of a final model (``train_on_val``): the stored split's train and val parts together
TRAIN_AND_VAL = "train+val"


def with_val_in_train(data):
    """``data`` with its val part folded into train, for a final model whose schedule was chosen on val
    (``train_on_val``): one COCO file (``annotations/instances_train+val.json``, ids renumbered), one folder of
    image links and YOLO labels per label set (``images/train+val/``, ``labels-*/train+val/``) and a
    ``data-train+val.yaml``, written beside the prepared parts; val leaves the dataset's parts, so nothing
    scores a model on images it was trained on, and test stays as it is."""
    import dataclasses
    import json

    from clothingrec.convert import sync_links
    from clothingrec.convert.yolo import write_data_yaml

    root = Path(data.root)
    parts = ("train", "val")
    missing = [p for p in parts if p not in data.coco_json or not Path(data.coco_json[p]).is_file()]
    if missing:
        raise ValueError(f"train_on_val: {data.name} has no {' or '.join(missing)} part to train on")
    cocos = {part: json.loads(Path(data.coco_json[part]).read_text(encoding="utf-8")) for part in parts}
    names = [{image["file_name"] for image in cocos[part]["images"]} for part in parts]
    # an official split's parts reuse file names (DeepFashion2's 000001.jpg is in train and validation):
    # then every merged image is named after its part, and so are its labels
    renamed = bool(names[0] & names[1])

    def merged_name(part: str, name: str) -> str:
        return f"{part}-{name}" if renamed else name

    merged = {"images": [], "annotations": []}
    images = {}
    for part, coco in cocos.items():
        for key in ("info", "licenses", "categories"):
            merged.setdefault(key, coco.get(key, []))
        new_ids = {}
        for image in coco["images"]:
            new_ids[image["id"]] = len(merged["images"]) + 1
            name = merged_name(part, image["file_name"])
            merged["images"].append({**image, "id": new_ids[image["id"]], "file_name": name})
            images[name] = Path(data.image_dir[part]) / image["file_name"]
        for ann in coco["annotations"]:
            merged["annotations"].append({**ann, "id": len(merged["annotations"]) + 1,
                                          "image_id": new_ids[ann["image_id"]]})
    image_dir = root / "images" / TRAIN_AND_VAL
    sync_links(image_dir, images)
    for label_set in (d for d in root.glob("labels-*") if d.is_dir()):  # each YOLO label set; `labels` links to one
        sync_links(label_set / TRAIN_AND_VAL, {merged_name(part, t.name): t
                                               for part in parts for t in sorted((label_set / part).glob("*.txt"))})
    coco_json = root / "annotations" / f"instances_{TRAIN_AND_VAL}.json"
    tmp = coco_json.with_suffix(f".{os.getpid()}.tmp")  # two runs may start at once: each writes whole files
    tmp.write_text(json.dumps(merged, allow_nan=False), encoding="utf-8")
    os.replace(tmp, coco_json)
    yaml_parts = {"train": f"images/{TRAIN_AND_VAL}", "val": "images/val"}  # ultralytics wants a val: see fit
    yaml_parts.update({p: f"images/{p}" for p in data.coco_json if p not in parts})
    yaml_path = root / f"data-{TRAIN_AND_VAL}.{os.getpid()}.tmp"
    write_data_yaml(yaml_path, root, yaml_parts, list(data.class_names))
    os.replace(yaml_path, root / f"data-{TRAIN_AND_VAL}.yaml")

    def others(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in parts}

    label_dir = Path(data.label_dir["train"]).parent / TRAIN_AND_VAL if "train" in data.label_dir else None
    return dataclasses.replace(
        data, coco_json={"train": coco_json, **others(data.coco_json)},
        image_dir={"train": image_dir, **others(data.image_dir)},
        label_dir={**({"train": label_dir} if label_dir else {}), **others(data.label_dir)},
        num_images={"train": len(merged["images"]), **others(data.num_images)},
        yolo_yaml=root / f"data-{TRAIN_AND_VAL}.yaml")


def _prepare_once(cfg: DetectConfig):
    """:func:`prepare`, by rank 0 first under torchrun (the other ranks then reuse its folder)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return prepare(cfg)
    import torch

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    data = prepare(cfg) if torch.distributed.get_rank() == 0 else None
    torch.distributed.barrier()
    return data if data is not None else prepare(cfg)


def _file_names(coco_json) -> list[str]:
    from clothingrec.evaluate import load_coco

    return sorted(str(im["file_name"]) for im in load_coco(coco_json).dataset["images"])


def split_of(data) -> dict:
    """A prepared dataset's split as the run record stores it: per part its files and their digest.

    Where the converter drew the split (CCP, Penn-Fudan: its ``split.json``) an image is named by its
    file name, so a leak shows as a name in two parts; an official split (DeepFashion2's train and
    validation folders, whose file names repeat) names each image by its part too.
    """
    drawn = (Path(data.root) / "split.json").is_file()
    split = {}
    for part in PARTS:
        if part not in data.coco_json or not Path(data.coco_json[part]).is_file():
            continue
        files = [f if drawn else f"{part}/{f}" for f in _file_names(data.coco_json[part])]
        split[part] = {"images": len(files), "digest": digest(files), "files": files,
                       "coco_json": relative(data.coco_json[part]), "image_dir": relative(data.image_dir[part])}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        leaked = sorted(set(split.get(a, {}).get("files", ())) & set(split.get(b, {}).get("files", ())))
        if leaked:
            raise SplitMismatch(f"{len(leaked)} images are in both {a} and {b} of {data.name} (first: {leaked[:5]})")
    return split


def locate_split(stored: dict, data, *, part: str = "val", what: str = "the run") -> str:
    """The part of ``data`` that holds exactly the images of the stored ``part`` (``val`` or ``test``).

    Raises :class:`SplitMismatch` when none does, or when any of them was a training image of the
    run. A run trained on an earlier split finds its validation images under another name here (the
    80/20 CCP split's val is today's test part): the answer says where.
    """
    current = split_of(data)
    if part not in stored:
        raise SplitMismatch(f"{what} stored no {part} split (it has {sorted(k for k in stored if k in PARTS)})")
    wanted = sorted(stored[part]["files"])
    found = next((name for name in PARTS if current.get(name, {}).get("files") == wanted), None)
    if found is None:
        have = set(current.get(part, {}).get("files", ()))
        missing, extra = sorted(set(wanted) - have), sorted(have - set(wanted))
        raise SplitMismatch(f"{part} split differs from the one stored with {what}: {len(missing)} missing "
                            f"(first: {missing[:3]}), {len(extra)} new (first: {extra[:3]})")
    leaked = sorted(set(wanted) & set(stored["train"]["files"]))
    if leaked:
        raise SplitMismatch(f"{len(leaked)} {part} images were training images of {what} (first: {leaked[:5]})")
    return found


def check_split(stored: dict, data, *, what: str = "the run") -> None:
    """A resumed run must find exactly its stored split: every stored part, file by file, none leaking."""
    for part in ("val", "test"):
        if part in stored:
            found = locate_split(stored, data, part=part, what=what)
            if found != part:
                raise SplitMismatch(f"the stored {part} split of {what} is today's {found} part of {data.name}")
    if sorted(stored["train"]["files"]) != split_of(data)["train"]["files"]:
        raise SplitMismatch(f"the train split of {data.name} differs from the one stored with {what}")


# ---------------------------------------------------------------------------------------- train
@dataclass
class Run:
    """A finished (or time-boxed) training run: its record and what the notebook shows."""

    dir: Path
    record: RunRecord
    config: DetectConfig
    data: object
    history: pd.DataFrame
    steps: pd.DataFrame | None
    predictor: object
    evals: dict
    predictions: object
    interrupted: bool = False
    plots: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        return self.record.metrics


def _train_yolo(cfg: DetectConfig, data, out: Path, resume: bool):
    from clothingrec.detect.yolo import train_yolo, yolo_history

    # ultralytics' AMP is fp16 autocast on CUDA (it turns it off on a CPU); `auto` keeps its default
    args = dict({"32-true": {"amp": False}, "16-mixed": {"amp": True}}.get(cfg.precision, {}))
    pretrained = cfg.init_weights_file() or cfg.pretrained or False  # an earlier run's .pt: start from it
    if cfg.train_on_val:  # its data.yaml's val is trained on: validated once at the end, the last epoch kept
        args["val"] = False
    run = train_yolo(data.yolo_yaml, out, model=cfg.model, task=cfg.task, pretrained=pretrained,
                     epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, workers=cfg.workers, device=cfg.device,
                     seed=cfg.seed, time_budget_h=cfg.time_budget_h, patience=cfg.patience, resume=resume,
                     name="yolo", **{**args, **cfg.ultralytics})
    history = yolo_history(run)
    if cfg.train_on_val:  # its val columns are zeros, and at the last epoch scores on images it trained on
        history = history.drop(columns=[c for c in history if c.startswith(("val", "metrics/"))])
    weights = run.last if cfg.train_on_val else run.best or run.last
    return weights, history, None, len(history) < cfg.epochs, run.plots, []


def _train_torchvision(cfg: DetectConfig, data, out: Path, resume: bool, log):
    from clothingrec.detect.engine import train

    result = train(data.coco_json["train"], data.image_dir["train"], data.coco_json.get("val"),
                   data.image_dir.get("val"), out, cfg.loop_config(), resume=resume, log=log)
    weights = result.best_checkpoint or result.last_checkpoint
    return weights, result.history, result.steps, result.interrupted, [], result.report


def _train_detectron2(cfg: DetectConfig, data, out: Path, resume: bool):
    from clothingrec.detect.detectron2_backend import make_config, read_metrics, train_detectron2

    min_size, max_size = cfg.rcnn_sizes
    train_min_sizes, train_max_size = cfg.rcnn_train_sizes
    per_epoch = max(1, data.num_images["train"] // cfg.batch)
    iterations = cfg.epochs * per_epoch
    d2cfg = make_config(data.coco_json["train"], data.image_dir["train"], data.coco_json["val"],
                        data.image_dir["val"], out / "detectron2", backbone=cfg.model,
                        num_classes=len(data.categories), iterations=iterations, batch=cfg.batch, lr=cfg.lr / 8,
                        min_size=min_size, max_size=max_size, device=cfg.device, pretrained=bool(cfg.pretrained),
                        seed=cfg.seed, workers=cfg.workers, checkpoint_period=per_epoch, precision=cfg.precision,
                        light_heads=cfg.light_heads, train_min_sizes=train_min_sizes,
                        train_max_size=train_max_size, init_weights=cfg.init_weights_file(),
                        repeat_threshold=cfg.repeat_threshold)
    (out / "detectron2").mkdir(parents=True, exist_ok=True)
    (out / "detectron2" / "config.yaml").write_text(d2cfg.dump(), encoding="utf-8")
    category_names = {int(c["id"]): c["name"] for c in data.categories}

    def score(checkpoint):  # the one evaluation on val, each epoch (the torchvision loop's best-AP50 rule)
        from clothingrec.detect.detectron2_backend import Detectron2Predictor
        from clothingrec.evaluate import evaluate_predictor

        predictor = Detectron2Predictor(d2cfg, checkpoint, category_names, device=cfg.device)
        return evaluate_predictor(predictor, data.coco_json["val"], data.image_dir["val"],
                                  max_images=cfg.max_eval_images)[0]

    weights, stopped = train_detectron2(d2cfg, resume=resume, log_period=1, time_budget_s=cfg.time_budget_s,
                                        iterations_per_epoch=per_epoch, score=score)
    history, steps = read_metrics(out / "detectron2", per_epoch)
    history.to_csv(out / "history.csv", index=False)
    steps.to_csv(out / "steps.csv", index=False)
    return weights, history, steps, stopped or len(history) < cfg.epochs, [], []


def fit(cfg: DetectConfig, out, *, resume: bool = False, log=print, command: str | None = None) -> Run:
    """Prepare, record the split, train, evaluate, write ``run.json``; see the module doc."""
    from clothingrec.detect.predictor import load_detector
    from clothingrec.envinfo import provenance
    from clothingrec.evaluate import detector_metrics, evaluate_predictor

    cfg.validate()
    out = prepare_run_folder(out)
    set_threads(cfg.threads)
    data = _prepare_once(cfg)
    if cfg.train_on_val:
        data = with_val_in_train(data)
    split = split_of(data)
    if resume and (out / "run.json").is_file():
        check_split(RunRecord.load(out).split, data)
    record = RunRecord(task="detect", family=cfg.family, arch=str(cfg.model), classes=list(data.class_names),
                       category_ids=[int(c["id"]) for c in data.categories], dataset=data.name, imgsz=cfg.imgsz,
                       backend=cfg.backend, split=split, config=cfg.to_dict(), name=cfg.name)
    rank = int(os.environ.get("RANK", "0"))  # torchrun: rank 0 records and evaluates
    if rank == 0:
        record.save(out)  # the split is on disk before the first step

    started = time.time()
    if cfg.backend == "ultralytics":
        weights, history, steps, interrupted, plots, skipped = _train_yolo(cfg, data, out, resume)
    elif cfg.backend == "torchvision":
        weights, history, steps, interrupted, plots, skipped = _train_torchvision(cfg, data, out, resume, log)
    else:
        weights, history, steps, interrupted, plots, skipped = _train_detectron2(cfg, data, out, resume)
    train_seconds = time.time() - started
    if rank > 0:
        return Run(dir=out, record=record, config=cfg, data=data, history=pd.DataFrame(), steps=None, predictor=None,
                   evals={}, predictions=None, interrupted=bool(interrupted))
    record.weights = relative(weights, out)
    record.save(out)

    predictor = load_detector(out, device=cfg.device)
    if "val" not in data.coco_json:  # trained on val (train_on_val): nothing here to score it on but test
        evals, predictions = {}, None
        metrics = {"kind": "detector", "name": cfg.name, "family": cfg.family, "model": str(cfg.model),
                   "dataset": data.name, "split": None, "imgsz": cfg.imgsz, "params": _parameters(predictor),
                   "task": _task(cfg.classes), "backend": cfg.backend, "weights_chosen": "last epoch"}
    else:
        evals, predictions = evaluate_predictor(predictor, data.coco_json["val"], data.image_dir["val"])
        metrics = detector_metrics(cfg.name, cfg.family, str(cfg.model), data.name, evals, imgsz=cfg.imgsz,
                                   params=_parameters(predictor),
                                   extra={"task": _task(cfg.classes), "backend": cfg.backend,
                                          "seconds_per_image": predictions.seconds_per_image,
                                          **evaluation_settings(predictor)})
    if cfg.backend == "ultralytics" and evals:
        from clothingrec.detect.yolo import native_val

        metrics.update(native_val(weights, data.yolo_yaml, imgsz=cfg.imgsz, batch=cfg.batch, device=cfg.device,
                                  out_dir=out, name="val"))
    record.metrics = {k: v for k, v in metrics.items() if k != "provenance"}
    record.provenance = provenance(command, train_seconds=round(train_seconds, 1), epochs_run=int(len(history)),
                                   interrupted=bool(interrupted), precision=trained_precision(cfg))
    if cfg.init_weights:
        record.provenance["started_from"] = started_from(cfg.init_weights_file())
    elif own_backbone_file(backbone := cfg.pretrained_backbone_file()):
        record.provenance["started_from"] = started_from(backbone)
    record.save(out)
    if len(history):
        history.to_csv(out / "history.csv", index=False)
    return Run(dir=out, record=record, config=cfg, data=data, history=history, steps=steps, predictor=predictor,
               evals=evals, predictions=predictions, interrupted=bool(interrupted), plots=plots, skipped=skipped)


def started_from(weights) -> dict:
    """What a run given ``init_weights`` started from: the weights file and, when it lies in a run folder
    (``<run>/checkpoints/best.pt``, ``<run>/yolo/weights/best.pt``), that run's name and learning curve, so
    that the restarted run's curve can be drawn after it and its cost counted from the first epoch; when they
    are a backbone pretrained here (a folder with ``backbone.json``, or a classifier run's exported weights
    given as an R-CNN's ``pretrained_backbone``), that record (data, accuracy, hours)."""
    from clothingrec.detect.backbone import RECORD, classifier_record, read_record
    from clothingrec.evaluate.curves import learning_curve

    weights = Path(weights).resolve()
    info = {"weights": str(relative(weights))}
    classifier = classifier_record(weights)
    if classifier:
        info["backbone"] = {"run": str(relative(weights.parent)), **classifier}
        return info
    parent = next((d for d in weights.parents if (d / "run.json").is_file() or (d / RECORD).is_file()), None)
    backbone = read_record(parent) if parent is not None else None
    if backbone:
        info["backbone"] = {"run": str(relative(parent)), **backbone}
    elif parent is not None:
        curve = learning_curve(parent)
        info.update(run=str(relative(parent)), name=curve.attrs.get("name"),
                    curve=curve.round(6).to_dict(orient="records"))
    return info


def trained_precision(cfg: DetectConfig) -> str:
    """The precision a run trains in, ``auto`` resolved as its backend does it: the torchvision loop as the
    classifier (bf16 where the GPU has it); ultralytics and detectron2 by their fp16 AMP on CUDA."""
    from clothingrec.device import resolve_device, resolve_precision

    name = str(cfg.device)
    device = resolve_device("cuda" if name.replace(",", "").isdigit() else name)  # ultralytics' "0,1"
    if cfg.precision != "auto" or cfg.backend == "torchvision":
        return resolve_precision(cfg.precision, device)
    return "16-mixed" if device.type == "cuda" else "32-true"


def _task(classes) -> str:
    """What the comparison calls the detector's task: ``person`` or ``clothing``."""
    return "person" if classes == "person" else "clothing"


def _parameters(predictor) -> int | None:
    model = getattr(predictor, "model", None)
    inner = getattr(model, "model", model)  # ultralytics YOLO wraps its nn.Module
    try:
        return int(sum(p.numel() for p in inner.parameters()))
    except AttributeError:
        return None


# ---------------------------------------------------------------------------------------- runs
def run_data(run_dir, *, data=None, part: str = "val"):
    """``(prepared dataset, part)``: the data a run was trained on, re-prepared from its record, and the
    part of it that holds the run's stored ``part`` split (checked image by image, see :func:`locate_split`)."""
    record = RunRecord.load(run_dir)
    if data is None:
        data = prepare(DetectConfig(**record.config))
    return data, locate_split(record.split, data, part=part, what=str(relative(run_dir)))


@dataclass
class EvaluatedRun:
    name: str
    family: str
    model: str
    run_dir: Path
    record: RunRecord
    data: object
    part: str             # the part of ``data`` scored (the run's stored split, under today's name)
    predictor: object
    evals: dict
    predictions: object
    metrics: dict

    @property
    def label(self) -> str:
        """Family, model and backend: tells apart two runs of one family (torchvision vs detectron2)."""
        return f"{self.family} {self.model} ({self.record.backend})"


def evaluate_run(run_dir, data=None, *, part: str = "val", device="auto",
                 max_images: int | None = None, imgsz: int | None = None, tta: bool = False,
                 score_threshold: float = EXPORT_SCORE_THRESHOLD, nms_iou: float | None = None) -> EvaluatedRun:
    """Score a run's detector on a split stored with it (``val``; ``test`` once, at the end), pycocotools.

    ``imgsz``: the inference size (longest side, every family) when not the one trained at; ``tta``: horizontal-flip
    test-time augmentation (:class:`~clothingrec.detect.tta.FlipTTAPredictor`); ``nms_iou``: the IoU of
    the detector's own duplicate suppression (None: its backend's default). All are settings to choose
    on val like a checkpoint; the metrics record them, and ``score_threshold``, the lowest score kept
    (the one for every backend unless studying the setting)."""
    from clothingrec.detect.predictor import load_detector
    from clothingrec.detect.tta import FlipTTAPredictor
    from clothingrec.evaluate import detector_metrics, evaluate_predictor

    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir)
    data, found = run_data(run_dir, data=data, part=part)
    predictor = load_detector(run_dir, device=device, imgsz=imgsz, score_threshold=score_threshold, nms_iou=nms_iou)
    if tta:
        predictor = FlipTTAPredictor(predictor)
    evals, preds = evaluate_predictor(predictor, data.coco_json[found], data.image_dir[found], max_images=max_images)
    metrics = detector_metrics(record.name, record.family, record.arch, record.dataset, evals,
                               imgsz=imgsz or record.imgsz,
                               params=record.metrics.get("params"),
                               split=part, provenance={"run_dir": relative(run_dir),
                                                       "split_digest": record.split[part]["digest"],
                                                       "prepared_part": found},
                               extra={"task": _task(record.config.get("classes")), "backend": record.backend,
                                      "trained_imgsz": record.imgsz, "seconds_per_image": preds.seconds_per_image,
                                      **evaluation_settings(predictor)})
    return EvaluatedRun(record.name, record.family, record.arch, run_dir, record, data, found, predictor, evals, preds,
                        metrics)


def evaluation_settings(predictor) -> dict:
    """What a score depends on besides weights, images and input size: the lowest score kept, test-time
    augmentation and the NMS IoU. Two scores of one run compare only where these agree (:func:`reproduces`)."""
    from clothingrec.detect.tta import nms_iou

    threshold = getattr(predictor, "score_threshold", getattr(predictor, "conf", None))
    return {"score_threshold": None if threshold is None else float(threshold),
            "tta": getattr(predictor, "tta", None), "nms_iou": nms_iou(predictor)}


def reproduces(stored: dict, metrics: dict) -> bool:
    """Whether ``metrics`` were scored as the run record's ``stored`` ones were (a record written before
    its settings were recorded compares with none): lowest score kept, test-time augmentation, and, where
    both record them, input size and NMS IoU."""
    keys = ("score_threshold", "tta")
    later = [k for k in ("imgsz", "nms_iou") if stored.get(k) is not None and metrics.get(k) is not None]
    return (all(k in stored for k in keys) and all(stored[k] == metrics.get(k) for k in keys)
            and all(stored[k] == metrics[k] for k in later))


#: the training notebooks whose latest runs notebook 06 evaluates
TRAINING_NOTEBOOKS = ("03_train_yolo", "04_train_fasterrcnn", "05_train_maskrcnn")


def find_runs(run_dirs=None) -> tuple[list[Path], list[str]]:
    """The run folders to evaluate (default: the latest run of each training notebook) and what is missing.

    A relative folder is looked up from the working directory, then from the project root (``make
    evaluate`` runs the notebook inside ``notebooks/``, while its user names runs from the root)."""
    from clothingrec.paths import latest_run, user_path

    found, missing = [], []
    if run_dirs:
        for p in [user_path(str(p).strip()) for p in (run_dirs.split(",") if isinstance(run_dirs, str) else run_dirs)]:
            (found if p.is_dir() else missing).append(p if p.is_dir() else f"{p}: no such run folder")
        return found, missing
    for nb in TRAINING_NOTEBOOKS:
        try:
            found.append(latest_run(nb))
        except FileNotFoundError as exc:
            missing.append(f"{nb}: {exc}")
    return found, missing


def inference_sizes(imgsz, run_dirs) -> list[int | None]:
    """Notebook 06's ``imgsz`` for each of ``run_dirs``: ``None`` (each at the size it was trained at),
    one size for every run, or one per run, comma-separated in the order of the runs (an empty entry
    keeps that run's size): ``"288,,587"``."""
    if imgsz is None or imgsz == "":
        return [None] * len(run_dirs)
    if isinstance(imgsz, int | float):
        return [int(imgsz)] * len(run_dirs)
    entries = [v.strip() for v in str(imgsz).split(",")]
    if len(entries) == 1:
        entries = entries * len(run_dirs)
    if len(entries) != len(run_dirs):
        raise ValueError(f"imgsz {imgsz!r} gives {len(entries)} sizes for {len(run_dirs)} runs "
                         f"({[Path(d).name for d in run_dirs]}): one size, or one per run in their order")
    try:
        sizes = [int(v) if v else None for v in entries]
    except ValueError:
        raise ValueError(f"imgsz {imgsz!r}: sizes are whole pixels (the longest input side)") from None
    if any(v is not None and v < 32 for v in sizes):
        raise ValueError(f"imgsz {imgsz!r}: an input side under 32 px")
    return sizes


# ---------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clothingrec.detect", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--config", default=None, help="experiment YAML (configs/detect/…)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"))
    args = parser.parse_args(argv)
    cfg = load_config(args.profile, args.config, **dict(args.param))
    run = fit(cfg, args.out, resume=args.resume)
    print({k: run.metrics.get(k) for k in ("name", "bbox_AP", "bbox_AP50", "segm_AP50")})
    return 0
