"""The model zoo: one lookup from a role to a loaded model, trained or an untrained stand-in.

``resolve(role, source)`` → ``(model, ModelInfo)`` for the roles of :data:`ROLES`:

- ``clothing-detector`` / ``person-detector`` → a detection :class:`~clothingrec.structures.Predictor`
  (through :func:`clothingrec.detect.load_detector`, keeping scores from
  :data:`~clothingrec.structures.SERVE_SCORE_THRESHOLD`); ``classifier`` → a
  :class:`~clothingrec.classify.ImageClassifier` (:func:`clothingrec.classify.load_classifier`).
- ``source``: ``"auto"`` — the role's committed weights under ``runs/results/`` (:func:`committed`, :data:`AUTO`),
  else its untrained stand-in; ``"untrained"`` — the stand-in; or a path (weights file or run folder).
- :class:`ModelInfo` names the weights relative to the project root (never the machine's absolute path)
  and says whether they are trained.

Stand-ins (:func:`untrained_detector`, :func:`untrained_yolo`, :func:`untrained_classifier`) are seeded,
freshly initialised networks of the project's architectures.  Given real images they are made
numerically realistic: :func:`recalibrate_batchnorm` re-estimates BatchNorm statistics (a fresh network
with BatchNorm's initial statistics shrinks activations layer after layer, to denormal floats that are
slow on a CPU), which serving agreement checks and timings need; accuracy they never have.
``weights/`` holds pretrained backbones for training (``clothingrec.weights``), not models of a role.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clothingrec.paths import RESULTS_DIR, SYNTHETIC_DIR, project_relative
from clothingrec.structures import EXPORT_SCORE_THRESHOLD, SERVE_SCORE_THRESHOLD

#: role → folder prefix of its committed runs under ``runs/results/``
ROLES = {"clothing-detector": "detector-", "person-detector": "person-", "classifier": "classifier-"}
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")
#: the committed run ``auto`` picks first for a role, when it is there with weights (else the first by name):
#: the web demo classifies garment crops of street photos, so its classifier is the one trained with CCP
#: crops added (README, "Classification": same product-photo accuracy, far better on worn clothing)
AUTO = {"classifier": "classifier-mobilenet_v3_small-scratch-mix-ccp"}
UNTRAINED = "untrained (smoke)"
BACKBONE = "mobilenet_v3_large_fpn"


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message names the role and the path."""


@dataclass
class ModelInfo:
    """What a user is told about a loaded model (the app's ``/api/info``, benchmark tables)."""

    role: str
    source: str              # weights relative to the project root, or UNTRAINED
    trained: bool
    architecture: str
    categories: list[str] = field(default_factory=list)
    serving: str = "eager"   # the backend that runs it, set by whoever serves it (clothingrec.serve)

    def to_dict(self) -> dict:
        return {"role": self.role, "source": self.source, "trained": self.trained,
                "weights": "trained" if self.trained else UNTRAINED, "architecture": self.architecture,
                "num_categories": len(self.categories), "serving": self.serving}


def committed(role: str, family: str | None = None, root: str | Path | None = None) -> Path | None:
    """The committed run of ``role`` holding a weights file: :data:`AUTO`'s choice when it matches
    ``<root>/<prefix><family>*``, else the first such folder by name; its folder for a detector
    (``load_detector`` finds the checkpoint), the file for a classifier."""
    folders = sorted(Path(root or RESULTS_DIR).glob(f"{ROLES[role]}{family or ''}*"))
    folders.sort(key=lambda folder: folder.name != AUTO.get(role))  # stable: the preferred one first
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        if files:
            return files[0] if role == "classifier" else folder
    return None


def display_name(path: str | Path) -> str:
    """``path`` relative to the project root; outside it, its name only (never an absolute path)."""
    name = project_relative(path)
    return Path(name).name if Path(name).is_absolute() else name


