"""Database engine and the request-scoped session.

SQLite (the embedded default) is tuned for several gunicorn workers writing at once:
WAL so readers never block the writer, a busy timeout so a writer waits instead of failing, and
``BEGIN IMMEDIATE`` for transactions that may write.  A deferred transaction that reads first and
writes later cannot wait for the lock -- SQLite answers "database is locked" at once when its
snapshot is stale -- so write transactions take the lock up front and queue on the busy timeout.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g, has_request_context, request
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15_000
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _wants_write_lock() -> bool:
    # Outside a request (CLI, tests, benchmarks) we cannot know, so assume a write.
    if not has_request_context() or g.get("write_lock"):
        return True
    return request.method not in _SAFE_METHODS


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_pre_ping=False,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from the sqlite3 module so that we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _wants_write_lock() else "BEGIN")


def engine() -> Engine:
    return current_app.extensions["fieldapp.engine"]


def session() -> Session:
    """The session of the current request or CLI command (one per app context)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["fieldapp.sessionmaker"]()
    return g.db_session


@contextmanager
def transaction() -> Iterator[Session]:
    """Commit on success, roll back on any error; the unit of work for one user action."""
    s = session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise


@contextmanager
def write_transaction() -> Iterator[Session]:
    """A transaction that takes SQLite's write lock up front, for the rare GET that must write."""
    s = session()
    if s.in_transaction():
        s.commit()
    g.write_lock = True
    try:
        with transaction() as inner:
            yield inner
    finally:
        g.write_lock = False


def init_app(app) -> None:
    eng = make_engine(app.config["FIELDAPP_SETTINGS"].database_url)
    app.extensions["fieldapp.engine"] = eng
    app.extensions["fieldapp.sessionmaker"] = sessionmaker(bind=eng, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc):
        s = g.pop("db_session", None)
        if s is not None:
            s.close()
