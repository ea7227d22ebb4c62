"""Classifier evaluation: scikit-learn metrics in the published table's shape, reference numbers, plots.

The published reference (``PUBLISHED``) is the test-split table of the
SamirGouda/YOLOX-Clothing_Classifier README (``clothing-classifier/README.md``):
mobilenet_v3_small and resnet50 fine-tuned from ImageNet weights on a GPU for 40 epochs,
evaluated on their last (SWA) weights.  Per-class precision / recall / F1 / support and
the confusion matrices are transcribed from that README; :func:`published_table_from_confusion`
recomputes the per-class rows from the confusion matrices with scikit-learn, and the unit
tests check both agree (to the README's rounding).

Two test sets, one evaluation: :func:`evaluate_index` predicts any
:class:`~clothingrec.datasets.clothing_small.SplitIndex`; :func:`evaluate` gives it clothing-dataset-small's
split (in-domain: product photos), :func:`evaluate_ood` the CCP garment crops' ``test`` part
(out-of-domain: worn clothing cut from street photos, :mod:`clothingrec.datasets.ccp_crops`).  Both are
scored by the same scikit-learn functions; :func:`metrics_record` writes the in-domain numbers at the top
level of ``metrics.json`` (names the comparison reads) and the out-of-domain ones under :data:`OOD_KEY`
(:func:`ood_metrics`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)

from clothingrec.classify.config import monitor_mode
from clothingrec.datasets.clothing_small import CLASSES

PUBLISHED_LABEL = "published, ImageNet-pretrained, GPU"
IN_DOMAIN = "clothing-dataset-small"
#: the out-of-domain test set's name, and its key in a classifier's ``metrics.json``
OOD_DATASET = "ccp-crops"
OOD_KEY = "ood_ccp_crops"
PUBLISHED_SOURCE = ("SamirGouda/YOLOX-Clothing_Classifier, clothing-classifier/README.md "
                    "(test split of clothing-dataset-small, 372 images)")

#: per class: (precision %, recall %, f1 %, support); averages: (precision, recall, f1)
PUBLISHED = {
    "mobilenet_v3_small": {
        "accuracy": 85.22, "correct": 317, "total": 372,
        "weighted": (86.14, 85.22, 85.28), "micro": (85.22, 85.22, 85.22), "macro": (82.02, 83.58, 82.06),
        "per_class": {
            "dress": (51.85, 93.33, 66.67, 15), "hat": (83.33, 83.33, 83.33, 12),
            "longsleeve": (83.58, 77.78, 80.58, 72), "outwear": (85.37, 92.11, 88.61, 38),
            "pants": (91.30, 100.00, 95.45, 42), "shirt": (73.91, 65.38, 69.39, 26),
            "shoes": (98.63, 98.63, 98.63, 73), "shorts": (81.48, 73.33, 77.19, 30),
            "skirt": (81.82, 75.00, 78.26, 12), "t-shirt": (88.89, 76.92, 82.47, 52),
        },
        # rows: true class, columns: predicted class, both in CLASSES order
        "confusion": [
            [14, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [1, 10, 0, 0, 0, 0, 1, 0, 0, 0],
            [1, 1, 56, 3, 0, 4, 0, 3, 0, 4],
            [1, 0, 0, 35, 0, 2, 0, 0, 0, 0],
            [0, 0, 0, 0, 42, 0, 0, 0, 0, 0],
            [5, 0, 2, 2, 0, 17, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 72, 1, 0, 0],
            [0, 0, 2, 0, 4, 0, 0, 22, 2, 0],
            [1, 1, 0, 0, 0, 0, 0, 1, 9, 0],
            [4, 0, 7, 1, 0, 0, 0, 0, 0, 40],
        ],
    },
    "resnet50": {
        "accuracy": 88.44, "correct": 329, "total": 372,
        "weighted": (90.19, 88.44, 88.76), "micro": (88.44, 88.44, 88.44), "macro": (86.73, 86.61, 85.73),
        "per_class": {
            "dress": (48.00, 80.00, 60.00, 15), "hat": (100.00, 83.33, 90.91, 12),
            "longsleeve": (81.82, 87.50, 84.56, 72), "outwear": (92.11, 92.11, 92.11, 38),
            "pants": (95.45, 100.00, 97.67, 42), "shirt": (90.00, 69.23, 78.26, 26),
            "shoes": (97.30, 98.63, 97.96, 73), "shorts": (96.30, 86.67, 91.23, 30),
            "skirt": (68.75, 91.67, 78.57, 12), "t-shirt": (97.56, 76.92, 86.02, 52),
        },
        "confusion": [
            [12, 0, 1, 0, 0, 0, 0, 0, 1, 1],
            [0, 10, 0, 0, 0, 0, 2, 0, 0, 0],
            [4, 0, 63, 2, 0, 2, 0, 0, 1, 0],
            [0, 0, 3, 35, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 42, 0, 0, 0, 0, 0],
            [4, 0, 2, 0, 0, 18, 0, 0, 2, 0],
            [0, 0, 0, 1, 0, 0, 72, 0, 0, 0],
            [0, 0, 1, 0, 2, 0, 0, 26, 1, 0],
            [0, 0, 0, 0, 0, 0, 0, 1, 11, 0],
            [5, 0, 7, 0, 0, 0, 0, 0, 0, 40],
        ],
    },
}

TABLE_COLUMNS = ["accuracy", "precision", "recall", "f1", "num_samples"]


def _pct(x: float) -> float:
    return round(100.0 * float(x), 2)


def classification_table(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str] = CLASSES,
                         split: str = "test") -> pd.DataFrame:
    """The published table's shape: a split row (accuracy [correct/total]), weighted / micro / macro
    averages, then one row per class with precision, recall, F1 (percent) and support.  scikit-learn."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(classes)))
    report = classification_report(y_true, y_pred, labels=labels, target_names=list(classes),
                                   output_dict=True, zero_division=0)
    micro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="micro", zero_division=0)
    correct, total = int((y_true == y_pred).sum()), int(len(y_true))
    rows = {split: {"accuracy": f"{_pct(accuracy_score(y_true, y_pred)):.2f}%[{correct}/{total}]",
                    "precision": "-", "recall": "-", "f1": "-", "num_samples": total}}
    for avg, key in (("weighted", "weighted avg"), ("macro", "macro avg")):
        r = report[key]
        rows[avg] = {"accuracy": "-", "precision": _pct(r["precision"]), "recall": _pct(r["recall"]),
                     "f1": _pct(r["f1-score"]), "num_samples": "-"}
    rows["micro"] = {"accuracy": "-", "precision": _pct(micro[0]), "recall": _pct(micro[1]),
                     "f1": _pct(micro[2]), "num_samples": "-"}
    ordered = {k: rows[k] for k in (split, "weighted", "micro", "macro")}
    for name in classes:
        r = report[name]
        ordered[name] = {"accuracy": "-", "precision": _pct(r["precision"]), "recall": _pct(r["recall"]),
                         "f1": _pct(r["f1-score"]), "num_samples": int(r["support"])}
    table = pd.DataFrame.from_dict(ordered, orient="index")[TABLE_COLUMNS]
    table.index.name = "class"
    return table


