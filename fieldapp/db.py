"""Database engine and the request-scoped session.

SQLite (the embedded default) is tuned for several gunicorn workers writing at once:
WAL so readers never block the writer, a busy timeout so a writer waits instead of failing, and
``BEGIN IMMEDIATE`` for transactions that may write.  A deferred transaction that reads first and
writes later cannot wait for the lock -- SQLite answers "database is locked" at once when its
snapshot is stale -- so write transactions take the lock up front and queue on the busy timeout.

Which transactions may write is decided by construction, not by memory (decision record 008):
requests with an unsafe method, CLI commands and ``write_transaction()`` begin IMMEDIATE; a
GET's transactions begin deferred, and a guard on the engine refuses any write statement in
them. In production the refused request is run again once, whole, with the write lock from its
first statement (a GET has no body to replay, and nothing was written); under
``sqlite_strict_writes`` (the test suite) the refusal is an error, so every GET that writes
without ``write_transaction()`` fails its test at once, however the timing falls.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import current_app, g, has_request_context, request
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

SQLITE_BUSY_TIMEOUT_MS = 15_000
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"})


class WriteWithoutLock(RuntimeError):
    """A write statement in a SQLite transaction that did not take the write lock when it began."""


_reading_only: ContextVar[bool] = ContextVar("fieldapp_reading_only", default=False)


def _wants_write_lock() -> bool:
    if _reading_only.get():
        return False
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
    # A database host that does not answer must fail a request (and /readyz) in seconds, not hang it.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                         connect_args={"connect_timeout": 5})


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
        locked = _wants_write_lock()
        connection.info["write_locked"] = locked
        connection.exec_driver_sql("BEGIN IMMEDIATE" if locked else "BEGIN")

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_unlocked_writes(connection, _cursor, statement, _params, _context, _executemany):
        if connection.info.get("write_locked", True) or not connection.in_transaction():
            return
        if _verb(statement) in _WRITE_VERBS:
            raise WriteWithoutLock(f"{_verb(statement)} in a transaction begun without the write lock "
                                   f"({_where()}): wrap the write in db.write_transaction()")


def _verb(statement: str) -> str:
    head = statement.lstrip()[:10]
    return head.split(None, 1)[0].upper() if head else ""


def _where() -> str:
    return f"{request.method} {request.path}" if has_request_context() else "outside a request"


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
    before = g.get("write_lock", False)  # a request run again with the lock keeps it afterwards
    g.write_lock = True
    try:
        with transaction() as inner:
            yield inner
        g.wrote_under_lock = True
    finally:
        g.write_lock = before


@contextmanager
def reading() -> Iterator[Session]:
    """A transaction that only reads, outside a request too (a long read by a background job): on
    SQLite it begins deferred, so writers do not queue behind it, and a write in it is refused."""
    s = session()
    if s.in_transaction():
        s.commit()
    token = _reading_only.set(True)
    try:
        with transaction() as inner:
            yield inner
    finally:
        _reading_only.reset(token)


@contextmanager
def writing() -> Iterator[Session]:
    """For a write that may happen on a read path or inside a writing transaction (publishing the
    built-in catalogue on first use, say): in a GET's read transaction it runs in a write
    transaction of its own, committed at the end; anywhere else it joins the transaction in
    progress, which already holds the write lock, and the caller commits as usual."""
    if has_request_context() and request.method in _SAFE_METHODS and not g.get("write_lock"):
        with write_transaction() as s:
            yield s
    else:
        yield session()


def _run_again_with_the_write_lock(exc: WriteWithoutLock):
    """Production's answer to a GET that wrote without ``write_transaction()``: roll back and run
    the view once more, with every transaction of the request taking the write lock. Only when
    nothing was committed before the refused write (the guard fires before the first unlocked
    write, but a ``write_transaction()`` earlier in the view may have committed): running such a
    view again would commit its earlier writes twice, so it fails instead, as in strict mode."""
    if (current_app.config["FIELDAPP_SETTINGS"].sqlite_strict_writes or g.get("write_lock_retried")
            or g.get("wrote_under_lock")):
        raise exc
    current_app.logger.warning("%s; ran the request again with the write lock", exc)
    session().rollback()
    g.write_lock_retried = True
    g.write_lock = True
    view = current_app.ensure_sync(current_app.view_functions[request.endpoint])
    try:
        return view(**(request.view_args or {}))
    except HTTPException as refusal:  # abort(404) in the second run: answered as in the first
        return current_app.handle_http_exception(refusal)


def init_app(app) -> None:
    eng = make_engine(app.config["FIELDAPP_SETTINGS"].database_url)
    app.extensions["fieldapp.engine"] = eng
    app.extensions["fieldapp.sessionmaker"] = sessionmaker(bind=eng, expire_on_commit=False)
    app.register_error_handler(WriteWithoutLock, _run_again_with_the_write_lock)

    @app.teardown_appcontext
    def _close_session(_exc):
        s = g.pop("db_session", None)
        if s is not None:
            s.close()
