"""Capturing events in one place: session hooks, not call sites.

- After each flush, the rows the unit of work inserted, updated or deleted in a covered table are
  noted (``after_flush``: the session still knows what it flushed).
- Statements that write a covered table without the unit of work (``insert(...).on_conflict_…``,
  executemany inserts, bulk updates and deletes) are noted as they execute (an engine event).
- Accesses (a preview viewed, an original opened, an export) are noted with ``accessed()``.
- Just before the transaction commits, every noted row is read back and one event per table is
  inserted, listing each row with its content hash taken from what the database now holds (by the
  same code ``verify`` uses), together with the accesses, in the same transaction.

Who acted is the signed-in user, the camera station, the CLI command or a system reaction.
"""
from __future__ import annotations

import contextlib
import functools
import operator
import weakref
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from flask import g, has_app_context, has_request_context
from sqlalchemy import bindparam, event, insert, select, tuple_
from sqlalchemy.orm import object_session
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.orm import Session

from ..models import AuditEvent, Base, utcnow
from .coverage import COVERED
from .rowhash import content_columns, plain_key, row_digest

_TOUCHED = "audit_touched"   # session.info: {(table, key values): first operation this transaction}
_ACCESSES = "audit_accesses"  # session.info: [event dicts]
_OWNER = "fieldapp_audit_session"  # connection.info: a weak reference to the session using it
_CONNECTIONS = "audit_connections"  # session.info: the info dicts of the connections it marked
_ENABLED = "fieldapp_audit"  # session.info: this session's app records events
_BY_UNIQUE = "audit_by_unique"  # session.info: {(table, unique columns): {values}} for autoincrement keys
_READ_BACK_BATCH = 400
_INSERT_EVENTS = insert(AuditEvent.__table__)
# One event per table a transaction changed, listing each row it changed with the row's new content
# hash: the unit a reader thinks in ("this review changed these rows"), and a tenth of the events
# (and of the sealing) one per row would make.
CHANGE = "change"

_system_actor: ContextVar[str | None] = ContextVar("fieldapp_audit_actor", default=None)


class UnauditedWrite(RuntimeError):
    """A statement wrote a covered table outside the unit of work without naming the rows it touched."""


def install(factory, enabled: bool = True) -> None:
    """Attach the hooks to the app's session factory. ``enabled=False`` exists only to measure
    what the events cost (bench/audit_verify.py); ``verify`` then reports the unrecorded rows."""
    if not enabled:
        return
    factory.kw["info"] = {**factory.kw.get("info", {}), _ENABLED: True}  # for the mapper events above
    event.listen(factory.kw["bind"], "before_execute", _note_bulk_writes, retval=True)
    event.listen(factory, "after_begin", _own_connection)
    event.listen(factory, "after_transaction_end", _release_connections)
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


def _own_connection(s: Session, _transaction, connection) -> None:
    # The engine-level hook below sees only the connection; this tells it whose transaction it is.
    info = connection.info  # the pooled connection's own dictionary: it outlives this Connection
    info[_OWNER] = weakref.ref(s)
    s.info.setdefault(_CONNECTIONS, []).append(info)


def _release_connections(s: Session, transaction) -> None:
    # A pooled connection outlives the transaction: whoever uses it next is not this session.
    if transaction.parent is None:
        for info in s.info.pop(_CONNECTIONS, []):
            info.pop(_OWNER, None)


