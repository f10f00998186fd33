"""Capturing events in one place: session hooks, not call sites.

- After each flush, the rows the unit of work inserted, updated or deleted in a covered table are
  noted (``after_flush``: the session still knows what it flushed).
- Statements that write a covered table without the unit of work (``insert(...).on_conflict_…``,
  executemany inserts, bulk updates and deletes) are noted as they execute (``do_orm_execute``).
- Accesses (a preview viewed, an original opened, an export) are noted with ``accessed()``.
- Just before the transaction commits, every noted row is read back through its mapped table and
  one event per row is inserted — its content hash taken from what the database now holds, by the
  same code ``verify`` uses — together with the accesses, in the same transaction.

Who acted is the signed-in user, the camera station, the CLI command or a system reaction.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from flask import g, has_app_context, has_request_context
from sqlalchemy import event, insert, inspect, select, tuple_
from sqlalchemy.orm import Session

from ..models import AuditEvent, Base, utcnow
from .coverage import COVERED
from .rowhash import content_columns, row_digest, row_key

_TOUCHED = "audit_touched"   # session.info: {(table, key values): first operation this transaction}
_ACCESSES = "audit_accesses"  # session.info: [event dicts]
_BY_UNIQUE = "audit_by_unique"  # session.info: {(table, unique columns): {values}} for autoincrement keys
_READ_BACK_BATCH = 400

_system_actor: ContextVar[str | None] = ContextVar("fieldapp_audit_actor", default=None)


class UnauditedWrite(RuntimeError):
    """A statement wrote a covered table outside the unit of work without naming the rows it touched."""


def install(factory, enabled: bool = True) -> None:
    """Attach the hooks to the app's session factory. ``enabled=False`` exists only to measure
    what the events cost (bench/audit_verify.py); ``verify`` then reports the unrecorded rows."""
    if not enabled:
        return
    event.listen(factory, "do_orm_execute", _note_bulk_writes)
    event.listen(factory, "after_flush", _note_flushed_rows)
    event.listen(factory, "before_commit", _write_events)
    event.listen(factory, "after_soft_rollback", _forget)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute what happens inside to ``actor`` (a system reaction, a scheduled job) rather than
    to the user whose request set it off."""
    token = _system_actor.set(actor)
    try:
        yield
    finally:
        _system_actor.reset(token)


def touched(s: Session, model, keys: Iterable[tuple], operation: str = "write") -> None:
    """Note rows a bulk statement wrote (keys in the table's primary-key column order)."""
    table = model.__table__ if hasattr(model, "__table__") else model
    noted = s.info.setdefault(_TOUCHED, {})
    for key in keys:
        noted.setdefault((table.name, tuple(key)), operation)


def accessed(s: Session, action: str, what: str, **detail) -> None:
    """Note an access (``action`` e.g. "preview", "original", "export"; ``what`` the thing seen)."""
    s.info.setdefault(_ACCESSES, []).append(
        {"action": action, "tbl": "", "row_key": what[:200], "row_hash": None, "detail": detail or None})


def _note_bulk_writes(state) -> None:
    """Statements that bypass the unit of work (``insert(...).on_conflict_…``, executemany inserts,
    bulk updates and deletes) name their rows here: an insert by the key values it carries, an
    update or delete by selecting the keys its WHERE clause matches just before it runs."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is None or table.name not in COVERED:
        return
    s = state.session
    pk = list(table.primary_key.columns)
    if state.is_insert:
        params = state.parameters or state.statement.compile(dialect=s.get_bind().dialect).params
        rows = params if isinstance(params, (list, tuple)) else [params]
        key = _identifying_columns(table, rows[0] if rows else {})
        if key is None:
            raise UnauditedWrite(f"an insert into {table.name} carries neither its primary key nor a unique key, so "
                                 "its rows cannot be found for the audit chain; add the row through the session")
        values = [tuple(row[c] for c in key) for row in rows]
        if key == tuple(c.name for c in pk):
            touched(s, table, values, "write")
        else:  # an autoincrement key: found by the unique key once the rows exist (at commit)
            s.info.setdefault(_BY_UNIQUE, {}).setdefault((table.name, key), set()).update(values)
        return
    where = state.statement.whereclause
    keys = s.execute(select(*pk).where(where) if where is not None else select(*pk)).all()
    touched(s, table, keys, "write")


def _identifying_columns(table, row) -> tuple[str, ...] | None:
    """The primary key's columns if the row carries them, else those of a unique constraint it does."""
    candidates = [tuple(c.name for c in table.primary_key.columns)]
    candidates += [tuple(c.name for c in u.columns) for u in table.constraints
                   if u.__class__.__name__ == "UniqueConstraint"]
    for columns in candidates:
        if all(c in row for c in columns):
            return columns
    return None


