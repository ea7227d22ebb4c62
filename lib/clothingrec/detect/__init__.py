"""Detection: one config, one recipe, one predictor interface, for every family and both class sets.

- :class:`DetectConfig` / :func:`load_config` — ``configs/detect/default.yaml`` ← experiment ← parameters
- :func:`fit` — prepare → split → train (ultralytics | torchvision loop | detectron2) → evaluate → ``run.json``
- :func:`evaluate_run` — a run's detector on its own stored validation split (pycocotools); ``tta=True``: flip TTA
- :func:`load_detector` — a run folder or checkpoint → a :class:`~clothingrec.structures.Predictor`
- :func:`build_detector`, :func:`train` / :func:`train_one_epoch` / :func:`evaluate` — the torchvision loop

Where to add a family: a trainer branch in :mod:`clothingrec.detect.recipe`, a predictor that returns
:class:`~clothingrec.structures.Detections`, and its case in :func:`load_detector`.
"""
from clothingrec.detect.config import DetectConfig, load_config
from clothingrec.detect.engine import LIGHT_HEADS, LoopResult, TrainConfig, evaluate, train, train_one_epoch
from clothingrec.detect.models import BACKBONES, build_detector, count_parameters
from clothingrec.detect.predictor import TorchvisionPredictor, load_detector
from clothingrec.detect.recipe import Run, SplitMismatch, evaluate_run, find_runs, fit, prepare, run_data
from clothingrec.detect.yolo import YoloPredictor

__all__ = [
    "DetectConfig", "load_config", "LIGHT_HEADS", "LoopResult", "TrainConfig", "evaluate", "train",
    "train_one_epoch", "BACKBONES", "build_detector", "count_parameters", "TorchvisionPredictor", "load_detector",
    "Run", "SplitMismatch", "evaluate_run", "find_runs", "fit", "prepare", "run_data", "YoloPredictor",
]
