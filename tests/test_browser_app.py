"""A real browser against the app under waitress: headless system Chromium driven by Playwright.

Uploads a real CCP photo through the page, waits for the result and checks the detections table
against the API's answer for the same photo.  The screenshot is kept as a test artifact in
runs/test-artifacts/browser/demo.png.  Skips only when /usr/bin/chromium is absent *and* CI is not
"true" (in CI a missing browser is a failure: install the Debian packages chromium chromium-driver).
"""
from __future__ import annotations

import io
import os
import sys

import pytest

from clothingrec.paths import PROJECT_ROOT, RUNS_DIR

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from app.server import create_app  # noqa: E402
from app.testing import CHROMIUM, ccp_photo, chromium_context  # noqa: E402
from app.wsgi import BackgroundServer  # noqa: E402
from app_fixtures import shared_service, smoke_config  # noqa: E402

ARTIFACTS = RUNS_DIR / "test-artifacts" / "browser"

if not CHROMIUM.exists() and os.environ.get("CI", "").lower() != "true":
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver); "
                "outside CI the browser test is skipped", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    config = smoke_config()
    with BackgroundServer(create_app(config, service=shared_service()), config) as srv:
        yield srv


def test_upload_in_browser_shows_detections(server, tmp_path):
    photo = ccp_photo(1)
    # the API's answer for the same photo and mode: the page must show exactly these rows
    client = create_app(smoke_config(), service=shared_service()).test_client()
    expected = client.post("/api/predict", data={"image": (io.BytesIO(photo.read_bytes()), photo.name),
                                                 "mode": "two-stage"},
                           content_type="multipart/form-data").get_json()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console_errors = []
    with chromium_context() as context:
        page = context.new_page()
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        page.goto(server.url + "/", wait_until="load")
        assert "untrained (smoke)" in page.inner_text("#weights-banner")
        page.select_option("#mode", "two-stage")
        page.set_input_files("#image-input", str(photo))
        page.click("#submit")
        page.wait_for_selector("body[data-state]", timeout=120_000)
        assert page.get_attribute("body", "data-state") == "done", page.inner_text("#error")
        assert page.is_visible("#result") and page.is_hidden("#error")
        garments = page.locator("#detections tbody tr.garment-row")
        persons = page.locator("#detections tbody tr.person-row")
        assert garments.count() == len(expected["detections"]) > 0
        assert persons.count() == len(expected["persons"])
        first = garments.nth(0).locator("td")
        assert first.nth(2).inner_text() == expected["detections"][0]["name"]
        assert first.nth(4).inner_text() == expected["detections"][0]["classifier"]["label"]
        assert "mode requested: two-stage" in page.inner_text("#summary")
        assert page.locator("#timings tbody tr").count() >= 5
        # the canvas holds the image at its full size
        size = page.evaluate("() => [document.getElementById('canvas').width, "
                             "document.getElementById('canvas').height]")
        assert size == [expected["image"]["width"], expected["image"]["height"]]
        page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    assert (ARTIFACTS / "demo.png").stat().st_size > 10_000
    assert not console_errors, console_errors


def test_bad_upload_shows_error_in_browser(server, tmp_path):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"hello, this is text")
    with chromium_context() as context:
        page = context.new_page()
        page.goto(server.url + "/", wait_until="load")
        page.set_input_files("#image-input", str(bad))
        page.click("#submit")
        page.wait_for_selector("body[data-state]", timeout=60_000)
        assert page.get_attribute("body", "data-state") == "error"
        text = page.inner_text("#error")
        assert "415" in text and "not_an_image" in text and "not-an-image.jpg" in text
