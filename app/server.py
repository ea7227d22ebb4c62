"""The Flask application: the page, ``POST /api/predict``, ``GET /healthz`` and JSON errors."""
from __future__ import annotations

import logging
import secrets
import os
import time

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.config import MODES, AppConfig
from app.engine import Busy, Service
from app.imaging import ALLOWED_FORMATS, InputError, decode_image

FILE_FIELD = "image"
log = logging.getLogger("clothingrec.app")


def _error(status: int, code: str, message: str):
    response = jsonify({"error": {"status": status, "code": code, "message": message}})
    response.status_code = status
    return response


def _flag(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def jpeg_data_url(rgb, quality: int = 85) -> str:
    """The image the models saw (oriented, RGB) as a JPEG data URL, so the page draws boxes on exactly it."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def create_app(config: AppConfig | None = None, service: Service | None = None) -> Flask:
    """Build the app; the models are loaded here, once (or ``service`` is reused, e.g. across tests)."""
    config = config or AppConfig.from_env()
    service = service or Service(config)
    app = Flask(__name__)
    app.config.update(
        # never a hard-coded key: from the environment, else random per process (the app keeps no sessions)
        SECRET_KEY=os.environ.get("CLOTHINGREC_APP_SECRET_KEY") or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=config.max_content_length,
        MAX_FORM_PARTS=20,
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
        t1 = time.perf_counter()
        image = decode_image(data, filename=upload.filename or "", max_pixels=config.max_pixels)
        timings = {"read": t1 - t0, "decode": time.perf_counter() - t1}
        mode = request.form.get("mode") or None
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
        payload = service.predict(image, mode=mode, score_threshold=threshold,
                                  include_masks=_flag(request.form.get("masks")),
                                  overlay=_flag(request.form.get("overlay")), timings=timings)
        if _flag(request.form.get("preview")):
            payload["image_jpeg"] = jpeg_data_url(image.rgb)
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

    @app.errorhandler(413)
    def too_large(exc):
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