def _note_bulk_writes(connection, statement, multiparams, params, execution_options):
    """Statements that bypass the unit of work (``insert(...).on_conflict_…``, executemany inserts,
    bulk updates and deletes) name their rows here: an insert by the key values it carries, an
    update or delete by its ``WHERE id = …``, or else by selecting the keys its WHERE clause matches
    and confining the statement to them (so a row committed in between by another transaction is
    neither changed unnoted nor missed). An engine event rather than the session's
    ``do_orm_execute``, which would cost every statement of every request an extra object."""
    unchanged = statement, multiparams, params
    if not isinstance(statement, UpdateBase):
        return unchanged
    table = getattr(statement, "table", None)
    if table is None or table.name not in COVERED:
        return unchanged
    owner = connection.info.get(_OWNER)
    s = owner() if owner is not None else None
    # Not a session's transaction (a migration), or the unit of work's own statement, whose rows
    # the mapper events note (the session's flag; a flush with nothing to write has no end event).
    if s is None or s._flushing:
        return unchanged
    pk = list(table.primary_key.columns)
    if statement.is_insert:
        rows = list(multiparams) if multiparams else [params] if params else []  # executemany: many dicts
        if not rows:
            rows = [statement.compile(dialect=connection.dialect).params]
        key = _identifying_columns(table, rows[0])
        if key is None:
            raise UnauditedWrite(f"an insert into {table.name} carries neither its primary key nor a unique key, so "
                                 "its rows cannot be found for the audit chain; add the row through the session")
        values = [tuple(row[c] for c in key) for row in rows]
        if key == tuple(c.name for c in pk):
            touched(s, table, values, "write")
        else:  # an autoincrement key: found by the unique key once the rows exist (at commit)
            s.info.setdefault(_BY_UNIQUE, {}).setdefault((table.name, key), set()).update(values)
        return unchanged
    operation = "delete" if statement.is_delete else "update"
    where = statement.whereclause
    single = _single_key(where, pk)
    if single is not None:  # "WHERE id = :value", the common case: no need to ask the database
        touched(s, table, [single], operation)
        return unchanged
    keys = connection.execute(select(*pk).where(where) if where is not None else select(*pk)).all()
    touched(s, table, keys, operation)
    target = pk[0] if len(pk) == 1 else tuple_(*pk)
    confined = statement.where(target.in_([k[0] for k in keys] if len(pk) == 1 else keys))
    return confined, multiparams, params


def _single_key(where, pk) -> tuple | None:
    """The key value of ``pk_column == literal`` for a one-column key, else None."""
    if len(pk) != 1 or where is None or getattr(where, "operator", None) is not operator.eq:
        return None
    left, right = where.left, where.right
    if left is pk[0] and getattr(right, "value", None) is not None and not getattr(right, "expanding", False):
        return (right.value,)
    return None


def _identifying_columns(table, row) -> tuple[str, ...] | None:
    """The primary key's columns if the row carries them, else those of a unique constraint it does."""
    candidates = [tuple(c.name for c in table.primary_key.columns)]
    candidates += [tuple(c.name for c in u.columns) for u in table.constraints
                   if u.__class__.__name__ == "UniqueConstraint"]
    for columns in candidates:
        # A key left to a Python-side default is None here: the row could not be found by it.
        if all(row.get(c) is not None for c in columns):
            return columns
    return None


def _note_flushed_row(operation: str):
    """A mapper event for every row the unit of work writes — including orphans it deletes, which
    never appear in ``session.deleted``."""
    def note(mapper, _connection, target) -> None:
        table = mapper.local_table
        if table.name not in COVERED:
            return
        s = object_session(target)
        if s is None or not s.info.get(_ENABLED):
            return
        key = tuple(mapper.primary_key_from_instance(target))
        s.info.setdefault(_TOUCHED, {}).setdefault((table.name, key), operation)
    return note


for _operation, _event_name in (("insert", "after_insert"), ("update", "after_update"), ("delete", "after_delete")):
    event.listen(Base, _event_name, _note_flushed_row(_operation), propagate=True)


def _forget(s: Session, previous_transaction) -> None:
    # A rolled-back savepoint keeps what the transaction around it noted: rows it inserted are
    # simply not found at commit, and rows it changed are read back as they now stand.
    if previous_transaction.parent is not None:
        return
    for name in (_TOUCHED, _ACCESSES, _BY_UNIQUE):
        s.info.pop(name, None)


