"""The models behind the app, loaded once, and the per-request prediction.

:class:`Service` builds ``replicas`` independent copies of (person detector, clothing detector,
classifier) at start and keeps them in a queue: a request takes one copy, uses it exclusively and
puts it back, so concurrent requests never re-enter a model (with ``replicas=1`` this is a lock).

Admission: an upload's pixels are decoded only once its request holds a model copy (``predict`` takes
a *decoder*), so at most ``replicas`` decoded images (each ≤ ``max_pixels``) exist at a time, however
many requests wait; the cheap header checks (:func:`app.imaging.probe`) run before, so bad uploads are
refused without waiting.  Every detector is wrapped in :class:`app.imaging.AspectGuard` (extreme aspect
ratios padded before a model's resize sees them).
"""
from __future__ import annotations

import base64
import dataclasses
import io
import queue
import threading
import time

import numpy as np

from clothingrec import zoo
from clothingrec.device import resolve_device, set_threads
from clothingrec.pipeline import Pipeline
from clothingrec.structures import Classifier
from clothingrec.zoo import UNTRAINED, ModelInfo

from app.config import MODES, AppConfig
from app.imaging import MAX_ASPECT, AspectGuard, InputError, hide_paths, jpeg_data_url, padded_size

#: one colour per category id (cycled); persons are drawn in PERSON_COLOR
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#469990", "#800000", "#808000", "#000075", "#bfef45", "#fabed4")
PERSON_COLOR = "#ffe119"


class Busy(RuntimeError):
    """No model copy became free within the queue timeout."""


def color_for(label: int) -> str:
    return PALETTE[(int(label) - 1) % len(PALETTE)]


@dataclasses.dataclass
class Engine:
    """One exclusive copy of the models."""

    pipeline: Pipeline
    classifier: Classifier
    index: int


