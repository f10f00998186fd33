"""Benchmark: the lead's pending-syncs screen and a unit's findings list on a large database,
SQLite and PostgreSQL.

What it measures
    The server-side render time (routing, access checks, queries, template) of
        GET /review/           the lead's pending-syncs screen (review.pending_page)
        GET /review/findings   the unit's open findings (review.findings_page)
    for the lead of one unit (--viewer supervisor: for a supervisor, who sees every unit),
    through the Flask test client in this process: a few warm-up requests, then each page
    --samples times (default 50), one after the other. No HTTP server and no network are
    involved, so the figures are the app's own work.

What it seeds (bulk inserts: SQLAlchemy Core executemany on SQLite, COPY on PostgreSQL)
    20 units, 15 officers and one lead each (300 officers), one phone per officer with heartbeat
    figures (some with items left on the phone, a few of them past art. 25's 24 hours), 10,000
    cases, one activity record per case and 100,000 step records under them (one signed revision
    each, a small JSON payload and the revision's media list), 1,000,000 media files and
    1,000,000 media references from those steps (~3 % with their original still pending:
    media.original_at null and media_refs.original_stored false), 40,000 findings (~90 %
    resolved), two deadlines per case and a review row per activity. Rows are spread evenly over
    the units, so a unit holds ~1/20 of each table. PostgreSQL gets a VACUUM ANALYZE after the
    load, as autovacuum would give a table that size; SQLite gets no ANALYZE, since the app never
    runs one.

How to run (from the repo root; SQLite in a temporary folder, PostgreSQL as a throwaway cluster
on a Unix socket in a temporary folder, see tests/support/postgres.py)
    .venv/bin/python bench/review_pages.py [--backend sqlite|postgresql|both] [--samples 50]
                                           [--viewer lead|supervisor] [--steps 100000]
                                           [--media 1000000] [--explain] [--keep]

How to read the output
    seeding        seconds to seed each table, and in all
    p50 / p95      render time of each page, milliseconds (nearest-rank percentiles), with the
                   number of rows the page showed (a sanity check that it showed real data)
    app CPU        this process's CPU time per request: the app's own work, which other load on
                   the machine does not inflate (PostgreSQL's share runs in its server process)
    machine load   the 1-minute load average around the measurement: far above the number of
                   cores means the wall times include waiting for a CPU
    --explain      for one extra request of each page: every SQL statement it ran with its time,
                   and the plan of the statements (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE
                   on PostgreSQL)
    statistics     GET /supervision/statistics/ of last month, after every seeded month was
                   recomputed once (statistics_refresh_s: that refresh, in seconds)
    Goal: p95 <= 300 ms for each page on both backends. The last line is one JSON object:
    {"sqlite": {"pending_p95_ms": ..., "findings_p95_ms": ..., "pending_p50_ms": ...,
    "findings_p50_ms": ...}, "postgresql": {...}}.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import JSON, Table, create_engine, event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from _harness import apply_env, percentile_ms  # noqa: E402  (bench/ is on sys.path when a script there runs)
from fieldapp import db, migrate  # noqa: E402
from fieldapp.accounts import create_unit, create_user, parse_roles  # noqa: E402
from fieldapp.models import (  # noqa: E402
    Case, CaseDeadline, Device, Finding, Media, MediaRef, RecordReview, Revision, SyncedRecord, Unit,
)
from fieldapp.rules import publication  # noqa: E402
from tests.support.appfactory import make_app  # noqa: E402
from tests.support.flows import demo_sign_in  # noqa: E402
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster  # noqa: E402

GOAL_P95_MS = 300.0
PG_DBNAME = "fieldapp_bench"
BATCH = 50_000
WARMUP = 5
PENDING_SHARE = 0.03  # media whose original is still on the phone
RESOLVED_SHARE = 0.9  # findings resolved since they were opened
FINDING_RULES = [("av_missing", "error", "arts. 12, 19, 22, 24"), ("continuous_gap", "error", "art. 9"),
                 ("interruption_unexplained", "error", "art. 9"),
                 ("officers_fewer_than_two", "error", "行政处罚法 art. 42, 55; 行政强制法 art. 18; 行政许可法 art. 34"),
                 ("certificates_not_shown", "warning", "行政处罚法 art. 42, 55; 行政强制法 art. 18; 行政许可法 art. 34"),
                 ("av_upload_late", "warning", "art. 25"), ("filing_late", "warning", "art. 25"),
                 ("media_unlabelled", "error", "art. 25")]
BLOCKING = {"av_missing", "continuous_gap", "interruption_unexplained", "officers_fewer_than_two", "media_unlabelled"}
KINDS = ("licensing", "penalty", "coercion", "inspection")
STEP_TYPES = ("on_site_check", "penalty_onsite_inspection", "evidence_collection", "service_document")


@dataclass
class Sizes:
    units: int
    officers_per_unit: int
    cases: int
    steps: int
    media: int
    findings: int


@dataclass
class People:
    units: list[uuid.UUID]
    officers: dict[uuid.UUID, list[uuid.UUID]]  # unit -> officers
    leads: dict[uuid.UUID, uuid.UUID]  # unit -> its lead
    supervisor: uuid.UUID  # 政策法规科: sees every unit
    devices: dict[uuid.UUID, uuid.UUID]  # officer -> device
    catalogue_version: int


# ---- seeding -----------------------------------------------------------------------------------

def bulk_insert(engine: Engine, table: Table, rows: Iterable[dict]) -> int:
    """Insert ``rows`` in batches of BATCH, in one transaction: COPY on PostgreSQL, executemany of
    plain dicts through SQLAlchemy Core on SQLite. Returns the number of rows."""
    postgres = engine.dialect.name == "postgresql"
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    count = 0
    with engine.begin() as conn:
        batch: list[dict] = []

        def flush() -> None:
            if not batch:
                return
            if postgres:
                columns = list(batch[0])
                cursor = conn.connection.driver_connection.cursor()
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row([json.dumps(row[c], ensure_ascii=False) if c in json_columns else row[c]
                                        for c in columns])
                cursor.close()
            else:
                conn.execute(table.insert(), batch)
            batch.clear()

        for row in rows:
            batch.append(row)
            count += 1
            if len(batch) >= BATCH:
                flush()
        flush()
    return count


def media_hash(index: int) -> str:
    return hashlib.sha256(index.to_bytes(8, "big")).hexdigest()


def seed_people(app, sizes: Sizes) -> People:
    """Units, officers and leads through fieldapp.accounts (as an admin would create them)."""
    units: list[uuid.UUID] = []
    officers: dict[uuid.UUID, list[uuid.UUID]] = {}
    leads: dict[uuid.UUID, uuid.UUID] = {}
    with app.app_context(), db.transaction():
        catalogue_version = publication.ensure_published().version
        officer_roles, lead_roles = parse_roles("officer"), parse_roles("lead")
        serial = 0
        for u in range(sizes.units):
            unit = create_unit(f"ZF{u + 1:02d}", f"临淄区市场监管执法{u + 1}队")
            units.append(unit.id)
            officers[unit.id] = []
            for _ in range(sizes.officers_per_unit):
                serial += 1
                officers[unit.id].append(create_user(f"执法人员{serial:04d}", f"3703030{serial:05d}", unit,
                                                     officer_roles).id)
            serial += 1
            leads[unit.id] = create_user(f"负责人{u + 1:02d}", f"3703039{serial:05d}", unit, lead_roles).id
        supervisor = create_user("政策法规科", "370303800001", db.session().get(Unit, units[0]),
                                 parse_roles("supervisor")).id
    devices = {officer: uuid.uuid4() for unit in units for officer in officers[unit]}
    return People(units, officers, leads, supervisor, devices, catalogue_version)


def device_rows(people: People, now: datetime, rng: random.Random) -> Iterator[dict]:
    for officer, device in people.devices.items():
        busy = rng.random() < 0.4  # something still on the phone
        late = busy and rng.random() < 0.15
        oldest = (now - timedelta(hours=rng.uniform(25, 72) if late else rng.uniform(0.1, 20))) if busy else None
        yield {"id": device, "user_id": officer, "public_key": rng.randbytes(91), "label": "执法记录手机",
               "user_agent": "Mozilla/5.0 (Linux; Android 14) FieldApp", "registered_at": now - timedelta(days=200),
               "revoked_at": None, "revoked_by": None,
               "last_seen_at": now - timedelta(minutes=rng.uniform(1, 3 * 24 * 60)), "app_version": "1.4.2",
               "catalogue_version": people.catalogue_version,
               "unsynced_items": rng.randint(1, 40) if busy else 0,
               "bytes_pending": rng.randint(1, 2_000) * 1_000_000 if busy else 0, "oldest_unsynced_at": oldest,
               "clock_skew_seconds": rng.randint(-5, 5)}


@dataclass
class CaseSeed:
    id: uuid.UUID
    unit: uuid.UUID
    activity: uuid.UUID
    activity_author: uuid.UUID
    created_at: datetime


def plan_cases(people: People, sizes: Sizes, now: datetime, rng: random.Random) -> list[CaseSeed]:
    out = []
    for i in range(sizes.cases):
        unit = people.units[i % len(people.units)]
        out.append(CaseSeed(uuid.uuid4(), unit, uuid.uuid4(), rng.choice(people.officers[unit]),
                            now - timedelta(days=rng.uniform(1, 365))))
    return out


def case_rows(cases: list[CaseSeed], now: datetime, rng: random.Random) -> Iterator[dict]:
    for i, c in enumerate(cases):
        archived = c.created_at < now - timedelta(days=120) and rng.random() < 0.7
        yield {"id": c.id, "unit_id": c.unit, "kind": KINDS[i % len(KINDS)],
               "case_number": f"淄临市监罚〔2026〕{i + 1}号", "party_name": f"临淄区齐都镇商户{i + 1:05d}",
               "party_credit_code": None, "party_address": f"临淄区齐都镇{i % 300 + 1}号", "flags": [],
               "status": "archived" if archived else "open", "origin": "server",
               "created_by": c.activity_author, "created_at": c.created_at, "updated_at": c.created_at,
               "act_ended_at": c.created_at + timedelta(days=3) if archived else None,
               "archived_at": c.created_at + timedelta(days=20) if archived else None,
               "archived_by": None}


@dataclass
class StepSeed:
    id: uuid.UUID
    case: CaseSeed
    author: uuid.UUID
    at: datetime


def plan_steps(people: People, cases: list[CaseSeed], sizes: Sizes, rng: random.Random) -> list[StepSeed]:
    out = []
    for i in range(sizes.steps):
        case = cases[i % len(cases)]
        author = rng.choice(people.officers[case.unit])
        out.append(StepSeed(uuid.uuid4(), case, author, case.created_at + timedelta(hours=rng.uniform(0, 48))))
    return out


def record_rows(cases: list[CaseSeed], steps: list[StepSeed]) -> Iterator[dict]:
    for c in cases:
        yield {"id": c.activity, "record_type": "activity", "author_id": c.activity_author, "unit_id": c.unit,
               "parent_id": c.id, "case_id": c.id, "head_revision": 1, "withdrawn": False,
               "created_at": c.created_at, "updated_at": c.created_at}
    for s in steps:
        yield {"id": s.id, "record_type": "step", "author_id": s.author, "unit_id": s.case.unit,
               "parent_id": s.case.activity, "case_id": s.case.id, "head_revision": 1, "withdrawn": False,
               "created_at": s.at, "updated_at": s.at}


def media_of_step(index: int, sizes: Sizes) -> range:
    """The media indexes step ``index`` references: the media are shared out evenly over the steps."""
    return range(index * sizes.media // sizes.steps, (index + 1) * sizes.media // sizes.steps)


def revision_rows(people: People, cases: list[CaseSeed], steps: list[StepSeed], sizes: Sizes,
                  rng: random.Random) -> Iterator[dict]:
    def row(record_id, record_type, parent_id, author, at, payload, media):
        return {"record_id": record_id, "revision": 1, "parent": None, "parent_id": parent_id,
                "record_type": record_type, "catalogue_version": people.catalogue_version, "author_id": author,
                "device_id": people.devices[author], "device_time": at.isoformat().replace("+00:00", "Z"),
                "device_time_parsed": at, "received_at": at + timedelta(minutes=rng.uniform(1, 600)),
                "clock_skew_seconds": 2, "clock_skew_flag": False, "reason": None, "payload": payload,
                "media": media, "withdrawn_media": [], "content_hash": rng.randbytes(32).hex(),
                "signature": rng.randbytes(64), "missing_media": []}

    for c in cases:
        yield row(c.activity, "activity", c.id, c.activity_author, c.created_at,
                  {"case_id": str(c.id), "arrived_at": c.created_at.isoformat(), "continuous_required": False,
                   "place": {"source": "typed", "text": "齐都镇"}}, [])
    for i, s in enumerate(steps):
        media = [{"alg": "sha-256", "hash": media_hash(m), "size": 3_500_000, "type": "image/jpeg"}
                 for m in media_of_step(i, sizes)]
        yield row(s.id, "step", s.case.activity, s.author, s.at,
                  {"activity_id": str(s.case.activity), "case_id": str(s.case.id), "step_type": STEP_TYPES[i % 4],
                   "at": s.at.isoformat(), "av_recorded": True, "notes": f"现场检查第 {i % 50 + 1} 项"}, media)


def pending_media(sizes: Sizes, seed: int) -> set[int]:
    rng = random.Random(seed)
    return set(rng.sample(range(sizes.media), round(sizes.media * PENDING_SHARE)))


def media_rows(steps: list[StepSeed], sizes: Sizes, pending: set[int], rng: random.Random) -> Iterator[dict]:
    for i, s in enumerate(steps):
        for m in media_of_step(i, sizes):
            video = m % 10 == 0
            stored = m not in pending
            yield {"alg": "sha-256", "hash": media_hash(m), "size": 80_000_000 if video else 3_500_000,
                   "declared_type": "video/mp4" if video else "image/jpeg",
                   "mime": "video/mp4" if video else "image/jpeg", "kind": "video" if video else "image",
                   "original_at": s.at + timedelta(hours=2) if stored else None, "phone_preview_at": s.at,
                   "previews": ["preview"] if stored else [], "width": 4000, "height": 3000, "flags": [],
                   "taken_at": s.at, "taken_at_zone_assumed": False, "lat_e6": 36816000 + m % 1000,
                   "lon_e6": 118309000 + m % 1000, "gps_accuracy_m": 12, "camera_make": "HUAWEI",
                   "camera_model": "ELS-AN00", "orientation": 1, "created_at": s.at}


def media_ref_rows(steps: list[StepSeed], sizes: Sizes, pending: set[int]) -> Iterator[dict]:
    for i, s in enumerate(steps):
        for m in media_of_step(i, sizes):
            yield {"record_id": s.id, "revision": 1, "alg": "sha-256", "hash": media_hash(m),
                   "unit_id": s.case.unit, "author_id": s.author, "original_stored": m not in pending}


def finding_rows(cases: list[CaseSeed], steps: list[StepSeed], sizes: Sizes, rng: random.Random) -> Iterator[dict]:
    per_case = max(1, sizes.findings // len(cases))
    for n in range(len(cases) * per_case):
        c = cases[n % len(cases)]
        rule, severity, article = FINDING_RULES[(n // len(cases) + n) % len(FINDING_RULES)]
        subject = steps[n % len(steps)].id if steps else c.activity
        opened = c.created_at + timedelta(hours=rng.uniform(1, 72))
        resolved = rng.random() < RESOLVED_SHARE
        yield {"id": uuid.uuid4(), "case_id": c.id, "unit_id": c.unit, "record_id": subject, "rule_id": rule,
               "key": f"{rule}:{subject}:{n // len(cases)}", "severity": severity, "article": article,
               "blocks_archiving": rule in BLOCKING,
               "detail": {"step_id": str(subject), "step_type": "on_site_check"},
               "opened_at": opened, "resolved_at": opened + timedelta(days=rng.uniform(0.5, 10)) if resolved else None}


def deadline_rows(cases: list[CaseSeed], now: datetime) -> Iterator[dict]:
    for c in cases:
        for key, rule, due in (("av_upload", "av_upload_24h", timedelta(hours=24)),
                               ("filing", "filing_30_days", timedelta(days=30))):
            met = c.created_at + due < now
            yield {"id": uuid.uuid4(), "case_id": c.id, "unit_id": c.unit, "key": key, "rule_id": rule,
                   "due_at": c.created_at + due, "met_at": c.created_at + due / 2 if met else None, "warnings": []}


def review_rows(cases: list[CaseSeed], rng: random.Random) -> Iterator[dict]:
    for c in cases:
        yield {"record_id": c.activity, "unit_id": c.unit, "author_id": c.activity_author,
               "state": rng.choice(("approved", "approved", "approved", "awaiting", "returned")),
               "decided_fingerprint": None, "updated_at": c.created_at + timedelta(days=1)}


def seeding_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):  # a throwaway database: speed over durability
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
            cursor.close()
    return engine


def seed(app, url: str, sizes: Sizes, seed_value: int) -> tuple[People, dict[str, float]]:
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    times: dict[str, float] = {}
    began = time.perf_counter()
    people = seed_people(app, sizes)
    times["units, users"] = time.perf_counter() - began
    cases = plan_cases(people, sizes, now, rng)
    steps = plan_steps(people, cases, sizes, rng)
    pending = pending_media(sizes, seed_value)
    engine = seeding_engine(url)
    try:
        for name, table, rows in (
            ("devices", Device.__table__, device_rows(people, now, rng)),
            ("cases", Case.__table__, case_rows(cases, now, rng)),
            ("records", SyncedRecord.__table__, record_rows(cases, steps)),
            ("revisions", Revision.__table__, revision_rows(people, cases, steps, sizes, rng)),
            ("media", Media.__table__, media_rows(steps, sizes, pending, rng)),
            ("media_refs", MediaRef.__table__, media_ref_rows(steps, sizes, pending)),
            ("findings", Finding.__table__, finding_rows(cases, steps, sizes, rng)),
            ("case_deadlines", CaseDeadline.__table__, deadline_rows(cases, now)),
            ("record_reviews", RecordReview.__table__, review_rows(cases, rng)),
        ):
            t0 = time.perf_counter()
            count = bulk_insert(engine, table, rows)
            times[f"{name} ({count:,})"] = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            t0 = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            times["VACUUM ANALYZE"] = time.perf_counter() - t0
    finally:
        engine.dispose()
    return people, times


# ---- measuring -----------------------------------------------------------------------------------

@dataclass
class PageFigures:
    samples: list[float]  # wall time per request, sorted
    cpu: list[float]  # this process's CPU time per request, sorted: what the app itself spent
    shown: int


PAGES = {"pending": ("/review/", 'data-testid="pending-row"'),
         "findings": ("/review/findings", 'data-testid="finding"')}
# The statistics page (art. 32) of last month, after statistics-refresh of every seeded month.
STATISTICS_MARKER = 'data-testid="unit-row"'


def measure(client, path: str, marker: str, samples: int) -> PageFigures:
    shown = 0
    for _ in range(WARMUP):
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")
        shown = response.get_data(as_text=True).count(marker)
    times, cpu = [], []
    for _ in range(samples):
        c0, t0 = time.process_time(), time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if response.status_code != 200 or not body:
            raise SystemExit(f"GET {path} answered {response.status_code}")
    return PageFigures(sorted(times), sorted(cpu), shown)


@contextmanager
def statement_log(engine: Engine) -> Iterator[list[tuple[str, object, float]]]:
    """Every statement executed on ``engine`` inside the block, with its parameters and duration."""
    log: list[tuple[str, object, float]] = []
    started: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        log.append((statement, parameters, time.perf_counter() - started.pop()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(app, client, path: str) -> None:
    engine = app.extensions["fieldapp.engine"]
    postgres = engine.dialect.name == "postgresql"
    t0 = time.perf_counter()
    with statement_log(engine) as log:
        client.get(path)
    total = time.perf_counter() - t0
    print(f"  GET {path}: {total * 1000:.1f} ms, {len(log)} statements, "
          f"{sum(d for *_, d in log) * 1000:.1f} ms in the database")
    for statement, parameters, duration in log:
        flat = " ".join(statement.split())
        print(f"    {duration * 1000:8.1f} ms  {flat[:300]}{' …' if len(flat) > 300 else ''}")
        if duration < 0.002 or not flat.upper().startswith("SELECT"):
            continue
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + statement, parameters).all()
        for line in plan:
            print("               | " + (line[0] if postgres else f"{line[1]:>3} {line[3]}"))


def refresh_statistics(app) -> tuple[str, float]:
    """``flask statistics-refresh --all`` over the seeded year; the page of last month to measure."""
    from fieldapp.statistics import compute
    t0 = time.perf_counter()
    with app.app_context():
        months = compute.months_with_records()
        for year, month in months:
            compute.refresh(year, month)
        year, month = compute.previous_month(*compute.month_of(datetime.now(UTC)))
    return f"/supervision/statistics/?year={year}&month={month}", round(time.perf_counter() - t0, 1)


# ---- backends ------------------------------------------------------------------------------------

@contextmanager
def database(backend: str, var_dir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{var_dir / 'fieldapp.sqlite3'}"
        return
    cluster: Cluster = start_cluster()
    try:
        cluster.execute(f"CREATE DATABASE {PG_DBNAME}")
        yield cluster.url(PG_DBNAME)
    finally:
        cluster.stop()


def benchmark(backend: str, args: argparse.Namespace, sizes: Sizes, var_dir: Path) -> dict:
    with database(backend, var_dir) as url:
        t0 = time.perf_counter()
        migrate.upgrade(url)
        migrate_s = time.perf_counter() - t0
        app = make_app(url, var_dir, demo=True, rate_limit_enabled=False)
        try:
            t0 = time.perf_counter()
            people, times = seed(app, url, sizes, args.seed)
            seeded_s = time.perf_counter() - t0
            print(f"review pages, {backend}")
            print(f"  schema           {migrate_s:.1f} s (alembic upgrade head)")
            print(f"  seeding          {seeded_s:.1f} s in all:")
            for name, seconds in times.items():
                print(f"                   {seconds:7.1f} s  {name}")
            client = app.test_client()
            if args.viewer == "lead":
                demo_sign_in(client, people.leads[people.units[0]])
                print("  viewer           the lead of one unit (1/20 of the data)")
            else:
                demo_sign_in(client, people.supervisor)
                print("  viewer           a supervisor (政策法规科), who sees every unit")
            figures: dict[str, float | None] = {}
            stats_path, figures["statistics_refresh_s"] = refresh_statistics(app)
            print(f"  statistics       every seeded month refreshed in {figures['statistics_refresh_s']} s")
            load_before = os.getloadavg()[0]
            for page, (path, marker) in {**PAGES, "statistics": (stats_path, STATISTICS_MARKER)}.items():
                measured = measure(client, path, marker, args.samples)
                p50, p95 = percentile_ms(measured.samples, 50), percentile_ms(measured.samples, 95)
                figures[f"{page}_p95_ms"], figures[f"{page}_p50_ms"] = p95, p50
                verdict = "met" if p95 is not None and p95 <= GOAL_P95_MS else "MISSED"
                print(f"  {page:<16} GET {path}: p50 {p50} ms, p95 {p95} ms, max "
                      f"{percentile_ms(measured.samples, 100)} ms over {len(measured.samples)} requests; "
                      f"{measured.shown} rows shown   goal p95 <= {GOAL_P95_MS:.0f} ms: {verdict}")
                print(f"  {'':<16} app CPU per request p50 {percentile_ms(measured.cpu, 50)} ms, "
                      f"p95 {percentile_ms(measured.cpu, 95)} ms (this process only, not the PostgreSQL server)")
            print(f"  machine load     {load_before:.1f} before, {os.getloadavg()[0]:.1f} after measuring "
                  f"(1-min load average, {os.cpu_count()} cores): other work on the machine inflates wall times")
            if args.explain:
                print("  statements of one request of each page:")
                for path, _ in PAGES.values():
                    explain(app, client, path)
        finally:
            app.extensions["fieldapp.engine"].dispose()
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--samples", type=int, default=50, help="measured requests per page (default 50)")
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--officers-per-unit", type=int, default=15)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--media", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    parser.add_argument("--viewer", choices=("lead", "supervisor"), default="lead",
                        help="who views the pages: the lead of one unit (default) or a supervisor of every unit")
    parser.add_argument("--explain", action="store_true", help="print each page's statements and their plans")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the SQLite database)")
    args = parser.parse_args(argv)
    if min(args.samples, args.units, args.officers_per_unit, args.cases, args.steps) < 1 or args.media < 0:
        parser.error("sizes and --samples must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes(args.units, args.officers_per_unit, args.cases, args.steps, args.media, args.findings)
    apply_env({})  # no inherited FIELDAPP_ setting may point the app elsewhere
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, dict] = {}
    missed = False
    for backend in backends:
        var_dir = Path(tempfile.mkdtemp(prefix=f"fieldapp-bench-review-{backend}-"))
        try:
            figures = benchmark(backend, args, sizes, var_dir)
        except PostgresUnavailable as exc:
            print(f"{backend}: skipped, PostgreSQL is not available: {exc}")
            results[backend] = {"pending_p95_ms": None, "findings_p95_ms": None, "statistics_p95_ms": None,
                                "skipped": str(exc)[:200]}
            missed = True
            continue
        finally:
            if args.keep:
                print(f"  kept             {var_dir}")
            else:
                shutil.rmtree(var_dir, ignore_errors=True)
        results[backend] = figures
        missed = missed or any(figures[f"{page}_p95_ms"] > GOAL_P95_MS for page in (*PAGES, "statistics"))
        print()
    print(json.dumps(results))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
