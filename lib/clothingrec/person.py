"""The person detector: one-class torchvision Faster / Mask R-CNN on Penn-Fudan-format data or CCP silhouettes.

Everything that is not person-specific is shared with the clothing detectors: the dataset comes from
:func:`clothingrec.convert.prepare_detection_dataset` (``classes="person"``), the model from
:func:`clothingrec.detect.models.build_detector` with ``num_classes=2`` (background + person), the
training loop and the pycocotools evaluation from :mod:`clothingrec.detect` / :mod:`clothingrec.evaluate`.

What this module adds is the leak-free split: the train / val file lists of a run are written to
``split.json`` beside its checkpoint (with the dataset name and seed), and evaluation re-checks the
prepared val set against that record before scoring, so a model is never scored on images it
trained on (the published project re-drew an unseeded split at evaluation time).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from clothingrec import paths

SPLIT_FILE = "split.json"

#: dataset parameter → prepare_detection_dataset name
DATASETS = ("synthetic-pennfudan", "pennfudan", "ccp")


class SplitMismatch(RuntimeError):
    """The val split about to be scored is not the one stored with the run (or overlaps its train split)."""


def default_dataset(profile: str) -> str:
    """Smoke: the synthetic Penn-Fudan set.  Full: the user's Penn-Fudan if present, else CCP silhouettes."""
    if profile == "smoke":
        return "synthetic-pennfudan"
    if paths.find_dataset(paths.PENNFUDAN, required=False) is not None:
        return "pennfudan"
    return "ccp"


# ---------------------------------------------------------------- the split record
def _image_names(coco_json) -> list[str]:
    from clothingrec.evaluate import load_coco

    coco = load_coco(coco_json)
    return sorted(str(im["file_name"]) for im in coco.dataset["images"])


def _digest(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


@dataclass
class SplitRecord:
    dataset: str
    seed: int
    train: list[str]
    val: list[str]

    @classmethod
    def from_coco(cls, dataset: str, seed: int, coco_json: dict) -> "SplitRecord":
        record = cls(dataset, int(seed), _image_names(coco_json["train"]), _image_names(coco_json["val"]))
        record.check_disjoint()
        return record

    def check_disjoint(self) -> None:
        overlap = sorted(set(self.train) & set(self.val))
        if overlap:
            raise SplitMismatch(f"{len(overlap)} images are in both train and val of {self.dataset} "
                                f"(first: {overlap[:5]})")

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "seed": self.seed, "n_train": len(self.train), "n_val": len(self.val),
                "train_sha": _digest(self.train), "val_sha": _digest(self.val),
                "train": self.train, "val": self.val}

    def save(self, folder) -> Path:
        path = Path(folder) / SPLIT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> "SplitRecord":
        path = Path(path)
        if path.is_dir():
            path = path / SPLIT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no split record {path}: the run did not store its split")
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("dataset", "seed", "train", "val"):
            if key not in data:
                raise ValueError(f"split record {path} has no field {key!r}")
        record = cls(data["dataset"], int(data["seed"]), list(data["train"]), list(data["val"]))
        record.check_disjoint()
        return record


def verify_split(stored: SplitRecord, coco_json: dict, *, dataset: str | None = None) -> SplitRecord:
    """Check that the prepared train / val sets are the stored ones; raise :class:`SplitMismatch` if not.

    Called before every evaluation of a trained person detector: the val images must be exactly the
    ones the run held out, and none of them may be a training image.
    """
    current = SplitRecord.from_coco(dataset or stored.dataset, stored.seed, coco_json)
    if dataset is not None and dataset != stored.dataset:
        raise SplitMismatch(f"run was trained on {stored.dataset!r}, evaluation asked for {dataset!r}")
    leaked = sorted(set(current.val) & set(stored.train))
    if leaked:
        raise SplitMismatch(f"{len(leaked)} val images were training images of the run (first: {leaked[:5]})")
    if current.val != stored.val:
        missing = sorted(set(stored.val) - set(current.val))
        extra = sorted(set(current.val) - set(stored.val))
        raise SplitMismatch(f"val split differs from the one stored with the run: {len(missing)} missing "
                            f"(first: {missing[:3]}), {len(extra)} new (first: {extra[:3]})")
    return current


