"""The web demo through Flask's test client and through waitress on loopback.

Models are untrained (seeded) networks of the project's architectures at small input sizes: the
tests check the plumbing (decoding, limits, coordinates, concurrency), not detection quality.
"""
from __future__ import annotations

import io
import json
import os
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clothingrec.paths import PROJECT_ROOT

if str(PROJECT_ROOT) not in sys.path:  # `app` lives at the project root, beside lib/
    sys.path.insert(0, str(PROJECT_ROOT))

from clothingrec.datasets.clothing_small import CLASSES as CLASSIFIER_CLASSES  # noqa: E402
from clothingrec.structures import SERVE_SCORE_THRESHOLD  # noqa: E402
from clothingrec.zoo import UNTRAINED  # noqa: E402

from app.config import MODES  # noqa: E402
from app.imaging import DEFAULT_MAX_PIXELS, InputError, decode_image  # noqa: E402
from app.server import create_app  # noqa: E402
from app.testing import ccp_photo  # noqa: E402
from app.wsgi import BackgroundServer  # noqa: E402
from app_fixtures import shared_service, smoke_config  # noqa: E402

BODY_LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def service():
    return shared_service()


@pytest.fixture(scope="module")
def client(service):
    return create_app(smoke_config(max_content_length=BODY_LIMIT), service=service).test_client()


@pytest.fixture(scope="module")
def photo_bytes():
    return ccp_photo(1).read_bytes()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def _post(client, data: bytes | None, *, field="image", filename="upload.jpg", **form):
    body = dict(form)
    if data is not None:
        body[field] = (io.BytesIO(data), filename)
    return client.post("/api/predict", data=body, content_type="multipart/form-data")


