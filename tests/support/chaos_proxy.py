"""A loopback HTTP/1.1 reverse proxy that loses and repeats requests on purpose, for chaos tests.

It listens on 127.0.0.1 (a random port), runs an asyncio loop in a background thread and forwards
each request to one of its backends, round robin; a backend that refuses the connection (a killed
process) is skipped for the next one, and when every backend refuses the client's connection is
simply closed (or, with ``unavailable_status=502``, answered as nginx would). One connection per request: ``Connection: close`` goes upstream and downstream, the
request body is read by its Content-Length and the response until the backend closes.

While ``chaos`` is on, requests whose path starts with ``fault_prefix`` meet faults dealt from a
deck shuffled by a seeded ``random.Random``: a deck of ``deck_size`` cards holds each kind of fault
``round(rate * deck_size)`` times and passes otherwise, and is reshuffled when used up. So the rates
hold exactly over every ``deck_size`` requests (a short run cannot miss a kind by bad luck) while the
order stays random. Each kind is counted in ``stats``:

* **cut_request** — the headers and half the body reach a backend, then both connections are
  closed: the server never receives a whole request;
* **cut_response** — the whole request reaches a backend and its whole response is read (the
  server has committed), but the client gets only the first half of the response bytes (with
  ``cut_response_in="body"``: the whole head and the first half of the body — a cut inside the head
  can leave the browser a truncated ``Set-Cookie``, which Chromium stores; with ``"headers"``: the
  whole head and none of the body, as a dead link right after a 200; a tuple of these modes deals
  one of them per cut, from the same seeded random);
* **duplicate** — the same request goes to two backends concurrently (two app instances racing
  on one database) and the client gets one of the responses.

``fault_prefix`` may be one path prefix or a tuple of them. In ``stats.statuses`` a UUID in a path
is written ``<id>``, so that the chunks of every upload count together.

Request bodies can be counted and cut at a byte position, for tests of resumable uploads:

* with ``count_prefix`` (a prefix or a tuple), the body bytes of matching requests are counted in
  ``stats.body_received`` (read whole from clients) and ``stats.body_forwarded`` (sent upstream: a
  cut request counts what was sent before the cut, a duplicate counts twice), and each matching
  request is logged in ``stats.bodies`` as a :class:`BodyEvent`;
* ``cut_once_after(n)`` arms one cut, independent of ``chaos``: the matching request during which
  the body bytes forwarded since arming would pass ``n`` is sent upstream only up to byte ``n``,
  then both connections are closed (counted in ``stats.byte_cuts``). A ``then`` callback runs in the
  proxy's loop right after the cut, before the client's connection is closed (so before any retry
  of it): to switch ``backends``, say. It must not block.

Nothing is added to the request: in particular no ``Forwarded``/``X-Forwarded-*`` header, which
would make the app refuse its loopback-only demo sign-in.
"""
from __future__ import annotations

import asyncio
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"})
PASS, CUT_REQUEST, CUT_RESPONSE, DUPLICATE = "pass", "cut_request", "cut_response", "duplicate"
BYTE_CUT = "byte_cut"
CUT_RESPONSE_MODES = ("all", "body", "headers")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
NO_BACKEND = object()  # what an exchange returns when every backend refused the connection


class BadRequest(Exception):
    pass


@dataclass(frozen=True)
class BodyEvent:
    """One request under ``count_prefix``: what its body was and how much of it went where."""
    at: float             # monotonic time the request was read whole from the client
    took: float           # seconds from then until the exchange with the backend(s) ended
    method: str
    target: str           # path and query, as the client sent it
    received: int         # body bytes read from the client (its whole Content-Length)
    forwarded: int        # body bytes sent upstream (less when cut, twice when duplicated)
    backends: tuple       # (host, port) of each backend that was sent (part of) the request
    kind: str             # pass, cut_request, cut_response, duplicate or byte_cut


