"""What a phone pulls: changed cases of its units, its assignments and review decisions on its records.

A pull from a feed cursor serves the changes after it (see ``feed``). A pull without one — a new
phone, or one whose cursor predates positions — is a full resync in pages: every open case the
user may see, then every review decision on the user's records, then the feed from the position
taken when the resync began, so that what changed meanwhile arrives too. Nothing is capped: a
unit with 5,000 open cases resyncs in ten pages.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..access import visible_unit_ids
from ..models import Case, CaseAssignment, ChangeLog, ReviewEvent, SyncedRecord
from . import feed

PAGE = 500


@dataclass
class Page:
    cursor: feed.Cursor
    more: bool
    full: bool = False  # first page of a resync: the phone starts its lists afresh
    resync: bool = False  # a page of a resync: the phone keeps the lists aside until it completes
    resync_complete: bool = False
    cases: list[Case] = field(default_factory=list)
    reviews: list[ReviewEvent] = field(default_factory=list)


def pull_page(s: Session, user, cursor: feed.Cursor | None, page_size: int | None = None) -> Page:
    page_size = page_size or PAGE
    if cursor is None:
        return _resync_cases(s, user, feed.Cursor(feed.stable_end(s), "cases"), page_size, first=True)
    if cursor.resync == "cases":
        return _resync_cases(s, user, cursor, page_size)
    if cursor.resync == "reviews":
        return _resync_reviews(s, user, cursor, page_size)
    return _feed_page(s, user, cursor.position, page_size)


def _visible(stmt, column, user):
    visible = visible_unit_ids(user)
    return stmt if visible is None else stmt.where(column.in_(visible))


def _resync_cases(s: Session, user, cursor: feed.Cursor, page_size: int, first: bool = False) -> Page:
    stmt = select(Case).where(Case.status == "open")
    if cursor.after:
        stmt = stmt.where(Case.id > uuid.UUID(cursor.after))
    cases = list(s.execute(_visible(stmt, Case.unit_id, user).order_by(Case.id).limit(page_size)).scalars())
    if len(cases) == page_size:
        nxt = feed.Cursor(cursor.position, "cases", str(cases[-1].id))
    else:
        nxt = feed.Cursor(cursor.position, "reviews")
    return Page(nxt, more=True, full=first, resync=True, cases=cases)


def _resync_reviews(s: Session, user, cursor: feed.Cursor, page_size: int) -> Page:
    stmt = (select(ReviewEvent).join(SyncedRecord, SyncedRecord.id == ReviewEvent.record_id)
            .where(SyncedRecord.author_id == user.id))
    if cursor.after:
        stmt = stmt.where(ReviewEvent.id > int(cursor.after))
    reviews = list(s.execute(stmt.order_by(ReviewEvent.id).limit(page_size)).scalars())
    if len(reviews) == page_size:
        return Page(feed.Cursor(cursor.position, "reviews", str(reviews[-1].id)), more=True, resync=True,
                    reviews=reviews)
    # The resync is whole; what changed while it ran is in the feed after its starting position.
    return Page(feed.Cursor(cursor.position), more=True, resync=True, resync_complete=True, reviews=reviews)


def _feed_page(s: Session, user, after: feed.Position, page_size: int) -> Page:
    end = feed.stable_end(s)
    if after > end:
        # A position this database never reached: it was restored from a backup or moved to a new
        # cluster (transaction ids start again). Trusting the cursor would serve nothing until the
        # new ids passed it; the phone resyncs instead.
        return _resync_cases(s, user, feed.Cursor(end, "cases"), page_size, first=True)
    addressed = ChangeLog.user_id.is_(None) | (ChangeLog.user_id == user.id)
    visible = visible_unit_ids(user)
    entitled = addressed if visible is None else addressed & ChangeLog.unit_id.in_(visible)
    changes = feed.changes_after(s, after, end, entitled, page_size)
    more = len(changes) == page_size
    reached = feed.position_of(changes[-1]) if more else end
    case_ids = {uuid.UUID(c.entity_id) for c in changes if c.entity in ("case", "assignment")}
    review_ids = {int(c.entity_id) for c in changes if c.entity == "review"}
    cases = list(s.execute(select(Case).where(Case.id.in_(case_ids))).scalars()) if case_ids else []
    reviews = list(s.execute(select(ReviewEvent).where(ReviewEvent.id.in_(review_ids))
                             .order_by(ReviewEvent.id)).scalars()) if review_ids else []
    return Page(feed.Cursor(reached), more=more, cases=cases, reviews=reviews)


def assigned_case_ids(s: Session, user) -> set[uuid.UUID]:
    return set(s.execute(select(CaseAssignment.case_id).where(CaseAssignment.user_id == user.id)).scalars())