def _write_events(s: Session) -> None:
    if s.in_nested_transaction():
        return  # a savepoint's commit: its rows are written with the transaction's, at its end
    s.flush()  # so that what this commit writes is all noted
    noted = s.info.pop(_TOUCHED, None) or {}
    by_unique = s.info.pop(_BY_UNIQUE, None) or {}
    accesses = s.info.pop(_ACCESSES, None) or []
    if not noted and not by_unique and not accesses:
        return
    actor, now = current_actor(), utcnow()
    events = [dict(r, actor=actor, at=now) for r in accesses]
    by_table: dict[str, dict[tuple, str]] = {}
    for (table_name, key), operation in noted.items():
        by_table.setdefault(table_name, {})[key] = operation
    changed: dict[str, list[list]] = {}
    for (table_name, columns), values in sorted(by_unique.items()):
        # Rows with an autoincrement key, inserted by a statement that knew only their unique key.
        table = Base.metadata.tables[table_name]
        also_noted = by_table.get(table_name, {})
        for key, content in _read_back(s, table, [table.c[c] for c in columns], list(values)):
            if key not in also_noted:
                changed.setdefault(table_name, []).append(_row(key, content, "insert"))
    for table_name in sorted(by_table):
        changed.setdefault(table_name, []).extend(_rows(s, table_name, by_table[table_name]))
    for table_name, rows in changed.items():
        if rows:
            events.append({"action": CHANGE, "tbl": table_name, "row_key": str(len(rows)), "row_hash": None,
                           "detail": {"rows": rows}, "actor": actor, "at": now})
    if events:
        s.connection().execute(_INSERT_EVENTS, events)


def _row(key: tuple, content: dict | None, action: str) -> list:
    """[primary key values, content hash (None: deleted), insert | write | update | delete]."""
    return [plain_key(key), None if content is None else row_digest(content), action]


def _rows(s: Session, table_name: str, operations: dict[tuple, str]) -> list[list]:
    table = Base.metadata.tables[table_name]
    found = dict(_read_back(s, table, list(table.primary_key.columns), list(operations)))
    rows = []
    for key, operation in operations.items():
        content = found.get(key)
        if content is None:
            if operation in ("insert", "write"):
                continue  # never stored: undone by a rolled-back savepoint, or an insert that did nothing
            rows.append(_row(key, None, "delete"))
        else:
            rows.append(_row(key, content, operation if operation in ("insert", "write") else "update"))
    return rows


def _read_back(s: Session, table, lookup: list, values: list[tuple]):
    """(typed primary key, raw content) of each row whose ``lookup`` columns hold one of ``values``,
    read as ``verify`` reads it. On the session's connection, not through the ORM: this runs at
    every commit, and the statement is built once per table and lookup.

    Rows are found by each lookup column ``IN`` its own list (``a IN (…) AND b IN (…)``) and the exact
    pairs are matched here: SQLite does not use an index for a row-value ``(a, b) IN (…)`` and would
    scan the whole table at every commit; nor would the leading column alone help when it hardly
    varies (every ``media`` row's ``alg`` is "sha-256")."""
    statement, width, names = _read_back_statement(table, tuple(c.name for c in lookup), s.get_bind().dialect.name)
    connection = s.connection()
    span = len(lookup)
    wanted = set(values) if span > 1 else None
    for start in range(0, len(values), _READ_BACK_BATCH):
        batch = values[start:start + _READ_BACK_BATCH]
        params = {f"wanted{i}": list({v[i] for v in batch}) for i in range(span)}
        for row in connection.execute(statement, params):
            if wanted is not None and tuple(row[:span]) not in wanted:
                continue
            yield tuple(row[span:span + width]), dict(zip(names, row[span + width:], strict=True))


@functools.lru_cache(maxsize=256)
def _read_back_statement(table, lookup_names: tuple[str, ...], dialect_name: str):
    pk = list(table.primary_key.columns)
    content = content_columns(table, dialect_name)
    lookup = [table.c[name] for name in lookup_names]
    statement = select(*lookup, *pk, *content).where(
        *(column.in_(bindparam(f"wanted{i}", expanding=True)) for i, column in enumerate(lookup)))
    return statement, len(pk), [c.name for c in content]


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