@dataclass
class ChaosStats:
    requests: int = 0         # requests read completely from clients
    faultable: int = 0        # of those, requests that chaos applied to (path prefix, chaos on)
    forwarded: int = 0        # complete requests sent to a backend (a duplicate counts twice)
    cut_request: int = 0      # requests cut after half their body reached a backend
    cut_response: int = 0     # whole answers of which the client got only the first half
    cut_modes: Counter = field(default_factory=Counter)  # cut responses by cut_response_in mode
    duplicated: int = 0       # requests that two backends each received whole and answered
    refused: int = 0          # connections a backend refused (then the next one is tried)
    no_backend: int = 0       # requests whose client was closed because every backend refused
    upstream_failed: int = 0  # a backend accepted the request and closed without a whole response
    per_backend: Counter = field(default_factory=Counter)  # complete requests sent, by backend index
    statuses: Counter = field(default_factory=Counter)  # (path, status) of every answer a backend gave
    byte_cuts: int = 0        # requests cut by cut_once_after
    body_received: int = 0    # body bytes of requests under count_prefix read from clients
    body_forwarded: int = 0   # of those, bytes sent upstream
    bodies: list = field(default_factory=list)  # a BodyEvent per request under count_prefix
    callback_errors: list = field(default_factory=list)  # exceptions raised by a cut_once_after callback
    # (monotonic time, backend index, path, what happened) for each request sent upstream.
    events: list = field(default_factory=list)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items()
                if k not in ("events", "per_backend", "statuses", "bodies", "callback_errors", "cut_modes")} | {
            "per_backend": dict(sorted(self.per_backend.items())), "cut_modes": dict(sorted(self.cut_modes.items())),
            "statuses": {f"{path} {status}": n for (path, status), n in sorted(self.statuses.items())}}


