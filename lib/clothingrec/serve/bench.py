"""Helpers the inference benchmarks share: which models to measure, batch throughput, tables.

Models are the project's curated trained weights under ``runs/results/`` when present ("auto"),
else seeded untrained stand-ins (:mod:`clothingrec.serve.models`), or a path given on the
command line.  Every figure is reported with the model's provenance; nothing is asserted.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from clothingrec.paths import RESULTS_DIR


def find_result_weights(pattern: str, suffixes=(".pt",)) -> Path | None:
    """First weights file under ``runs/results/<pattern>/`` (sorted), or None."""
    for folder in sorted(RESULTS_DIR.glob(pattern)):
        files = sorted(p for p in folder.rglob("*") if p.suffix in suffixes and p.is_file())
        if files:
            return files[0]
    return None


def resolve_classifier(source: str, imgsz: int, seed: int = 0):
    """(LoadedClassifier, description) for ``auto`` | ``untrained`` | a weights path."""
    from clothingrec.classify import load_classifier
    from clothingrec.serve.models import seeded_classifier

    path = None
    if source == "auto":
        path = find_result_weights("classifier-mobilenet_v3_small*")
    elif source != "untrained":
        path = Path(source)
    if path is not None:
        try:
            return load_classifier(path), f"trained: {path}"
        except Exception as exc:  # noqa: BLE001 - fall back, and say so
            if source != "auto":
                raise
            print(f"[bench] {path} could not be loaded as a classifier ({exc}); using an untrained one")
    name = "mobilenet_v3_small"
    return seeded_classifier(name, imgsz, seed=seed), f"untrained {name} (seed {seed}, BatchNorm re-estimated)"


def resolve_detector(kind: str, source: str, *, min_size: int, imgsz: int, images, detections: int, seed: int = 0,
                     workdir=None):
    """(predictor, description) for a detector ``kind`` in fasterrcnn | maskrcnn | yolo | person."""
    from clothingrec.detect import LIGHT_HEADS, load_detector
    from clothingrec.serve.models import seeded_detector, seeded_yolo

    patterns = {"fasterrcnn": "detector-fasterrcnn*", "maskrcnn": "detector-maskrcnn*", "yolo": "detector-yolo*",
                "person": "person-*"}
    path = None
    if source == "auto":
        folder = next(iter(sorted(RESULTS_DIR.glob(patterns[kind]))), None)
        path = folder
    elif source != "untrained":
        path = Path(source)
    if path is not None and path.is_dir():  # a curated folder: its checkpoint file, wherever it sits
        files = sorted(p for p in path.rglob("*.pt") if p.is_file())
        path = files[0] if files else path
    if path is not None:
        try:
            return load_detector(path, device="cpu"), f"trained: {path}"
        except Exception as exc:  # noqa: BLE001
            if source != "auto":
                raise
            print(f"[bench] {path} could not be loaded as a {kind} detector ({exc}); using an untrained one")
    heads = {k: v for k, v in LIGHT_HEADS.items() if k.endswith("_test")}
    if kind == "yolo":
        return (seeded_yolo("yolov8n", imgsz=imgsz, seed=seed, workdir=workdir, images=images),
                f"untrained yolov8n @{imgsz} (seed {seed}, BatchNorm re-estimated)")
    if kind == "person":
        pred = seeded_detector("fasterrcnn", "mobilenet_v3_large_fpn", min_size=min_size, seed=seed, images=images,
                               num_categories=1, box_detections_per_img=detections, **heads)
        return pred, f"untrained fasterrcnn mobilenet_v3_large_fpn @{min_size} person (seed {seed})"
    pred = seeded_detector(kind, "mobilenet_v3_large_fpn", min_size=min_size, seed=seed, images=images,
                           box_detections_per_img=detections, **heads)
    return pred, (f"untrained {kind} mobilenet_v3_large_fpn @{min_size}, {detections} detections/image "
                  f"(seed {seed}, BatchNorm re-estimated)")


def detector_batch_call(predictor, images):
    """A zero-argument callable running ``images`` as one batch through the predictor's model."""
    from clothingrec.serve.detector import is_torchvision_rcnn, is_yolo

    if is_torchvision_rcnn(predictor):
        tensors = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255) for im in images]

        def call():
            with torch.inference_mode():
                predictor.model(tensors)
        return call
    if is_yolo(predictor):
        from clothingrec.detect.yolo import quiet_ultralytics

        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]

        def call():
            with quiet_ultralytics(True):
                predictor.model.predict(bgr, imgsz=predictor.imgsz, conf=predictor.conf, iou=predictor.iou,
                                        max_det=predictor.max_det, device=predictor.device, verbose=False)
        return call
    return lambda: [predictor.predict(im) for im in images]


def machine() -> dict:
    from clothingrec import envinfo
    from clothingrec.serve.onnx import cpu_flags

    info = envinfo.machine_report(device="cpu")
    versions = envinfo.package_versions()
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        load = [round(v, 2) for v in __import__("os").getloadavg()]
    except OSError:  # pragma: no cover
        load = []
    return {**info, "torch_threads": torch.get_num_threads(), "versions": versions, "cpu_flags": cpu_flags(),
            "load_average_1_5_15": load, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def write(out: Path, stem: str, record: dict, markdown: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str))
    (out / f"{stem}.md").write_text("\n".join(markdown) + "\n")
    print(f"[bench] wrote {out / (stem + '.json')} and {out / (stem + '.md')}")
