"""Linking events into the chain, without a lock any writer waits on.

Writers only insert events; they never read the chain's head, so they never wait for each other.
The sealer alone links: it takes the unsealed events up to the safe horizon the pull feed uses
(``sync/feed.py``) — on PostgreSQL every event of a transaction older than the oldest one still
running, on SQLite (one writer at a time) everything committed — in (txid, id) order, and gives
each a chain position ``seq``, the previous event's hash and its own. Events of a transaction
still running wait for the next pass: an unsealed tail is pending, never a gap, because nothing
can later appear below a horizon once it is passed.

One sealer at a time: on PostgreSQL a transaction-level advisory lock that a second sealer
*tries* and skips (writers never take it); on SQLite the write lock every writer takes anyway.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Text, func, select, text, type_coerce
from sqlalchemy.orm import Session

from ..models import AuditEvent
from .chain import GENESIS, event_bytes, link

SEALER_LOCK_KEY = int.from_bytes(b"fa-audit", "big") & (2**63 - 1)
BATCH = 20_000


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def stored_text(column):
    """The column as stored (its canonical text), without parsing it."""
    return type_coerce(column, Text).label(column.name)


def head(s: Session) -> Head:
    row = s.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.is_not(None))
                    .order_by(AuditEvent.seq.desc()).limit(1)).first()
    return Head(row.seq, row.hash) if row else Head(0, GENESIS)


def _is_postgresql(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def seal(s: Session, batch: int = BATCH) -> int:
    """Seal what lies below the horizon, at most ``batch`` events; the caller commits. Returns how
    many were sealed (0 when another sealer holds the lock)."""
    events = AuditEvent.__table__
    unsealed = select(events.c.id, events.c.at, events.c.actor, events.c.action, events.c.tbl,
                      events.c.row_key, events.c.row_hash, stored_text(events.c.detail)).where(events.c.seq.is_(None))
    if _is_postgresql(s):
        if not s.execute(select(func.pg_try_advisory_xact_lock(SEALER_LOCK_KEY))).scalar_one():
            return 0
        xmin = s.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one()
        unsealed = unsealed.where(events.c.txid < xmin).order_by(events.c.txid, events.c.id)
    else:
        unsealed = unsealed.order_by(events.c.id)
    connection = s.connection()  # the ORM adds nothing here, and the sealer runs in every process
    rows = connection.execute(unsealed.limit(batch)).all()
    if not rows:
        return 0
    at = head(s)
    seq, prev = at.seq, at.hash
    sealed = []
    for r in rows:
        seq += 1
        digest = link(prev, event_bytes(seq, r.id, r.at, r.actor, r.action, r.tbl, r.row_key, r.row_hash, r.detail))
        sealed.append({"b_id": r.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
        prev = digest
    start = 0
    while start < len(sealed):
        # Chunks of a few fixed sizes (powers of two), so the statements are built and prepared once.
        size = next(n for n in _CHUNK_SIZES if n <= len(sealed) - start)
        chunk = sealed[start:start + size]
        connection.execute(_update_statement(size),
                           {f"{name}{i}": row[name] for i, row in enumerate(chunk) for name in _SEAL_FIELDS})
        start += size
    return len(sealed)


# One UPDATE for many events (a WITH … VALUES list joined by id) instead of one per event: sealing
# then costs a fraction of what it did, which matters because every app process seals.
_SEAL_FIELDS = ("b_id", "b_seq", "b_prev", "b_hash")
_CHUNK_SIZES = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)


@functools.lru_cache(maxsize=len(_CHUNK_SIZES))
def _update_statement(rows: int):
    listed = ", ".join(f"(:b_id{i}, :b_seq{i}, :b_prev{i}, :b_hash{i})" for i in range(rows))
    return text(f"WITH sealed(id, seq, prev_hash, hash) AS (VALUES {listed}) "
                "UPDATE audit_events SET seq = sealed.seq, prev_hash = sealed.prev_hash, hash = sealed.hash "
                "FROM sealed WHERE audit_events.id = sealed.id")


def seal_all(s: Session) -> int:
    """Seal everything below the horizon, committing after each batch."""
    total = 0
    while True:
        n = seal(s)
        s.commit()
        total += n
        if n < BATCH:
            return total


def unsealed_count(s: Session) -> int:
    return s.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))).scalar_one()