def published_table(model: str = "mobilenet_v3_small", split: str = "test") -> pd.DataFrame:
    """The published table of ``model`` as transcribed (same shape as :func:`classification_table`)."""
    ref = PUBLISHED[model]
    rows = {split: {"accuracy": f"{ref['accuracy']:.2f}%[{ref['correct']}/{ref['total']}]", "precision": "-",
                    "recall": "-", "f1": "-", "num_samples": ref["total"]}}
    for avg in ("weighted", "micro", "macro"):
        p, r, f = ref[avg]
        rows[avg] = {"accuracy": "-", "precision": p, "recall": r, "f1": f, "num_samples": "-"}
    for name, (p, r, f, n) in ref["per_class"].items():
        rows[name] = {"accuracy": "-", "precision": p, "recall": r, "f1": f, "num_samples": n}
    table = pd.DataFrame.from_dict(rows, orient="index")[TABLE_COLUMNS]
    table.index.name = "class"
    return table


def labels_from_confusion(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Expand a confusion matrix (rows true, columns predicted) back into label arrays."""
    m = np.asarray(matrix, dtype=int)
    y_true, y_pred = [], []
    for t in range(m.shape[0]):
        for p in range(m.shape[1]):
            y_true += [t] * m[t, p]
            y_pred += [p] * m[t, p]
    return np.asarray(y_true), np.asarray(y_pred)


def published_table_from_confusion(model: str = "mobilenet_v3_small") -> pd.DataFrame:
    """Recompute the published table from its confusion matrix with scikit-learn (a transcription check)."""
    return classification_table(*labels_from_confusion(PUBLISHED[model]["confusion"]))


def compare_with_published(ours: pd.DataFrame, model: str = "mobilenet_v3_small",
                           ours_label: str = "ours") -> pd.DataFrame:
    """Per-class precision / recall / F1 side by side with the published table, and F1 difference."""
    ref = published_table(model)
    rows = [r for r in ref.index if r in ours.index and ref.loc[r, "f1"] != "-"]
    out = pd.DataFrame({
        f"{ours_label} precision": ours.loc[rows, "precision"].astype(float),
        f"{ours_label} recall": ours.loc[rows, "recall"].astype(float),
        f"{ours_label} f1": ours.loc[rows, "f1"].astype(float),
        "published precision": ref.loc[rows, "precision"].astype(float),
        "published recall": ref.loc[rows, "recall"].astype(float),
        "published f1": ref.loc[rows, "f1"].astype(float),
    })
    out["f1 difference"] = (out[f"{ours_label} f1"] - out["published f1"]).round(2)
    out["support"] = ours.loc[rows, "num_samples"]
    out.index.name = "class"
    return out


def summary_metrics(y_true, y_pred, classes: Sequence[str] = CLASSES) -> dict:
    """Accuracy, macro / weighted / micro F1 and per-class precision / recall / F1 / support (fractions)."""
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
    }


@dataclass
class Evaluation:
    """Predictions of one classifier on one split."""

    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray
    paths: list[str]
    classes: tuple[str, ...]
    split: str
    skipped: list[tuple[str, str]]
    images_per_s: float
    dataset: str = IN_DOMAIN

    def table(self) -> pd.DataFrame:
        return classification_table(self.y_true, self.y_pred, self.classes, self.split)

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.y_true, self.y_pred, labels=list(range(len(self.classes))))

    def misclassified(self) -> pd.DataFrame:
        """Wrong predictions, most confident first."""
        wrong = np.nonzero(self.y_true != self.y_pred)[0]
        return pd.DataFrame({
            "path": [self.paths[i] for i in wrong],
            "true": [self.classes[self.y_true[i]] for i in wrong],
            "predicted": [self.classes[self.y_pred[i]] for i in wrong],
            "confidence": [float(self.probs[i, self.y_pred[i]]) for i in wrong],
        }).sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)

    def metrics(self) -> dict:
        return summary_metrics(self.y_true, self.y_pred, self.classes)


def evaluate(weights: str | Path, split: str = "test", dataset: str | Path | None = None,
             eval_per_class: int | None = None, batch_size: int = 64, device: str = "auto",
             threads: int | None = None, cache_store: bool = True, seed: int = 0) -> Evaluation:
    """Predict clothing-dataset-small's ``split`` with exported weights (the best validation checkpoint
    of a run): :func:`evaluate_index` on that split (``eval_per_class``: a seeded subset per class)."""
    from clothingrec.classify.inference import load_classifier
    from clothingrec.datasets.clothing_small import read_split
    from clothingrec.device import resolve_device

    loaded = load_classifier(weights, device=resolve_device(device))
    index = read_split(split, dataset, loaded.classes).subset(eval_per_class, seed=seed)
    return evaluate_index(loaded, index, IN_DOMAIN, batch_size=batch_size, device=device, threads=threads,
                          cache_store=cache_store)


def evaluate_ood(weights: str | Path, part: str = "test", root: str | Path | None = None,
                 eval_per_class: int | None = None, batch_size: int = 64, device: str = "auto",
                 threads: int | None = None, cache_store: bool = True, seed: int = 0) -> Evaluation:
    """The out-of-domain evaluation: :func:`evaluate_index` on the CCP garment crops of ``part``
    (``root``: ``data/ccp-crops`` by default, built by ``make data``)."""
    from clothingrec.datasets.ccp_crops import read_crops

    index = read_crops(part, root).subset(eval_per_class, seed=seed)
    return evaluate_index(weights, index, OOD_DATASET, batch_size=batch_size, device=device, threads=threads,
                          cache_store=cache_store)


def evaluate_index(weights, index, dataset: str = IN_DOMAIN, batch_size: int = 64,
                   device: str = "auto", threads: int | None = None, cache_store: bool = True) -> Evaluation:
    """Predict every image of ``index`` (a :class:`~clothingrec.datasets.clothing_small.SplitIndex`, labelled
    in the classifier's class order) with exported weights (a path, or a loaded
    :class:`~clothingrec.classify.inference.ImageClassifier`); ``dataset`` names the set in the result."""
    import time

    import torch

    from clothingrec.classify.augment import eval_batch
    from clothingrec.classify.inference import ImageClassifier, load_classifier
    from clothingrec.classify.store import build_store
    from clothingrec.device import resolve_device, set_threads

    set_threads(threads)
    dev = resolve_device(device)
    loaded = weights if isinstance(weights, ImageClassifier) else load_classifier(weights, device=dev)
    dev = next(loaded.model.parameters()).device
    split = index.split
    if tuple(index.classes) != tuple(loaded.classes):
        raise ValueError(f"{dataset} {split}: classes {index.classes} differ from the classifier's {loaded.classes}")
    store = build_store(index, loaded.resize_size, cache=cache_store)
    model = loaded.model.to(memory_format=torch.channels_last)
    probs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(store), batch_size):
            x = eval_batch(store.images[i:i + batch_size].to(dev), loaded.imgsz, channels_last=True)
            probs.append(model(x).float().softmax(dim=1).cpu())
    seconds = time.perf_counter() - start
    probs_np = torch.cat(probs).numpy() if probs else np.zeros((0, len(loaded.classes)))
    return Evaluation(store.labels.numpy(), probs_np.argmax(axis=1), probs_np, list(store.paths),
                      loaded.classes, split, list(store.skipped), len(store) / seconds if seconds else math.nan,
                      dataset)


def metrics_record(ev: Evaluation, *, name: str, model: str, imgsz: int, params: int,
                   provenance: dict, dataset: str = "clothing-dataset-small", ood: Evaluation | None = None) -> dict:
    """The project's classifier ``metrics.json`` record (fractions, not percent): the in-domain evaluation
    ``ev`` at the top level, the out-of-domain one ``ood`` (if given) under :data:`OOD_KEY`."""
    m = ev.metrics()
    record = {"kind": "classifier", "name": name, "model": model, "dataset": dataset, "split": ev.split,
              "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "weighted_f1": m["weighted_f1"],
              "micro_f1": m["micro_f1"], "per_class": m["per_class"], "num_images": int(len(ev.y_true)),
              "imgsz": int(imgsz), "params": int(params), "provenance": provenance}
    if ood is not None:
        record[OOD_KEY] = ood_metrics(ood)
    return record


def ood_metrics(ev: Evaluation) -> dict:
    """One test set's entry of ``metrics.json`` (the :data:`OOD_KEY` one): accuracy, macro-F1, per-class
    recall and support, confusion matrix (rows true, columns predicted, in ``classes`` order), image count.
    scikit-learn, with every class as a label (a class without images has recall 0 and counts in macro-F1)."""
    labels = list(range(len(ev.classes)))
    recall = recall_score(ev.y_true, ev.y_pred, labels=labels, average=None, zero_division=0)
    support = np.bincount(np.asarray(ev.y_true, dtype=int), minlength=len(labels))
    return {"dataset": ev.dataset, "split": ev.split,
            "accuracy": float(accuracy_score(ev.y_true, ev.y_pred)),
            "macro_f1": float(f1_score(ev.y_true, ev.y_pred, labels=labels, average="macro", zero_division=0)),
            "per_class_recall": {c: float(recall[i]) for i, c in enumerate(ev.classes)},
            "per_class_support": {c: int(support[i]) for i, c in enumerate(ev.classes)},
            "confusion": ev.confusion().tolist(), "num_images": int(len(ev.y_true))}


def side_by_side(evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """Accuracy, macro-F1 and per-class recall (percent) and image counts of several evaluations of one
    classifier, one column per test set (``{label: evaluation}``) and a ``support`` column per set."""
    columns = {}
    for label, ev in evaluations.items():
        m = ood_metrics(ev)
        columns[label] = {"accuracy": _pct(m["accuracy"]), "macro-F1": _pct(m["macro_f1"]),
                          **{f"recall {c}": _pct(r) for c, r in m["per_class_recall"].items()}}
        columns[f"{label} images"] = {"accuracy": m["num_images"], "macro-F1": m["num_images"],
                                      **{f"recall {c}": n for c, n in m["per_class_support"].items()}}
    table = pd.DataFrame(columns)
    table.index.name = "metric"
    return table


def finished_run(run: str | Path) -> Path:
    """``run`` if it is a finished ``09_train_classifier`` run (exported weights and a ``train_summary.json``
    that does not ask to be resumed), else ``RuntimeError``: a run still training (no summary yet, or a
    summary from an earlier chunk) or stopped by its time budget is not evaluated by default."""
    run = Path(run)
    summary = run / "train_summary.json"
    if not summary.is_file() or not list(run.glob("*.pt")):
        raise RuntimeError(f"{run}: no train_summary.json or exported weights yet (still training?); "
                           "pass run_dir of a finished run")
    reason = str(json.loads(summary.read_text(encoding="utf-8")).get("stopped_reason", ""))
    if reason.startswith(("time_budget_h", "interrupted")):
        raise RuntimeError(f"{run}: unfinished ({reason}); pass run_dir to evaluate it anyway")
    return run


def write_metrics(record: dict, output_dir: str | Path) -> Path:
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


# ---- plots --------------------------------------------------------------------------------------
def plot_confusion(matrix, classes: Sequence[str] = CLASSES, title: str = "confusion matrix", ax=None,
                   normalize: bool = False):
    """Seaborn heatmap of a confusion matrix (rows true, columns predicted)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    data = m / m.sum(axis=1, keepdims=True).clip(min=1) if normalize else m
    sns.heatmap(data, annot=m.astype(int), fmt="d", cmap="Blues", xticklabels=classes, yticklabels=classes,
                cbar=normalize, ax=ax, square=True, vmin=0.0 if normalize else None, vmax=1.0 if normalize else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax.figure


def plot_confusions(evaluations: dict[str, Evaluation], normalize: bool = True):
    """One confusion matrix per evaluation side by side (``{title: evaluation}``); colour is the row share
    (recall) by default, so test sets of different sizes compare, and the cells show counts."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(evaluations), figsize=(7 * len(evaluations), 5.6), squeeze=False)
    for ax, (title, ev) in zip(axes.flat, evaluations.items()):
        plot_confusion(ev.confusion(), ev.classes, f"{title} ({len(ev.y_true)} images)", ax=ax, normalize=normalize)
    fig.tight_layout()
    return fig


def plot_misclassified(ev: Evaluation, max_images: int = 12, columns: int = 6, size: int = 112):
    """Grid of misclassified images (most confident mistakes first) with true / predicted labels."""
    import matplotlib.pyplot as plt

    from clothingrec.classify.store import decode_square

    wrong = ev.misclassified().head(max_images)
    n = max(1, len(wrong))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.8, rows * 2.1), squeeze=False, dpi=72)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, wrong.iterrows()):
        ax.imshow(decode_square(row["path"], size).transpose(1, 2, 0))
        ax.set_title(f"true: {row['true']}\npred: {row['predicted']} ({row['confidence']:.2f})", fontsize=7)
    if wrong.empty:
        axes.flat[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame):
    """Training / validation loss and validation accuracy / macro-F1 per epoch."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for col in ("train_loss", "val_loss"):
        if col in history:
            a.plot(history["epoch"], history[col], marker="o", label=col)
    a.set_xlabel("epoch")
    a.set_title("loss")
    a.legend()
    for col in ("train_acc", "val_acc", "val_macro_f1"):
        if col in history:
            b.plot(history["epoch"], history[col], marker="o", label=col)
    b.set_xlabel("epoch")
    b.set_title("accuracy / macro-F1")
    b.set_ylim(0, 1)
    b.legend()
    fig.tight_layout()
    return fig


# ---- ablation -------------------------------------------------------------------------------------
#: the training choices an ablation row shows (config fields), in the order they are listed
ABLATION_LEVERS = ("objective", "model", "pretrained", "init_weights", "teachers", "imgsz", "sampler", "scheduler",
                   "lr", "label_smoothing", "mixup_alpha", "cutmix_alpha", "mix_prob", "averaging", "extra_train")


def ablation_table(run_dirs: Sequence[str | Path], levers: Sequence[str] = ABLATION_LEVERS) -> pd.DataFrame:
    """One row per classifier run (a ``09_train_classifier`` folder or its curated copy): the training choices
    that differ between the runs, what the run got to spend (epochs, fit minutes, images/s) and its best
    **validation** accuracy and macro-F1 from its per-epoch history.  Test numbers are not shown: the levers
    are chosen on validation (a self-supervised run's are its k-NN scores).  A run without
    ``train_summary.json`` or ``history.csv`` raises, naming the file."""
    rows = []
    for run in map(Path, run_dirs):
        summary_file, history_file = run / "train_summary.json", run / "history.csv"
        for f in (summary_file, history_file):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: missing (a finished classifier run has it)")
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        cfg = summary.get("config") or {}
        history = pd.read_csv(history_file)
        for col in ("val_acc", "val_macro_f1"):
            if col not in history:
                raise ValueError(f"{history_file}: no column {col!r}")
        monitor = summary.get("monitor") if summary.get("monitor") in history else "val_macro_f1"
        scores = history[monitor]
        best = history.loc[scores.idxmin() if monitor_mode(monitor) == "min" else scores.idxmax()]
        choices = {k: cfg.get(k, "supervised" if k == "objective" else None) for k in levers}
        if choices.get("init_weights"):  # the run it started from, by folder name
            choices["init_weights"] = Path(str(choices["init_weights"])).name
        if choices.get("teachers"):  # distillation: how many teachers (their runs are in the run's config)
            choices["teachers"] = len([t for t in str(choices["teachers"]).split(",") if t.strip()])
        rows.append({"run": run.name, **choices,
                     "epochs": int(summary.get("epochs_run", len(history))),
                     "fit min": round(float(summary.get("fit_seconds", float("nan"))) / 60, 1),
                     "img/s": round(float(summary.get("train_images_per_s", float("nan"))), 1),
                     "best epoch": int(best["epoch"]),
                     "val acc (%)": _pct(best["val_acc"]), "val macro-F1 (%)": _pct(best["val_macro_f1"])})
    table = pd.DataFrame(rows)
    if len(table) > 1:  # keep the levers that differ: the rest is shared by every row
        same = [k for k in levers if k in table and table[k].map(repr).nunique() == 1]
        table = table.drop(columns=same)
    return table.set_index("run")
