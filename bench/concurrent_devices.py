"""Benchmark: many phones pushing signed revisions at once, gunicorn (2 gthread workers), SQLite and PostgreSQL.

What it measures
    N simulated devices (default 50), each a thread with its own HTTP session, its own signed-in
    officer and its own registered signing key, push B batches (default 10) of S revisions
    (default 20) each through POST /api/v1/sync/push, as fast as the server answers:

        batch 0        S new records (revision 1): a case, an activity under it, steps under that
        later batches  mostly new records; the odd-numbered batches also carry revision 2 of S/4
                       records sent in earlier batches (exercises parents and the record lock);
                       every later batch re-sends ~5 % of items already sent and answered
                       (exercises the idempotent path: the server must answer "duplicate")

    Latency is timed per batch, from sending the request to reading the whole response.  All
    revisions are signed before the measured phase (signing is the phone's CPU, not the server's);
    sign-in (the demo route, FIELDAPP_DEMO=1), fetching the catalogue and registering the devices
    are setup and are not measured either.  The same run is done on SQLite (the embedded default)
    and on a throwaway PostgreSQL cluster (tests.support.postgres), one after the other.

How to run (from the repo root; only 127.0.0.1 and a Unix socket in a temporary folder are used)
    .venv/bin/python bench/concurrent_devices.py [--devices 50] [--batches 10] [--batch-size 20]
                                                 [--backend sqlite|postgresql|both] [--threads 8]

How to read the output
    batches/s     batches answered 200 per second over the measured phase (all devices together)
    p50 / p99     latency of those batches, in milliseconds (nearest-rank percentiles)
    errors        every non-200 answer or exception, plus every item whose status is not the one
                  expected (created for new revisions, duplicate for re-sent ones; "rejected" and
                  "conflict" are never expected); a failed batch is retried up to twice, as the
                  phone does, and each failed attempt counts
    duplicates    (record_id, revision) pairs stored more than once, counted in the database
                  directly after the run; the unique constraint should make this 0
    stored        revisions in the database against distinct revisions sent: must be equal
    cpu           this process's CPU time (the client threads, JSON and HTTP) and the gunicorn
                  workers' (and PostgreSQL's) during the measured phase, against its wall time:
                  on a small machine the client competes with the server for the same cores
    missed        a further phone of the unit pulls (GET /api/v1/sync/pull) every 0.5 s during the
                  run, following `more`; the cases the pushes created that it never received
    feed delay    from a case's change being written to the puller receiving it (p95)
    server cpu/batch  gunicorn plus PostgreSQL CPU per answered batch: unlike batches/s it holds
                  on a busy machine
    Goal: >= 50 batches/s, 0 errors, 0 duplicates, 0 missed, feed delay p95 <= 2000 ms.  The last line is one JSON object with the
    figures of each backend, for scripts to parse.  Temporary folders are kept and named when
    there were errors (--keep keeps them always).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import text  # noqa: E402

from _harness import (  # noqa: E402  (bench/ is on sys.path when a script there runs)
    apply_env, free_port, gunicorn, init_db, log_count, percentile_ms,
)
from fieldapp import create_app, db  # noqa: E402
from fieldapp.accounts import create_unit, create_user, parse_roles  # noqa: E402
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster  # noqa: E402
from tests.support.soft_device import SoftDevice  # noqa: E402

LOCKED = "database is locked"
HTTP_TIMEOUT_S = 60
WORKERS = 2
ATTEMPTS = 3  # a failed batch is sent again, as the phone's outbox does
DUPLICATE_SHARE = 0.05
GOAL_BATCHES_PER_S = 50.0
PG_DBNAME = "fieldapp_bench"
SAMPLES_PER_KIND = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- environment and setup -------------------------------------------------------------------

def fieldapp_env(var_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    settings = {
        "FIELDAPP_VAR_DIR": str(var_dir),
        "FIELDAPP_RATE_LIMIT": "0",
        "FIELDAPP_ORIGINS": f"http://localhost:{port}",
        "FIELDAPP_RP_ID": "localhost",
        "FIELDAPP_COOKIE_SECURE": "0",
        "FIELDAPP_LOG_REQUESTS": "0",
        "FIELDAPP_SECRET_KEY": "bench-secret",
        "FIELDAPP_DEMO": "1",  # cheap sign-in for the devices: loopback only, no proxy headers
    }
    if database_url:
        settings["FIELDAPP_DATABASE_URL"] = database_url
    return settings


def seed_users(count: int) -> list[str]:
    """Create one unit and ``count`` officers in-process; return their user ids."""
    app = create_app()
    try:
        with app.app_context(), db.transaction():
            unit = create_unit("BENCH", "压测单位")
            roles = parse_roles("officer")
            ids = [str(create_user(f"压测用户{i:03d}", f"BENCH-{i:04d}", unit, roles).id) for i in range(count)]
    finally:
        app.extensions["fieldapp.engine"].dispose()  # hold no connection while gunicorn runs
    return ids


@contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """A throwaway cluster with one empty database, stopped (and its folder removed) at the end."""
    cluster = start_cluster()
    try:
        cluster.execute(f"CREATE DATABASE {PG_DBNAME}")
        yield cluster
    finally:
        cluster.stop()


def postmaster_pid(cluster: Cluster) -> int | None:
    try:
        return int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---- the server --------------------------------------------------------------------------------

# ---- CPU accounting (Linux /proc) ------------------------------------------------------------

def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from "state" on; the name may hold spaces


def process_tree_cpu_s(root_pid: int | None) -> float:
    """User+system CPU seconds of ``root_pid`` and its direct children (gunicorn workers, or the
    PostgreSQL backends under the postmaster). Children that already exited are not counted."""
    if root_pid is None:
        return 0.0
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    wall: float
    client: float
    server: float
    database: float
    machine_busy: int
    machine_total: int

    @classmethod
    def take(cls, server_pid: int, db_pid: int | None) -> CpuSample:
        busy, total = machine_cpu()
        return cls(time.perf_counter(), own_cpu_s(), process_tree_cpu_s(server_pid),
                   process_tree_cpu_s(db_pid), busy, total)


@dataclass
class CpuUse:
    wall_s: float
    client_s: float
    server_s: float
    database_s: float
    machine_busy_share: float  # 0..1 of all cores

    @classmethod
    def between(cls, a: CpuSample, b: CpuSample) -> CpuUse:
        total = b.machine_total - a.machine_total
        return cls(b.wall - a.wall, b.client - a.client, b.server - a.server, b.database - a.database,
                   (b.machine_busy - a.machine_busy) / total if total else 0.0)


# ---- the devices and their planned batches ---------------------------------------------------

@dataclass
class PlannedBatch:
    items: list[dict]
    expected: list[str]  # "created" or "duplicate", item by item


@dataclass
class Plan:
    batches: list[PlannedBatch]
    distinct: set[tuple[str, int]]  # (record_id, revision) of every fresh revision
    new_records: int
    second_revisions: int
    resent: int


def plan_device(device: SoftDevice, batches: int, size: int, rng: random.Random) -> Plan:
    """Sign every revision this device will push, batch by batch (the phone's work, done up front)."""
    out: list[PlannedBatch] = []
    distinct: set[tuple[str, int]] = set()
    sent: list[dict] = []  # fresh items of earlier batches: candidates to re-send
    unrevised: list[dict] = []  # revision 1 of earlier batches' records with no revision 2 yet
    case_id = str(uuid.uuid4())
    activity_id = str(uuid.uuid4())
    counts = Counter()
    serial = 0

    def new_record() -> dict:
        nonlocal serial
        serial += 1
        if serial == 1:
            return device.revision(case_id, record_type="case",
                                   payload={"kind": "inspection", "party_name": f"压测商户 {device.device_id[:8]}",
                                            "address": "临淄区压测路 1 号", "flags": []})
        if serial == 2:
            return device.revision(activity_id, record_type="activity", parent_id=case_id,
                                   payload={"case_id": case_id, "started_at": "2026-11-27T01:00:00Z",
                                            "place": {"lat_e6": 36816000, "lon_e6": 118309000, "accuracy_m": 12}})
        return device.revision(record_type="step", parent_id=activity_id,
                               payload={"case_id": case_id, "step_type": "on_site_check",
                                        "notes": f"现场检查第 {serial} 项", "av_recorded": True})

    def new_case() -> dict:
        return device.revision(str(uuid.uuid4()), record_type="case",
                               payload={"kind": "inspection", "party_name": f"压测新案 {device.device_id[:8]}",
                                        "address": "临淄区压测路 2 号", "flags": []})

    for index in range(batches):
        items: list[dict] = []
        expected: list[str] = []
        fresh: list[dict] = []
        n_dup = min(len(sent), max(1, round(size * DUPLICATE_SHARE))) if index > 0 and size > 1 else 0
        n_rev2 = min(len(unrevised), size // 4) if index % 2 == 1 else 0
        n_rev2 = min(n_rev2, size - n_dup)
        for item in rng.sample(sent, n_dup):
            items.append(item)
            expected.append("duplicate")
        for first in rng.sample(unrevised, n_rev2):
            unrevised.remove(first)
            payload = {**first["payload"], "notes": f"{first['payload'].get('notes', '')}（更正）"}
            second = device.revision(first["record_id"], 2, payload, record_type=first["record_type"],
                                     parent_id=first["parent_id"], reason="现场更正笔误")
            fresh.append(second)
        counts["second_revisions"] += n_rev2
        for k in range(size - n_dup - n_rev2):
            # One new case per later batch as well: the puller's feed carries changes all run long.
            first = new_case() if index > 0 and k == 0 else new_record()
            fresh.append(first)
            if first["record_type"] == "step":
                unrevised.append(first)
        counts["new_records"] += size - n_dup - n_rev2
        counts["resent"] += n_dup
        items.extend(fresh)
        expected.extend("created" for _ in fresh)
        order = list(range(len(items)))
        rng.shuffle(order)  # parents are always in earlier batches, so order inside a batch is free
        out.append(PlannedBatch([items[i] for i in order], [expected[i] for i in order]))
        sent.extend(fresh)
        distinct.update((item["record_id"], item["revision"]) for item in fresh)
    return Plan(out, distinct, counts["new_records"], counts["second_revisions"], counts["resent"])


class RequestFailed(Exception):
    def __init__(self, method: str, path: str, response: requests.Response):
        super().__init__(f"{method} {path} -> {response.status_code}")
        self.kind = f"{method} {path} {response.status_code}"
        self.locked = response.status_code >= 500 and LOCKED in response.text
        self.body = response.text[:300]


class BenchDevice:
    """One phone: an HTTP session with its cookies and CSRF token, its officer and its signing key."""

    def __init__(self, base_url: str, user_id: str):
        self.base_url = base_url
        self.user_id = user_id
        self.http = requests.Session()
        self.csrf: str | None = None
        self.soft: SoftDevice | None = None
        self.plan: Plan | None = None

    def _check(self, method: str, path: str, response: requests.Response, ok=(200,)) -> requests.Response:
        if response.status_code not in ok:
            raise RequestFailed(method, path, response)
        return response

    def get_json(self, path: str) -> dict:
        response = self.http.get(self.base_url + path, timeout=HTTP_TIMEOUT_S)
        return self._check("GET", path, response).json()

    def post_json(self, path: str, body: dict, ok=(200,)) -> requests.Response:
        response = self.http.post(self.base_url + path, json=body, headers={"X-CSRFToken": self.csrf},
                                  timeout=HTTP_TIMEOUT_S)
        return self._check("POST", path, response, ok)

    def set_up(self) -> None:
        """Demo sign-in, catalogue, device registration: setup, not measured."""
        token = self.get_json("/api/v1/session")["csrf_token"]
        response = self.http.post(self.base_url + "/auth/demo", data={"user_id": self.user_id, "csrf_token": token},
                                  allow_redirects=False, timeout=HTTP_TIMEOUT_S)
        self._check("POST", "/auth/demo", response, ok=(302, 303))
        state = self.get_json("/api/v1/session")  # signing in starts a new session: new token
        if not state.get("authenticated") or state["user"]["id"] != self.user_id:
            raise RuntimeError(f"demo sign-in as {self.user_id} answered {state}")
        self.csrf = state["csrf_token"]
        catalogue = self.get_json("/api/v1/catalogue")
        self.soft = SoftDevice(author=self.user_id, catalogue_version=catalogue["version"])
        self.post_json("/api/v1/devices", {"device_id": self.soft.device_id, "public_key": self.soft.public_key_b64,
                                           "label": "压测手机"}, ok=(201,))

    def push(self, batch: PlannedBatch) -> list[dict]:
        return self.post_json("/api/v1/sync/push", self.soft.batch(*batch.items)).json()["results"]


# ---- the puller: another phone of the unit, following the feed --------------------------------

PULL_EVERY_S = 0.5
QUIET_AFTER_S = 5.0


class Puller:
    """Pulls every PULL_EVERY_S while the devices push, then until the feed is quiet; notes when
    each case first arrived."""

    def __init__(self, device: BenchDevice):
        self.device = device
        self.cursor = "0"
        self.arrived: dict[str, float] = {}
        self.errors: Counter = Counter()
        self.pulls = 0

    def pull(self) -> bool:
        """One pull and the pages that follow it; True if it brought anything."""
        brought = False
        more = True
        while more:
            page = self.device.get_json(f"/api/v1/sync/pull?cursor={self.cursor}")
            self.pulls += 1
            now = time.time()
            for case in page["cases"]:
                if case["id"] not in self.arrived:
                    self.arrived[case["id"]] = now
                    brought = True
            self.cursor, more = page["cursor"], page["more"]
        return brought

    def run(self, pushing_done: threading.Event) -> None:
        quiet_since = None
        while True:
            began = time.perf_counter()
            try:
                brought = self.pull()
            except Exception as exc:  # noqa: BLE001 - counted, the benchmark goes on
                self.errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                brought = True
            if pushing_done.is_set():
                quiet_since = None if brought else (quiet_since or time.perf_counter())
                if quiet_since and time.perf_counter() - quiet_since >= QUIET_AFTER_S:
                    return
            time.sleep(max(0.0, PULL_EVERY_S - (time.perf_counter() - began)))


@dataclass
class FeedFigures:
    expected: int
    missed: int
    delays_s: list[float]
    errors: int
    pulls: int


def feed_figures(puller: Puller) -> FeedFigures:
    """Cases the pushes created (all of them after the puller's first resync) against what arrived."""
    app = create_app()
    try:
        with app.app_context():
            rows = db.session().execute(text(
                "SELECT entity_id, min(at) FROM change_log WHERE entity = 'case' GROUP BY entity_id")).all()
    finally:
        app.extensions["fieldapp.engine"].dispose()
    written = {}
    for entity_id, at in rows:
        if isinstance(at, str):  # SQLite hands back text
            at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        written[str(uuid.UUID(entity_id))] = at.timestamp()
    delays = sorted(max(0.0, puller.arrived[c] - t) for c, t in written.items() if c in puller.arrived)
    return FeedFigures(len(written), len(set(written) - set(puller.arrived)), delays,
                       sum(puller.errors.values()), puller.pulls)


# ---- the measured phase --------------------------------------------------------------------

@dataclass
class DeviceResult:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    locked: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)  # a few details per kind of error

    def record_error(self, kind: str, sample: str | None = None, locked: bool = False) -> None:
        self.errors[kind] += 1
        self.locked += locked
        kept = self.samples.setdefault(kind, [])
        if sample and len(kept) < SAMPLES_PER_KIND:
            kept.append(sample)


def check_items(batch: PlannedBatch, answers: list[dict], retried: bool, result: DeviceResult) -> None:
    if len(answers) != len(batch.items):
        result.record_error("results count differs from items count", f"{len(answers)} != {len(batch.items)}")
        return
    for item, want, got in zip(batch.items, batch.expected, answers, strict=True):
        status = got.get("status")
        result.statuses[status] += 1
        if got.get("record_id") != item["record_id"] or got.get("revision") != item["revision"]:
            result.record_error("result for another item", json.dumps(got, ensure_ascii=False)[:200])
            continue
        # After a failed attempt the server may have stored the batch anyway: duplicate is fine then.
        if status == want or (retried and want == "created" and status == "duplicate"):
            continue
        kind = f"item expected {want}, got {status}" + (f" ({got.get('error')})" if got.get("error") else "")
        result.record_error(kind, json.dumps(got, ensure_ascii=False)[:300])


def _when(started: float) -> str:
    """When an attempt failed (UTC, to match the gunicorn log) and how long it had been waiting."""
    now = time.time()
    return (f"[at {time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now % 1 * 1000):03d} UTC, "
            f"after {time.perf_counter() - started:.2f} s]")


def run_device(device: BenchDevice, start: threading.Barrier, cancelled: threading.Event) -> DeviceResult:
    result = DeviceResult()
    start.wait()
    for batch in device.plan.batches:
        for attempt in range(ATTEMPTS):
            if cancelled.is_set():
                return result
            try:
                started = time.perf_counter()
                answers = device.push(batch)
                result.latencies.append(time.perf_counter() - started)
            except RequestFailed as exc:
                result.record_error(exc.kind, f"{_when(started)} {exc.body.strip()}", exc.locked)
                continue
            except Exception as exc:  # noqa: BLE001 - a benchmark counts failures, it does not stop
                result.record_error(f"{type(exc).__name__}: {str(exc)[:80]}", _when(started))
                continue
            check_items(batch, answers, attempt > 0, result)
            break
    return result


def run_devices(devices: list[BenchDevice], puller: Puller) -> tuple[list[DeviceResult], float, threading.Thread]:
    start = threading.Barrier(len(devices) + 1)
    cancelled = threading.Event()
    pushing_done = threading.Event()
    pulling = threading.Thread(target=puller.run, args=(pushing_done,), daemon=True)
    with ThreadPoolExecutor(max_workers=len(devices)) as pool:
        futures = [pool.submit(run_device, d, start, cancelled) for d in devices]
        start.wait()
        started = time.perf_counter()
        pulling.start()
        try:
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            cancelled.set()
            raise
        finally:
            pushing_done.set()
    return results, time.perf_counter() - started, pulling


# ---- checking the database -------------------------------------------------------------------

@dataclass
class Stored:
    duplicates: int
    revisions: int
    records: int
    revised_heads: int


def count_stored() -> Stored:
    app = create_app()
    try:
        with app.app_context():
            s = db.session()
            duplicates = s.execute(text(
                "SELECT count(*) FROM (SELECT record_id, revision, count(*) FROM revisions "
                "GROUP BY 1, 2 HAVING count(*) > 1) AS twice")).scalar_one()
            revisions = s.execute(text("SELECT count(*) FROM revisions")).scalar_one()
            records = s.execute(text("SELECT count(*) FROM records")).scalar_one()
            revised = s.execute(text("SELECT count(*) FROM records WHERE head_revision = 2")).scalar_one()
    finally:
        app.extensions["fieldapp.engine"].dispose()
    return Stored(duplicates, revisions, records, revised)


# ---- report ----------------------------------------------------------------------------------

@dataclass
class Summary:
    backend: str
    args: argparse.Namespace
    duration_s: float
    latencies: list[float]
    errors: Counter
    statuses: Counter
    samples: dict[str, list[str]]
    locked_responses: int
    log_locked: int
    log_tracebacks: int
    sent_distinct: int
    new_records: int
    second_revisions: int
    resent: int
    stored: Stored
    cpu: CpuUse
    setup_s: float
    signing_s: float
    feed: FeedFigures | None = None

    @classmethod
    def of(cls, backend: str, args, devices: list[BenchDevice], results: list[DeviceResult], duration_s: float,
           stored: Stored, cpu: CpuUse, log_path: Path, setup_s: float, signing_s: float) -> Summary:
        errors, statuses, samples = Counter(), Counter(), {}
        for r in results:
            errors.update(r.errors)
            statuses.update(r.statuses)
            for kind, details in r.samples.items():
                kept = samples.setdefault(kind, [])
                kept.extend(details[: max(0, SAMPLES_PER_KIND - len(kept))])
        plans = [d.plan for d in devices]
        return cls(backend, args, duration_s, sorted(t for r in results for t in r.latencies), errors, statuses,
                   samples, sum(r.locked for r in results), log_count(log_path, LOCKED),
                   log_count(log_path, "Traceback"), sum(len(p.distinct) for p in plans),
                   sum(p.new_records for p in plans), sum(p.second_revisions for p in plans),
                   sum(p.resent for p in plans), stored, cpu, setup_s, signing_s)

    @property
    def figures(self) -> dict:
        return {
            "batches_per_s": round(len(self.latencies) / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": percentile_ms(self.latencies, 50),
            "p99_ms": percentile_ms(self.latencies, 99),
            "errors": sum(self.errors.values()),
            "duplicates": self.stored.duplicates,
            "missed": self.feed.missed if self.feed else None,
            "feed_delay_p95_ms": percentile_ms(self.feed.delays_s, 95) if self.feed else None,
            "server_cpu_per_batch_ms": round((self.cpu.server_s + self.cpu.database_s) / len(self.latencies) * 1000, 1)
            if self.latencies else None,
        }

    @property
    def stored_ok(self) -> bool:
        return self.stored.revisions == self.sent_distinct

    @property
    def failed(self) -> bool:
        f = self.figures
        return bool(f["errors"] or f["duplicates"] or not self.stored_ok or self.log_tracebacks or f["missed"]
                    or (self.feed and self.feed.errors))

    def print(self) -> None:
        f, a, c = self.figures, self.args, self.cpu
        goal_rate = "met" if f["batches_per_s"] >= GOAL_BATCHES_PER_S else "MISSED"
        print(f"concurrent device push: gunicorn {WORKERS} workers x {a.threads} threads (gthread), {self.backend}")
        print(f"  devices          {a.devices}, {a.batches} batches x {a.batch_size} items each")
        print(f"  items sent       {self.new_records} new records, {self.second_revisions} revision-2, "
              f"{self.resent} re-sent (expected duplicate)")
        print("  answers          " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items(), key=str)))
        print(f"  setup            {self.setup_s:.1f} s sign-in + registration, {self.signing_s:.1f} s signing "
              "(not measured)")
        print(f"  batches          {len(self.latencies)} answered 200 in {self.duration_s:.1f} s")
        print(f"  throughput       {f['batches_per_s']} batches/s "
              f"({f['batches_per_s'] * a.batch_size:.0f} items/s)   goal >= {GOAL_BATCHES_PER_S:.0f}: {goal_rate}")
        print(f"  latency p50      {f['p50_ms']} ms")
        print(f"  latency p99      {f['p99_ms']} ms   (max {percentile_ms(self.latencies, 100)} ms)")
        print(f"  errors           {f['errors']}   goal 0: {'met' if not f['errors'] else 'MISSED'}")
        for kind, n in self.errors.most_common(10):
            print(f"    {n:6d}  {kind}")
            for sample in self.samples.get(kind, []):
                print(f"              e.g. {sample[:200]}")
        print(f"  locked           responses {self.locked_responses}, gunicorn log {self.log_locked}; "
              f"tracebacks in gunicorn log {self.log_tracebacks}")
        print(f"  duplicates       {f['duplicates']} (record_id, revision) stored twice   "
              f"goal 0: {'met' if not f['duplicates'] else 'MISSED'}")
        if self.feed:
            fd = self.feed
            print(f"  feed             {fd.expected} cases written, {fd.missed} never pulled (goal 0: "
                  f"{'met' if not fd.missed else 'MISSED'}); delay p50 {percentile_ms(fd.delays_s, 50)} ms, "
                  f"p95 {percentile_ms(fd.delays_s, 95)} ms (goal <= 2000), {fd.pulls} pulls, {fd.errors} failed")
        print(f"  stored           {self.stored.revisions} revisions for {self.sent_distinct} distinct sent: "
              f"{'equal' if self.stored_ok else 'DIFFERENT'}; {self.stored.records} records, "
              f"{self.stored.revised_heads} at revision 2 (sent {self.second_revisions})")
        cores = os.cpu_count() or 1
        wall = max(c.wall_s, 1e-9)
        busy_s = c.machine_busy_share * cores * wall
        other_s = max(0.0, busy_s - c.client_s - c.server_s - c.database_s)
        print(f"  cpu              wall {c.wall_s:.1f} s on {cores} cores ({cores * c.wall_s:.1f} core-s), "
              f"machine busy {c.machine_busy_share * 100:.0f} %:")
        print(f"                   client (this process) {c.client_s:.1f} s = {c.client_s / wall:.2f} cores; "
              f"gunicorn {c.server_s:.1f} s = {c.server_s / wall:.2f} cores"
              + (f"; postgres {c.database_s:.1f} s = {c.database_s / wall:.2f} cores"
                 if self.backend == "postgresql" else "")
              + f"; other processes {other_s:.1f} s = {other_s / wall:.2f} cores")
        if self.latencies:
            print(f"                   server CPU per batch {c.server_s / len(self.latencies) * 1000:.1f} ms"
                  + (f" + postgres {c.database_s / len(self.latencies) * 1000:.1f} ms"
                     if self.backend == "postgresql" else "")
                  + f": at most ~{cores * len(self.latencies) / max(c.server_s + c.database_s, 1e-9):.0f}"
                    " batches/s if the server had every core")
        if c.machine_busy_share > 0.9:
            print("                   the machine was saturated (CPU-bound): "
                  + ("the client threads took a large share" if c.client_s / wall > 0.5 * cores / 2
                     else "the client took little of it") + "; the rest is the server"
                  + (" and other processes" if other_s / wall > 0.2 else ""))


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50, help="concurrent devices (default 50)")
    parser.add_argument("--batches", type=int, default=10, help="batches per device (default 10)")
    parser.add_argument("--batch-size", type=int, default=20, help="items per batch (default 20, at most 100)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    # 4 threads per worker, as scripts/run and the README deploy: push is CPU-bound Python, and more
    # threads only fight over the GIL (8 gave 44 batches/s on PostgreSQL where 4 gave 60).
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the batch plans (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.batches < 1 or not 1 <= args.batch_size <= 100 or args.threads < 1:
        parser.error("--devices, --batches, --threads must be at least 1; --batch-size 1..100")
    return args


def benchmark(backend: str, args: argparse.Namespace, var_dir: Path, log_path: Path) -> Summary:
    with (postgres_cluster() if backend == "postgresql" else _no_cluster()) as cluster:
        port = free_port()
        env = apply_env(fieldapp_env(var_dir, port, cluster.url(PG_DBNAME) if cluster else None))
        init_db(env)
        user_ids = seed_users(args.devices + 1)
        puller_id = user_ids.pop()
        with gunicorn(env, port, log_path, workers=WORKERS, threads=args.threads) as (base_url, server_pid):
            began = time.perf_counter()
            devices = [BenchDevice(base_url, uid) for uid in user_ids]
            for device in devices:
                device.set_up()
            puller = Puller(BenchDevice(base_url, puller_id))
            puller.device.set_up()
            puller.pull()  # its first resync, before anything is pushed
            setup_s = time.perf_counter() - began
            began = time.perf_counter()
            rng = random.Random(args.seed)
            for device in devices:
                device.plan = plan_device(device.soft, args.batches, args.batch_size, rng)
            signing_s = time.perf_counter() - began
            for device in devices:
                # Start the measured phase on fresh connections, as a phone that comes online does: a
                # connection left idle since setup may be closed by gunicorn's keep-alive timeout (2 s)
                # just as the first batch goes out on it, which is a client artefact, not the server's.
                device.http.close()
            db_pid = postmaster_pid(cluster) if cluster else None
            before = CpuSample.take(server_pid, db_pid)
            results, duration, pulling = run_devices(devices, puller)
            cpu = CpuUse.between(before, CpuSample.take(server_pid, db_pid))
            pulling.join()
        stored = count_stored()
        summary = Summary.of(backend, args, devices, results, duration, stored, cpu, log_path, setup_s, signing_s)
        summary.feed = feed_figures(puller)
        return summary


@contextmanager
def _no_cluster() -> Iterator[None]:
    yield None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    figures: dict[str, dict] = {}
    failed = False
    for backend in backends:
        var_dir = Path(tempfile.mkdtemp(prefix=f"fieldapp-bench-devices-{backend}-"))
        log_path = var_dir / "gunicorn.log"
        try:
            summary = benchmark(backend, args, var_dir, log_path)
        except PostgresUnavailable as exc:
            print(f"{backend}: skipped, PostgreSQL is not available: {exc}")
            figures[backend] = {"batches_per_s": None, "p50_ms": None, "p99_ms": None, "errors": None,
                                "duplicates": None, "missed": None, "feed_delay_p95_ms": None,
                                "server_cpu_per_batch_ms": None, "skipped": str(exc)[:200]}
            shutil.rmtree(var_dir, ignore_errors=True)
            failed = True
            continue
        except BaseException:
            print(f"benchmark failed on {backend}; database and gunicorn log kept in {var_dir}", file=sys.stderr)
            raise
        summary.print()
        figures[backend] = summary.figures
        failed = failed or summary.failed
        if args.keep or summary.failed:
            print(f"  kept             {var_dir} (gunicorn.log{', database' if backend == 'sqlite' else ''})")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
        print()
    print(json.dumps(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