# ---------------------------------------------------------------- configuration
#: profile → defaults (every one can be overridden by a notebook parameter)
PROFILES = {
    "smoke": {"family": "fasterrcnn", "backbone": "mobilenet_v3_large_fpn", "epochs": 2, "imgsz": 192,
              "batch": 2, "lr": 0.02, "warmup_iters": 4, "scheduler": "multistep", "max_images": 12,
              "eval_batch": 4, "log_every": 0, "light_heads": True},
    # the published project's setting (Faster R-CNN R50-FPN, 10 epochs, step decay) at 512 px
    "full": {"family": "fasterrcnn", "backbone": "resnet50_fpn", "epochs": 10, "imgsz": 512, "batch": 2,
             "lr": 0.02, "warmup_iters": 200, "scheduler": "multistep", "max_images": None,
             "eval_batch": 2, "log_every": 50, "light_heads": False},
}


def build_config(profile: str = "smoke", *, dataset: str | None = None, model: str | None = None,
                 family: str | None = None, backbone: str | None = None, epochs: int | None = None,
                 imgsz: int | None = None, batch: int | None = None, lr: float | None = None,
                 scheduler: str | None = None, max_images: int | None = None, device: str = "auto",
                 workers: int = 0, threads: int | None = None, seed: int = 0,
                 time_limit_min: float | None = None, pretrained: str | None = None,
                 pretrained_backbone: str | None = None, hflip: float = 0.5,
                 light_heads: bool | None = None):
    """``(dataset, max_images, TrainConfig)`` for a person-detector run.

    ``model`` may name family and backbone at once (``"fasterrcnn_mobilenet_v3_large_fpn"``,
    ``"maskrcnn_resnet50_fpn"``); explicit ``family`` / ``backbone`` win.  ``imgsz`` is the shorter
    side the model resizes to (``min_size``; ``max_size`` = 5/3 of it).  ``light_heads``: fewer RPN
    proposals and RoI samples (:data:`clothingrec.detect.LIGHT_HEADS`, about 3x faster on a CPU).  The learning rate follows a
    linear warmup and then ``scheduler``: ``multistep`` (step decay ×0.1 at 67 % and 89 % of the run,
    the StepLR of the torchvision recipe, stepped every iteration) or ``cosine``.
    """
    from clothingrec.detect.engine import LIGHT_HEADS, TrainConfig
    from clothingrec.detect.models import BACKBONES, FAMILIES

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    p = dict(PROFILES[profile])
    if model:
        fam, _, bb = str(model).partition("_")
        if fam not in FAMILIES or bb not in BACKBONES:
            raise ValueError(f"model {model!r} is not <family>_<backbone> with family in {FAMILIES} and "
                             f"backbone in {sorted(BACKBONES)}")
        p["family"], p["backbone"] = fam, bb
    for key, value in (("family", family), ("backbone", backbone), ("epochs", epochs), ("imgsz", imgsz),
                       ("batch", batch), ("lr", lr), ("scheduler", scheduler), ("light_heads", light_heads)):
        if value is not None:
            p[key] = value
    if max_images is not None:
        p["max_images"] = max_images
    dataset = dataset or default_dataset(profile)
    if dataset not in DATASETS:
        raise ValueError(f"unknown person dataset {dataset!r}; choose one of {DATASETS}")
    imgsz = int(p["imgsz"])
    cfg = TrainConfig(
        family=p["family"], backbone=p["backbone"], epochs=int(p["epochs"]), batch=int(p["batch"]),
        lr=float(p["lr"]), warmup_iters=int(p["warmup_iters"]), scheduler=p["scheduler"],
        min_size=imgsz, max_size=int(round(imgsz * 5 / 3)), workers=int(workers), device=device,
        seed=int(seed), pretrained=pretrained, pretrained_backbone=pretrained_backbone, hflip=float(hflip),
        time_limit_s=float(time_limit_min) * 60 if time_limit_min else None, threads=threads,
        eval_batch=int(p["eval_batch"]), log_every=int(p["log_every"]),
        model_kwargs=dict(LIGHT_HEADS) if p["light_heads"] else {})
    return dataset, p["max_images"], cfg


