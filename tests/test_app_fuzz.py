"""Fuzzing the web demo's upload API (issue 17): formats × geometry × colour modes × headers × form fields.

A seeded generator (no hypothesis dependency; the same cases every run) builds 40 requests for Flask's
test client and a few raw HTTP requests for waitress on 127.0.0.1. Invariant: every answer is a 200 or a
4xx JSON error (``{"error": {"status", "code", "message"}}``), never a 5xx, no answer names an absolute
path, and afterwards ``/healthz`` answers and no request counted as an internal failure.
A bounded load test (8 clients, a few seconds) prints the server process' peak RSS (no timing asserts).
"""
from __future__ import annotations

import io
import json
import random
import socket
import sys
import tempfile
import threading
import time
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

from app.server import create_app  # noqa: E402
from app.wsgi import BackgroundServer  # noqa: E402
from app_fixtures import shared_service, smoke_config  # noqa: E402

SEED = 17
N_REQUESTS = 40
BODY_LIMIT = 2 * 1024 * 1024
MAX_PIXELS = 1_000_000
ABSOLUTE = [p for p in {str(PROJECT_ROOT), str(Path.home()), tempfile.gettempdir(), sys.prefix} if p != "/"]


@pytest.fixture(scope="module")
def service():
    return shared_service()


# ----------------------------------------------------------------------------- the generator
def _geometry(rng: random.Random) -> tuple[int, int]:
    kind = rng.choice(["tiny", "thin-h", "thin-v", "square", "ordinary", "ordinary", "ordinary", "big"])
    if kind == "tiny":
        return rng.randint(1, 4), rng.randint(1, 4)
    if kind == "thin-h":
        return rng.randint(100, 2000), rng.randint(1, 5)
    if kind == "thin-v":
        return rng.randint(1, 5), rng.randint(100, 2000)
    if kind == "square":
        s = rng.randint(8, 200)
        return s, s
    if kind == "big":  # around the pixel cap (small files: smooth content)
        return rng.choice([(1000, 999), (1001, 1000), (2000, 501), (40000, 1)])  # under / over the cap
    return rng.randint(16, 300), rng.randint(16, 300)


def _pixels(rng: random.Random, w: int, h: int, mode: str) -> Image.Image:
    if w * h > 100_000:  # smooth, so the file stays small
        im = Image.linear_gradient("L").resize((w, h))
    else:
        arr = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (h, w, 3), dtype=np.uint8)
        im = Image.fromarray(arr)
    if mode == "I;16":
        return Image.fromarray(np.asarray(im.convert("L"), dtype="<u2") * 257)
    return im.convert(mode)


def _encode(rng: random.Random, im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    kw = {}
    if fmt in ("JPEG", "WEBP") and rng.random() < 0.4:
        exif = Image.Exif()
        exif[0x0112] = rng.randint(0, 9)  # 0 and 9 are out of range: must not break anything
        kw["exif"] = exif.tobytes()
    if fmt == "JPEG" and im.mode not in ("L", "RGB", "CMYK"):
        im = im.convert("RGB")
    if fmt == "WEBP" and im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" else "RGB")
    if fmt == "BMP" and im.mode not in ("1", "L", "P", "RGB", "RGBA"):
        im = im.convert("RGB")
    if fmt == "GIF":
        im = im.convert("P")
    if fmt == "TIFF" and im.mode == "I;16":
        im = im.convert("L")
    if fmt == "WEBP" and max(im.size) > 16383:
        fmt = "PNG"
    if fmt == "JPEG" and max(im.size) > 65500:
        fmt = "PNG"
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bomb_header(side: int) -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 32)) + chunk(b"IEND", b""))


