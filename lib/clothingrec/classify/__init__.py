"""Clothing classification (clothing-dataset-small, 10 classes) with Lightning.

Public API:
- :func:`build_classifier` (name, num_classes=10, pretrained=None) → ``nn.Module``
- :func:`load_classifier` (path) → :class:`ImageClassifier` (``classify(image)``, ``classify_crops(image, boxes)``)
- :func:`predict` (classifier, images) → class indices, probabilities, names
- :func:`train` (cfg, output_dir), :func:`resolve_config` / :func:`load_config` (YAML configs)
- :mod:`clothingrec.classify.report`: metrics tables, published reference, plots

Lightning is imported only when training is used (``train``, ``ClassifierModule``, ``ClothingDataModule``).
"""
from clothingrec.classify.config import ClassifierConfig, config_fields, load_config, resolve_config, to_params
from clothingrec.classify.inference import ImageClassifier, export_weights, load_classifier, predict
from clothingrec.classify.models import build_classifier, count_parameters

__all__ = ["ClassifierConfig", "config_fields", "load_config", "resolve_config", "to_params",
           "ImageClassifier", "export_weights", "load_classifier", "predict", "build_classifier",
           "count_parameters", "train", "ClassifierModule", "ClothingDataModule"]


def __getattr__(name):
    if name == "train":
        from clothingrec.classify.training import train
        return train
    if name == "ClassifierModule":
        from clothingrec.classify.module import ClassifierModule
        return ClassifierModule
    if name == "ClothingDataModule":
        from clothingrec.classify.data import ClothingDataModule
        return ClothingDataModule
    raise AttributeError(name)
