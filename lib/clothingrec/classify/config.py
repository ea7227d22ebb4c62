"""One flat configuration per classifier experiment: YAML file ↔ dataclass ↔ notebook parameters.

Every field is also a papermill parameter of ``09_train_classifier`` (``make train-classifier
PARAMS='-p lr 0.003'``) and most have a Make variable (``MODEL=``, ``EPOCHS=``, ``IMGSZ=``, ``BATCH=``,
``DEVICE=``).  The notebook's parameters cell holds ``None`` for every field, meaning "as in the YAML
config"; a value given there overrides the YAML.  :func:`resolve_config` does that merge.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from clothingrec.config_cast import cast_fields
from clothingrec.paths import CONFIG_DIR

CLASSIFIER_CONFIG_DIR = CONFIG_DIR / "classifier"
#: profile name → config file in configs/classifier/
PROFILES = {"smoke": "smoke.yaml", "full": "mobilenet_v3_small_scratch.yaml"}


def monitor_mode(monitor: str) -> str:
    """``"min"`` for a loss, ``"max"`` for a score: how a checkpoint or early stop reads ``monitor``."""
    return "min" if monitor == "val_loss" else "max"


@dataclass
class ClassifierConfig:
    # --- experiment --------------------------------------------------------------------------
    name: str = "classifier-mobilenet_v3_small-scratch"
    model: str = "mobilenet_v3_small"      # torchvision name, timm name, or "timm/<name>"
    pretrained: str | None = None          # None: from scratch; "DEFAULT" or a weights enum name
    dataset: str | None = None             # folder; None: clothingrec.paths.find_dataset
    train_per_class: int | None = None     # cap images per class (smoke runs); None: all
    eval_per_class: int | None = None      # same cap for validation and test
    extra_train: str | None = None         # a second training set added to the train split: "ccp-crops" (garment
                                           # crops of CCP's train part, `make data`) or a folder in the dataset's
                                           # layout; validation and test stay the dataset's own.  With
                                           # objective simclr also "ccp-photos": CCP's train-part photos, unlabelled
    objective: str = "supervised"          # supervised | simclr (self-supervised pretraining: two augmented views
                                           # per image, NT-Xent loss on a projection head; validated by k-NN on
                                           # the labelled train images; its weights initialise a supervised run)
    simclr_temperature: float = 0.2        # NT-Xent temperature
    simclr_proj_dim: int = 128             # projection head output size
    init_weights: str | None = None        # start from another run's weights (run folder, exported .pt or .ckpt):
                                           # every tensor with the same name and shape, the head left new
    teachers: str | None = None            # knowledge distillation: comma-separated classifier runs (folders or
                                           # exported .pt); the student also matches their averaged softened
                                           # predictions on the very same (augmented, mixed) batch
    distill_weight: float = 0.5            # loss = (1 - w) · cross-entropy + w · T² · KL(teachers ‖ student)
    distill_temperature: float = 2.0       # T
    seed: int = 0
    # --- input -------------------------------------------------------------------------------
    imgsz: int = 224                       # training / evaluation crop size
    crop_frac: float = 0.875               # eval: resize shorter side to imgsz/crop_frac, centre crop
    channels_last: bool = True
    bn_momentum: float | None = None       # None: the architecture's own (torchvision mobilenet_v3: 0.01,
                                           # too slow for eval-mode statistics in runs of a few dozen steps)
    precise_bn_batches: int = 0            # before each validation, recompute BatchNorm statistics of the
                                           # weights being validated on this many (eval-cropped) train batches
    # --- optimisation ------------------------------------------------------------------------
    epochs: int = 40
    batch: int = 64
    eval_batch: int | None = None          # None: 2 × batch
    optimizer: str = "adamw"               # adamw | sgd
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    scheduler: str = "cosine"              # cosine | constant
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    grad_clip: float | None = 2.0          # gradient norm clipping; None/0: off
    sampler: str = "weighted"              # weighted (class-balanced draws with replacement) | shuffle
    # --- augmentation (applied to whole batches on the device) --------------------------------
    aug_scale_min: float = 0.25            # random resized crop: smallest area fraction
    aug_ratio: float = 1.333               # aspect ratio drawn from [1/r, r]
    aug_hflip: float = 0.5                 # probability
    aug_rotation: float = 15.0             # degrees, uniform in [-d, d]
    aug_brightness: float = 0.3
    aug_contrast: float = 0.3
    aug_saturation: float = 0.3
    aug_hue: float = 0.03                  # fraction of a full turn
    aug_grayscale: float = 0.0             # probability of turning an image gray
    mixup_alpha: float = 0.0               # mixup: λ ~ Beta(α, α) blends two images and their targets;
                                           # 0: off
    cutmix_alpha: float = 0.0              # cutmix: a box of area 1-λ (λ ~ Beta(α, α)) pasted from another image;
                                           # 0: off
    mix_prob: float = 1.0                  # probability that a batch is mixed (cutmix or mixup, 50/50 when both on)
    # --- precision, averaging, schedule control ----------------------------------------------
    precision: str = "auto"                # auto: 32-true on CPU, bf16-mixed/16-mixed on GPU; or any Lightning value
    averaging: str = "none"                # none | swa | ema (validated and checkpointed as averaged weights)
    swa_start: float = 0.75                # SWA: first averaged epoch as a fraction of epochs
    ema_decay: float = 0.998
    lr_find: bool = False                  # run Lightning's LR finder first (plot in the notebook)
    lr_find_steps: int = 60
    lr_find_apply: bool = False            # use the suggested LR instead of ``lr``
    batch_find: bool = False               # run Lightning's batch-size finder (power mode) first; reported, not applied
    batch_find_trials: int = 4             # doublings tried from ``batch``
    monitor: str = "val_macro_f1"          # checkpoint / early-stopping metric (monitor_mode: val_loss minimised)
    patience: int = 0                      # early stopping patience in validation epochs; 0: off
    time_budget_h: float | None = None     # stop at the last epoch end that fits in this many hours (per sitting)
    schedule_time: bool = True             # with time_budget_h: cosine progress also follows wall time so the LR
                                           # reaches its floor on time (one sitting); false: by optimizer steps over
                                           # ``epochs``
    resume: str | None = None              # continue a run: its folder, a .ckpt, or true (output_dir's last.ckpt)
    # --- hardware ----------------------------------------------------------------------------
    device: str = "auto"
    devices: Any = 1                       # Lightning devices: 1, 2, "auto" (DDP on several GPUs)
    strategy: str = "auto"
    workers: int = 0                       # DataLoader workers (the store makes 0 fine on CPU)
    threads: int | None = None             # torch intra-op threads; None: torch default
    store_workers: int = 2                 # threads decoding JPEGs once into the uint8 store
    cache_store: bool = True               # keep the decoded store on disk (.cache/classify)

    # ---------------------------------------------------------------------------------------
    @property
    def resize_size(self) -> int:
        return int(round(self.imgsz / self.crop_frac))

    @property
    def eval_batch_size(self) -> int:
        return int(self.eval_batch or 2 * self.batch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def replace(self, **changes) -> ClassifierConfig:
        return dataclasses.replace(self, **_typed(changes))

    @property
    def teacher_list(self) -> list[str]:
        return [t.strip() for t in (self.teachers or "").split(",") if t.strip()]

    def validate(self) -> ClassifierConfig:
        problems = []
        if self.imgsz < 32:
            problems.append(f"imgsz={self.imgsz} is below 32")
        if not 0 < self.crop_frac <= 1:
            problems.append(f"crop_frac={self.crop_frac} must be in (0, 1]")
        if self.optimizer not in ("adamw", "sgd"):
            problems.append(f"optimizer={self.optimizer!r} is not adamw or sgd")
        if self.scheduler not in ("cosine", "constant"):
            problems.append(f"scheduler={self.scheduler!r} is not cosine or constant")
        if self.objective not in ("supervised", "simclr"):
            problems.append(f"objective={self.objective!r} is not supervised or simclr")
        if self.extra_train == "ccp-photos" and self.objective != "simclr":
            problems.append("extra_train='ccp-photos' (unlabelled) needs objective simclr")
        elif self.extra_train not in (None, "ccp-crops", "ccp-photos") and not Path(self.extra_train).is_dir():
            problems.append(f"extra_train={self.extra_train!r} is neither 'ccp-crops', 'ccp-photos' nor a folder")
        if self.objective == "simclr" and self.sampler != "shuffle":
            problems.append("objective simclr needs sampler shuffle (unlabelled images have no class to balance)")
        if self.objective == "simclr" and (self.mixup_alpha or self.cutmix_alpha):
            problems.append("objective simclr does not mix batches (set mixup_alpha and cutmix_alpha to 0)")
        if self.simclr_temperature <= 0 or self.simclr_proj_dim < 1:
            problems.append("simclr_temperature must be > 0 and simclr_proj_dim >= 1")
        if not 0 <= self.distill_weight <= 1 or self.distill_temperature <= 0:
            problems.append("distill_weight must be in [0, 1] and distill_temperature > 0")
        if self.teachers and self.objective != "supervised":
            problems.append("teachers (distillation) need objective supervised")
        if not 0 <= self.aug_grayscale <= 1:
            problems.append(f"aug_grayscale={self.aug_grayscale} must be in [0, 1]")
        if self.sampler not in ("weighted", "shuffle"):
            problems.append(f"sampler={self.sampler!r} is not weighted or shuffle")
        if self.averaging not in ("none", "swa", "ema"):
            problems.append(f"averaging={self.averaging!r} is not none, swa or ema")
        if self.monitor not in ("val_macro_f1", "val_acc", "val_loss"):
            problems.append(f"monitor={self.monitor!r} is not val_macro_f1, val_acc or val_loss")
        if not 0 < self.aug_scale_min <= 1:
            problems.append(f"aug_scale_min={self.aug_scale_min} must be in (0, 1]")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0 or not 0 <= self.mix_prob <= 1:
            problems.append("mixup_alpha and cutmix_alpha must be >= 0 and mix_prob in [0, 1]")
        if self.epochs < 1 or self.batch < 1:
            problems.append("epochs and batch must be positive")
        if problems:
            raise ValueError("invalid classifier config: " + "; ".join(problems))
        return self


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ClassifierConfig))


def config_fields() -> tuple[str, ...]:
    """Names of all config fields (= the notebook parameters besides profile/config/output_dir)."""
    return FIELD_NAMES


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    if isinstance(values.get("resume"), bool):  # papermill -p resume True / False
        values = {**values, "resume": "true" if values["resume"] else None}
    return cast_fields(ClassifierConfig, values, "classifier")


def load_config(source: str | Path | dict | None = None, **overrides) -> ClassifierConfig:
    """A config from a YAML path, a profile name (``smoke``/``full``), a dict, or None (defaults)."""
    data: dict[str, Any] = {}
    if isinstance(source, dict):
        data = dict(source)
    elif source is not None:
        path = config_path(source)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
        try:
            _typed(data)
        except KeyError as exc:
            raise KeyError(f"{path}: {exc.args[0]}") from None
    cfg = ClassifierConfig(**_typed(data))
    if overrides:
        cfg = cfg.replace(**overrides)
    return cfg.validate()


def config_path(source: str | Path) -> Path:
    """Resolve a profile name or a (relative) YAML path to an existing file."""
    text = str(source)
    if text in PROFILES:
        return CLASSIFIER_CONFIG_DIR / PROFILES[text]
    for candidate in (Path(text), CONFIG_DIR.parent / text, CLASSIFIER_CONFIG_DIR / text,
                      CLASSIFIER_CONFIG_DIR / f"{text}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.name for p in CLASSIFIER_CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"classifier config {text!r} not found (profiles: {', '.join(PROFILES)}; files: {known})")


def resolve_config(profile: str = "smoke", config: str | Path | None = None,
                   params: dict[str, Any] | None = None) -> ClassifierConfig:
    """The notebook's merge: YAML (``config``, else the profile's file) + every parameter that is not None."""
    overrides = {k: v for k, v in (params or {}).items() if k in FIELD_NAMES and v is not None}
    return load_config(config or profile, **overrides)


def to_params(cfg: ClassifierConfig) -> dict[str, Any]:
    """Papermill parameters that reproduce ``cfg`` exactly over any base config.

    ``None`` in a notebook parameter means "as in the YAML", so an empty optional field is
    written as the string ``"none"`` (``-r train_per_class none``), which clears it.
    """
    return {k: ("none" if v is None else v) for k, v in json.loads(json.dumps(cfg.to_dict())).items()}
