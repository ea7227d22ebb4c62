"""Loading the three models once: person detector, clothing detector, garment classifier.

Each is given as ``"auto"`` (the project's committed weights under ``runs/results/`` when present,
otherwise untrained), ``"untrained"`` (freshly initialised, seeded, same architecture as the
project's models; labelled "untrained (smoke)" everywhere) or a path to a run folder / checkpoint,
loaded through the library (``clothingrec.detect.load_detector``, ``clothingrec.classify.load_classifier``).
Nothing is ever fetched from the network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from clothingrec.classify import build_classifier, load_classifier
# clothing-dataset-small's class order (the untrained classifier's output order)
from clothingrec.datasets.clothing_small import CLASSES as CLASSIFIER_CLASSES
# DeepFashion2's 13 categories (COCO ids 1..13), used by the untrained clothing detector
from clothingrec.datasets.deepfashion2 import CATEGORIES as DF2_CATEGORIES
from clothingrec.detect import TorchvisionPredictor, load_detector
from clothingrec.paths import RESULTS_DIR

UNTRAINED = "untrained (smoke)"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")


class ModelLoadError(RuntimeError):
    """A configured model could not be loaded; the message names the role and the path."""


@dataclass
class ModelInfo:
    """What the UI and the API say about one loaded model."""

    role: str
    source: str            # path it was loaded from, or UNTRAINED
    trained: bool
    architecture: str
    categories: list[str] = field(default_factory=list)
    serving: str = "eager"  # the backend that runs it (clothingrec.serve): eager, onnx-fp32, onnx-int8, …

    def to_dict(self) -> dict:
        return {"role": self.role, "source": self.source, "trained": self.trained,
                "weights": "trained" if self.trained else UNTRAINED,
                "architecture": self.architecture, "num_categories": len(self.categories),
                "serving": self.serving}


# --------------------------------------------------------------------------- detectors
def _untrained_detector(family: str, backbone: str, categories: list[str], min_size: int, seed: int,
                        device: torch.device, detections_per_img: int):
    from clothingrec.detect.models import build_detector

    torch.manual_seed(seed)
    model = build_detector(family, backbone, num_classes=len(categories) + 1, pretrained=None,
                           min_size=min_size, max_size=2 * min_size,
                           box_detections_per_img=detections_per_img,
                           rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100)
    names = {i + 1: name for i, name in enumerate(categories)}
    # model label i is COCO category id i (ids from 1, 0 = background), as in our trained checkpoints
    return TorchvisionPredictor(model, {i: i for i in names}, names, device=device)


def _find_weights(folder_glob: str, pattern: str = "*", *, folder: bool = False) -> Path | None:
    """First weights file (by name) under ``runs/results/<folder_glob>/`` (or its folder), or None."""
    for candidate in sorted(RESULTS_DIR.glob(folder_glob)):
        files = sorted(p for p in candidate.rglob(pattern) if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        if files:
            return candidate if folder else files[0]
    return None


def _resolve_source(role: str, source: str, auto, what: str) -> Path | None:
    """The weights path ``source`` names: ``auto()`` for "auto", None for "untrained", else the path itself."""
    if source == "auto":
        return auto()
    if source == "untrained":
        return None
    path = Path(source)
    if not path.exists():
        raise ModelLoadError(f"{role}: {path} does not exist (give {what}, 'auto' or 'untrained')")
    return path


def load_detector_predictor(role: str, source: str, *, untrained_family: str, untrained_backbone: str,
                            categories: list[str], min_size: int, seed: int, device: torch.device,
                            detections_per_img: int, auto_glob: str):
    """(predictor, ModelInfo) for ``source`` in {"auto", "untrained", <path>}."""
    path = _resolve_source(role, source, lambda: _find_weights(auto_glob, folder=True),
                           "a run folder or a checkpoint file")
    if path is None:
        predictor = _untrained_detector(untrained_family, untrained_backbone, categories, min_size, seed,
                                        device, detections_per_img)
        arch = f"{untrained_family} {untrained_backbone} @{min_size}px"
        return predictor, ModelInfo(role, UNTRAINED, False, arch, list(categories))
    try:
        predictor = load_detector(path, device=device)
    except Exception as exc:
        raise ModelLoadError(f"{role}: loading {path} failed: {type(exc).__name__}: {exc}") from exc
    names = getattr(predictor, "category_names", {}) or {}
    arch = str(getattr(predictor, "family", type(predictor).__name__))
    return predictor, ModelInfo(role, str(path), True, arch, [names[k] for k in sorted(names)])


# --------------------------------------------------------------------------- classifier
class CropClassifier:
    """Classifies garment crops: resize the crop's short side, centre-crop ``size``, normalise."""

    def __init__(self, model: torch.nn.Module, class_names: list[str], size: int, device: torch.device,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, transform=None):
        self.model = model.to(device).eval()
        self.class_names = list(class_names)
        self.size = int(size)
        self.device = device
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.transform = transform

    def _prepare(self, crop: np.ndarray) -> torch.Tensor:
        from PIL import Image

        pil = Image.fromarray(crop)
        if self.transform is not None:
            return self.transform(pil)
        w, h = pil.size
        scale = self.size / min(w, h)
        pil = pil.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))),
                         Image.BILINEAR)
        w, h = pil.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        pil = pil.crop((left, top, left + self.size, top + self.size))
        x = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return (x - self.mean[0]) / self.std[0]

    @torch.inference_mode()
    def classify(self, image: np.ndarray, boxes: np.ndarray) -> list[tuple[str, float]]:
        """Top-1 (label, probability) for each box (x1, y1, x2, y2) of ``image``."""
        if len(boxes) == 0:
            return []
        h, w = image.shape[:2]
        crops = []
        for x1, y1, x2, y2 in np.asarray(boxes, dtype=float):
            x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
            x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(np.clip(np.ceil(y2), y1 + 1, h))
            crops.append(self._prepare(image[y1:y2, x1:x2]))
        probs = torch.softmax(self.model(torch.stack(crops).to(self.device)).float(), dim=1).cpu()
        top = probs.max(dim=1)
        return [(self.class_names[int(i)], float(p)) for p, i in zip(top.values, top.indices)]


