"""The Flask application: the page, ``POST /api/predict``, ``GET /healthz`` and JSON errors."""
from __future__ import annotations

import logging
import os
import secrets
import time

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.config import MODES, AppConfig
from app.engine import Busy, Service
from app.imaging import (
    ALLOWED_FORMATS,
    InputError,
    decode_image,
    hide_paths,
    jpeg_data_url,  # noqa: F401 - re-exported (it lived here)
    probe,
)

FILE_FIELD = "image"
#: multipart parts accepted (werkzeug refuses more before the app runs): image, mode, score_threshold,
#: masks, overlay, preview and room for a few unknown ones
MAX_FORM_PARTS = 20
#: bytes of one non-file form field
MAX_FORM_MEMORY_SIZE = 500_000  # (Flask's default; werkzeug also applies it to its read buffer)
log = logging.getLogger("clothingrec.app")

#: on every response (the page's own script and stylesheet only; data: images for the overlays)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _error(status: int, code: str, message: str):
    response = jsonify({"error": {"status": status, "code": code, "message": hide_paths(message)}})
    response.status_code = status
    return response


def _too_large_cause(exc) -> str:
    """Which of werkzeug's limits raised this 413: ``parts``, ``field`` or ``body``.

    werkzeug raises a bare ``RequestEntityTooLarge`` for all three; the frame that raised it tells them
    apart (the multipart decoder's ``next_event`` counts parts, ``receive_data`` / the form parser's
    ``parse`` measure a text field; everything else is the body length)."""
    tb, frames = getattr(exc, "__traceback__", None), []
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_name, tb.tb_frame.f_code.co_filename))
        tb = tb.tb_next
    name, filename = frames[-1] if frames else ("", "")
    if filename.endswith("multipart.py") and name == "next_event":
        return "parts"
    if (filename.endswith("multipart.py") and name == "receive_data") or \
            (filename.endswith("formparser.py") and name == "parse"):
        return "field"
    return "body"


def _flag(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def create_app(config: AppConfig | None = None, service: Service | None = None) -> Flask:
    """Build the app; the models are loaded here, once (or ``service`` is reused, e.g. across tests)."""
    config = config or AppConfig.from_env()
    service = service or Service(config)
    app = Flask(__name__)
    app.config.update(
        # never a hard-coded key: from the environment, else random per process (the app keeps no sessions)
        SECRET_KEY=os.environ.get("CLOTHINGREC_APP_SECRET_KEY") or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=config.max_content_length,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
        DEBUG=False,
        TESTING=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.json.sort_keys = False
    app.extensions["clothingrec_service"] = service
    app.extensions["clothingrec_config"] = config

    @app.get("/")
    def index():
        return render_template("index.html", info=service.describe(), modes=MODES,
                               formats=ALLOWED_FORMATS, max_mb=config.max_content_length / 2**20,
                               max_mp=config.max_pixels / 1e6)

    @app.get("/healthz")
    def healthz():
        return jsonify(service.health())

    @app.get("/api/info")
    def info():
        return jsonify(service.describe())

    @app.post("/api/predict")
    def predict():
        t0 = time.perf_counter()
        files = request.files
        if FILE_FIELD not in files:
            got = sorted(set(files) | set(request.form))
            raise InputError(400, "missing_file",
                             f"no file in the multipart field {FILE_FIELD!r} "
                             f"(fields received: {got or 'none'}); send the image as "
                             f"multipart/form-data field {FILE_FIELD!r}")
        upload = files[FILE_FIELD]
        data = upload.read(config.max_content_length + 1)
        filename = upload.filename or ""
        t1 = time.perf_counter()
        # header checks now (a bad upload never waits for a model); pixels are decoded under admission
        probe(data, filename=filename, max_pixels=config.max_pixels)
        timings = {"read": t1 - t0, "probe": time.perf_counter() - t1}
        mode = request.form.get("mode") or None
        if mode is not None and mode not in MODES:
            raise InputError(400, "bad_mode", f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        threshold = request.form.get("score_threshold")
        if threshold not in (None, ""):
            try:
                threshold = float(threshold)
            except ValueError:
                raise InputError(400, "bad_score_threshold",
                                 f"score_threshold {threshold!r} is not a number") from None
            if not 0.0 <= threshold <= 1.0:
                raise InputError(400, "bad_score_threshold", f"score_threshold {threshold} is not in [0, 1]")
        else:
            threshold = None
        del upload
        payload = service.predict(
            lambda: decode_image(data, filename=filename, max_pixels=config.max_pixels),
            mode=mode, score_threshold=threshold, include_masks=_flag(request.form.get("masks")),
            overlay=_flag(request.form.get("overlay")), preview=_flag(request.form.get("preview")),
            timings=timings)
        payload["timings_ms"]["total"] = round(1000.0 * (time.perf_counter() - t0), 2)
        return jsonify(payload)

    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        return _error(exc.status, exc.code, exc.message)

    @app.errorhandler(Busy)
    def busy(exc: Busy):
        response = _error(503, "busy", f"{exc}; retry later")
        response.headers["Retry-After"] = "5"
        return response

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(413)
    def too_large(exc):
        length = request.content_length
        cause = "body" if length is not None and length > config.max_content_length else _too_large_cause(exc)
        if cause == "parts":
            return _error(400, "too_many_fields",
                          f"more than {MAX_FORM_PARTS} multipart form fields; send the field {FILE_FIELD!r} "
                          "and at most the documented options (mode, score_threshold, masks, overlay, preview)")
        if cause == "field":
            return _error(413, "field_too_large",
                          f"a form field other than the file is larger than {MAX_FORM_MEMORY_SIZE} bytes")
        return _error(413, "body_too_large",
                      f"request body larger than the limit of {config.max_content_length} bytes "
                      f"({config.max_content_length / 2**20:.1f} MiB)")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                      exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error while handling %s %s", request.method, request.path)
        return _error(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")

    return app