class ChaosProxy:
    def __init__(self, backends: list[tuple[str, int]] | None = None, *,
                 fault_prefix: str | tuple[str, ...] = "/api/v1/sync/push", count_prefix: str | tuple[str, ...] = (),
                 seed: int = 0, cut_request_rate: float = 0.10, cut_response_rate: float = 0.10,
                 duplicate_rate: float = 0.05, deck_size: int = 20,
                 cut_response_in: str | tuple[str, ...] = "all",
                 unavailable_status: int | None = None,
                 max_connections: int = 64, connect_timeout: float = 5.0,
                 io_timeout: float = 60.0, idle_timeout: float = 30.0):
        self.backends = list(backends or [])
        self.fault_prefix = fault_prefix
        self.count_prefix = count_prefix
        self._byte_cut: dict | None = None  # armed by cut_once_after
        self.rates = (cut_request_rate, cut_response_rate, duplicate_rate)
        self.rng = random.Random(seed)
        self.deck_size = deck_size
        modes = (cut_response_in,) if isinstance(cut_response_in, str) else tuple(cut_response_in)
        if not modes or any(mode not in CUT_RESPONSE_MODES for mode in modes):
            raise ValueError("cut_response_in is 'all' (half the bytes), 'body' (the head, half the body), "
                             "'headers' (the head, no body) or a tuple of them")
        self.cut_response_in = cut_response_in
        self._cut_modes = modes
        # None: a request no backend accepts gets its connection closed; 502 (say): that answer, as
        # nginx gives while every upstream is down.
        self.unavailable_status = unavailable_status
        self._deck: list[str] = []
        self._in_flight: Counter = Counter()  # (backend index, path) -> requests awaiting a response
        self._in_flight_lock = threading.Lock()
        self.chaos = False
        self.stats = ChaosStats()
        self.port: int | None = None
        self.max_connections = max_connections
        self.connect_timeout, self.io_timeout, self.idle_timeout = connect_timeout, io_timeout, idle_timeout
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task | None = None
        self._sockets: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    def cut_once_after(self, n_bytes: int, *, prefix: str | tuple[str, ...] | None = None, then=None) -> None:
        """Cut the request under prefix (default: count_prefix) during which the body bytes
        forwarded from now on pass n_bytes, right after the n_bytes-th; then call then()."""
        prefix = self.count_prefix if prefix is None else prefix
        if not prefix or n_bytes < 0:
            raise ValueError("a byte cut needs a path prefix and a non-negative byte count")
        self._byte_cut = {"prefix": prefix, "remaining": n_bytes, "then": then}

    @property
    def byte_cut_armed(self) -> bool:
        return self._byte_cut is not None

    def in_flight(self, backend: int, prefix: str = "/") -> int:
        """How many requests under prefix are sent to that backend and still waiting for its answer."""
        with self._in_flight_lock:
            return sum(n for (index, path), n in self._in_flight.items() if index == backend and path.startswith(prefix))

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The origin a browser uses (localhost, not 127.0.0.1: WebAuthn refuses IP addresses)."""
        return f"http://localhost:{self.port}"

    def start(self) -> ChaosProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="chaos-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        if self.port is None:
            raise RuntimeError("chaos proxy did not start")
        return self

    def stop(self) -> None:
        """Stop listening, close every open connection and end the loop's thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - stopping anyway
                pass
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _listen(self) -> None:
        # Our own accept loop rather than asyncio.start_server: every accepted socket is in
        # self._sockets from the moment it exists, so stop() can close it even when its task never
        # ran (start_server's accept path can leave a just-accepted socket open after close()).
        self._slots = asyncio.Semaphore(self.max_connections)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                conn, _ = await loop.sock_accept(self._listener)
            except OSError:
                if self._closing:
                    return
                await asyncio.sleep(0.01)
                continue
            if self._closing:
                conn.close()
                return
            self._sockets.add(conn)
            task = loop.create_task(self._client(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        self._closing = True
        # Wake the accept loop with a connection of our own rather than cancelling it: a cancel that
        # lands just after sock_accept took a connection would lose that socket, open.
        waker = None
        try:
            waker = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            await asyncio.wait_for(asyncio.shield(self._accepting), 2)
        except (OSError, asyncio.TimeoutError):
            self._accepting.cancel()
        finally:
            if waker is not None:
                waker.close()
        self._listener.close()  # connections still queued in the kernel are reset
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self._sockets):  # a task cancelled before it started never closed its socket
            conn.close()
        self._sockets.clear()

    # ---- one client connection ----------------------------------------------------------------

    async def _client(self, conn: socket.socket) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=2**16)
            self._writers.add(writer)
            async with self._slots:
                await self._serve_one(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, BadRequest, OSError, ValueError):
            pass
        finally:
            if writer is not None:
                self._writers.discard(writer)
                await _close(writer)
            conn.close()
            self._sockets.discard(conn)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except asyncio.IncompleteReadError:
            return  # a preconnect that never sent anything, or a client that gave up
        request_line, headers = _parse_head(head)
        method, target, version = request_line.split(b" ", 2)
        if any(name.lower() == b"transfer-encoding" for name, _ in headers):
            writer.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        length = 0
        for name, value in headers:
            if name.lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), self.io_timeout) if length else b""
        upstream_head = b"%s %s %s\r\n" % (method, target, version) + b"".join(
            b"%s: %s\r\n" % (name, value) for name, value in headers if name.lower() not in HOP_BY_HOP
        ) + b"Connection: close\r\n\r\n"
        path = target.decode("latin-1").split("?", 1)[0]
        read_at = time.monotonic()
        self.stats.requests += 1
        counted = bool(self.count_prefix) and path.startswith(self.count_prefix)
        sent: list[tuple[tuple, int]] = []  # ((host, port), body bytes) per exchange that sent something
        kind = [PASS]  # what the request met, set by _answer
        try:
            await self._answer(writer, path, upstream_head, body, sent, kind)
        finally:
            if counted:
                self._count(read_at, method, target, body, sent, kind[0])

    def _count(self, read_at: float, method: bytes, target: bytes, body: bytes, sent: list[tuple[tuple, int]],
               kind: str) -> None:
        forwarded = sum(n for _, n in sent)
        self.stats.body_received += len(body)
        self.stats.body_forwarded += forwarded
        self.stats.bodies.append(BodyEvent(read_at, time.monotonic() - read_at, method.decode("latin-1"),
                                           target.decode("latin-1"), len(body), forwarded,
                                           tuple(i for i, _ in sent), kind))

    def _take_byte_cut(self, path: str, body_length: int) -> dict | None:
        """The armed cut when this request's body passes its count (disarmed then), else None."""
        cut = self._byte_cut
        if cut is None or not path.startswith(cut["prefix"]) or body_length <= cut["remaining"]:
            return None
        self._byte_cut = None
        return cut

    def _after_byte_cut(self, cut: dict) -> None:
        if cut["then"] is not None:
            try:
                cut["then"]()
            except Exception as exc:  # noqa: BLE001 - reported to the test through stats
                self.stats.callback_errors.append(exc)

    def _spend_byte_cut(self, path: str, sent: list[tuple[tuple, int]]) -> None:
        cut = self._byte_cut
        if cut is not None and path.startswith(cut["prefix"]):
            cut["remaining"] -= sum(n for _, n in sent)

    async def _answer(self, writer: asyncio.StreamWriter, path: str, upstream_head: bytes, body: bytes,
                      sent: list[tuple[tuple, int]], outcome: list[str]) -> None:
        byte_cut = self._take_byte_cut(path, len(body))
        kind = outcome[0] = BYTE_CUT if byte_cut is not None else self._decide(path)
        data, body_at = upstream_head + body, len(upstream_head)

        if kind == BYTE_CUT:
            answer = await self._exchange(data, path, kind, cut_at=body_at + byte_cut["remaining"], body_at=body_at,
                                          sent=sent)
            if answer is not NO_BACKEND:
                self.stats.byte_cuts += 1
            self._after_byte_cut(byte_cut)  # before the client learns of the cut, so before its retry
            return  # the client's connection is closed with no answer
        if kind == CUT_REQUEST:
            answer = await self._exchange(data, path, kind, cut_at=body_at + len(body) // 2, body_at=body_at, sent=sent)
            if answer is not NO_BACKEND:
                self.stats.cut_request += 1
            self._spend_byte_cut(path, sent)
            return  # the client's connection is closed with no answer
        if kind == DUPLICATE:
            answers = await asyncio.gather(self._exchange(data, path, kind, body_at=body_at, sent=sent),
                                           self._exchange(data, path, kind, body_at=body_at, sent=sent),
                                           return_exceptions=True)
            usable = [a for a in answers if isinstance(a, bytes) and a]
            if len(usable) == 2:  # both copies reached a backend whole and were answered
                self.stats.duplicated += 1
            if not usable and all(a is NO_BACKEND for a in answers):
                usable = [NO_BACKEND]
            response = self.rng.choice(usable) if usable else None
        else:
            response = await self._exchange(data, path, kind, body_at=body_at, sent=sent)
        self._spend_byte_cut(path, sent)
        if response is NO_BACKEND and self.unavailable_status:
            reason = HTTPStatus(self.unavailable_status).phrase.encode()
            body = b"<html><body><h1>%d %s</h1></body></html>" % (self.unavailable_status, reason)
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (self.unavailable_status, reason, len(body), body))
            await writer.drain()
            return
        if not isinstance(response, bytes) or not response:
            return  # every backend refused, or the one we reached died: close with no answer
        response = _close_after(response)
        if kind == CUT_RESPONSE:
            self.stats.cut_response += 1
            head_length = response.index(b"\r\n\r\n") + 4
            mode = self._cut_modes[0] if len(self._cut_modes) == 1 else self.rng.choice(self._cut_modes)
            self.stats.cut_modes[mode] += 1
            if mode == "headers":
                writer.write(response[:head_length])
            elif mode == "body":
                writer.write(response[: head_length + (len(response) - head_length) // 2])
            else:
                writer.write(response[: len(response) // 2])
            await writer.drain()
            return  # closed after the half is flushed: the client sees the body end early
        writer.write(response)
        await writer.drain()

    def _decide(self, path: str) -> str:
        if not self.chaos or not path.startswith(self.fault_prefix):
            return PASS
        self.stats.faultable += 1
        if not self._deck:
            counts = [round(rate * self.deck_size) for rate in self.rates]
            if sum(counts) > self.deck_size:
                raise ValueError("fault rates add up to more than 1")
            self._deck = ([CUT_REQUEST] * counts[0] + [CUT_RESPONSE] * counts[1] + [DUPLICATE] * counts[2]
                          + [PASS] * (self.deck_size - sum(counts)))
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    # ---- upstream ------------------------------------------------------------------------------

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, tuple[str, int]] | None:
        """Open a connection to the next backend in turn that accepts one."""
        backends = list(self.backends)
        if not backends:
            return None
        start = self._next % len(backends)
        self._next = (start + 1) % len(backends)
        for step in range(len(backends)):
            index = (start + step) % len(backends)
            host, port = backends[index]
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
            except (OSError, asyncio.TimeoutError):
                self.stats.refused += 1
                continue
            return reader, writer, index, (host, port)
        self.stats.no_backend += 1
        return None

    async def _exchange(self, data: bytes, path: str, kind: str, cut_at: int | None = None, body_at: int = 0,
                        sent: list | None = None):
        """Send data to a backend and return its response: bytes, None when the backend reached gave
        none, NO_BACKEND when every backend refused the connection. Body bytes (those from body_at)
        written to a backend are appended to sent as ((host, port), count)."""
        connected = await self._connect()
        if connected is None:
            return NO_BACKEND
        reader, writer, index, address = connected
        self._writers.add(writer)
        try:
            if cut_at is not None:
                writer.write(data[:cut_at])
                await writer.drain()
                if sent is not None:
                    sent.append((address, max(0, cut_at - body_at)))
                await _close(writer)  # flushed, then closed: the backend sees the body end early
                self.stats.events.append((time.monotonic(), index, path, kind))
                return None
            with self._in_flight_lock:
                self._in_flight[(index, path)] += 1
            try:
                writer.write(data)
                await writer.drain()
                if sent is not None:
                    sent.append((address, len(data) - body_at))
                self.stats.forwarded += 1
                self.stats.per_backend[index] += 1
                try:
                    response = await asyncio.wait_for(reader.read(-1), self.io_timeout)
                except (ConnectionError, OSError, asyncio.TimeoutError):
                    response = b""
            finally:
                with self._in_flight_lock:
                    self._in_flight[(index, path)] -= 1
            complete = _is_complete(response)
            if response.startswith(b"HTTP/") and len(response.split(b" ", 2)) > 1:
                self.stats.statuses[(_UUID.sub("<id>", path) if path.startswith(self.fault_prefix) else "other",
                                     int(response.split(b" ", 2)[1]))] += 1
            self.stats.events.append((time.monotonic(), index, path, kind if complete else "upstream_failed"))
            if not complete:
                self.stats.upstream_failed += 1
            # A head cut short is no answer; a body cut short is passed on as it came (the client sees
            # a body shorter than its Content-Length, as behind any proxy).
            return response if b"\r\n\r\n" in response else None
        except (ConnectionError, OSError):
            self.stats.upstream_failed += 1
            self.stats.events.append((time.monotonic(), index, path, "upstream_failed"))
            return None
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close gracefully: what was written is flushed before the FIN."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the peer may be gone already
        pass


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    if len(lines[0].split(b" ")) != 3:
        raise BadRequest(lines[0][:100])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest(line[:100])
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _is_complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True  # no length: the body ends where the connection did


def _close_after(response: bytes) -> bytes:
    """The response with its hop-by-hop headers replaced by ``Connection: close``."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:] if line.partition(b":")[0].strip().lower() not in HOP_BY_HOP]
    return b"\r\n".join(kept + [b"Connection: close"]) + b"\r\n\r\n" + body
