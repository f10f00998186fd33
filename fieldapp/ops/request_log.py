"""One log line per request, with a request id, whatever failed.

The line is written by a WSGI middleware when the server closes the response, so a view that
raised, a hook that raised, a database that is down or a response that broke while streaming all
still give exactly one line, with the status the client got (500 when the application raised).

Every request carries an id: a sane ``X-Request-ID`` from the proxy in front (nginx's
``$request_id``) is kept, anything else is replaced by a fresh one. It is echoed in the response's
``X-Request-ID`` header, so a user's report, the proxy's log and this log meet on one value.

The user in the line never costs a database query — during an outage the query would fail, and
the line with it. It is the user flask-login already loaded for the request, if it did, and
otherwise the user id the signed session cookie names (the cookie is decoded for every request
anyway). Requests without a session say ``user=-``.

With ``FIELDAPP_LOG_FORMAT=json`` each line is one JSON object instead: time, request_id, addr,
method, route (the URL rule, null when none matched), path, status, duration_ms, user (an id or
null), bytes (of the response body), and error when one escaped. The path never carries the query
string, and no body, header or cookie is logged. The same moment feeds the request metrics
(``observe``, ops/metrics.py), whether lines are written or not.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request, session

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = "fieldapp.request_id"  # in the WSGI environ
USER_KEY = "fieldapp.log_user"  # in the WSGI environ, set at the end of Flask's handling
ROUTE_KEY = "fieldapp.route"  # in the WSGI environ: the matched URL rule, set at the end of Flask's handling
LOG_FORMATS = ("text", "json")
_JSON_LINE = "fieldapp_json_line"  # a log record's attribute: its message is a whole JSON line

# What a proxy may hand us as an id: short, and nothing that could forge a log line or a header.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_for(environ: dict) -> str:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being handled, for log messages and error pages."""
    return request.environ.get(REQUEST_ID_KEY) if has_request_context() else None


class _Line:
    """The one line of one request, written at most once."""

    def __init__(self, log: logging.Logger | None, environ: dict, request_id: str, json_lines: bool = False,
                 observe: Callable[[dict, str, float], None] | None = None):
        self.log, self.environ, self.request_id = log, environ, request_id
        self.json_lines, self.observe = json_lines, observe
        self.started = time.perf_counter()
        self.status: str | None = None
        self.error: BaseException | None = None
        self.written = False
        self.bytes = 0  # of the body, as iterated
        self.content_length: int | None = None  # as declared
        self.sent_by_server = False  # a file the server sends itself (sendfile): its length as declared

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        env = self.environ
        status = self.status or ("500" if self.error is not None else "-")
        seconds = time.perf_counter() - self.started
        if self.observe is not None:
            try:
                self.observe(env, status, seconds)
            except Exception:  # noqa: BLE001 — metrics must never fail a request or its line
                logging.getLogger(__name__).exception("request metrics failed")
        if self.log is None:
            return
        elapsed = seconds * 1000
        path = _redact((env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", "")) or "/")
        if self.json_lines:
            self._write_json(status, elapsed, path)
            return
        suffix = f" error={type(self.error).__name__}" if self.error is not None else ""
        # REMOTE_ADDR is read now: ProxyFix, inside us, has replaced it with the client's by now.
        self.log.info("%s %s %s %s %.1fms user=%s rid=%s%s", env.get("REMOTE_ADDR", "-"),
                      env.get("REQUEST_METHOD", "-"), path, status, elapsed, env.get(USER_KEY, "-"),
                      self.request_id, suffix)

    def _write_json(self, status: str, elapsed_ms: float, path: str) -> None:
        env = self.environ
        user = env.get(USER_KEY, "-")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": self.request_id,
            "addr": env.get("REMOTE_ADDR"),
            "method": env.get("REQUEST_METHOD"),
            "route": env.get(ROUTE_KEY),
            "path": path,
            "status": int(status) if status.isdigit() else None,
            "duration_ms": round(elapsed_ms, 1),
            "user": None if user == "-" else user,
            "bytes": (self.content_length or 0) if self.sent_by_server else self.bytes,
        }
        if self.error is not None:
            line["error"] = type(self.error).__name__
        self.log.info("%s", json.dumps(line, ensure_ascii=False), extra={_JSON_LINE: True})


# A link to an original carries a signed token (review/original_links.py): a credential for its
# lifetime, kept out of logs that more people read than may open originals.
_ORIGINAL_LINK = re.compile(r"(/original/)[^/]+$")
_ENROLMENT_CODE = re.compile(r"^(/enroll/)[^/]+")
"""An enrolment code lets whoever holds it register a passkey for that person: never in a log."""


def _redact(path: str) -> str:
    return _ENROLMENT_CODE.sub(r"\1…", _ORIGINAL_LINK.sub(r"\1…", path))


class _LoggedResponse:
    """The application's response iterable, writing the line when the server closes it."""

    def __init__(self, iterable: Iterable[bytes], line: _Line):
        self._iterable = iterable
        self._iterator = iter(iterable)
        self._line = line

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._iterator)
        except StopIteration:
            raise
        except BaseException as exc:
            self._line.error = exc
            raise
        self._line.bytes += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self._line.error = self._line.error or exc
            raise
        finally:
            self._line.write()