def _resolve_unique_keys(s: Session) -> None:
    for (table_name, columns), values in (s.info.pop(_BY_UNIQUE, None) or {}).items():
        table = Base.metadata.tables[table_name]
        pk = list(table.primary_key.columns)
        wanted = list(values)
        for start in range(0, len(wanted), _READ_BACK_BATCH):
            batch = wanted[start:start + _READ_BACK_BATCH]
            found = s.execute(select(*pk).where(tuple_(*(table.c[c] for c in columns)).in_(batch))).all()
            touched(s, table, found, "insert")


def _note_flushed_rows(s: Session, _flush_context) -> None:
    noted = s.info.setdefault(_TOUCHED, {})
    for operation, objects in (("insert", s.new), ("update", s.dirty), ("delete", s.deleted)):
        for obj in objects:
            state = inspect(obj)
            table = state.mapper.local_table
            if table.name not in COVERED:
                continue
            if operation == "update" and not s.is_modified(obj, include_collections=False):
                continue
            key = tuple(state.mapper.primary_key_from_instance(obj))
            noted.setdefault((table.name, key), operation)


def _forget(s: Session, previous_transaction) -> None:
    # A rolled-back savepoint keeps what the transaction around it noted: rows it inserted are
    # simply not found at commit, and rows it changed are read back as they now stand.
    if previous_transaction.parent is not None:
        return
    for name in (_TOUCHED, _ACCESSES, _BY_UNIQUE):
        s.info.pop(name, None)


def _write_events(s: Session) -> None:
    s.flush()  # so that what this commit writes is all noted
    _resolve_unique_keys(s)
    noted = s.info.pop(_TOUCHED, None) or {}
    accesses = s.info.pop(_ACCESSES, None) or []
    if not noted and not accesses:
        return
    actor, now = current_actor(), utcnow()
    rows = [dict(r, actor=actor, at=now) for r in accesses]
    by_table: dict[str, dict[tuple, str]] = {}
    for (table_name, key), operation in noted.items():
        by_table.setdefault(table_name, {})[key] = operation
    for table_name in sorted(by_table):
        rows.extend(_row_events(s, table_name, by_table[table_name], actor, now))
    if rows:
        s.execute(insert(AuditEvent.__table__), rows)


def _row_events(s: Session, table_name: str, operations: dict[tuple, str], actor: str, now) -> list[dict]:
    table = Base.metadata.tables[table_name]
    pk = list(table.primary_key.columns)
    found = dict(_read_back(s, table, pk, list(operations)))
    events = []
    for key, operation in operations.items():
        content = found.get(key)
        if content is None:
            if operation == "insert":
                continue  # made and undone within this transaction (a rolled-back savepoint)
            events.append({"action": "delete", "tbl": table_name, "row_key": row_key(key), "row_hash": None,
                           "detail": None, "actor": actor, "at": now})
        else:
            action = operation if operation in ("insert", "write") else "update"
            events.append({"action": action, "tbl": table_name, "row_key": row_key(key),
                           "row_hash": row_digest(content), "detail": None, "actor": actor, "at": now})
    return events


def _read_back(s: Session, table, pk, keys: list[tuple]):
    """(typed key, raw content) of each row that exists, as ``verify`` reads it."""
    content = content_columns(table, s.get_bind().dialect.name)
    width = len(pk)
    for start in range(0, len(keys), _READ_BACK_BATCH):
        batch = keys[start:start + _READ_BACK_BATCH]
        where = pk[0].in_([k[0] for k in batch]) if width == 1 else tuple_(*pk).in_(batch)
        for row in s.execute(select(*pk, *content).where(where)):
            yield tuple(row[:width]), dict(zip(row._fields[width:], row[width:]))


def current_actor() -> str:
    system = _system_actor.get()
    if system:
        return system
    if has_request_context():
        station = g.get("station")
        if station is not None:
            return f"station:{station.id}"
        from flask_login import current_user
        if getattr(current_user, "is_authenticated", False):
            return f"user:{current_user.id}"
        return "anonymous"
    if has_app_context():
        import click
        ctx = click.get_current_context(silent=True)
        if ctx is not None and ctx.info_name:
            return f"cli:{ctx.info_name}"
    return "system"

