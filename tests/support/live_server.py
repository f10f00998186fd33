"""A real HTTP server for the browser tests: werkzeug in a thread, reached as http://localhost:PORT.

localhost, not 127.0.0.1: WebAuthn refuses an IP address as RP ID.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import make_server


@dataclass
class LiveServer:
    url: str
    port: int
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def serve(app_factory) -> tuple[LiveServer, object]:
    """Bind first (port 0), then build the app for that origin: the origin is part of its config."""
    holder: dict = {}

    def dispatch(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    port = server.server_port
    holder["app"] = app_factory(f"http://localhost:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return LiveServer(f"http://localhost:{port}", port, server, thread), holder["app"]
