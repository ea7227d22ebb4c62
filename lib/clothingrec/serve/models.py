"""Models to serve when no trained weights are at hand: seeded, with BatchNorm re-estimated on real images.

A freshly initialised network evaluated with BatchNorm's initial running statistics (mean 0, var 1)
lets activations shrink layer after layer (logits ~1e-7, denormal floats that are very slow on a CPU):
numerically unlike any trained model, so neither timings nor agreement checks would mean much.
:func:`recalibrate_batchnorm` re-estimates every BatchNorm's running mean / variance on real images
(cumulative average, no gradient, weights untouched), which gives unit-scale activations like a
trained network's.  These models are labelled untrained wherever they are used; agreement between
backends does not need accuracy, only realistic numerics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from clothingrec.paths import SYNTHETIC_DIR


def recalibrate_batchnorm(module: nn.Module, batches: Iterable, forward=None) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``module`` over ``batches``.

    ``forward(module, batch)`` runs one batch (default ``module(batch)``).  Returns the number of
    BatchNorm layers updated.  The module is left in eval mode.
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


def seeded_classifier(name: str = "mobilenet_v3_small", imgsz: int = 64, *, seed: int = 0,
                      calibration_per_class: int = 4, crop_frac: float = 0.875):
    """An untrained classifier (10 classes) as a ``LoadedClassifier``, BatchNorm re-estimated on train images."""
    from clothingrec.classify import LoadedClassifier, build_classifier
    from clothingrec.classify.inference import EvalTransform
    from clothingrec.datasets.clothing_small import CLASSES

    torch.manual_seed(seed)
    model = build_classifier(name, len(CLASSES), pretrained=None)
    resize = int(round(imgsz / crop_frac))
    loaded = LoadedClassifier(model.eval(), tuple(CLASSES), EvalTransform(imgsz, resize), int(imgsz), resize,
                              {"arch": name, "source": f"untrained (seed {seed}), BatchNorm re-estimated"})
    from clothingrec.serve.classifier import split_tensor

    x, _, _ = split_tensor(loaded, "train", per_class=calibration_per_class, seed=seed)
    recalibrate_batchnorm(model, [x[i:i + 16] for i in range(0, len(x), 16)])
    return loaded


def seeded_detector(family: str = "fasterrcnn", backbone: str = "mobilenet_v3_large_fpn", *, min_size: int = 320,
                    seed: int = 0, images: list[np.ndarray] | None = None, num_categories: int = 13,
                    score_threshold: float | None = None, logit_scale: float = 10.0, **model_kwargs):
    """An untrained torchvision detector behind :class:`~clothingrec.detect.TorchvisionPredictor`.

    BatchNorm of the backbone is re-estimated on ``images`` (default: 8 synthetic validation images)
    passed through the model's own resize transform.  ``model_kwargs`` go to ``build_detector``
    (e.g. :data:`clothingrec.detect.LIGHT_HEADS`).  ``logit_scale`` multiplies the freshly initialised
    class-score layer: its default initialisation gives every class ~1/K probability (scores tied to
    1e-4), which makes any comparison of rankings meaningless; scaled, scores spread like a trained
    model's.
    """
    from clothingrec.detect import TorchvisionPredictor, build_detector
    from clothingrec.evaluate.results import EXPORT_SCORE_THRESHOLD

    try:
        from clothingrec.datasets.deepfashion2 import CATEGORIES
        names = {i + 1: n for i, n in enumerate(CATEGORIES[:num_categories])}
    except ImportError:  # pragma: no cover
        names = {i: f"category_{i}" for i in range(1, num_categories + 1)}
    torch.manual_seed(seed)
    model = build_detector(family, backbone, num_categories + 1, pretrained=None, min_size=min_size,
                           max_size=int(round(min_size * 5 / 3)), **model_kwargs).eval()
    images = images if images is not None else validation_images(8)
    tensors = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255) for im in images]

    def forward(m, batch):
        image_list, _ = m.transform(batch)
        m.backbone(image_list.tensors)

    recalibrate_batchnorm(model, [tensors[i:i + 2] for i in range(0, len(tensors), 2)], forward)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(float(logit_scale))
    return TorchvisionPredictor(model, {i: i for i in names}, names, device="cpu",
                                score_threshold=EXPORT_SCORE_THRESHOLD if score_threshold is None else score_threshold)


def seeded_yolo(model: str = "yolov8n", *, imgsz: int = 320, seed: int = 0, workdir: str | Path | None = None,
                images: list[np.ndarray] | None = None, num_categories: int = 13, conf: float = 0.05):
    """An untrained ultralytics detector (BatchNorm re-estimated) saved as ``.pt`` behind a YoloPredictor."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from clothingrec.detect.yolo import YoloPredictor, quiet_ultralytics
    from clothingrec.paths import CACHE_DIR

    workdir = Path(workdir or CACHE_DIR / "serve")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{model}-seed{seed}-nc{num_categories}-{imgsz}-v2.pt"
    if not path.is_file():
        torch.manual_seed(seed)
        with quiet_ultralytics(True):
            yolo = YOLO(f"{model}.yaml")
            net = DetectionModel(f"{model}.yaml", nc=num_categories, verbose=False)
        net.names = {i: f"category_{i + 1}" for i in range(num_categories)}
        images = images if images is not None else validation_images(8)
        batch = []
        for im in images:
            t = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255)[None]
            batch.append(torch.nn.functional.interpolate(t, size=(imgsz, imgsz), mode="bilinear",
                                                         align_corners=False))
        recalibrate_batchnorm(net, [torch.cat(batch[i:i + 4]) for i in range(0, len(batch), 4)])
        # the class-logit bias is initialised for a trained prior (~1e-4 confidences); zero it so the
        # untrained model's confidences spread around 0.5 and agreement checks compare real boxes
        for branch in getattr(net.model[-1], "cv3", []):
            last = branch[-1] if isinstance(branch, nn.Sequential) else None
            if isinstance(last, nn.Conv2d) and last.bias is not None:
                with torch.no_grad():
                    last.bias.zero_()
        yolo.model = net
        yolo.save(str(path))
    return YoloPredictor(path, imgsz=imgsz, device="cpu", conf=conf)
