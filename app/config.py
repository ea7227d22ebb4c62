"""App configuration: one dataclass, filled from defaults, ``CLOTHINGREC_APP_*`` env vars, then CLI flags."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

MODES = ("two-stage", "direct")


@dataclass
class AppConfig:
    # models (clothingrec.zoo.resolve): "auto" (committed weights under runs/results/ if present, else
    # untrained), "untrained" (seeded, freshly initialised stand-in), or a path (run dir / weights file)
    person_detector: str = "auto"
    clothing_detector: str = "auto"
    classifier: str = "auto"
    device: str = "auto"
    threads: int | None = None          # torch intra-op threads (None: torch's default)
    replicas: int = 1                   # model copies; each request holds one exclusively
    queue_timeout_s: float = 120.0      # a request waiting longer for a free copy gets 503
    warmup: bool = True                 # one pass of every model at start
    # "fastest": trained models on the CPU run the fastest ONNX Runtime path that agrees with eager PyTorch,
    # chosen by measurement at start (clothingrec.serve; person detector fp32 only); "eager": PyTorch as trained
    serving: str = "fastest"
    # pipeline
    default_mode: str = "two-stage"
    margin: float = 0.1                 # person box padding (fraction of its size) before cropping
    score_threshold: float | None = None  # garments; None: 0.5 for trained weights, 0.05 untrained
    person_score_threshold: float | None = None  # None: 0.5 trained, 0.0 untrained
    max_persons: int = 5                # person boxes kept (highest scores) for the two-stage mode
    max_detections: int = 50            # garments reported (and classified) per image
    # untrained (smoke) stand-ins: Faster R-CNN (person), Mask R-CNN (garments), MobileNetV3-small
    smoke_min_size: int = 256
    smoke_seed: int = 0
    smoke_classifier_size: int = 128
    smoke_max_detections: int = 10      # detections per image of the untrained detectors
    # input limits
    max_content_length: int = 16 * 1024 * 1024   # bytes of the whole request body
    max_pixels: int = 40_000_000                 # decompression-bomb guard (width x height)
    # server (CLI only)
    host: str = "127.0.0.1"
    port: int = 8000
    server_threads: int = 4

    def __post_init__(self):
        if self.default_mode not in MODES:
            raise ValueError(f"default_mode must be one of {MODES}, got {self.default_mode!r}")
        if self.serving not in ("fastest", "eager"):
            raise ValueError(f"serving must be 'fastest' or 'eager', got {self.serving!r}")
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if not 0 <= self.margin <= 2:
            raise ValueError(f"margin must be in [0, 2], got {self.margin}")

    @classmethod
    def from_env(cls, environ=None, **overrides) -> AppConfig:
        """Defaults, then ``CLOTHINGREC_APP_<FIELD>`` variables, then ``overrides`` (None = not given)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"CLOTHINGREC_APP_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, raw: str, annotation) -> object:
    text = str(annotation)
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if text.startswith("bool"):
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise ValueError(f"environment variable CLOTHINGREC_APP_{name.upper()}={raw!r} is not a number") from None
    return raw
