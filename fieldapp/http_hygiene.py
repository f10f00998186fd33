"""Leave every kept-alive connection usable after a request whose body the app did not read.

A refusal often comes before the body is read: a chunk at the wrong offset (409), an oversized
body (413), a request refused by the access check (401/403). The unread bytes are still on the
connection, in front of the next request. gunicorn announces keep-alive on such a response and
afterwards discards only a small amount of the leftover body (64 KiB in gunicorn 27); when there is
more it closes the connection silently. A client reusing the connection — nginx with upstream
keep-alive above all — then sees its next request fail, and nginx counts that as the host failing.

So before the response starts, the unread rest of the body is read and discarded, up to a bound
(the largest chunk the app accepts, so a refused chunk is always drained). A body whose rest is
larger than that, or that does not arrive in time, is not read: the response is sent with
``Connection: close`` instead, so the client knows not to reuse the connection.

This is a WSGI middleware rather than a Flask hook so that it covers every answer, including the
ones Flask's own error handling makes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

READ_SIZE = 64 * 1024


class _CountingInput:
    """``wsgi.input`` that remembers how many bytes the application read from it."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.consumed = 0

    def _count(self, data: bytes) -> bytes:
        self.consumed += len(data)
        return data

    def read(self, *args) -> bytes:
        return self._count(self._stream.read(*args))

    def readline(self, *args) -> bytes:
        return self._count(self._stream.readline(*args))

    def readlines(self, *args) -> list[bytes]:
        lines = self._stream.readlines(*args)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _connection_may_persist(environ: dict) -> bool:
    """Whether the client asked to reuse the connection (HTTP/1.1 does unless it says close)."""
    tokens = {t.strip().lower() for t in environ.get("HTTP_CONNECTION", "").split(",")}
    if "close" in tokens:
        return False
    return "keep-alive" in tokens or environ.get("SERVER_PROTOCOL", "") >= "HTTP/1.1"


def _declared_length(environ: dict) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _ask_server_to_close(start_response: Callable) -> None:
    """Make the server close the connection after this response.

    WSGI forbids an application to send hop-by-hop headers such as ``Connection``, and gunicorn
    drops them; its response object (the owner of ``start_response``) has ``force_close`` for
    this, which also makes it say ``Connection: close``. Servers without it (the development
    server, wsgiref) close every connection anyway.
    """
    owner = getattr(start_response, "__self__", None)
    force_close = getattr(owner, "force_close", None)
    if callable(force_close):
        force_close()


class DrainUnreadBody:
    """WSGI middleware: discard the unread rest of each request body, or close the connection."""

    def __init__(self, app: Callable, max_bytes: int, max_seconds: float = 10.0):
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # Only a server that marks its input as terminated (gunicorn, waitress, …) lets us read to
        # the end of the body safely; on others a read past the body would wait for the next request.
        if not environ.get("wsgi.input_terminated") or not _connection_may_persist(environ):
            return self.app(environ, start_response)
        body = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        decided: list[bool] = []

        def start(status: str, headers: list, exc_info=None):
            # start_response precedes the first byte of the answer, and the application has
            # finished with the body by then: the moment to clear the connection.
            if not decided:
                decided.append(self._drain(environ, body))
                if not decided[0]:
                    _ask_server_to_close(start_response)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _drain(self, environ: dict, body: _CountingInput) -> bool:
        """Read the unread rest of the body; False when it is too large or too slow to read."""
        declared = _declared_length(environ)
        if declared is not None:
            left = declared - body.consumed
            if left <= 0:
                return True
            if left > self.max_bytes:
                return False
        else:  # chunked: the size is known only at its end
            left = self.max_bytes + 1
        deadline = time.monotonic() + self.max_seconds
        # A client that stops sending must not hold this thread: where the server exposes its
        # socket (gunicorn), each read waits at most until the deadline.
        sock = environ.get("gunicorn.socket")
        prior_timeout = sock.gettimeout() if sock is not None else None
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if sock is not None:
                    sock.settimeout(remaining)
                data = body.read(min(READ_SIZE, left))
                if not data:
                    return True
                left -= len(data)
        except Exception:  # noqa: BLE001 — a client gone, too slow, or a malformed chunk: do not reuse
            return False
        finally:
            if sock is not None:
                try:
                    sock.settimeout(prior_timeout)
                except OSError:
                    pass
        # With a declared length everything is read now; a chunked body still going is too large.
        return declared is not None


def init_app(app, max_bytes: int, max_seconds: float = 10.0) -> None:
    app.wsgi_app = DrainUnreadBody(app.wsgi_app, max_bytes=max_bytes, max_seconds=max_seconds)
