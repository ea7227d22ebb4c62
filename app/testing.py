"""Helpers shared by the app's tests, the benchmark and the screenshot script (not used by the server).

``smoke_config()``: untrained, seeded models at small input sizes, loopback, any free port.
``shared_service()``: one :class:`~app.engine.Service` per process (model loading takes seconds).
``chromium_context()``: headless system Chromium driven by Playwright, with the flags a closed network needs.
"""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

from app.config import AppConfig

CHROMIUM = Path(os.environ.get("CLOTHINGREC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

SMOKE = dict(person_detector="untrained", clothing_detector="untrained", classifier="untrained",
             device="cpu", threads=2, smoke_min_size=128, smoke_max_detections=5, max_persons=1,
             person_score_threshold=0.0,
             smoke_classifier_size=64, host="127.0.0.1", port=0, server_threads=4)


def smoke_config(**overrides) -> AppConfig:
    return AppConfig(**{**SMOKE, **overrides})


@functools.lru_cache(maxsize=None)
def shared_service(**overrides):
    from app.engine import Service

    return Service(smoke_config(**overrides), log=lambda *a, **k: None)


def ccp_photo(number: int = 1) -> Path:
    """A real clothing-co-parsing photo (``photos/0001.jpg`` …)."""
    from clothingrec.paths import CCP, find_dataset

    path = find_dataset(CCP) / "photos" / f"{number:04d}.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"CCP photo {path} is missing")
    return path


@contextlib.contextmanager
def chromium_context(viewport=(1200, 1600)):
    """A Playwright browser context on the system Chromium (never Playwright's own download)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: install the Debian packages chromium and chromium-driver")
    with tempfile.TemporaryDirectory(prefix="clothingrec-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]}, offline=False)
        try:
            yield context
        finally:
            context.close()