def _logged(result: Iterable[bytes], environ: dict, line: _Line) -> Iterable[bytes]:
    # A file the server can send with sendfile() stays that object (wrapping it would make the
    # server copy it through Python); its close() writes the line instead.
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
        original_close = getattr(result, "close", None)

        def close() -> None:
            try:
                if original_close is not None:
                    original_close()
            finally:
                line.write()

        try:
            result.close = close
            line.sent_by_server = True
            return result
        except AttributeError:
            pass
    return _LoggedResponse(result, line)


class RequestLog:
    """WSGI middleware: a request id for every request, and its one log line (if ``log``)."""

    def __init__(self, app: Callable, log: logging.Logger | None, json_lines: bool = False,
                 observe: Callable[[dict, str, float], None] | None = None):
        self.app = app
        self.log = log
        self.json_lines = json_lines
        self.observe = observe

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = request_id_for(environ)
        environ[REQUEST_ID_KEY] = request_id
        line = _Line(self.log, environ, request_id, self.json_lines, self.observe)

        def start(status: str, headers: list, exc_info=None):
            line.status = status.split(" ", 1)[0]
            length = next((v for k, v in headers if k.lower() == "content-length"), "")
            line.content_length = int(length) if length.isdigit() else None
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start)
        except BaseException as exc:
            line.error = exc
            line.write()
            raise
        return _logged(result, environ, line)


def _user_label() -> str:
    from flask_login import AnonymousUserMixin

    loaded = g.get("_login_user")  # where flask-login keeps the user it loaded for this request
    if isinstance(loaded, AnonymousUserMixin):
        return "-"
    # The user's own attributes are not read: after a rollback they are expired, and reading one
    # would query the database. The session names the same user: "<uuid>:<epoch>".
    claim = session.get("_user_id")
    if not isinstance(claim, str) or not claim:
        return "-"
    return claim.split(":", 1)[0]


def _remember_user(_exc: BaseException | None) -> None:
    try:
        request.environ[USER_KEY] = _user_label()
    except Exception:  # noqa: BLE001 — the log line must not fail on its user
        request.environ[USER_KEY] = "-"


def _remember_route(_exc: BaseException | None) -> None:
    rule = request.url_rule  # set when routing matched (not for a 404 or 405 from routing)
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else None


class _Formatter(logging.Formatter):
    """``time message`` for a text line; a JSON line stands alone (it carries its own time)."""

    def __init__(self):
        super().__init__("%(asctime)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage() if getattr(record, _JSON_LINE, False) else super().format(record)


def _request_logger() -> logging.Logger:
    log = logging.getLogger("fieldapp.request")
    if not log.handlers:  # unless the deployment's logging configuration routes these lines
        handler = logging.StreamHandler()
        handler.setFormatter(_Formatter())
        log.addHandler(handler)
        log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    return log


def init_app(app: Flask, enabled: bool, log_format: str = "text",
             observe: Callable[[dict, str, float], None] | None = None) -> None:
    """Install after ProxyFix, so the line has the client's address and covers all of the handling.
    ``observe(environ, status, seconds)`` is called once per request, logged or not."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"FIELDAPP_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    app.teardown_request(_remember_user)
    app.teardown_request(_remember_route)
    app.wsgi_app = RequestLog(app.wsgi_app, _request_logger() if enabled else None,
                              json_lines=log_format == "json", observe=observe)
