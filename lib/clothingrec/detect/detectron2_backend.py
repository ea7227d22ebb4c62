"""Optional detectron2 Mask R-CNN backend (``family: maskrcnn``, ``backend: detectron2``).

detectron2 is not on PyPI; install it from source (https://github.com/facebookresearch/detectron2)
matching your torch/CUDA.  Without it :func:`detectron2_available` is False and
:func:`require_detectron2` raises a clear error.  The same COCO JSON trains it, and its predictor
implements the common interface, so the one evaluation scores it like every other family.
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np

from clothingrec.structures import Detections
from clothingrec.structures import EXPORT_SCORE_THRESHOLD

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
                name: str = "clothingrec"):
    """A detectron2 config that trains Mask R-CNN on our COCO split (registers the datasets)."""
    require_detectron2()
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    if backbone not in CONFIGS:
        raise ValueError(f"detectron2 backbone {backbone!r} unknown; choose one of {sorted(CONFIGS)}")
    for split, js, imgs in (("train", train_json, train_images), ("val", val_json, val_images)):
        key = f"{name}_{split}"
        if key in DatasetCatalog.list():
            DatasetCatalog.remove(key)
        register_coco_instances(key, {}, str(js), str(imgs))
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(CONFIGS[backbone]))
    cfg.DATASETS.TRAIN = (f"{name}_train",)
    cfg.DATASETS.TEST = (f"{name}_val",)
    cfg.DATALOADER.NUM_WORKERS = int(workers)
    cfg.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(CONFIGS[backbone]) if pretrained else ""
    cfg.MODEL.DEVICE = "cuda" if device in ("auto", "cuda") and _cuda() else ("cpu" if device == "auto" else device)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = int(num_classes)
    if not pretrained:  # from scratch: BatchNorm trains, every stage unfrozen
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.NORM = "BN"
        cfg.MODEL.FPN.NORM = "BN"
    cfg.INPUT.MIN_SIZE_TRAIN = (int(min_size),)
    cfg.INPUT.MAX_SIZE_TRAIN = int(max_size)
    cfg.INPUT.MIN_SIZE_TEST = int(min_size)
    cfg.INPUT.MAX_SIZE_TEST = int(max_size)
    cfg.SOLVER.IMS_PER_BATCH = int(batch)
    cfg.SOLVER.BASE_LR = float(lr)
    cfg.SOLVER.MAX_ITER = int(iterations)
    cfg.SOLVER.STEPS = (int(iterations * 0.67), int(iterations * 0.89))
    cfg.SOLVER.WARMUP_ITERS = min(100, max(1, iterations // 10))
    cfg.SOLVER.CHECKPOINT_PERIOD = int(checkpoint_period or max(1, iterations // 5))
    cfg.TEST.EVAL_PERIOD = 0
    cfg.TEST.DETECTIONS_PER_IMAGE = 100
    cfg.SEED = int(seed)
    cfg.OUTPUT_DIR = str(Path(out_dir).resolve())
    Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    return cfg


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_detectron2(cfg, *, resume: bool = False) -> Path:
    """Train with detectron2's ``DefaultTrainer`` (checkpoints in ``cfg.OUTPUT_DIR``; resume continues)."""
    require_detectron2()
    from detectron2.engine import DefaultTrainer

    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    return Path(cfg.OUTPUT_DIR) / "model_final.pth"


class Detectron2Predictor:
    """The common predictor interface over a detectron2 model (COCO category ids = contiguous id + 1)."""

    family = "detectron2-maskrcnn"

    def __init__(self, cfg, weights, category_names: dict[int, str], *,
                 score_threshold: float = EXPORT_SCORE_THRESHOLD):
        require_detectron2()
        from detectron2.engine import DefaultPredictor

        cfg = cfg.clone()
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_threshold)
        cfg.INPUT.FORMAT = "RGB"
        self.predictor = DefaultPredictor(cfg)
        self.category_names = dict(category_names)
        self.category_ids = sorted(self.category_names)

    def predict(self, image: np.ndarray) -> Detections:
        inst = self.predictor(image)["instances"].to("cpu")
        labels = np.array([self.category_ids[int(c)] for c in inst.pred_classes.numpy()], dtype=np.int64)
        masks = inst.pred_masks.numpy() if inst.has("pred_masks") else None
        return Detections(inst.pred_boxes.tensor.numpy(), labels, inst.scores.numpy(), masks)


def load_predictor(config_yaml, weights, category_names: dict[int, str], *,
                   score_threshold: float = EXPORT_SCORE_THRESHOLD) -> Detectron2Predictor:
    """The predictor of a trained run from its dumped config (``detectron2/config.yaml``) and weights."""
    require_detectron2()
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.set_new_allowed(True)
    cfg.merge_from_file(str(config_yaml))
    return Detectron2Predictor(cfg, weights, category_names, score_threshold=score_threshold)
