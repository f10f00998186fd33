"""Benchmark: what the audit chain costs — verifying a million events, and CPU per pushed batch.

What it measures
    verify_s        A fresh SQLite database (migrated to head) is filled with N audit events
                    (default 1,000,000) of realistic shape: ~90 % row changes of covered tables
                    (row_key ``["<uuid>"]``, a SHA-256 row hash, inserts/updates/writes/a few
                    deletes), ~10 % accesses (preview / original / export, with a small ``detail``),
                    grouped as transactions that share an actor and a time. They are inserted with
                    Core executemany, sealed with the real sealer and checkpointed with a real
                    Ed25519 key every ``--checkpoint-every`` events (default 100,000). None of that
                    is timed. Then, on a fresh engine and session, only
                    ``verification.check_chain`` + ``verification.check_checkpoints`` are timed; the
                    report must have no fault and count every event as sealed. Goal: < 60 s.
                    The database file is in the OS page cache by then (it was just written): this is
                    the warm-cache figure.
    push_cpu_ratio  ``bench/concurrent_devices.py`` on SQLite, imported and run twice in-process
                    (it starts gunicorn itself), with the server's FIELDAPP_AUDIT_EVENTS=0 and =1,
                    FIELDAPP_AUDIT_SEAL_SECONDS=2 in both (the sealer ticks in every worker, as in
                    production). Its ``server_cpu_per_batch_ms`` (gunicorn workers' CPU per answered
                    batch) with events over without. ``--push-rounds`` alternates the two runs that
                    many times (without, with, without, with, ...) and takes each side's median.

How to run (from the repo root)
    .venv/bin/python bench/audit_verify.py [--events 1000000] [--checkpoint-every 100000]
        [--skip-push] [--skip-verify] [--profile] [--devices 30] [--batches 10] [--push-rounds 2]

The last line is one JSON object: verify_s, push_cpu_ratio and the figures behind them.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from fieldapp import db, migrate  # noqa: E402
from fieldapp.models import AuditCheckpoint, AuditEvent  # noqa: E402
from fieldapp.records import checkpoints, sealer, verification  # noqa: E402
from fieldapp.records.coverage import COVERED  # noqa: E402
from tests.support.appfactory import make_app  # noqa: E402

GOAL_VERIFY_S = 60.0
INSERT_CHUNK = 50_000
ACCESS_SHARE = 0.10


def say(message: str) -> None:
    print(message, flush=True)


# ---- part 1: a million events, sealed and checkpointed, then verified ------------------------

class EventMaker:
    """Audit events as the capture hooks write them: one actor and one time per transaction,
    1-8 events each, mostly row changes of covered tables, some accesses."""

    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self.users = [f"user:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}" for _ in range(200)]
        self.stations = [f"station:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}" for _ in range(20)]
        self.tables = sorted(COVERED)
        # the tables a busy server writes most
        self.hot = ["records", "revisions", "media", "media_refs", "devices", "user_sessions", "cases",
                    "footage_segments", "footage_links", "record_reviews"]
        self.keys: list[str] = []  # rows already written, to update or delete later
        self.at = datetime(2026, 3, 1, tzinfo=UTC)

    def _uuid_key(self) -> str:
        return f'["{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"]'

    def _digest(self) -> str:
        return hashlib.sha256(self.rng.getrandbits(256).to_bytes(32, "big")).hexdigest()

    def transaction(self) -> list[dict]:
        r = self.rng
        self.at += timedelta(microseconds=r.randint(1_000, 900_000))
        actor = r.choice(self.stations) if r.random() < 0.1 else r.choice(self.users)
        out = []
        for _ in range(r.randint(1, 8)):
            if r.random() < ACCESS_SHARE:
                kind = r.choice(("preview", "original", "export"))
                what = f"media:sha-256:{self._digest()}" if kind != "export" else f"case:{self._uuid_key()[2:-2]}"
                detail = {"via": r.choice(("review", "footage", "admin")), "from": f"10.0.{r.randint(0, 9)}.{r.randint(1, 254)}"}
                if kind == "export":
                    detail["reason"] = "复议 / reconsideration"
                out.append({"at": self.at, "actor": actor, "action": kind, "tbl": "", "row_key": what,
                            "row_hash": None, "detail": detail})
                continue
            tbl = r.choice(self.hot) if r.random() < 0.8 else r.choice(self.tables)
            roll = r.random()
            if self.keys and roll < 0.25:
                key, action = r.choice(self.keys), "update"
            elif self.keys and roll < 0.27:
                key, action = r.choice(self.keys), "delete"
            else:
                key, action = self._uuid_key(), ("write" if roll > 0.9 else "insert")
                if len(self.keys) < 50_000:
                    self.keys.append(key)
                else:
                    self.keys[r.randrange(len(self.keys))] = key
            out.append({"at": self.at, "actor": actor, "action": action, "tbl": tbl, "row_key": key,
                        "row_hash": None if action == "delete" else self._digest(), "detail": None})
        return out

    def events(self, n: int) -> list[dict]:
        rows: list[dict] = []
        while len(rows) < n:
            rows.extend(self.transaction())
        del rows[n:]
        return rows


def build_chain(app, events: int, every: int, private: Ed25519PrivateKey) -> dict:
    """Insert ``events`` events (counting any baseline events the migration made), sealing and
    signing a checkpoint every ``every`` events. Returns setup figures."""
    table = AuditEvent.__table__
    maker = EventMaker()
    figures = {"insert_s": 0.0, "seal_s": 0.0, "checkpoints": 0}
    with app.app_context():
        s = db.session()
        existing = s.execute(select(func.count()).select_from(table)).scalar_one()
        s.commit()
        total = existing
        if existing:
            say(f"  the migration left {existing} baseline events; adding {events - existing}")
        while total < events:
            step = min(every, events - total)
            began = time.perf_counter()
            done = 0
            while done < step:
                n = min(INSERT_CHUNK, step - done)
                s.execute(insert(table), maker.events(n))
                done += n
            s.commit()
            total += step
            inserted = time.perf_counter() - began
            began = time.perf_counter()
            sealed = sealer.seal_all(s)
            sealing = time.perf_counter() - began
            checkpoints.make(s, private, "daily")
            s.commit()
            figures["insert_s"] += inserted
            figures["seal_s"] += sealing
            figures["checkpoints"] += 1
            say(f"  {total:>9,} events: inserted {step:,} in {inserted:.1f} s, sealed {sealed:,} in {sealing:.1f} s "
                f"({sealed / max(sealing, 1e-9):,.0f}/s), checkpoint {figures['checkpoints']}")
        figures["unsealed"] = sealer.unsealed_count(s)
        s.commit()
    app.extensions["fieldapp.engine"].dispose()
    return figures


def timed_verification(app, private: Ed25519PrivateKey, profile: bool) -> tuple[dict, verification.Report, str]:
    """check_chain + check_checkpoints on a fresh session: the only part timed."""
    trusted = private.public_key()
    report = verification.Report()
    profiler = cProfile.Profile() if profile else None
    with app.app_context():
        s = db.session()
        if profiler:
            profiler.enable()
        began = time.perf_counter()
        reached = verification.check_chain(s, report)
        chain_s = time.perf_counter() - began
        verification.check_checkpoints(s, report, reached, trusted)
        total_s = time.perf_counter() - began
        if profiler:
            profiler.disable()
        s.rollback()
    app.extensions["fieldapp.engine"].dispose()
    listing = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
        stats.print_stats(25)
        listing = out.getvalue()
    return {"verify_s": round(total_s, 2), "chain_s": round(chain_s, 2),
            "checkpoints_s": round(total_s - chain_s, 3)}, report, listing


def verify_part(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="fieldapp-bench-audit-"))
    try:
        path = work / "audit.sqlite3"
        url = f"sqlite:///{path}"
        say(f"verify: {args.events:,} events in {path}, a checkpoint every {args.checkpoint_every:,}")
        migrate.upgrade(url)
        # audit_events off: the setup writes the chain tables directly, and nothing else
        app = make_app(url, work / "var", audit_events=False, audit_seal_seconds=0)
        private = Ed25519PrivateKey.generate()
        began = time.perf_counter()
        setup = build_chain(app, args.events, args.checkpoint_every, private)
        setup_s = time.perf_counter() - began
        size_mb = path.stat().st_size / 1024 / 1024
        say(f"  setup {setup_s:.1f} s (insert {setup['insert_s']:.1f} s, seal {setup['seal_s']:.1f} s); "
            f"database {size_mb:.0f} MB")
        app = make_app(url, work / "var", audit_events=False, audit_seal_seconds=0)  # a fresh engine
        timing, report, listing = timed_verification(app, private, args.profile)
        with app.app_context():
            stored = db.session().execute(select(func.count()).select_from(AuditEvent)).scalar_one()
            signed = db.session().execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one()
        app.extensions["fieldapp.engine"].dispose()
        assert report.ok, f"verification found faults: {report.faults[:5]}"
        assert report.sealed == args.events == stored, (report.sealed, args.events, stored)
        assert report.pending == 0, report.pending
        assert report.checkpoints == signed == setup["checkpoints"], (report.checkpoints, signed)
        rate = report.sealed / max(timing["verify_s"], 1e-9)
        goal = "met" if timing["verify_s"] < GOAL_VERIFY_S else "MISSED"
        say(f"  verified {report.sealed:,} sealed events and {report.checkpoints} checkpoints in "
            f"{timing['verify_s']:.2f} s ({rate:,.0f} events/s; chain {timing['chain_s']:.2f} s, "
            f"checkpoints {timing['checkpoints_s']:.3f} s), no faults   goal < {GOAL_VERIFY_S:.0f} s: {goal}")
        if listing:
            say("  profile of the verification (cProfile slows it; the timing above is with the profiler on):")
            say(listing)
        return {"events": report.sealed, "checkpoints": report.checkpoints, **timing,
                "verify_events_per_s": round(rate), "seal_s": round(setup["seal_s"], 1),
                "insert_s": round(setup["insert_s"], 1), "db_mb": round(size_mb), "verify_profiled": args.profile}
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- part 2: server CPU per pushed batch, audit events off and on ----------------------------

def push_once(cd, args, audit_events: bool) -> dict:
    """One SQLite run of bench/concurrent_devices.py with extra server settings."""
    extra = {"FIELDAPP_AUDIT_EVENTS": "1" if audit_events else "0", "FIELDAPP_AUDIT_SEAL_SECONDS": str(args.seal_seconds)}
    original = cd.fieldapp_env

    def with_audit_settings(var_dir, port, database_url):
        return {**original(var_dir, port, database_url), **extra}

    push_args = cd.parse_args(["--backend", "sqlite", "--devices", str(args.devices), "--batches", str(args.batches)])
    var_dir = Path(tempfile.mkdtemp(prefix="fieldapp-bench-audit-push-"))
    saved_env = dict(os.environ)
    cd.fieldapp_env = with_audit_settings  # benchmark() looks it up in its module at call time
    try:
        summary = cd.benchmark("sqlite", push_args, var_dir, var_dir / "gunicorn.log")
    finally:
        cd.fieldapp_env = original
        os.environ.clear()
        os.environ.update(saved_env)
    figures = summary.figures
    if summary.failed:
        summary.print()
        raise SystemExit(f"the push run with FIELDAPP_AUDIT_EVENTS={extra['FIELDAPP_AUDIT_EVENTS']} failed; "
                         f"kept {var_dir}")
    shutil.rmtree(var_dir, ignore_errors=True)
    say(f"  audit events {'on ' if audit_events else 'off'}: {figures['batches_per_s']} batches/s, "
        f"p50 {figures['p50_ms']} ms, server cpu/batch {figures['server_cpu_per_batch_ms']} ms")
    return figures


def push_part(args) -> dict:
    import concurrent_devices as cd

    say(f"push: bench/concurrent_devices.py on SQLite, {args.devices} devices x {args.batches} batches x 20 items, "
        f"{args.push_rounds} round(s) of events off / on (ABBA), FIELDAPP_AUDIT_SEAL_SECONDS={args.seal_seconds}")
    without, with_ = [], []
    for round_no in range(args.push_rounds):
        # ABBA order: runs drift with the machine (page cache, disk), so neither setting always goes first.
        for audit_events in ((False, True) if round_no % 2 == 0 else (True, False)):
            (with_ if audit_events else without).append(push_once(cd, args, audit_events)["server_cpu_per_batch_ms"])
    cpu_without, cpu_with = round(statistics.median(without), 1), round(statistics.median(with_), 1)
    ratio = cpu_with / cpu_without
    say(f"  server cpu/batch: {cpu_with} ms with events, {cpu_without} ms without: ratio {ratio:.2f}")
    return {"push_cpu_ratio": round(ratio, 2), "cpu_ms_with": cpu_with, "cpu_ms_without": cpu_without,
            "cpu_ms_with_runs": with_, "cpu_ms_without_runs": without,
            "push_devices": args.devices, "push_batches": args.batches}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events to verify (default 1,000,000)")
    parser.add_argument("--checkpoint-every", type=int, default=100_000, help="events per checkpoint (default 100,000)")
    parser.add_argument("--profile", action="store_true", help="profile the verification (cProfile) and print the top")
    parser.add_argument("--skip-verify", action="store_true", help="only the push measurement")
    parser.add_argument("--skip-push", action="store_true", help="only the verification measurement")
    parser.add_argument("--devices", type=int, default=30, help="push: concurrent devices (default 30)")
    parser.add_argument("--batches", type=int, default=10, help="push: batches per device (default 10)")
    parser.add_argument("--push-rounds", type=int, default=4,
                        help="push: runs of events off and on each, in ABBA order, median of each (default 4)")
    parser.add_argument("--seal-seconds", type=float, default=2,
                        help="push: the server's FIELDAPP_AUDIT_SEAL_SECONDS (default 2, as in production)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.checkpoint_every < 1 or args.push_rounds < 1:
        parser.error("--events, --checkpoint-every and --push-rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    out: dict = {"verify_s": None, "push_cpu_ratio": None}
    if not args.skip_verify:
        out.update(verify_part(args))
    if not args.skip_push:
        out.update(push_part(args))
    out["run_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
