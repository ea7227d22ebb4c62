"""Serving the app with waitress (a production WSGI server), on loopback by default."""
from __future__ import annotations

import threading

from app.config import AppConfig


def make_server(app, config: AppConfig):
    """A waitress server bound to ``config.host:config.port`` (port 0: any free port; see ``.port``).

    waitress buffers each request body (in memory, then in a temporary file) before the app sees it;
    its own cap is set well above ``MAX_CONTENT_LENGTH`` so that oversized uploads normally get the
    app's JSON 413, and waitress refuses absurd bodies itself.
    """
    from waitress import create_server

    server = create_server(
        app, host=config.host, port=config.port, threads=config.server_threads,
        max_request_body_size=4 * config.max_content_length + 1024 * 1024,
        channel_timeout=60, connection_limit=100, ident="clothingrec",
        clear_untrusted_proxy_headers=True,
    )
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
        self.server.close()
        self.thread.join(timeout=10)
