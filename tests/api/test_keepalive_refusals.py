"""A refused request must leave its kept-alive connection usable for the next request.

Behind nginx with upstream keep-alive, a connection the app server closes after announcing
keep-alive makes nginx's next request on it fail; nginx counts that as the host failing, and with
two hosts one crash then marks both down. These tests talk to a real gunicorn (gthread worker,
keep-alive on) over one HTTP/1.1 connection, as nginx does: a refused request with a body, then
another request on the same socket, which must get its answer.

A body too large to drain is answered with ``Connection: close`` instead, which tells the client
(or nginx) to open a new connection rather than reuse this one.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import socket
import time
import urllib.parse

import pytest

from fieldapp.http_hygiene import DrainUnreadBody
from tests.support.app_process import AppProcess, app_env, free_port
from tests.support.appfactory import make_app
from tests.support.flows import seed_user

SECRET = "keepalive-refusals-secret"
CHUNK_LIMIT = 1024 * 1024  # FIELDAPP_MEDIA_CHUNK_MAX_BYTES of the server under test
DRAIN_SECONDS = 1.0  # FIELDAPP_REQUEST_DRAIN_SECONDS of the server under test
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


class Browser:
    """One kept-alive HTTP/1.1 connection carrying a signed-in session's cookie and CSRF token."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.sockets: list[object] = []

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        all_headers = {"Accept": "application/json", "X-CSRFToken": self.csrf, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, path, body=body, headers=all_headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server refused on the headers and answered before the body was all sent (a loaded
            # machine sends slowly): like nginx, read the answer it already wrote.
            pass
        self.sockets.append(self.conn.sock)
        response = self.conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response, data

    def json(self, method: str, path: str, payload=None):
        body = json.dumps(payload).encode() if payload is not None else None
        return self.request(method, path, body, {"Content-Type": "application/json"} if body else None)

    def sign_in(self, user_id) -> None:
        response, data = self.request("GET", "/api/v1/session")
        assert response.status == 200
        self.csrf = json.loads(data)["csrf_token"]
        form = urllib.parse.urlencode({"user_id": str(user_id), "csrf_token": self.csrf}).encode()
        response, _ = self.request("POST", "/auth/demo", form,
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 302, response.status
        response, data = self.request("GET", "/api/v1/session")
        self.csrf = json.loads(data)["csrf_token"]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def server(sqlite_url, tmp_path):
    seeding = make_app(sqlite_url, tmp_path / "seed-var")
    officer = seed_user(seeding, "张伟", "C-1", "ZF1")
    seeding.extensions["fieldapp.engine"].dispose()
    port = free_port()
    env = app_env(database_url=sqlite_url, var_dir=tmp_path / "var", secret_key=SECRET,
                  origin=f"http://127.0.0.1:{port}", media_chunk_max_bytes=str(CHUNK_LIMIT),
                  request_drain_seconds=str(DRAIN_SECONDS))
    with AppProcess(env, tmp_path / "gunicorn.log", port=port) as process:
        yield process, officer


@pytest.fixture
def browser(server):
    process, officer = server
    b = Browser(process.port)
    b.sign_in(officer.user_id)
    yield b
    b.close()


def begin_upload(browser: Browser, size: int) -> str:
    content = (JPEG_HEAD + b"\0" * size)[:size]
    response, data = browser.json("POST", "/api/v1/media/uploads", {
        "alg": "sha-256", "hash": hashlib.sha256(content).hexdigest(), "size": size, "type": "image/jpeg"})
    assert response.status == 201, data
    return json.loads(data)["upload_id"]


def assert_same_connection_answers(browser: Browser, upload_id: str) -> None:
    """The next request on the kept-alive socket gets its answer, on that very socket."""
    before = browser.conn.sock
    assert before is not None, "the server closed the connection without saying Connection: close"
    response, data = browser.request("GET", f"/api/v1/media/uploads/{upload_id}")
    assert response.status == 200, data
    assert browser.sockets[-1] is before


def test_a_chunk_at_the_wrong_offset_leaves_the_connection_usable(browser):
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=4096",
                                     b"\x01" * (CHUNK_LIMIT // 2), {"Content-Type": "application/octet-stream"})
    assert response.status == 409, data
    assert json.loads(data)["error"] == "offset_mismatch"
    assert response.getheader("Connection", "").lower() != "close"
    assert_same_connection_answers(browser, upload_id)


def test_a_chunk_with_a_bad_offset_parameter_leaves_the_connection_usable(browser):
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=minus-one",
                                     b"\x01" * (CHUNK_LIMIT // 2), {"Content-Type": "application/octet-stream"})
    assert response.status == 400, data
    assert_same_connection_answers(browser, upload_id)


def test_a_body_refused_by_the_access_check_leaves_the_connection_usable(server, browser):
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    signed_in_cookies = dict(browser.cookies)
    browser.cookies = {}  # a stranger on the same connection: refused before the body is read
    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=0",
                                     b"\x01" * (CHUNK_LIMIT // 2), {"Content-Type": "application/octet-stream"})
    assert response.status in (400, 401, 403), data
    browser.cookies = signed_in_cookies
    assert_same_connection_answers(browser, upload_id)


def test_a_chunk_over_the_limit_is_refused_and_the_next_request_still_gets_its_answer(browser):
    """A body too large to drain: the refusal says Connection: close, so a client (or nginx) opens
    a new connection for the next request instead of failing on a closed one."""
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=0",
                                     b"\x01" * (3 * CHUNK_LIMIT), {"Content-Type": "application/octet-stream"})
    assert response.status == 413, data
    assert response.getheader("Connection", "").lower() == "close"
    response, data = browser.request("GET", f"/api/v1/media/uploads/{upload_id}")
    assert response.status == 200, data


def test_a_refusal_answered_before_the_body_is_sent_is_read_not_lost(browser):
    """The server answers 413 on the headers; a slow client is still sending when it closes. The
    answer must be read (as nginx reads it), not reported as a broken connection."""
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)

    def slowly():
        for _ in range(48):
            time.sleep(0.02)
            yield b"\x01" * 65536

    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=0", slowly(),
                                     {"Content-Type": "application/octet-stream",
                                      "Content-Length": str(48 * 65536)})
    assert response.status == 413, data
    assert response.getheader("Connection", "").lower() == "close"
    response, data = browser.request("GET", f"/api/v1/media/uploads/{upload_id}")
    assert response.status == 200, data


def test_a_chunked_body_refused_for_its_missing_length_leaves_the_connection_usable(browser):
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    pieces = (b"\x03" * 65536 for _ in range(8))  # no Content-Length: sent chunked
    response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset=0", pieces,
                                     {"Content-Type": "application/octet-stream"})
    assert response.status == 411, data
    assert_same_connection_answers(browser, upload_id)


def test_a_client_that_stops_sending_a_refused_body_gets_its_answer_and_a_close(server, browser):
    """The drain gives up after FIELDAPP_REQUEST_DRAIN_SECONDS: the thread is not held for ever."""
    process, _ = server
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    head = (f"PUT /api/v1/media/uploads/{upload_id}?offset=7 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Cookie: {'; '.join(f'{k}={v}' for k, v in browser.cookies.items())}\r\n"
            f"X-CSRFToken: {browser.csrf}\r\nAccept: application/json\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 500000\r\n\r\n").encode()
    with socket.create_connection(process.address, timeout=10) as raw:
        raw.sendall(head + b"\x01" * 1000)  # and then nothing more
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = raw.recv(65536)
            assert received, answer
            answer += received
        waited = time.monotonic() - started
    status_line, _, headers = answer.partition(b"\r\n")
    assert b" 409 " in status_line
    assert b"connection: close" in headers.lower()
    assert waited < DRAIN_SECONDS + 3, waited


def test_many_refusals_in_a_row_on_one_connection(browser):
    upload_id = begin_upload(browser, 4 * CHUNK_LIMIT)
    first_socket = browser.conn.sock
    for offset in (1, 2, 3, 5, 8):
        response, data = browser.request("PUT", f"/api/v1/media/uploads/{upload_id}?offset={offset}",
                                         b"\x02" * (CHUNK_LIMIT - 1), {"Content-Type": "application/octet-stream"})
        assert response.status == 409, data
    response, data = browser.request("GET", f"/api/v1/media/uploads/{upload_id}")
    assert response.status == 200 and json.loads(data)["offset"] == 0
    assert all(s is first_socket for s in browser.sockets[-6:])


# ---- the middleware on its own: what it reads, and when it asks for a close ---------------------


class ServerResponse:
    """What gunicorn hands the app as start_response's owner: it can be told to close."""

    def __init__(self):
        self.closing = False
        self.status = None

    def force_close(self):
        self.closing = True

    def start_response(self, status, headers, exc_info=None):
        self.status = status


class Body(io.BytesIO):
    """A request body arriving 100 bytes at a time, whose client may go away."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("the client went away")
        return super().read(100 if n is None or n < 0 else min(n, 100))


def call(app_reads: int, body: bytes, *, length: bool = True, max_bytes: int = 1000, **environ):
    stream = Body(body, environ.pop("fail_after", None))

    def app(env, start_response):
        read = 0
        while read < app_reads:
            read += len(env["wsgi.input"].read(app_reads - read))
        start_response("409 CONFLICT", [])
        return [b"refused"]

    env = {"wsgi.input": stream, "wsgi.input_terminated": True, "SERVER_PROTOCOL": "HTTP/1.1", **environ}
    if length:
        env["CONTENT_LENGTH"] = str(len(body))
    server = ServerResponse()
    DrainUnreadBody(app, max_bytes=max_bytes)(env, server.start_response)
    return server, stream


def test_the_unread_rest_of_a_body_is_drained_before_the_answer():
    server, stream = call(100, b"x" * 900)
    assert not server.closing and stream.tell() == 900 and server.status == "409 CONFLICT"


def test_a_rest_over_the_bound_is_not_read_and_the_connection_closes():
    server, stream = call(0, b"x" * 1001)
    assert server.closing and stream.tell() == 0


def test_the_bound_counts_only_what_the_app_left_unread():
    server, stream = call(500, b"x" * 1400)
    assert not server.closing and stream.tell() == 1400


def test_a_chunked_body_is_drained_to_its_end_or_the_connection_closes():
    server, stream = call(0, b"x" * 1000, length=False)
    assert not server.closing and stream.tell() == 1000
    server, _ = call(0, b"x" * 1001, length=False)
    assert server.closing


def test_a_client_gone_mid_drain_closes_the_connection():
    server, _ = call(0, b"x" * 900, fail_after=200)
    assert server.closing


@pytest.mark.parametrize("environ", [{"HTTP_CONNECTION": "close"}, {"SERVER_PROTOCOL": "HTTP/1.0"},
                                     {"wsgi.input_terminated": False}])
def test_nothing_is_read_when_the_connection_ends_anyway_or_the_body_has_no_safe_end(environ):
    server, stream = call(0, b"x" * 900, **environ)
    assert not server.closing and stream.tell() == 0
