"""Serving the app with waitress (a production WSGI server), on loopback by default."""
from __future__ import annotations

import json
import threading

from app.config import AppConfig

#: waitress' own refusals (before the app runs) as the API's JSON error codes
_WAITRESS_CODES = {400: "bad_request", 413: "body_too_large", 431: "headers_too_large", 501: "not_implemented",
                   500: "internal_error"}


def _json_channel_class():
    """A waitress channel whose own error answers (413 body above ``max_request_body_size``, 400 malformed
    request, 431 headers too large, 500) are the API's JSON error with the app's security headers, not
    waitress' plain-text page."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    from app.server import SECURITY_HEADERS

    class JsonErrorTask(ErrorTask):
        def execute(self):
            e = self.request.error
            code = int(getattr(e, "code", 500))
            reason = str(getattr(e, "reason", "Error"))
            detail = str(getattr(e, "body", "") or "").strip()
            if code == 413:
                limit = self.channel.server.adj.max_request_body_size
                message = f"request body larger than the server's limit of {limit} bytes"
            else:
                message = f"{reason}: {detail}" if detail else reason
            body = json.dumps({"error": {"status": code, "code": _WAITRESS_CODES.get(code, "error"),
                                         "message": message}}).encode("utf-8")
            self.status = f"{code} {reason}"
            self.response_headers.extend([("Content-Type", "application/json"), *SECURITY_HEADERS.items()])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def make_server(app, config: AppConfig):
    """A waitress server bound to ``config.host:config.port`` (port 0: any free port; see ``.port``).

    waitress buffers each request body (in memory, then in a temporary file) before the app sees it;
    its own cap is set well above ``MAX_CONTENT_LENGTH`` so that oversized uploads normally get the
    app's JSON 413, and waitress refuses absurd bodies itself — with the same JSON error (its channel's
    error task is replaced, see :func:`_json_channel_class`).
    """
    from waitress import create_server

    server = create_server(
        app, host=config.host, port=config.port, threads=config.server_threads,
        max_request_body_size=4 * config.max_content_length + 1024 * 1024,
        channel_timeout=60, connection_limit=100, ident="clothingrec",
        clear_untrusted_proxy_headers=True,
    )
    channel = _json_channel_class()
    for listener in [server, *getattr(server, "map", {}).values()]:
        if hasattr(listener, "channel_class"):
            listener.channel_class = channel
    server.port = server.effective_port
    return server


class BackgroundServer:
    """Run a waitress server in a daemon thread (tests, benchmarks); ``url``; ``close()`` stops it."""

    def __init__(self, app, config: AppConfig):
        self.server = make_server(app, config)
        self.url = f"http://{config.host}:{self.server.port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the listener, the trigger and every open connection *inside* the server's loop thread (a
        close from another thread races the loop's ``select`` on the same descriptors: EBADF), then join."""
        from waitress import wasyncore

        if self.thread.is_alive():
            done = threading.Event()

            def stop():
                try:
                    wasyncore.close_all(self.server._map)
                finally:
                    done.set()

            self.server.trigger.pull_trigger(stop)
            done.wait(timeout=10)
        else:
            self.server.close()
        self.server.task_dispatcher.shutdown(timeout=5)
        self.thread.join(timeout=10)