def _upload(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.06:
        return b""
    if kind < 0.12:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))
    if kind < 0.16:
        return _bomb_header(rng.choice([7000, 20000, 65535]))
    w, h = _geometry(rng)
    mode = rng.choice(["RGB", "RGB", "L", "LA", "RGBA", "P", "1", "I;16", "CMYK"])
    fmt = rng.choice(["PNG", "PNG", "JPEG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
    if mode == "CMYK":
        fmt = "JPEG"
    data = _encode(rng, _pixels(rng, w, h, mode), fmt)
    if rng.random() < 0.1:  # truncated
        data = data[: rng.randint(1, max(1, len(data) - 1))]
    elif rng.random() < 0.05:  # flipped bytes after the header
        arr = bytearray(data)
        for _ in range(10):
            i = rng.randrange(min(len(arr), 64), len(arr)) if len(arr) > 64 else rng.randrange(len(arr))
            arr[i] ^= 0xFF
        data = bytes(arr)
    return data


FIELD_VALUES = {
    "mode": ["two-stage", "direct", "", "three-stage", "DIRECT", "direct\x00", "ünïcode"],
    "score_threshold": ["0.3", "1", "0", "", "nan", "inf", "-1", "1e309", "0x1", "high", " 0.5 "],
    "masks": ["1", "0", "true", "yes", "maybe"],
    "overlay": ["1", "0", ""],
    "preview": ["1", "0"],
}
FILENAMES = ["photo.jpg", "", "../../etc/passwd", "x" * 300, "名前.png", "a\"b.png", "C:\\\\tmp\\\\a.bmp"]


def _case(rng: random.Random) -> dict:
    # each option present half the time; its value valid (the first two) in 3 of 4
    form = {k: rng.choice(v[:2] if rng.random() < 0.75 else v) for k, v in FIELD_VALUES.items() if rng.random() < 0.5}
    for i in range(rng.choice([0, 0, 0, 1, 3, 25])):  # unknown extra fields, sometimes above the parts limit
        form[f"extra{i}"] = "x" * rng.randint(0, 40)
    return {"data": _upload(rng), "form": form, "field": "image" if rng.random() > 0.05 else "file",
            "filename": rng.choice(FILENAMES),
            "content_type": rng.choice(["multipart/form-data"] * 9 + ["application/x-www-form-urlencoded"])}


def _check(status: int, body: bytes, content_type: str, label: str) -> dict:
    assert status == 200 or 400 <= status < 500, f"{label}: {status} {body[:300]!r}"
    assert content_type.startswith("application/json"), f"{label}: {content_type}"
    out = json.loads(body)
    if status != 200:
        err = out["error"]
        assert err["status"] == status and err["code"] and err["message"], f"{label}: {out}"
    text = body.decode("utf-8", "replace")
    for path in ABSOLUTE:
        assert path not in text, f"{label}: names {path}"
    return out


# ----------------------------------------------------------------------------- the tests
def test_fuzz_uploads_never_give_5xx(service):
    app = create_app(smoke_config(max_content_length=BODY_LIMIT, max_pixels=MAX_PIXELS), service=service)
    client = app.test_client()
    failed_before = service.health()["requests_failed"]
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    for i in range(N_REQUESTS):
        case = _case(rng)
        body = dict(case["form"])
        body[case["field"]] = (io.BytesIO(case["data"]), case["filename"])
        r = client.post("/api/predict", data=body, content_type=case["content_type"])
        label = f"case {i} ({len(case['data'])} bytes, form {sorted(case['form'])}, {case['content_type']})"
        out = _check(r.status_code, r.get_data(), r.content_type, label)
        if r.status_code == 200:
            h, w = out["image_size"]["height"], out["image_size"]["width"]
            for item in out["detections"] + out["persons"]:
                x1, y1, x2, y2 = item["box"]
                assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h, label
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    print(f"\n[fuzz] {N_REQUESTS} requests in {time.perf_counter() - started:.1f} s: "
          f"{dict(sorted(statuses.items()))}")
    assert statuses.get(200, 0) >= 15 and len(statuses) >= 4  # the generator reaches both sides
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["requests_failed"] == failed_before


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    return int(lines[0].split()[1]), headers, body


def test_fuzz_headers_under_waitress(service):
    """Broken HTTP (bad lengths, boundaries, encodings) answered by the app or by waitress itself: JSON 4xx."""
    config = smoke_config(max_content_length=BODY_LIMIT, max_pixels=MAX_PIXELS)
    png = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(png, format="PNG")
    part = (b"--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
            + png.getvalue() + b"\r\n--B--\r\n")

    def req(headers: str, body: bytes = b"") -> bytes:
        return f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body

    cases = {
        "good": req(f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {len(part)}\r\n", part),
        "no content type": req(f"Content-Length: {len(part)}\r\n", part),
        "wrong boundary": req(f"Content-Type: multipart/form-data; boundary=Z\r\nContent-Length: {len(part)}\r\n",
                              part),
        "no boundary": req(f"Content-Type: multipart/form-data\r\nContent-Length: {len(part)}\r\n", part),
        "short length": req("Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 40\r\n", part[:40]),
        "negative length": req("Content-Type: multipart/form-data; boundary=B\r\nContent-Length: -5\r\n"),
        "huge length": req("Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 99999999999\r\n"),
        "bad chunking": req("Content-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n",
                            b"zz\r\nhello\r\n0\r\n\r\n"),
        "chunked ok": req("Content-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n",
                          f"{len(part):x}\r\n".encode() + part + b"\r\n0\r\n\r\n"),
        "garbage request line": b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
    }
    with BackgroundServer(create_app(config, service=service), config) as srv:
        statuses = {}
        for name, raw in cases.items():
            status, headers, body = _raw(srv.server.port, raw)
            _check(status, body, headers.get("content-type", ""), name)
            assert headers.get("x-content-type-options") == "nosniff", name
            statuses[name] = status
        print(f"\n[fuzz-http] {statuses}")
        assert statuses["good"] == 200 and statuses["chunked ok"] == 200 and statuses["huge length"] == 413
        with urllib.request.urlopen(srv.url + "/healthz", timeout=30) as resp:
            assert resp.status == 200


def _post(url: str, data: bytes, fields: dict) -> int:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="load.png"\r\n\r\n'
                 .encode() + data + b"\r\n" + f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(url + "/api/predict", data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_load_8_clients_reports_peak_rss(service):
    """8 clients for a few seconds, each upload just under the pixel cap (a small, smooth PNG that decodes
    to MAX_PIXELS × 3 bytes): prints the server process' peak RSS above its baseline. With decoding under
    admission the decoded images in memory are bounded by the replicas (1 here), not by the clients."""
    import psutil

    config = smoke_config(max_content_length=BODY_LIMIT, max_pixels=MAX_PIXELS)
    side = int(MAX_PIXELS ** 0.5) - 1
    buf = io.BytesIO()
    Image.linear_gradient("L").resize((side, side)).convert("RGB").save(buf, format="PNG")
    data = buf.getvalue()
    proc = psutil.Process()
    peak, stop = [proc.memory_info().rss], threading.Event()

    def sample():
        while not stop.is_set():
            peak.append(proc.memory_info().rss)
            time.sleep(0.01)

    statuses, deadline = [], time.perf_counter() + 4.0
    with BackgroundServer(create_app(config, service=service), config) as srv:
        baseline = proc.memory_info().rss
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def client():
            while time.perf_counter() < deadline:
                statuses.append(_post(srv.url, data, {"mode": "direct"}))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        stop.set()
        sampler.join()
    top = max(peak)
    print(f"\n[load] 8 clients, {len(statuses)} requests of a {side}x{side} PNG ({len(data) / 1e3:.0f} kB, "
          f"{side * side * 3 / 2**20:.0f} MiB decoded), statuses {sorted(set(statuses))}: "
          f"RSS baseline {baseline / 2**20:.0f} MiB, peak {top / 2**20:.0f} MiB "
          f"(+{(top - baseline) / 2**20:.0f} MiB)")
    assert statuses and all(s in (200, 503) for s in statuses)