def resolve(role: str, source: str | Path = "auto", *, family: str | None = None, device="cpu",
            **untrained) -> tuple[object, ModelInfo]:
    """``(model, ModelInfo)`` of ``role`` from ``source`` (see module doc).

    ``family`` restricts ``auto`` to committed runs of that family or architecture (``detector-yolo*``,
    ``classifier-mobilenet_v3_small*``) and is the stand-in's (default: Faster R-CNN for persons, Mask
    R-CNN for garments, MobileNetV3-small); ``untrained`` are the stand-in's options
    (:func:`untrained_detector` / :func:`untrained_yolo` / :func:`untrained_classifier`).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    source = str(source)
    path = committed(role, family) if source == "auto" else None if source == "untrained" else Path(source)
    if path is None:
        return _untrained(role, family, device, untrained)
    if not path.exists():
        raise ModelLoadError(f"{role}: {source} does not exist (give a weights file or a run folder, "
                             "'auto' or 'untrained')")
    try:
        if role == "classifier":
            from clothingrec.classify import load_classifier

            model = load_classifier(path, device=device)
        else:
            from clothingrec.detect import load_detector

            model = load_detector(path, device=device, score_threshold=SERVE_SCORE_THRESHOLD)
    except Exception as exc:
        raise ModelLoadError(f"{role}: loading {display_name(path)} failed: {type(exc).__name__}: {exc}") from exc
    return model, ModelInfo(role, display_name(path), True, *_describe(model))


def _describe(model) -> tuple[str, list[str]]:
    if hasattr(model, "classify_crops"):
        return f"{model.meta.get('arch', type(model.model).__name__)} @{model.imgsz}px", list(model.classes)
    names = getattr(model, "category_names", {}) or {}
    return str(getattr(model, "family", type(model).__name__)), [names[k] for k in sorted(names)]


def _untrained(role: str, family: str | None, device, options: dict) -> tuple[object, ModelInfo]:
    if role == "classifier":
        model = untrained_classifier(family or "mobilenet_v3_small", device=device, **options)
        return model, ModelInfo(role, UNTRAINED, False, *_describe(model))
    if role == "person-detector":
        options.setdefault("categories", ("person",))
    family = family or ("fasterrcnn" if role == "person-detector" else "maskrcnn")
    if family == "yolo":
        model = untrained_yolo(device=device, **options)
        arch = f"{options.get('model', 'yolov8n')} @{model.imgsz}px"
    else:
        model = untrained_detector(family, device=device, **options)
        arch = f"{family} {options.get('backbone', BACKBONE)} @{model.model.transform.min_size[0]}px"
    return model, ModelInfo(role, UNTRAINED, False, arch, _describe(model)[1])


# ----------------------------------------------------------------------------- stand-ins
def recalibrate_batchnorm(module: nn.Module, batches: Iterable, forward=None) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``module`` over ``batches``.

    ``forward(module, batch)`` runs one batch (default ``module(batch)``).  Returns the number of
    BatchNorm layers updated.  The module is left in eval mode; weights are untouched.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
    module.eval()
    for m in norms:
        m.train()
    try:
        with torch.no_grad():
            for batch in batches:
                (forward or (lambda mod, b: mod(b)))(module, batch)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        module.eval()
    return len(norms)


def validation_images(n: int = 4, root: str | Path | None = None) -> list[np.ndarray]:
    """The first ``n`` images (RGB uint8) of the synthetic DeepFashion2-format validation split."""
    from clothingrec.evaluate import read_image

    folder = Path(root) if root else SYNTHETIC_DIR / "deepfashion2" / "validation" / "image"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no validation images in {folder}; run `make data` (it writes the synthetic "
                                "DeepFashion2-format set)")
    return [read_image(p) for p in files[:n]]


def _tensors(images) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255) for im in images]


def untrained_classifier(name: str = "mobilenet_v3_small", imgsz: int = 64, *, seed: int = 0,
                         crop_frac: float = 0.875, calibration_per_class: int = 0, device="cpu"):
    """A seeded untrained classifier of clothing-dataset-small's 10 classes as an ``ImageClassifier``;
    with ``calibration_per_class``, BatchNorm re-estimated on that many training images per class."""
    from clothingrec.classify import ImageClassifier, build_classifier
    from clothingrec.datasets.clothing_small import CLASSES

    torch.manual_seed(seed)
    model = build_classifier(name, len(CLASSES), pretrained=None).eval()
    note = f"untrained (seed {seed})" + (", BatchNorm re-estimated" if calibration_per_class else "")
    classifier = ImageClassifier(model, CLASSES, int(imgsz), int(round(imgsz / crop_frac)),
                                 {"arch": name, "source": note})
    if calibration_per_class:
        from clothingrec.classify.inference import split_tensor

        x, _, _ = split_tensor(classifier, "train", per_class=calibration_per_class, seed=seed)
        recalibrate_batchnorm(model, [x[i:i + 16] for i in range(0, len(x), 16)])
    model.to(device)
    return classifier


def untrained_detector(family: str = "fasterrcnn", backbone: str = BACKBONE, *, categories: Sequence[str] | None = None,
                       min_size: int = 320, max_size: int | None = None, seed: int = 0,
                       images: Sequence[np.ndarray] | None = None, logit_scale: float = 1.0, device="cpu",
                       score_threshold: float = EXPORT_SCORE_THRESHOLD, **model_kwargs):
    """A seeded untrained torchvision detector behind :class:`~clothingrec.detect.TorchvisionPredictor`.

    ``categories``: names of COCO ids 1.. (default DeepFashion2's 13); ``max_size`` defaults to the
    longest side that the detection config's ``imgsz`` rule pairs with ``min_size``.  Given ``images``, BatchNorm
    of the backbone is re-estimated on them (through the model's own resize).  ``logit_scale`` multiplies the
    class-score layer: its default initialisation gives every class ~1/K (scores tied), which makes any
    comparison of rankings meaningless; scaled (e.g. 10), scores spread like a trained model's.  ``model_kwargs``
    go to ``build_detector``.
    """
    from clothingrec.datasets.deepfashion2 import CATEGORIES
    from clothingrec.detect import TorchvisionPredictor, build_detector
    from clothingrec.detect.config import SHORT_SIDE

    names = {i + 1: n for i, n in enumerate(categories or CATEGORIES)}
    torch.manual_seed(seed)
    model = build_detector(family, backbone, len(names) + 1, pretrained=None, min_size=min_size,
                           max_size=max_size or int(round(min_size / SHORT_SIDE)), **model_kwargs).eval()
    if images is not None:
        tensors = _tensors(images)

        def forward(m, batch):
            m.backbone(m.transform(batch)[0].tensors)

        recalibrate_batchnorm(model, [tensors[i:i + 2] for i in range(0, len(tensors), 2)], forward)
    if logit_scale != 1.0:
        with torch.no_grad():
            model.roi_heads.box_predictor.cls_score.weight.mul_(float(logit_scale))
    # model label i is COCO category id i (ids from 1, 0 = background), as in the trained checkpoints
    return TorchvisionPredictor(model, {i: i for i in names}, names, device=device, score_threshold=score_threshold)


def untrained_yolo(model: str = "yolov8n", *, imgsz: int = 320, seed: int = 0, workdir: str | Path | None = None,
                   images: Sequence[np.ndarray] | None = None, categories: Sequence[str] | None = None,
                   conf: float = 0.05, device="cpu"):
    """A seeded untrained ultralytics detector saved as ``.pt`` (cached in ``workdir``) behind a YoloPredictor.

    Given ``images``, BatchNorm is re-estimated on them; the class-logit bias (initialised for a trained
    prior, ~1e-4 confidences) is zeroed so confidences spread around 0.5 and agreement checks compare boxes.
    """
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from clothingrec.datasets.deepfashion2 import CATEGORIES
    from clothingrec.detect.yolo import YoloPredictor, quiet_ultralytics
    from clothingrec.paths import CACHE_DIR

    categories = list(categories or CATEGORIES)
    workdir = Path(workdir or CACHE_DIR / "serve")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{model}-seed{seed}-nc{len(categories)}-{imgsz}{'-bn' if images is not None else ''}-v3.pt"
    if not path.is_file():
        torch.manual_seed(seed)
        with quiet_ultralytics(True):
            yolo = YOLO(f"{model}.yaml")
            net = DetectionModel(f"{model}.yaml", nc=len(categories), verbose=False)
        net.names = dict(enumerate(categories))
        if images is not None:
            batch = [nn.functional.interpolate(t[None], size=(imgsz, imgsz), mode="bilinear", align_corners=False)
                     for t in _tensors(images)]
            recalibrate_batchnorm(net, [torch.cat(batch[i:i + 4]) for i in range(0, len(batch), 4)])
        for branch in getattr(net.model[-1], "cv3", []):
            last = branch[-1] if isinstance(branch, nn.Sequential) else None
            if isinstance(last, nn.Conv2d) and last.bias is not None:
                with torch.no_grad():
                    last.bias.zero_()
        yolo.model = net
        yolo.save(str(path))
    return YoloPredictor(path, imgsz=imgsz, device=device, conf=conf)