def load_crop_classifier(source: str, *, untrained_name: str, size: int, seed: int, device: torch.device):
    """(CropClassifier, ModelInfo) for ``source`` in {"auto", "untrained", <path>}."""
    path = _resolve_source("classifier", source,
                           lambda: _find_weights("classifier-mobilenet_v3_small*", "mobilenet_v3_small*"),
                           "a weights file")
    if path is None:
        torch.manual_seed(seed)
        model = build_classifier(untrained_name, num_classes=len(CLASSIFIER_CLASSES), pretrained=None)
        clf = CropClassifier(model, list(CLASSIFIER_CLASSES), size, device)
        return clf, ModelInfo("classifier", UNTRAINED, False, f"{untrained_name} @{size}px",
                              list(CLASSIFIER_CLASSES))
    try:
        loaded = load_classifier(path, device=device)
    except Exception as exc:
        raise ModelLoadError(f"classifier: loading {path} failed: {type(exc).__name__}: {exc}") from exc
    model, names, transform, size_ = _unpack_classifier(loaded, size)
    clf = CropClassifier(model, names, size_, device, transform=transform)
    return clf, ModelInfo("classifier", str(path), True, f"{type(model).__name__} @{size_}px", list(names))


def _unpack_classifier(loaded, default_size):
    """Accept the library's return value as an object with attributes or a tuple/dict."""
    if isinstance(loaded, dict):
        get = loaded.get
    elif isinstance(loaded, (tuple, list)):
        keys = ("model", "class_names", "transform", "size")
        values = dict(zip(keys, loaded))
        get = values.get
    else:
        def get(key, default=None):
            return getattr(loaded, key, default)
    model = get("model")
    names = get("class_names") or get("classes") or list(CLASSIFIER_CLASSES)
    transform = get("transform") or get("eval_transform")
    size = get("size") or get("imgsz") or get("image_size") or default_size
    if isinstance(size, (tuple, list)):
        size = size[0]
    return model, list(names), transform, int(size)