# ---------------------------------------------------------------- data, training, evaluation
def prepare(dataset: str, *, task: str = "detect", max_images: int | None = None, seed: int = 0):
    """The person dataset converted to COCO (``classes="person"``) into the detectors' shared cache."""
    from clothingrec.detect import settings

    if dataset not in DATASETS:
        raise ValueError(f"unknown person dataset {dataset!r}; choose one of {DATASETS}")
    return settings.prepare(dataset, task=task, classes="person", max_images=max_images, seed=seed)


def record_split(data, out_dir, *, seed: int, max_images: int | None) -> SplitRecord:
    """Write the run's ``split.json`` (file lists + how to re-prepare them) before training starts."""
    record = SplitRecord.from_coco(data.name, seed, data.coco_json)
    path = record.save(out_dir)
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload["prepare"] = {"dataset": data.name, "task": data.task, "max_images": max_images, "seed": seed}
    path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return record


def train_person(data, out_dir, cfg, *, max_images: int | None = None, resume: bool = False, log=print):
    """Store the split with the run, then train with the shared loop (:func:`clothingrec.detect.train`).

    On ``resume`` the stored split must match the prepared one (else :class:`SplitMismatch`).
    """
    from clothingrec.detect import train

    if list(data.class_names) != ["person"]:
        raise ValueError(f"{data.name} was not prepared with classes='person': categories {data.class_names}")
    out_dir = Path(out_dir)
    stored = out_dir / SPLIT_FILE
    if resume and stored.is_file():
        verify_split(SplitRecord.load(stored), data.coco_json, dataset=data.name)
    else:
        record_split(data, out_dir, seed=cfg.seed, max_images=max_images)
    return train(data.coco_json["train"], data.image_dir["train"], data.coco_json["val"], data.image_dir["val"],
                 out_dir, cfg, resume=resume, log=log)


def evaluate_run(run_dir, data=None, *, device: str = "auto", max_images: int | None = None):
    """Score a trained person detector on the val split stored with its run (pycocotools, shared code).

    ``data``: the prepared dataset (re-prepared from ``split.json`` when None).  The split is checked
    against the stored record first (:func:`verify_split`).  Returns ``(evals, prediction_run, predictor)``.
    """
    from clothingrec.detect import load_detector
    from clothingrec.evaluate import evaluate_predictor

    run_dir = Path(run_dir)
    stored = SplitRecord.load(run_dir / SPLIT_FILE)
    if data is None:
        meta = json.loads((run_dir / SPLIT_FILE).read_text(encoding="utf-8")).get("prepare", {})
        data = prepare(meta.get("dataset", stored.dataset), task=meta.get("task", "detect"),
                       max_images=meta.get("max_images"), seed=int(meta.get("seed", stored.seed)))
    verify_split(stored, data.coco_json, dataset=data.name)
    predictor = load_detector(run_dir, device=device)
    evals, run = evaluate_predictor(predictor, data.coco_json["val"], data.image_dir["val"], max_images=max_images)
    return evals, run, predictor


def load_person_detector(run_dir, *, device: str = "auto", score_threshold: float = 0.05):
    """A person predictor (``predict(image) -> Detections``, label 1 = person) from a 07 run folder."""
    from clothingrec.detect import load_detector

    return load_detector(run_dir, device=device, score_threshold=score_threshold)


# ---------------------------------------------------------------- plots
def plot_training(history, steps, *, title: str = "person detector training"):
    """Loss per step (and per-epoch mean), learning rate per step, bbox AP / AP50 per epoch."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    ax = axes[0]
    if steps is not None and len(steps):
        ax.plot(steps["step"], steps["loss"], lw=0.8, alpha=0.6, label="step")
        if history is not None and len(history) and "loss" in history:
            ax.plot(history["step"], history["loss"], "o-", label="epoch mean")
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_title("training loss")
    ax.legend(fontsize=7)
    ax = axes[1]
    if steps is not None and len(steps):
        ax.plot(steps["step"], steps["lr"])
    ax.set_xlabel("iteration")
    ax.set_title("learning rate (stepped every iteration)")
    ax = axes[2]
    if history is not None and len(history):
        for key in ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50"):
            if key in history:
                ax.plot(history["epoch"], history[key], "o-", label=key)
        ax.legend(fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1)
    ax.set_title("validation AP per epoch (pycocotools)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
