"""Schema creation and upgrade through Alembic, used by `flask init-db` and the tests.

Several hosts may run `init-db` at once during a deploy. Unguarded, both read "no schema yet" (or
the same old revision) and both start migrating; one then fails on a table or an
``alembic_version`` row the other just made. So an upgrade runs under one lock per database that
every host takes first — a session-level advisory lock on PostgreSQL, a file lock beside the
database file on SQLite (the embedded mode runs on one host) — and a host that waited finds the
schema at head and has nothing left to do.

On PostgreSQL each migration gives up on a table lock after ``lock_timeout_s`` (see
migrations/env.py): a DDL statement waiting behind a long transaction would otherwise queue every
reader and writer of that table behind itself. The failed migration is rolled back whole and
`init-db` can be run again.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# The advisory lock every host takes around an upgrade: one fixed 64-bit key ("fieldapp").
SCHEMA_LOCK_KEY = int.from_bytes(b"fieldapp", "big")
# How long a host waits for another host's upgrade before giving up.
SCHEMA_LOCK_WAIT_S = 600
# How long one migration statement waits for a table lock on PostgreSQL.
DEFAULT_LOCK_TIMEOUT_S = 5
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
_LOCK_POLL_S = 0.2

# The databases whose schema lock this process holds now: upgrade() inside schema_lock() must not
# wait for the lock its own caller holds (on PostgreSQL it would, from a second connection).
_held: ContextVar[frozenset[str]] = ContextVar("fieldapp_schema_locks", default=frozenset())


class SchemaLockTimeout(RuntimeError):
    """Another host kept the schema lock longer than we were willing to wait."""


def alembic_config(database_url: str, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["lock_timeout_s"] = lock_timeout_s
    return cfg


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a migration failed because a table lock was not granted within its lock_timeout."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


@contextlib.contextmanager
def schema_lock(database_url: str, wait_s: float = SCHEMA_LOCK_WAIT_S) -> Iterator[None]:
    """Hold the database's schema lock: one host at a time migrates (and seeds) it."""
    if database_url in _held.get():
        yield
        return
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        lock = _advisory_lock(database_url, wait_s)
    elif url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        lock = _file_lock(Path(url.database), wait_s)
    else:  # an in-memory database has one user; other databases are not supported
        lock = contextlib.nullcontext()
    with lock:
        token = _held.set(_held.get() | {database_url})
        try:
            yield
        finally:
            _held.reset(token)


@contextlib.contextmanager
def _advisory_lock(database_url: str, wait_s: float) -> Iterator[None]:
    """A session-level advisory lock, asked for again and again rather than waited for.

    A waiting ``pg_advisory_lock()`` is a running statement with a snapshot, and CREATE INDEX
    CONCURRENTLY in the lock holder's migration waits for every older snapshot in the database:
    the holder would wait for the waiter, which waits for the holder. Each try of
    ``pg_try_advisory_lock()`` ends at once, and in autocommit no transaction stays open between
    tries (nor while the lock is held).
    """
    engine = create_engine(database_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            deadline = time.monotonic() + wait_s
            while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                         {"key": SCHEMA_LOCK_KEY}).scalar():
                if time.monotonic() > deadline:
                    raise SchemaLockTimeout(
                        f"another host has been upgrading the schema for more than {wait_s:.0f} s")
                time.sleep(_LOCK_POLL_S)
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                except Exception:  # noqa: BLE001 — closing the connection releases the lock too
                    log.warning("could not release the schema lock; closing its connection", exc_info=True)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(database: Path, wait_s: float) -> Iterator[None]:
    """flock() on ``<database>.schema-lock``; the file stays (removing it would race a waiter)."""
    lock_path = database.with_name(database.name + ".schema-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SchemaLockTimeout(
                        f"another process has been upgrading the schema for more than {wait_s:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def upgrade(database_url: str, revision: str = "head", *,
            lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
    with schema_lock(database_url):
        command.upgrade(alembic_config(database_url, lock_timeout_s), revision)


def revision(database_url: str, message: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
