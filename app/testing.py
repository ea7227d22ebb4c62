"""Browser and photo helpers shared by the screenshot script and the browser test (not used by the server).

``chromium_context()``: headless system Chromium driven by Playwright, with the flags a closed network needs.
``ccp_photo()``: a real clothing-co-parsing photo to upload.
The app's untrained smoke configuration for tests lives in tests/app_fixtures.py.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

CHROMIUM = Path(os.environ.get("CLOTHINGREC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


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
