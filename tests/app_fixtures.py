"""The web app with untrained stand-ins, for tests (moved here from app/testing.py: nothing else uses it).

``smoke_config()``: untrained, seeded models at small input sizes, loopback, any free port.
``shared_service()``: one :class:`~app.engine.Service` per process (model loading takes seconds).
Test modules import it as ``app_fixtures`` (pytest puts tests/ on ``sys.path``).
"""
from __future__ import annotations

import functools

from app.config import AppConfig

SMOKE = dict(person_detector="untrained", clothing_detector="untrained", classifier="untrained",
             device="cpu", threads=2, smoke_min_size=128, smoke_max_detections=5, max_persons=1,
             person_score_threshold=0.0,
             smoke_classifier_size=64, host="127.0.0.1", port=0, server_threads=4)


def smoke_config(**overrides) -> AppConfig:
    return AppConfig(**{**SMOKE, **overrides})


@functools.cache
def shared_service(**overrides):
    from app.engine import Service

    return Service(smoke_config(**overrides), log=lambda *a, **k: None)
