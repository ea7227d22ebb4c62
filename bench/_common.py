"""Helpers the inference benchmarks share: which models to measure, batch throughput, tables.

Models come from the model zoo (:func:`clothingrec.zoo.resolve`): the project's committed trained
weights under ``runs/results/`` when present ("auto"), else seeded untrained stand-ins with BatchNorm
re-estimated on real images, or a path given on the command line.  Every figure is reported with the
model's provenance; nothing is asserted.  Scripts in bench/ import this as ``_common`` (bench/ is the
script's folder, hence on ``sys.path``).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

#: bench detector kind → (zoo role, zoo family)
DETECTOR_ROLES = {"fasterrcnn": ("clothing-detector", "fasterrcnn"), "maskrcnn": ("clothing-detector", "maskrcnn"),
                  "yolo": ("clothing-detector", "yolo"), "person": ("person-detector", None)}


def _resolve(role: str, source: str, family: str | None, **untrained):
    """``(model, description)``; with ``auto``, a committed model that fails to load falls back to the stand-in."""
    from clothingrec import zoo

    try:
        model, info = zoo.resolve(role, source, family=family, **untrained)
    except zoo.ModelLoadError as exc:
        if source != "auto":
            raise
        print(f"[bench] {exc}; using an untrained one")
        model, info = zoo.resolve(role, "untrained", family=family, **untrained)
    return model, info


def resolve_classifier(source: str, imgsz: int, seed: int = 0):
    """(ImageClassifier, description) for ``auto`` | ``untrained`` | a weights path."""
    name = "mobilenet_v3_small"
    model, info = _resolve("classifier", source, name, imgsz=imgsz, seed=seed, calibration_per_class=4)
    if info.trained:
        return model, f"trained: {info.source}"
    return model, f"untrained {name} (seed {seed}, BatchNorm re-estimated)"


def street_photos(n: int, max_side: int | None = None) -> tuple[list, str]:
    """``n`` real street photos (RGB uint8) of the stored CCP split's val part, the domain the project's
    detectors are trained on (longest side shrunk to ``max_side`` when given), and their description; the
    synthetic DeepFashion2-format validation images when CCP is not there (a CCP-trained detector finds
    nothing on those, so agreement is then checked on few or no boxes: the table says which images)."""
    import numpy as np
    from PIL import Image

    from clothingrec import serve
    from clothingrec.paths import CCP, find_dataset
    from clothingrec.splits import ccp_split

    root = find_dataset(CCP, required=False)
    files = [root / "photos" / f"{i}.jpg" for i in ccp_split()["val"]] if root else []
    files = [f for f in files if f.is_file()][:n]
    if not files:
        return serve.validation_images(n), "synthetic DeepFashion2-format validation images"
    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if max_side:
                im.thumbnail((max_side, max_side))
            out.append(np.asarray(im).copy())
    shrunk = f", longest side ≤ {max_side}" if max_side else ""
    return out, f"clothing-co-parsing val photos {files[0].stem}..{files[-1].stem}{shrunk}"


def resolve_detector(kind: str, source: str, *, min_size: int, imgsz: int, images, detections: int, seed: int = 0,
                     workdir=None):
    """(predictor, description) for a detector ``kind`` in fasterrcnn | maskrcnn | yolo | person."""
    from clothingrec.detect import LIGHT_HEADS

    role, family = DETECTOR_ROLES[kind]
    if kind == "yolo":
        options = dict(imgsz=imgsz, seed=seed, workdir=workdir, images=images)
    else:
        heads = {k: v for k, v in LIGHT_HEADS.items() if k.endswith("_test")}
        options = dict(backbone="mobilenet_v3_large_fpn", min_size=min_size, seed=seed, images=images,
                       logit_scale=10.0, box_detections_per_img=detections, **heads)
    model, info = _resolve(role, source, family, **options)  # person: the zoo's Faster R-CNN stand-in
    if info.trained:
        return model, f"trained: {info.source}"
    if kind == "yolo":
        return model, f"untrained yolov8n @{imgsz} (seed {seed}, BatchNorm re-estimated)"
    if kind == "person":
        return model, f"untrained fasterrcnn mobilenet_v3_large_fpn @{min_size} person (seed {seed})"
    return model, (f"untrained {kind} mobilenet_v3_large_fpn @{min_size}, {detections} detections/image "
                   f"(seed {seed}, BatchNorm re-estimated)")


def detector_batch_call(predictor, images):
    """A zero-argument callable running ``images`` as one batch through the predictor's model (the direct YOLO
    path letterboxes each image to its own shape: one call per image)."""
    from clothingrec.serve.detector import is_torchvision_rcnn, is_yolo

    if is_torchvision_rcnn(predictor):
        tensors = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255) for im in images]

        def call():
            with torch.inference_mode():
                predictor.model(tensors)
        return call
    if is_yolo(predictor) and hasattr(predictor, "model"):
        from clothingrec.detect.yolo import quiet_ultralytics

        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]

        def call():
            with quiet_ultralytics(True):
                predictor.model.predict(bgr, imgsz=predictor.imgsz, conf=predictor.conf, iou=predictor.iou,
                                        max_det=predictor.max_det, device=predictor.device, verbose=False)
        return call
    return lambda: [predictor.predict(im) for im in images]


def yolo_stages(predictor, image, *, repeats: int = 5) -> dict:
    """Median pre-processing / model / post-processing ms of ``predictor.predict(image)`` as ultralytics
    reports them (``Results.speed``), batch 1: where an end-to-end figure goes.  The direct path
    (:class:`clothingrec.serve.yolo_direct.DirectYoloPredictor`) times its own three stages."""
    from clothingrec.detect.yolo import quiet_ultralytics

    if hasattr(predictor, "forward"):
        return _direct_stages(predictor, image, repeats=repeats)

    bgr = np.ascontiguousarray(image[..., ::-1])
    speeds = []
    for _ in range(max(1, repeats)):
        with quiet_ultralytics(True):
            res = predictor.model.predict(bgr, imgsz=predictor.imgsz, conf=predictor.conf, iou=predictor.iou,
                                          max_det=predictor.max_det, device=predictor.device, verbose=False)
        speeds.append(res[0].speed)
    return {k: float(np.median([s[k] for s in speeds])) for k in ("preprocess", "inference", "postprocess")}


def _direct_stages(predictor, image, *, repeats: int) -> dict:
    times = {"preprocess": [], "inference": [], "postprocess": []}
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        tensor, params = predictor.preprocess(image)
        t1 = time.perf_counter()
        raw = predictor.forward(tensor)
        t2 = time.perf_counter()
        predictor.postprocess(raw, params, image.shape[:2])
        t3 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[key].append(dt * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def yolo_model_call(predictor, image):
    """A zero-argument callable running only the backend (eager torch / ONNX Runtime / OpenVINO) on ``image``
    letterboxed as ultralytics' predict does it: the model-only time."""
    from clothingrec.detect.yolo import quiet_ultralytics

    if hasattr(predictor, "forward"):  # the direct path: its own letterbox, then the session alone
        tensor, _ = predictor.preprocess(image)
        return lambda: predictor.forward(tensor)

    bgr = np.ascontiguousarray(image[..., ::-1])
    with quiet_ultralytics(True):
        predictor.model.predict(bgr, imgsz=predictor.imgsz, conf=predictor.conf, iou=predictor.iou,
                                max_det=predictor.max_det, device=predictor.device, verbose=False)
    inner = predictor.model.predictor  # ultralytics' predictor, set up by the call above
    im = inner.preprocess([bgr])

    def call():
        with torch.inference_mode():
            inner.model(im)
    return call


def machine() -> dict:
    from clothingrec import envinfo
    from clothingrec.serve.onnx import cpu_flags

    info = envinfo.machine_report(device="cpu")
    versions = envinfo.package_versions()
    for name in ("onnxruntime", "openvino"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:  # pragma: no cover
            versions[name] = "not installed"
    try:
        load = [round(v, 2) for v in os.getloadavg()]
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


class PeakRSS:
    """Context manager: the peak memory (MB) of this process and all its descendants (worker pools), sampled
    every ``interval_s`` in a thread.  Each process counts its proportional set size (PSS: pages shared with
    a forked parent are split between them, not counted twice), its RSS where PSS is unavailable.
    ``peak_mb`` is the largest sum seen; ``base_mb`` the sum at entry."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = float(interval_s)
        self.base_mb = self.peak_mb = 0.0

    def _sum_mb(self) -> float:
        import psutil

        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.Error:  # a worker that just exited
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._sum_mb())
            self._stop.wait(self.interval_s)

    def __enter__(self):
        import threading

        self.base_mb = self.peak_mb = self._sum_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._sum_mb())
        return False
