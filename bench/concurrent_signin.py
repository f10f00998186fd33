"""Benchmark: concurrent passkey sign-in against gunicorn (2 gthread workers) on SQLite.

What it measures
    N clients (default 50), each a thread with its own HTTP session and software authenticator,
    repeat the full WebAuthn sign-in ceremony as fast as they can:

        POST /auth/signin/options  ->  authenticator signs the challenge  ->  POST /auth/signin/verify

    Every ceremony writes to the database twice (the challenge is stored, then consumed and the
    passkey's counter updated), so this is a test of SQLite write contention across two worker
    processes: the goal is zero "database is locked" errors.  Latency is timed from the options
    request to the verify response; fetching a CSRF token (needed after every sign-in, which clears
    the session) is not part of it.  Enrolling the passkeys beforehand is setup and is not measured.

How to run (from the repo root; only 127.0.0.1 is used, everything lives in a temporary folder)
    .venv/bin/python bench/concurrent_signin.py [--clients 50] [--seconds 20] [--rounds N] [--signout]

    Without --rounds it runs for --seconds (default 20); with --rounds each client does that many
    ceremonies (and stops earlier if --seconds is also given and runs out).

How to read the output
    throughput   successful ceremonies per second over the measured phase (all clients together)
    p50 / p99    latency of successful ceremonies, in milliseconds (nearest-rank percentiles)
    errors       every non-200 response or exception, in any request of the measured phase
    locked       responses with status 5xx mentioning "database is locked", plus the occurrences
                 of that phrase in the gunicorn log (one incident can appear on more than one log
                 line, e.g. a chained traceback); anything above 0 is a failure of the goal
    The last line is one JSON object with the same figures, for scripts to parse.
    The temporary folder (database and gunicorn log) is kept and named when there were errors.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _harness import (  # noqa: E402  (bench/ is on sys.path when a script there runs)
    apply_env, free_port, gunicorn, init_db, log_count, percentile_ms,
)
from fieldapp import create_app, db  # noqa: E402
from fieldapp.accounts import create_unit, create_user, parse_roles  # noqa: E402
from fieldapp.auth import enrollment  # noqa: E402
from tests.support.soft_authenticator import SoftAuthenticator  # noqa: E402

LOCKED = "database is locked"
HTTP_TIMEOUT_S = 30
WORKERS, THREADS = 2, 8


# ---- environment and setup -------------------------------------------------------------------

def fieldapp_env(var_dir: Path, port: int) -> dict[str, str]:
    return {
        "FIELDAPP_VAR_DIR": str(var_dir),
        "FIELDAPP_RATE_LIMIT": "0",
        "FIELDAPP_ORIGINS": f"http://localhost:{port}",
        "FIELDAPP_RP_ID": "localhost",
        "FIELDAPP_COOKIE_SECURE": "0",
        "FIELDAPP_LOG_REQUESTS": "0",
        "FIELDAPP_SECRET_KEY": "bench-secret",
    }


def seed_users(count: int) -> list[str]:
    """Create one unit and ``count`` officers in-process; return one enrolment code per officer."""
    app = create_app()
    with app.app_context(), db.transaction():
        unit = create_unit("BENCH", "压测单位")
        roles = parse_roles("officer")
        codes = [
            enrollment.issue(create_user(f"压测用户{i:03d}", f"BENCH-{i:04d}", unit, roles), 24).code
            for i in range(count)
        ]
    app.extensions["fieldapp.engine"].dispose()  # hold no SQLite connection while gunicorn runs
    return codes


# ---- the server --------------------------------------------------------------------------------

# ---- one client ------------------------------------------------------------------------------

class RequestFailed(Exception):
    """A non-200 answer; ``locked`` when it is a 5xx that says the database was locked."""

    def __init__(self, method: str, path: str, response: requests.Response):
        super().__init__(f"{method} {path} -> {response.status_code}")
        self.kind = f"{method} {_route(path)} {response.status_code}"
        self.locked = response.status_code >= 500 and LOCKED in response.text


def _route(path: str) -> str:
    """Group /enroll/<code>/... under one name in the error breakdown."""
    parts = path.split("/")
    return "/enroll/<code>/" + parts[-1] if path.startswith("/enroll/") else path


class BenchClient:
    """One phone: an HTTP session with its cookies and CSRF token, and its own passkey."""

    def __init__(self, base_url: str, origin: str):
        self.base_url = base_url
        self.origin = origin
        self.http = requests.Session()
        self.authenticator = SoftAuthenticator()
        self.csrf: str | None = None

    def _send(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"X-CSRFToken": self.csrf} if method == "POST" else {}
        response = self.http.request(method, self.base_url + path, json=body, headers=headers,
                                     timeout=HTTP_TIMEOUT_S)
        if response.status_code != 200:
            raise RequestFailed(method, path, response)
        return response.json()

    def ensure_csrf(self) -> None:
        if self.csrf is None:
            self.csrf = self._send("GET", "/api/v1/session")["csrf_token"]

    def post(self, path: str, body: dict | None = None) -> dict:
        self.ensure_csrf()
        return self._send("POST", path, body or {})

    def enroll(self, code: str) -> None:
        options = self.post(f"/enroll/{code}/options", {"attachment": "platform"})
        credential = self.authenticator.create(options, origin=self.origin)
        answer = self.post(f"/enroll/{code}/verify", {"credential": credential, "label": "bench"})
        self.csrf = None  # enrolment signs in, which starts a new session
        if answer.get("ok") is not True:
            raise RuntimeError(f"enrolment with {code} answered {answer}")

    def sign_in(self) -> None:
        """One ceremony: options, assertion, verify. The caller has fetched a CSRF token."""
        options = self.post("/auth/signin/options")
        assertion = self.authenticator.get(options, origin=self.origin)
        try:
            answer = self.post("/auth/signin/verify", {"credential": assertion})
        finally:
            self.csrf = None  # sign-in clears the session, and with it the token
        if answer.get("ok") is not True:
            raise RuntimeError(f"sign-in answered {answer}")

    def sign_out(self) -> None:
        self.post("/auth/signout")
        self.csrf = None


# ---- the measured phase --------------------------------------------------------------------

@dataclass
class Limits:
    deadline: float | None
    rounds: int | None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def reached(self, rounds_done: int) -> bool:
        return (self.cancelled.is_set()
                or (self.rounds is not None and rounds_done >= self.rounds)
                or (self.deadline is not None and time.monotonic() >= self.deadline))


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    locked: int = 0

    def record_error(self, kind: str, locked: bool = False) -> None:
        self.errors[kind] += 1
        self.locked += locked


def run_client(client: BenchClient, limits: Limits, signout: bool) -> ClientResult:
    result = ClientResult()
    rounds = 0
    while not limits.reached(rounds):
        rounds += 1
        try:
            client.ensure_csrf()
            started = time.perf_counter()
            client.sign_in()
            result.latencies.append(time.perf_counter() - started)
            if signout:
                client.sign_out()
        except RequestFailed as exc:
            result.record_error(exc.kind, exc.locked)
            client.csrf = None
        except Exception as exc:  # noqa: BLE001 - a benchmark counts failures, it does not stop
            result.record_error(f"{type(exc).__name__}: {str(exc)[:80]}")
            client.csrf = None
    return result


def run_clients(clients: list[BenchClient], limits: Limits, signout: bool) -> tuple[list[ClientResult], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(run_client, c, limits, signout) for c in clients]
        try:
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            limits.cancelled.set()
            raise
    return results, time.perf_counter() - started


# ---- report ----------------------------------------------------------------------------------

@dataclass
class Summary:
    clients: int
    duration_s: float
    latencies: list[float]
    errors: Counter
    locked_responses: int
    locked_log: int

    @classmethod
    def of(cls, clients: int, results: list[ClientResult], duration_s: float, locked_log: int) -> Summary:
        errors: Counter = Counter()
        for r in results:
            errors.update(r.errors)
        latencies = sorted(t for r in results for t in r.latencies)
        return cls(clients, duration_s, latencies, errors, sum(r.locked for r in results), locked_log)

    @property
    def figures(self) -> dict:
        return {
            "throughput_rps": round(len(self.latencies) / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": percentile_ms(self.latencies, 50),
            "p99_ms": percentile_ms(self.latencies, 99),
            "errors": sum(self.errors.values()),
            "locked_errors": self.locked_responses + self.locked_log,
        }

    def print(self) -> None:
        f = self.figures
        print(f"concurrent passkey sign-in: gunicorn {WORKERS} workers x {THREADS} threads (gthread), SQLite")
        print(f"  clients          {self.clients}")
        print(f"  ceremonies       {len(self.latencies)} succeeded")
        print(f"  duration         {self.duration_s:.1f} s")
        print(f"  throughput       {f['throughput_rps']} ceremonies/s")
        print(f"  latency p50      {f['p50_ms']} ms")
        print(f"  latency p99      {f['p99_ms']} ms")
        print(f"  errors           {f['errors']}")
        for kind, n in self.errors.most_common(10):
            print(f"    {n:6d}  {kind}")
        print(f"  locked errors    {f['locked_errors']} "
              f"(responses {self.locked_responses}, gunicorn log {self.locked_log})")


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--rounds", type=int, default=None, help="ceremonies per client")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of the measured phase (default 20 unless --rounds is given)")
    parser.add_argument("--signout", action="store_true", help="sign out after every sign-in")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.clients < 1 or (args.rounds is not None and args.rounds < 1):
        parser.error("--clients and --rounds must be at least 1")
    if args.seconds is None and args.rounds is None:
        args.seconds = 20.0
    return args


def enroll_all(base_url: str, origin: str, codes: list[str]) -> list[BenchClient]:
    clients = [BenchClient(base_url, origin) for _ in codes]
    for client, code in zip(clients, codes, strict=True):
        client.enroll(code)
    return clients


def benchmark(args: argparse.Namespace, var_dir: Path, log_path: Path) -> tuple[list[ClientResult], float]:
    port = free_port()
    env = apply_env(fieldapp_env(var_dir, port))
    init_db(env)
    codes = seed_users(args.clients)
    with gunicorn(env, port, log_path, workers=WORKERS, threads=THREADS) as (base_url, _pid):
        clients = enroll_all(base_url, f"http://localhost:{port}", codes)
        limits = Limits(deadline=time.monotonic() + args.seconds if args.seconds else None,
                        rounds=args.rounds)
        return run_clients(clients, limits, args.signout)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    log_path = var_dir / "gunicorn.log"
    try:
        results, duration = benchmark(args, var_dir, log_path)
        summary = Summary.of(args.clients, results, duration, log_count(log_path, LOCKED))
        figures = summary.figures
        summary.print()
    except BaseException:
        print(f"benchmark failed; database and gunicorn log kept in {var_dir}", file=sys.stderr)
        raise
    failed = figures["errors"] or figures["locked_errors"]
    if args.keep or failed:
        print(f"  kept             {var_dir} (database, gunicorn.log)")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    print(json.dumps(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
