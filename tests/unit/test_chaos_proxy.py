"""The chaos proxy itself: round robin, failover, and faults that happen as configured."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.chaos_proxy import ChaosProxy

PUSH = "/api/v1/sync/push"


class Backend:
    """A tiny HTTP server in a thread that records what it received and says who it is."""

    def __init__(self, name: str):
        self.name = name
        self.received: list[dict] = []
        self.lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)  # short when the client closed early
                self._answer(body, length)

            def _answer(self, body: bytes, length: int = 0):
                with backend.lock:
                    backend.received.append({"path": self.path, "body": body, "complete": len(body) == length,
                                             "headers": dict(self.headers)})
                if len(body) < length:
                    return  # the request never arrived whole: nothing to answer
                payload = json.dumps({"backend": backend.name, "body": body.decode(), "pad": "x" * 400}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def complete(self, path: str = PUSH) -> list[bytes]:
        with self.lock:
            return [r["body"] for r in self.received if r["path"] == path and r["complete"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backends():
    started = [Backend("a"), Backend("b")]
    yield started
    for b in started:
        b.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    """One raw HTTP/1.1 exchange; returns every byte the proxy sent before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n"
        if body or method == "POST":
            head += f"Content-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def eventually(check, timeout: float = 5.0) -> None:
    """A backend records a cut request in its own thread, a moment after the proxy moved on."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def parse(response: bytes) -> tuple[int, dict, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_round_robin_and_connection_close_with_no_forwarding_headers(backends):
    with ChaosProxy([b.address for b in backends]) as proxy:
        seen = []
        for _ in range(6):
            status, headers, body = parse(http(proxy.port, "GET", "/api/v1/session"))
            assert status == 200 and headers["connection"] == "close"
            seen.append(json.loads(body)["backend"])
    assert seen == ["a", "b", "a", "b", "a", "b"]
    for b in backends:
        for r in b.received:
            assert r["headers"]["Connection"] == "close"
            assert not [h for h in r["headers"] if h.lower().startswith("x-forwarded") or h.lower() == "forwarded"]
    assert proxy.stats.per_backend == {0: 3, 1: 3}


def test_a_refused_backend_fails_over_and_none_left_closes_the_client(backends):
    a = backends[0]
    with ChaosProxy([("127.0.0.1", closed_port()), a.address]) as proxy:
        for i in range(4):
            status, _, body = parse(http(proxy.port, "POST", PUSH, b'{"n": %d}' % i))
            assert status == 200 and json.loads(body)["backend"] == "a"
        assert proxy.stats.refused >= 2 and proxy.stats.no_backend == 0
        proxy.backends = [("127.0.0.1", closed_port())]
        assert http(proxy.port, "GET", "/healthz") == b""
        assert proxy.stats.no_backend == 1
        proxy.unavailable_status = 502  # as nginx answers while every upstream is down
        status, headers, _ = parse(http(proxy.port, "GET", "/api/v1/session"))
        assert status == 502 and headers["connection"] == "close"


def test_faults_happen_at_the_configured_rates_only_on_the_prefix_and_only_with_chaos_on(backends):
    n = 400
    with ChaosProxy([b.address for b in backends], seed=7) as proxy:
        for i in range(20):  # chaos off: everything passes
            assert parse(http(proxy.port, "POST", PUSH, b'{"off": %d}' % i))[0] == 200
        proxy.chaos = True
        for i in range(20):  # other paths: everything passes
            assert parse(http(proxy.port, "POST", "/api/v1/devices", b'{"other": %d}' % i))[0] == 200
        outcomes = {"ok": 0, "empty": 0, "truncated": 0}
        for i in range(n):
            body = json.dumps({"i": i}).encode()
            raw = http(proxy.port, "POST", PUSH, body)
            if not raw:
                outcomes["empty"] += 1
                continue
            status, headers, payload = parse(raw)
            if b"\r\n\r\n" in raw and len(payload) == int(headers["content-length"]):
                assert status == 200 and json.loads(payload)["body"] == body.decode()
                outcomes["ok"] += 1
            else:
                outcomes["truncated"] += 1
        stats = proxy.stats
    assert stats.faultable == n
    # Dealt from a shuffled deck of 20: the rates hold exactly over every 20 requests.
    assert (stats.cut_request, stats.cut_response, stats.duplicated) == (n // 10, n // 10, n // 20)
    assert outcomes == {"ok": n - stats.cut_request - stats.cut_response, "empty": stats.cut_request,
                        "truncated": stats.cut_response}
    # What the backends received whole: every request but the cut ones, the duplicated ones twice.
    eventually(lambda: len([r for b in backends for r in b.received if not r["complete"]]) == stats.cut_request)
    complete = [body for b in backends for body in b.complete()]
    assert len(complete) == 20 + n - stats.cut_request + stats.duplicated


def test_the_order_of_faults_is_random_but_fixed_by_the_seed():
    def dealt(seed: int) -> list[str]:
        proxy = ChaosProxy(seed=seed)
        proxy.chaos = True
        return [proxy._decide(PUSH) for _ in range(60)]

    assert dealt(1) == dealt(1) != dealt(2)
    for block in range(3):
        cards = dealt(3)[block * 20:(block + 1) * 20]
        assert sorted(cards) == sorted(["cut_request"] * 2 + ["cut_response"] * 2 + ["duplicate"] + ["pass"] * 15)


def test_a_response_cut_in_the_middle_reached_the_backend_whole(backends):
    with ChaosProxy([backends[0].address], seed=1, cut_request_rate=0, cut_response_rate=1, duplicate_rate=0) as proxy:
        proxy.chaos = True
        body = json.dumps({"items": ["x" * 50] * 20}).encode()
        raw = http(proxy.port, "POST", PUSH, body)
        assert proxy.stats.cut_response == 1
    status, headers, payload = parse(raw)
    assert status == 200 and 0 < len(payload) < int(headers["content-length"])
    assert backends[0].complete() == [body]


def test_a_request_cut_in_the_middle_never_reaches_the_backend_whole(backends):
    with ChaosProxy([backends[0].address], seed=1, cut_request_rate=1, cut_response_rate=0, duplicate_rate=0) as proxy:
        proxy.chaos = True
        body = json.dumps({"items": ["y" * 50] * 20}).encode()
        assert http(proxy.port, "POST", PUSH, body) == b""
    eventually(lambda: backends[0].received)
    [seen] = backends[0].received
    assert not seen["complete"] and 0 < len(seen["body"]) < len(body) and body.startswith(seen["body"])


def test_a_duplicate_reaches_both_backends(backends):
    with ChaosProxy([b.address for b in backends], seed=1, cut_request_rate=0, cut_response_rate=0,
                    duplicate_rate=1) as proxy:
        proxy.chaos = True
        status, _, payload = parse(http(proxy.port, "POST", PUSH, b'{"dup": 1}'))
        assert status == 200 and json.loads(payload)["body"] == '{"dup": 1}'
        assert proxy.stats.duplicated == 1
    assert backends[0].complete() == [b'{"dup": 1}'] and backends[1].complete() == [b'{"dup": 1}']


def test_stop_closes_open_connections(backends):
    proxy = ChaosProxy([backends[0].address]).start()
    idle = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    idle.sendall(b"GET / HTTP/1.1\r\n")  # half a request head, then nothing
    proxy.stop()
    try:
        assert idle.recv(1) == b""
    except ConnectionResetError:
        pass  # closed before the loop had accepted it: the kernel resets it, just as good
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


def test_body_bytes_are_counted_and_one_request_is_cut_at_the_armed_byte_then_the_callback_runs(backends):
    a, b = backends
    uploads = "/api/v1/media/uploads/"
    with ChaosProxy([a.address], count_prefix=uploads) as proxy:
        switched = []

        def switch():
            proxy.backends = [b.address]
            switched.append(time.monotonic())

        proxy.cut_once_after(2500, then=switch)
        assert proxy.byte_cut_armed
        assert parse(http(proxy.port, "POST", "/api/v1/media/missing", b"m" * 700))[0] == 200  # not counted
        bodies = [bytes([65 + i]) * 1000 for i in range(4)]
        answers = [http(proxy.port, "POST", f"{uploads}u?offset={i * 1000}", body) for i, body in enumerate(bodies)]
        stats = proxy.stats
        assert not proxy.byte_cut_armed and len(switched) == 1 and not stats.callback_errors
    assert [parse(r)[0] for r in answers[:2]] == [200, 200] and answers[2] == b"" and parse(answers[3])[0] == 200
    assert stats.byte_cuts == 1 and stats.cut_request == 0  # a byte cut is not a chaos fault
    # The third body was cut right after the 2500th byte forwarded since arming: its 500th.
    eventually(lambda: len(a.received) == 4)
    assert [r["body"] for r in a.received[1:]] == bodies[:2] + [bodies[2][:500]]
    assert a.received[3]["complete"] is False
    assert b.complete(f"{uploads}u?offset=3000") == [bodies[3]]  # after the cut, the other backend
    assert (stats.body_received, stats.body_forwarded) == (4000, 3500)
    assert [(e.method, e.target, e.received, e.forwarded, e.backends, e.kind) for e in stats.bodies] == [
        ("POST", f"{uploads}u?offset=0", 1000, 1000, (a.address,), "pass"),
        ("POST", f"{uploads}u?offset=1000", 1000, 1000, (a.address,), "pass"),
        ("POST", f"{uploads}u?offset=2000", 1000, 500, (a.address,), "byte_cut"),
        ("POST", f"{uploads}u?offset=3000", 1000, 1000, (b.address,), "pass"),
    ]


def test_several_fault_prefixes_and_statuses_grouped_without_ids(backends):
    with ChaosProxy([backends[0].address], fault_prefix=("/api/v1/media/", PUSH), seed=1, cut_request_rate=1,
                    cut_response_rate=0, duplicate_rate=0) as proxy:
        proxy.chaos = True
        assert http(proxy.port, "POST", PUSH, b"{}") == b""
        assert http(proxy.port, "POST", "/api/v1/media/missing", b"{}") == b""
        assert parse(http(proxy.port, "POST", "/api/v1/devices", b"{}"))[0] == 200
        proxy.chaos = False
        upload = "/api/v1/media/uploads/6c0f3b52-6d1e-4a53-9d55-3f1d0e3f8a41/complete"
        assert parse(http(proxy.port, "POST", upload, b"{}"))[0] == 200
        stats = proxy.stats
    assert stats.cut_request == 2 and stats.faultable == 2
    assert stats.statuses == {("/api/v1/media/uploads/<id>/complete", 200): 1, ("other", 200): 1}
    assert stats.body_received == 0 and stats.bodies == []  # nothing counted without count_prefix


def test_a_response_cut_in_its_body_keeps_the_head_whole(backends):
    with ChaosProxy([backends[0].address], seed=1, cut_request_rate=0, cut_response_rate=1, duplicate_rate=0,
                    cut_response_in="body") as proxy:
        proxy.chaos = True
        raw = http(proxy.port, "POST", PUSH, b'{"short": 1}')
    head, sep, payload = raw.partition(b"\r\n\r\n")
    status, headers, _ = parse(raw)
    assert sep and status == 200 and headers["connection"] == "close"
    assert len(payload) == int(headers["content-length"]) // 2
    with pytest.raises(ValueError):
        ChaosProxy(cut_response_in="head")
