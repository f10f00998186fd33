"""The pull feed: which server-side changes a phone has not seen yet, complete by construction.

A change-log id is handed out when its row is inserted, not when its transaction commits. On
PostgreSQL, with several app processes, id 41 can commit after id 42: a phone that pulled while
41 was in flight and kept "42" as its cursor would never be served 41. So the feed is ordered by
a *position* that a late commit can never fall behind:

- PostgreSQL: (txid, id), where txid is the writing transaction's id (the column's server default,
  ``pg_current_xact_id()``). Every transaction with an id below the current snapshot's xmin has
  ended, and any row that can still appear belongs to a transaction at or above it. The feed
  serves only positions below (xmin, 0): a prefix that can no longer grow. A long transaction
  delays the feed; it never makes the feed skip.
- SQLite: one writer at a time (``BEGIN IMMEDIATE``), so ids commit in order; the position is
  (0, id), and the end is the largest id in the reading transaction's snapshot.

A cursor says "every position up to here has been served" (inclusive). Phones from before this
design hold a bare integer, which may already have skipped rows: it starts a full resync, which
pages through every open case the phone may see and every review decision on its records, and
then continues the feed from where it stood when the resync began.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, literal, select, text, tuple_
from sqlalchemy.orm import Session

from ..models import ChangeLog

MAX_ID = 2**63 - 1
FEED_ENTITIES = ("case", "assignment", "review")


@dataclass(frozen=True, order=True)
class Position:
    txid: int
    id: int

    def text(self) -> str:
        return f"{self.txid}.{self.id}"


@dataclass(frozen=True)
class Cursor:
    """Where a phone stands: in the feed (``resync`` is None) or inside a full resync, whose pages
    run through ``cases`` and then ``reviews`` after the key ``after``; ``position`` is then the
    feed position the resync will continue from."""
    position: Position
    resync: str | None = None  # None | "cases" | "reviews"
    after: str = ""

    def text(self) -> str:
        if self.resync is None:
            return f"f.{self.position.text()}"
        return f"r.{self.position.text()}.{_PHASE_LETTER[self.resync]}.{self.after or '-'}"


class BadCursor(ValueError):
    pass


START = None  # a cursor that asks for a full resync
_PHASE_LETTER = {"cases": "c", "reviews": "v"}
_FEED = re.compile(r"^f\.(\d{1,19})\.(\d{1,19})$")
_RESYNC = re.compile(r"^r\.(\d{1,19})\.(\d{1,19})\.([cv])\.([0-9a-f-]{1,36}|\d{1,19})$")
_LEGACY = re.compile(r"^\d{1,19}$")


def parse_cursor(raw: str | None) -> Cursor | None:
    """A Cursor, or START (None) for a full resync; BadCursor for anything else."""
    raw = (raw or "0").strip()
    if _LEGACY.match(raw):
        return START  # a bare integer predates positions and may have skipped changes
    if m := _FEED.match(raw):
        return Cursor(_position(m.group(1), m.group(2)))
    if m := _RESYNC.match(raw):
        phase = {letter: name for name, letter in _PHASE_LETTER.items()}[m.group(3)]
        after = "" if m.group(4) == "-" else m.group(4)
        _check_key(phase, after)
        return Cursor(_position(m.group(1), m.group(2)), phase, after)
    raise BadCursor("cursor must be one this server handed out, or 0")


def _position(txid: str, row_id: str) -> Position:
    pos = Position(int(txid), int(row_id))
    if pos.txid > MAX_ID or pos.id > MAX_ID:
        raise BadCursor("cursor out of range")
    return pos


def _check_key(phase: str, after: str) -> None:
    if not after:
        return
    try:
        if phase == "cases":
            uuid.UUID(after)
        elif int(after) > MAX_ID:
            raise ValueError
    except ValueError:
        raise BadCursor("cursor is damaged") from None


def _is_postgresql(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def stable_end(s: Session) -> Position:
    """The last position that can no longer be preceded by a change still to commit."""
    if _is_postgresql(s):
        xmin = s.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one()
        return Position(xmin - 1, MAX_ID)
    # SQLite: this read opens the transaction's snapshot; the page is read in the same snapshot.
    return Position(0, s.execute(select(func.max(ChangeLog.id))).scalar_one() or 0)


def _position_of(s: Session):
    return tuple_(ChangeLog.txid if _is_postgresql(s) else literal(0), ChangeLog.id)


def changes_after(s: Session, after: Position, end: Position, entitled, limit: int) -> list[ChangeLog]:
    """The changes the phone is entitled to in (after, end], in feed order, at most ``limit``."""
    position = _position_of(s)
    stmt = (select(ChangeLog)
            .where(position > tuple_(literal(after.txid), literal(after.id)),
                   position <= tuple_(literal(end.txid), literal(end.id)),
                   ChangeLog.entity.in_(FEED_ENTITIES), entitled)
            .order_by(*position.clauses).limit(limit))
    return list(s.execute(stmt).scalars())


def position_of(row: ChangeLog) -> Position:
    return Position(row.txid or 0, row.id)