def _assert_healthy(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok"


# ----------------------------------------------------------------------------- happy paths
@pytest.mark.parametrize("mode", MODES)
def test_predict_on_real_ccp_photo(client, photo_bytes, mode):
    r = _post(client, photo_bytes, filename="0001.jpg", mode=mode, overlay="1", masks="1")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    assert out["mode_requested"] == mode
    assert out["mode_used"] in MODES and isinstance(out["fallback"], bool)
    assert out["image"]["width"] == 550 and out["image"]["height"] == 832 and out["image"]["format"] == "JPEG"
    assert out["weights"] == UNTRAINED
    assert all(m["weights"] == UNTRAINED for m in out["models"].values())
    assert out["num_detections"] == len(out["detections"]) > 0
    for det in out["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 550 and 0 <= y1 <= y2 <= 832
        assert det["score"] >= out["score_threshold"]
        assert det["classifier"]["label"] in CLASSIFIER_CLASSES
        assert 0.0 <= det["classifier"]["score"] <= 1.0
        assert det["mask_rle"]["size"] == [832, 550]
    assert out["mask_overlay_png"].startswith("data:image/png;base64,")
    timings = out["timings_ms"]
    for key in ("decode", "queue_wait", "classify", "pipeline_total", "total"):
        assert timings[key] >= 0
    if mode == "two-stage":  # the smoke person threshold is 0: the untrained detector always finds someone
        assert out["mode_used"] == "two-stage" and not out["fallback"]
        assert out["persons"] and timings["pipeline_person"] > 0
        crops = [p["crop"] for p in out["persons"]]
        for det in out["detections"]:  # garments were found inside a person crop, mapped back to the image
            x1, y1, x2, y2 = det["box"]
            assert any(c[0] <= x1 and c[1] <= y1 and x2 <= c[2] and y2 <= c[3] for c in crops)
    else:
        assert out["mode_used"] == "direct" and out["persons"] == []
    json.dumps(out)  # JSON-clean


def test_two_stage_falls_back_when_no_person(service, client, photo_bytes):
    engine = service._pool.get()
    try:
        saved = engine.pipeline.person_score_threshold
        engine.pipeline.person_score_threshold = 1.0  # nobody scores ≥ 1.0
        service._pool.put(engine)
        out = _post(client, photo_bytes, mode="two-stage").get_json()
    finally:
        engine = service._pool.get()
        engine.pipeline.person_score_threshold = saved
        service._pool.put(engine)
    assert out["mode_requested"] == "two-stage" and out["mode_used"] == "direct"
    assert out["fallback"] is True and "no person" in out["fallback_reason"]
    assert out["persons"] == [] and out["num_detections"] > 0  # garments still returned


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "untrained (smoke)" in html and 'id="detections"' in html and 'name="image"' in html
    info = client.get("/api/info").get_json()
    assert info["weights"] == UNTRAINED and set(info["models"]) == {"person_detector", "clothing_detector",
                                                                   "classifier"}


def test_no_debug_and_no_fixed_secret(service):
    a = create_app(smoke_config(), service=service)
    b = create_app(smoke_config(), service=service)
    assert not a.debug and not a.testing
    assert a.secret_key and a.secret_key != b.secret_key


# ----------------------------------------------------------------------------- bad inputs
def _big_png() -> bytes:
    # 50 megapixels (7072 x 7072), all one grey: a small file that would decode to 150 MB of RGB
    return _png(Image.new("L", (7072, 7072), 128))


BAD_INPUTS = {
    "non-image bytes": (lambda photo: b"%PDF-1.4 definitely not an image\n" * 20, {}, 415, "not_an_image"),
    "truncated jpeg": (lambda photo: photo[: len(photo) // 2], {}, 400, "corrupt_image"),
    "zero-byte file": (lambda photo: b"", {}, 400, "empty_file"),
    "50-megapixel png": (lambda photo: _big_png(), {"filename": "big.png"}, 413, "too_many_pixels"),
    "wrong field name": (lambda photo: photo, {"field": "file"}, 400, "missing_file"),
    "oversized body": (lambda photo: photo + b"\0" * (BODY_LIMIT + 1), {}, 413, "body_too_large"),
    "gif (not whitelisted)": (lambda photo: _gif(), {"filename": "a.gif"}, 415, "unsupported_format"),
    "unknown mode": (lambda photo: photo, {"mode": "three-stage"}, 400, "bad_mode"),
    "bad threshold": (lambda photo: photo, {"score_threshold": "high"}, 400, "bad_score_threshold"),
    # beyond Pillow's own limit Pillow refuses in Image.open: still too many pixels, not "not an image"
    "bomb beyond pillow's limit": (lambda photo: _pillow_bomb_png(), {"filename": "bomb.png"}, 413,
                                   "too_many_pixels"),
    # 40000 x 1 padded to the detectors' aspect limit (20:1) would be 80 megapixels
    "too long to pad": (lambda photo: _png(Image.new("L", (40000, 1))), {"filename": "line.png"}, 413,
                        "too_many_pixels"),
    "too many form fields": (lambda photo: photo, {f"extra{i}": "1" for i in range(30)}, 400, "too_many_fields"),
    "huge text field": (lambda photo: photo, {"mode": "x" * 600_000}, 413, "field_too_large"),
}


def _pillow_bomb_png(side: int = 20000) -> bytes:
    """A PNG whose header declares side x side pixels (400 MP: beyond 2x Pillow's own limit), tiny data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_json_4xx_and_server_keeps_serving(client, photo_bytes, case):
    make, kw, status, code = BAD_INPUTS[case]
    kw = dict(kw)
    r = _post(client, make(photo_bytes), field=kw.pop("field", "image"), filename=kw.pop("filename", "x.jpg"),
              **kw)
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["status"] == status and err["code"] == code and err["message"]
    _assert_healthy(client)


def test_too_many_fields_is_not_called_an_oversized_body(client):
    r = _post(client, _png(Image.new("RGB", (8, 8))), **{f"f{i}": "1" for i in range(25)})
    err = r.get_json()["error"]
    assert r.status_code == 400 and err["code"] == "too_many_fields" and "16" not in err["message"]
    assert "fields" in err["message"] and "body" not in err["message"]


def test_missing_field_message_names_the_field(client, photo_bytes):
    err = _post(client, photo_bytes, field="file").get_json()["error"]
    assert "'image'" in err["message"] and "file" in err["message"]


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").get_json()["error"]["status"] == 404
    assert client.get("/api/predict").get_json()["error"]["status"] == 405


# ----------------------------------------------------------------------------- decoding
def _halves(size=(40, 20)) -> Image.Image:
    """Left half red, right half blue."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = (255, 0, 0)
    arr[:, size[0] // 2:] = (0, 0, 255)
    return Image.fromarray(arr)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90° clockwise for display
    decoded = decode_image(_jpeg(_halves(), exif=exif.tobytes()), filename="rot.jpg")
    assert decoded.exif_orientation == 6 and (decoded.width, decoded.height) == (20, 40)
    top, bottom = decoded.rgb[5, 10].astype(int), decoded.rgb[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_colour_modes_become_rgb(mode):
    base = _halves()
    if mode == "CMYK":
        data, fmt = _jpeg(base.convert("CMYK")), "JPEG"
    elif mode == "I;16":
        grey = (np.asarray(base.convert("L"), dtype=np.uint16) * 200)
        data, fmt = _png(Image.fromarray(grey.astype("<u2"))), "PNG"
    else:
        data, fmt = _png(base.convert(mode)), "PNG"
    decoded = decode_image(data)
    assert decoded.rgb.shape == (20, 40, 3) and decoded.rgb.dtype == np.uint8 and decoded.format == fmt
    assert decoded.original_mode.startswith(mode.split(";")[0])


def test_transparent_pixels_are_flattened_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    decoded = decode_image(_png(rgba))
    assert (decoded.rgb == 255).all()


def test_pixel_cap_checked_before_decoding():
    with pytest.raises(InputError) as info:
        decode_image(_png(Image.new("1", (8000, 6000))), filename="bomb.png")
    assert info.value.status == 413 and "bomb.png" in info.value.message
    assert "48.0 megapixels" in info.value.message and DEFAULT_MAX_PIXELS == 40_000_000


# ----------------------------------------------------------------------------- geometry (issue 17)
GEOMETRIES = [(1, 1), (1, 4000), (4000, 1), (3, 500), (500, 3), (2, 61), (7, 7)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", GEOMETRIES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_any_geometry_gives_200_with_boxes_inside(client, size, mode):
    """Very thin / extreme-aspect images crashed the person detector's resize (a 0-pixel side): 500.
    They are padded for the detectors now; boxes stay inside the image as uploaded."""
    w, h = size
    rng = np.random.default_rng(w * 7919 + h)
    data = _png(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    r = _post(client, data, filename="thin.png", mode=mode, masks="1", overlay="1", preview="1")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    assert out["image_size"] == {"height": h, "width": w}
    for item in out["detections"] + out["persons"]:
        x1, y1, x2, y2 = item["box"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
    for det in out["detections"]:
        assert det["mask_rle"]["size"] == [h, w]
    padded = max(w, h) > 20 * min(w, h)
    assert any("padded" in n for n in out["notes"]) == padded
    _assert_healthy(client)


def _cmyk_jpeg() -> bytes:
    return _jpeg(_halves().convert("CMYK"))


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return _jpeg(_halves((200, 3)), exif=exif.tobytes())


COLOUR_UPLOADS = {
    "grey": lambda: _png(_halves().convert("L")),
    "rgba": lambda: _png(_halves().convert("RGBA")),
    "palette": lambda: _png(_halves().convert("P")),
    "16-bit": lambda: _png(Image.fromarray(np.arange(40 * 20, dtype="<u2").reshape(20, 40) * 50)),
    "cmyk": _cmyk_jpeg,
    "exif-rotated thin": _rotated_jpeg,
    "webp": lambda: _webp(_halves()),
    "bmp 1x1": lambda: _bmp(Image.new("RGB", (1, 1))),
}


def _webp(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="WEBP")
    return buf.getvalue()


def _bmp(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="BMP")
    return buf.getvalue()


@pytest.mark.parametrize("kind", list(COLOUR_UPLOADS))
def test_colour_modes_and_orientation_through_the_api(client, kind):
    r = _post(client, COLOUR_UPLOADS[kind](), filename=f"{kind}.img", mode="two-stage")
    assert r.status_code == 200, r.get_data(as_text=True)
    if kind == "exif-rotated thin":  # 200x3 stored, orientation 8: 3x200 as displayed
        assert r.get_json()["image_size"] == {"height": 200, "width": 3}


def test_aspect_guard_pads_and_cuts_back():
    from clothingrec.structures import Detections

    from app.imaging import AspectGuard, padded_size

    seen = []

    class Fake:
        family = "fake"

        def predict(self, image):
            seen.append(image.shape)
            h, w = image.shape[:2]
            masks = np.ones((2, h, w), bool)
            return Detections(np.array([[0, 0, w, h], [0, h - 1, w, h]], np.float32), [1, 2], [0.9, 0.8], masks)

    guard = AspectGuard(Fake())
    assert guard.family == "fake" and padded_size(4, 400) == (20, 400) and padded_size(400, 4) == (400, 20)
    det = guard.predict(np.zeros((4, 400, 3), np.uint8))
    assert seen[-1] == (20, 400, 3)  # the model saw a 20:1 image
    # the first box is cut back to the input, the second lay in the padding only: dropped
    assert det.boxes_xyxy.tolist() == [[0, 0, 400, 4]] and det.masks.shape == (1, 4, 400)
    guard.predict(np.zeros((30, 40, 3), np.uint8))
    assert seen[-1] == (30, 40, 3)  # ordinary images untouched


# ----------------------------------------------------------------------------- hardening (issue 17)
def _has_security_headers(headers) -> None:
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "img-src 'self' data:" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("no-referrer", "same-origin")


def test_security_headers_on_every_response(client, photo_bytes):
    responses = [client.get("/"), client.get("/healthz"), client.get("/api/info"), client.get("/nope"),
                 client.get("/static/app.js"), client.get("/api/predict"), _post(client, b"not an image"),
                 _post(client, _png(Image.new("RGB", (8, 8))), mode="direct")]
    for r in responses:
        _has_security_headers(r.headers)
    # the page needs nothing the policy forbids: no inline script or style, no external origin
    html = responses[0].get_data(as_text=True)
    assert "<script>" not in html and "<style" not in html and " style=" not in html and "http" not in html


def _absolute_paths() -> list[str]:
    import tempfile

    return [p for p in {str(PROJECT_ROOT), str(Path.home()), tempfile.gettempdir(), sys.prefix}
            if p and p != "/"]


def test_no_absolute_path_in_any_answer(client, photo_bytes):
    texts = [client.get("/").get_data(as_text=True), client.get("/api/info").get_data(as_text=True),
             client.get("/healthz").get_data(as_text=True)]
    for data, form in [(photo_bytes, {"mode": "two-stage", "masks": "1"}), (photo_bytes[:999], {}),
                       (b"junk", {}), (_png(Image.new("RGB", (4000, 1))), {"mode": "two-stage"})]:
        texts.append(_post(client, data, filename="p.jpg", **form).get_data(as_text=True))
    for text in texts:
        for path in _absolute_paths():
            assert path not in text, path


def test_hide_paths():
    from app.imaging import hide_paths

    text = hide_paths(f"weights {PROJECT_ROOT}/runs/x/best.pt, cache /var/cache/x/model.onnx, image/jpeg")
    assert text == "weights runs/x/best.pt, cache model.onnx, image/jpeg"


def test_decoding_waits_for_a_model_but_bad_uploads_do_not(service, client, monkeypatch):
    """Pixels are decoded only under admission (bounded memory); header checks answer at once."""
    import app.server as server_module

    calls = []
    real = server_module.decode_image
    monkeypatch.setattr(server_module, "decode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    engine = service._pool.get()  # every model copy taken
    saved = service.config.queue_timeout_s
    service.config.queue_timeout_s = 0.2
    try:
        busy = _post(client, _png(Image.new("RGB", (64, 48))), mode="direct")
        refused = _post(client, _pillow_bomb_png(), filename="bomb.png")
        gif = _post(client, _gif(), filename="a.gif")
    finally:
        service.config.queue_timeout_s = saved
        service._pool.put(engine)
    assert busy.status_code == 503 and calls == []  # never decoded while waiting
    assert refused.status_code == 413 and gif.status_code == 415
    ok = _post(client, _png(Image.new("RGB", (64, 48))), mode="direct")
    assert ok.status_code == 200 and calls == [1] and "decode" in ok.get_json()["timings_ms"]


# ----------------------------------------------------------------------------- under waitress
@pytest.fixture(scope="module")
def server(service):
    config = smoke_config(max_content_length=BODY_LIMIT)
    with BackgroundServer(create_app(config, service=service), config) as srv:
        yield srv


def _http_post(url: str, data: bytes, *, field="image", filename="x.jpg", fields=None, timeout=120):
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(url + "/api/predict", data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _http_health(url: str) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=30) as resp:
        return resp.status


def test_waitress_bad_inputs_then_healthy(server, photo_bytes):
    assert _http_post(server.url, b"")[0] == 400
    assert _http_post(server.url, b"\x89PNG\r\n\x1a\n garbage")[0] == 415
    status, body = _http_post(server.url, photo_bytes + b"\0" * (BODY_LIMIT + 10))
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert _http_health(server.url) == 200


def test_waitress_own_413_is_the_api_json(server):
    """A body above waitress' max_request_body_size is refused by waitress before the app runs: the answer
    is still the documented JSON error, with the security headers."""
    import socket

    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert lines[0].startswith("HTTP/1.1 413") and headers["Content-Type"] == "application/json"
    _has_security_headers(headers)
    err = json.loads(body)["error"]
    assert err["status"] == 413 and err["code"] == "body_too_large" and "limit" in err["message"]
    assert _http_health(server.url) == 200


def test_concurrent_clients_get_their_own_answers(server):
    """8 clients at once, two different images: every answer equals the sequential answer for its image
    (the models are deterministic in eval mode, so any unsafe sharing would show up as a mismatch)."""
    images = {}
    for n in (1, 2):
        im = Image.open(ccp_photo(n)).convert("RGB")
        images[n] = _jpeg(im.resize((im.width // 3, im.height // 3)))
    reference = {n: _http_post(server.url, data, fields={"mode": "direct"}) for n, data in images.items()}
    assert all(status == 200 for status, _ in reference.values())
    assert reference[1][1]["detections"] != reference[2][1]["detections"]
    results, errors = [], []

    def client(i):
        n = 1 + i % 2
        try:
            results.append((n, _http_post(server.url, images[n], fields={"mode": "direct"})))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 8
    for n, (status, body) in results:
        assert status == 200
        assert body["detections"] == reference[n][1]["detections"]
    assert _http_health(server.url) == 200


def test_large_upload_writes_nothing_outside_temp(client, tmp_path):
    """A > 500 KB upload is spooled by werkzeug to a temporary file; nothing appears in the project."""
    from clothingrec.paths import PROJECT_ROOT as root

    watched = [root, root / "app", root / "app" / "static", root / "app" / "templates", Path.cwd()]
    before = {d: sorted(os.listdir(d)) for d in watched}
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    data = _png(noisy)
    assert len(data) > 500 * 1024
    r = _post(client, data, filename="noise.png", mode="direct")
    assert r.status_code == 200 and r.get_json()["image"]["format"] == "PNG"
    assert {d: sorted(os.listdir(d)) for d in watched} == before


# ----------------------------------------------------------------------------- configuration
def test_config_from_env_and_cli():
    from app.__main__ import parse_args
    from app.config import AppConfig

    env = {"CLOTHINGREC_APP_PORT": "9123", "CLOTHINGREC_APP_MARGIN": "0.2", "CLOTHINGREC_APP_WARMUP": "false",
           "CLOTHINGREC_APP_CLASSIFIER": "runs/x.pt"}
    cfg = AppConfig.from_env(env)
    assert (cfg.port, cfg.margin, cfg.warmup, cfg.classifier, cfg.host) == (9123, 0.2, False, "runs/x.pt",
                                                                            "127.0.0.1")
    with pytest.raises(ValueError, match="CLOTHINGREC_APP_PORT"):
        AppConfig.from_env({"CLOTHINGREC_APP_PORT": "eighty"})
    with pytest.raises(ValueError, match="default_mode"):
        AppConfig(default_mode="three-stage")
    cli = parse_args(["--port", "0", "--clothing-detector", "untrained", "--replicas", "2", "--default-mode",
                      "direct"])
    assert (cli.port, cli.clothing_detector, cli.replicas, cli.default_mode) == (0, "untrained", 2, "direct")


def test_missing_weights_path_is_a_clear_error():
    from clothingrec import zoo

    with pytest.raises(zoo.ModelLoadError, match="classifier: .*nope.pt does not exist"):
        zoo.resolve("classifier", "runs/nope.pt")


def test_trained_weights_load_through_the_library(tmp_path):
    """A checkpoint in the detection loop's format and an exported classifier load as "trained"."""
    import torch

    from clothingrec import zoo
    from clothingrec.classify import build_classifier, export_weights
    from clothingrec.detect.models import build_detector, builder_spec

    spec = builder_spec("fasterrcnn", "mobilenet_v3_large_fpn", 3, 128, 256)
    torch.manual_seed(0)
    model = build_detector("fasterrcnn", "mobilenet_v3_large_fpn", 3, min_size=128, max_size=256)
    ckpt = tmp_path / "run" / "checkpoints" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"spec": spec, "model": model.state_dict(), "label_to_coco": {1: 1, 2: 2},
                "categories": [{"id": 1, "name": "top"}, {"id": 2, "name": "skirt"}]}, ckpt)
    predictor, info = zoo.resolve("clothing-detector", tmp_path / "run")
    # outside the project a source is named by its folder / file name only, never by an absolute path
    assert info.trained and info.source == "run" and info.categories == ["top", "skirt"]
    assert predictor.predict(np.zeros((64, 48, 3), np.uint8)).boxes_xyxy.shape[1] == 4
    # served detections start at the serving floor (scoring keeps everything from 0.001)
    assert predictor.score_threshold == predictor.model.roi_heads.score_thresh == SERVE_SCORE_THRESHOLD

    weights = export_weights(build_classifier("mobilenet_v3_small", 10), tmp_path / "mobilenet_v3_small.pt",
                             arch="mobilenet_v3_small", classes=CLASSIFIER_CLASSES, imgsz=64, resize_size=72)
    clf, cinfo = zoo.resolve("classifier", str(weights))
    assert cinfo.trained and clf.imgsz == 64 and clf.classes == CLASSIFIER_CLASSES
    labels = clf.classify_crops(np.zeros((50, 40, 3), np.uint8), np.array([[5, 5, 30, 45], [0, 0, 40, 50]]))
    assert len(labels) == 2 and all(c.label in CLASSIFIER_CLASSES and 0 <= c.score <= 1 for c in labels)


def test_busy_models_give_503_then_recover(service, client, photo_bytes):
    engine = service._pool.get()  # every copy taken
    saved = service.config.queue_timeout_s
    service.config.queue_timeout_s = 0.2
    try:
        r = _post(client, photo_bytes, mode="direct")
    finally:
        service.config.queue_timeout_s = saved
        service._pool.put(engine)
    assert r.status_code == 503 and r.headers["Retry-After"] and r.get_json()["error"]["code"] == "busy"
    _assert_healthy(client)


def test_trained_models_run_on_the_fastest_agreeing_serving_path():
    """With the committed YOLO and classifier weights, ``serving=fastest`` picks a measured backend, says so,
    and its answers match the eager service on a real photo (boxes at IoU ≥ 0.9, same garment labels)."""
    from clothingrec import serve, zoo

    from app.engine import Service

    if zoo.committed("clothing-detector") is None or zoo.committed("classifier") is None:
        pytest.fail("the committed weights under runs/results/ are missing: this test needs them")
    photo = decode_image(ccp_photo(1).read_bytes(), filename="0001.jpg")
    results = {}
    for serving in ("eager", "fastest"):
        cfg = smoke_config(clothing_detector="auto", classifier="auto", serving=serving, warmup=False,
                           default_mode="direct", threads=2)
        svc = Service(cfg, log=lambda *a, **k: None)
        results[serving] = (svc.describe()["models"], svc.predict(photo, score_threshold=0.25))
        if serving == "fastest":
            engine = svc._pool.get()
            served_clothing, served_classifier = engine.pipeline.clothing_predictor, engine.classifier
            svc._pool.put(engine)
    eager_models, eager = results["eager"]
    served_models, served = results["fastest"]
    assert eager_models["clothing_detector"]["serving"] == "eager"
    assert served_models["person_detector"]["serving"] == "eager"  # untrained stand-in: never served
    # what the app says it runs is the measured rule's pick on the app's own start-up measurements
    from clothingrec.serve.classifier import choose

    clothing_rows = served_clothing.serving["candidates"]
    assert {r["backend"] for r in clothing_rows} >= {"eager", "onnx-fp32"}
    assert served_models["clothing_detector"]["serving"] == choose(
        [r for r in clothing_rows if r.get("agreement", {}).get("agrees") and "batch1" in r])["backend"]
    assert served_models["classifier"]["serving"] == served_classifier.backend == \
        choose(served_classifier.candidates)["backend"]
    assert eager["num_detections"] > 0

    def detections(payload):
        from clothingrec.structures import Detections

        items = payload["detections"]
        return Detections(np.array([d["box"] for d in items], dtype=np.float32).reshape(-1, 4),
                          np.array([d["label"] for d in items]), np.array([d["score"] for d in items]))

    agreement = serve.detector_agreement([(detections(eager), detections(served))], score_threshold=0.3)
    assert agreement["agrees"], agreement
    eager_labels = {tuple(np.round(d["box"])): d["classifier"]["label"] for d in eager["detections"]}
    same = [eager_labels.get(tuple(np.round(d["box"]))) == d["classifier"]["label"] for d in served["detections"]
            if tuple(np.round(d["box"])) in eager_labels]
    assert same and np.mean(same) >= 0.8, same


def test_serving_choice_failing_keeps_the_app_on_eager(monkeypatch):
    """No images to check agreement on (e.g. no datasets): the app starts anyway, eager, and logs why."""
    from clothingrec import serve

    from app.engine import Service

    def no_images(*args, **kwargs):
        raise FileNotFoundError("no validation images")

    monkeypatch.setattr(serve, "serve_detectors", no_images)
    monkeypatch.setattr(serve, "serving_classifier", no_images)
    lines = []
    svc = Service(smoke_config(classifier="auto", serving="fastest", warmup=False), log=lines.append)
    models = svc.describe()["models"]
    assert svc.infos["classifier"].trained and models["classifier"]["serving"] == "eager"
    assert any("classifier stays eager" in line and "no validation images" in line for line in lines)
    # trained weights are named relative to the project, never by the machine's absolute path
    assert models["classifier"]["source"].startswith("runs/results/")
    assert not any(path in json.dumps(svc.describe()) for path in _absolute_paths())


def test_not_an_image_is_415_even_after_ultralytics_wrapped_pil():
    """ultralytics replaces PIL's Image.open process-wide (on an unidentified file it tries to install and
    import pi_heif: ModuleNotFoundError); the app decodes with Pillow's own opener, so the answer is a 415
    naming the file and Pillow's reason, never the wrapper's."""
    import ultralytics.utils.patches  # noqa: F401 - applies the patch, as loading a YOLO detector does
    from PIL import Image

    import app.imaging as imaging

    assert Image.open is not imaging.pillow_open and imaging._original_pillow_open() is imaging.pillow_open
    with pytest.raises(InputError) as err:
        decode_image(b"hello, this is text", filename="not-an-image.jpg")
    message = str(err.value)
    assert err.value.status == 415 and "not-an-image.jpg" in message and "UnidentifiedImageError" in message
    assert "ModuleNotFound" not in message and "pi_heif" not in message and "Import" not in message
    assert decode_image(ccp_photo(1).read_bytes(), filename="0001.jpg").rgb.ndim == 3


def test_pillow_opener_found_behind_other_wrappers(monkeypatch):
    import functools

    from PIL import Image

    import app.imaging as imaging

    original = imaging.pillow_open

    @functools.wraps(original)
    def wrapped(fp, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'pi_heif'")

    monkeypatch.setattr(Image, "open", wrapped)
    assert imaging._original_pillow_open() is original