class Service:
    def __init__(self, config: AppConfig, log=print):
        self.config = config
        self.device = resolve_device(config.device)
        self.threads = set_threads(config.threads)
        self._log = log
        self._pool: queue.Queue[Engine] = queue.Queue()
        self.infos: dict[str, ModelInfo] = {}
        started = time.perf_counter()
        for i in range(config.replicas):
            engine = self._build(i)
            if config.warmup:
                self._warm(engine)
            self._pool.put(engine)
        self.load_seconds = time.perf_counter() - started
        clothing_trained = self.infos["clothing_detector"].trained
        self.score_threshold = (config.score_threshold if config.score_threshold is not None
                                else (0.5 if clothing_trained else 0.05))
        self.started_at = time.time()
        self._count_lock = threading.Lock()
        self.served = 0
        self.failed = 0
        for info in self.infos.values():
            log(f"[app] {info.role}: {info.architecture} — weights: "
                f"{'trained, ' + info.source if info.trained else UNTRAINED} — runs on: {info.serving}")
        log(f"[app] {config.replicas} model cop{'y' if config.replicas == 1 else 'ies'} on {self.device}, "
            f"torch threads {self.threads}, loaded in {self.load_seconds:.1f} s")

    # ------------------------------------------------------------------ loading
    def _build(self, index: int) -> Engine:
        """One copy of the models, through :func:`clothingrec.zoo.resolve` (stand-ins: seeded, small)."""
        c = self.config
        rcnn = dict(min_size=c.smoke_min_size, max_size=2 * c.smoke_min_size, rpn_pre_nms_top_n_test=300,
                    rpn_post_nms_top_n_test=100)
        person, pinfo = zoo.resolve("person-detector", c.person_detector, device=self.device, seed=c.smoke_seed,
                                    box_detections_per_img=max(c.max_persons, 1), **rcnn)
        clothing, cinfo = zoo.resolve("clothing-detector", c.clothing_detector, device=self.device,
                                      seed=c.smoke_seed + 1, **rcnn,
                                      box_detections_per_img=max(min(c.max_detections, c.smoke_max_detections), 1))
        classifier, kinfo = zoo.resolve("classifier", c.classifier, device=self.device, seed=c.smoke_seed + 2,
                                        imgsz=c.smoke_classifier_size)
        if c.serving == "fastest" and self.device.type == "cpu":
            person, clothing, classifier = self._serve(person, pinfo, clothing, cinfo, classifier, kinfo)
        person_threshold = 0.5 if c.person_score_threshold is None else c.person_score_threshold
        person, clothing = AspectGuard(person), AspectGuard(clothing)
        for info in (pinfo, cinfo, kinfo):  # what users are shown: never an absolute path
            info.source, info.architecture = hide_paths(str(info.source)), hide_paths(str(info.architecture))
        pipeline = Pipeline(person, clothing, margin=c.margin, person_score_threshold=person_threshold,
                            max_persons=c.max_persons)
        self.infos = {"person_detector": pinfo, "clothing_detector": cinfo, "classifier": kinfo}
        return Engine(pipeline, classifier, index)

    def _serve(self, person, pinfo, clothing, cinfo, classifier, kinfo):
        """Trained models → the fastest serving path that agrees with eager (measured here, at start);
        untrained stand-ins stay eager (nothing to gain in a smoke setting, and it keeps start-up quick)."""
        from clothingrec import serve

        # choosing needs real images (agreement and timing); without them a model stays eager, and says why
        try:
            served_person, served_clothing = serve.serve_detectors(
                person if pinfo.trained else None, clothing if cinfo.trained else None,
                threads=self.threads, log=self._log)
        except Exception as exc:  # noqa: BLE001 - the app still starts, on eager PyTorch
            self._log(f"[app] detectors stay eager: choosing a serving path failed ({type(exc).__name__}: {exc})")
            served_person = served_clothing = None
        if served_person is not None:
            person, pinfo.serving = served_person, serve.backend_of(served_person)
        if served_clothing is not None:
            clothing, cinfo.serving = served_clothing, serve.backend_of(served_clothing)
        if kinfo.trained:
            try:
                classifier = serve.serving_classifier(classifier, threads=self.threads, log=self._log)
                kinfo.serving = classifier.backend
            except Exception as exc:  # noqa: BLE001
                self._log(f"[app] classifier stays eager: choosing a serving path failed "
                          f"({type(exc).__name__}: {exc})")
        return person, clothing, classifier

    @staticmethod
    def _warm(engine: Engine) -> None:
        """One pass of each model on a grey image, so lazy initialisation does not land on a user."""
        grey = np.full((96, 64, 3), 127, dtype=np.uint8)
        engine.pipeline.run(grey, "two-stage")
        engine.classifier.classify(grey)

    # ------------------------------------------------------------------ state
    @property
    def weights(self) -> str:
        trained = [i.trained for i in self.infos.values()]
        if all(trained):
            return "trained"
        if not any(trained):
            return UNTRAINED
        return "mixed: " + ", ".join(f"{i.role} {'trained' if i.trained else UNTRAINED}"
                                     for i in self.infos.values())

    def describe(self) -> dict:
        return {"weights": self.weights, "models": {k: v.to_dict() for k, v in self.infos.items()},
                "device": str(self.device), "torch_threads": self.threads, "replicas": self.config.replicas,
                "modes": list(MODES), "default_mode": self.config.default_mode,
                "score_threshold": self.score_threshold, "margin": self.config.margin,
                "max_content_length": self.config.max_content_length, "max_pixels": self.config.max_pixels,
                "max_aspect_ratio": MAX_ASPECT, "concurrent_decodes": self.config.replicas}

    def health(self) -> dict:
        with self._count_lock:
            served, failed = self.served, self.failed
        return {"status": "ok", "weights": self.weights, "uptime_s": round(time.time() - self.started_at, 1),
                "requests_served": served, "requests_failed": failed,
                "models_free": self._pool.qsize(), "replicas": self.config.replicas}

    # ------------------------------------------------------------------ prediction
    def predict(self, image, *, mode: str | None = None, score_threshold: float | None = None,
                include_masks: bool = False, overlay: bool = False, preview: bool = False,
                timings: dict | None = None) -> dict:
        """``image``: a :class:`DecodedImage`, or a callable returning one; a callable is called only once
        this request holds a model copy (admission), so concurrent decodes are bounded by ``replicas``.
        ``preview``: add ``image_jpeg`` (the oriented RGB image as a JPEG data URL)."""
        mode = mode or self.config.default_mode
        if mode not in MODES:
            raise InputError(400, "bad_mode", f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        threshold = self.score_threshold if score_threshold is None else float(score_threshold)
        timings = dict(timings or {})
        t0 = time.perf_counter()
        try:
            engine = self._pool.get(timeout=self.config.queue_timeout_s)
        except queue.Empty:
            raise Busy(f"all {self.config.replicas} model copies stayed busy for "
                       f"{self.config.queue_timeout_s:g} s") from None
        timings["queue_wait"] = time.perf_counter() - t0
        preview_url = None
        try:
            if callable(image):  # decode under admission (an InputError here is the client's, not a failure)
                t = time.perf_counter()
                image = image()
                timings["decode"] = time.perf_counter() - t
            try:
                result = engine.pipeline.run(image.rgb, mode)
                det = result.detections.filter(threshold).top(self.config.max_detections)
                t = time.perf_counter()
                classes = engine.classifier.classify_crops(image.rgb, det.boxes_xyxy)
                timings["classify"] = time.perf_counter() - t
                if preview:
                    preview_url = jpeg_data_url(image.rgb)
            except Exception:
                with self._count_lock:
                    self.failed += 1
                raise
        finally:
            self._pool.put(engine)
        payload = dataclasses.replace(result, detections=det).to_dict(include_masks=include_masks)
        for item, c, label in zip(payload["detections"], classes, det.labels):
            item["color"] = color_for(label)
            item["classifier"] = {"label": c.label, "score": round(c.score, 4)}
        for person in payload["persons"]:
            person["color"] = PERSON_COLOR
        if padded_size(image.height, image.width) != (image.height, image.width):
            payload["notes"].append(f"aspect ratio above {MAX_ASPECT:g}:1: padded with grey for the detectors "
                                    "(boxes stay in this image's pixels)")
        payload["notes"] = [hide_paths(str(n)) for n in payload["notes"]]
        pipeline_ms = payload.pop("timings_ms")
        payload["timings_ms"] = {
            **{k: round(1000.0 * v, 2) for k, v in timings.items()},
            **{f"pipeline_{k}": v for k, v in pipeline_ms.items()},
        }
        if overlay and det.masks is not None and len(det):
            t = time.perf_counter()
            payload["mask_overlay_png"] = mask_overlay(det.masks, det.labels)
            payload["timings_ms"]["overlay"] = round(1000.0 * (time.perf_counter() - t), 2)
        payload.update({"score_threshold": threshold, "num_detections": len(det), "has_masks": det.masks is not None,
                        "image": image.info(), "weights": self.weights,
                        "models": {k: v.to_dict() for k, v in self.infos.items()}})
        if preview_url is not None:
            payload["image_jpeg"] = preview_url
        with self._count_lock:
            self.served += 1
        return payload


def mask_overlay(masks: np.ndarray, labels: np.ndarray, alpha: int = 110) -> str:
    """Masks painted in their category colours on a transparent canvas, as a PNG data URL."""
    from PIL import Image

    h, w = masks.shape[1:]
    canvas = np.zeros((h, w, 4), dtype=np.uint8)
    # paint lowest score first so the best detection ends on top (masks arrive best first)
    for mask, label in zip(masks[::-1], labels[::-1]):
        rgb = tuple(int(color_for(label)[i:i + 2], 16) for i in (1, 3, 5))
        canvas[mask] = (*rgb, alpha)
    buf = io.BytesIO()
    Image.fromarray(canvas, "RGBA").save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


__all__ = ["Service", "Busy", "Engine", "mask_overlay", "color_for"]
