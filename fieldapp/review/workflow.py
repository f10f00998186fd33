"""The review of synced activities: a queue per unit, approve or return with a comment, the
officer's answer as a new revision, and review re-opened by any change after a decision.

The unit of review is the on-site activity with everything recorded under it (steps,
interruptions, service by leaving). State lives in ``record_reviews`` (one row per activity, for
the queue) and history in ``review_events`` (append-only). A decision reaches the officer's phone
through the change log, like every other server-side change.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import and_, select

from .. import db, events
from ..models import ACTIVITY_CHILD_TYPES, InterruptionReport, RecordReview, Revision, ReviewEvent, SyncedRecord, utcnow
from ..sync.changes import record_change

log = logging.getLogger(__name__)

AWAITING, RETURNED, APPROVED = "awaiting", "returned", "approved"


class ReviewError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _activity_of(record: SyncedRecord) -> uuid.UUID | None:
    if record.record_type == "activity":
        return record.id
    if record.record_type in ACTIVITY_CHILD_TYPES:
        return record.parent_id
    return None


@events.revisions_arrived.connect
def queue_after_push(_sender, record_ids: Iterable[uuid.UUID]) -> None:
    """What new revisions change for leads: the review queue and "cannot continue" reports (the
    compliance engine re-checks the cases on the same event). Runs in its own transaction after the
    push committed, so a failure here never loses a pushed revision."""
    ids = list(dict.fromkeys(record_ids))
    if not ids:
        return
    s = db.session()
    records = s.execute(select(SyncedRecord).where(SyncedRecord.id.in_(ids))).scalars().all()
    activities = {a for a in (_activity_of(r) for r in records) if a is not None}
    # Lock the activities (in id order) so that two phones syncing one visit at once queue it one
    # after the other instead of colliding on the same new rows.
    activity_rows = {r.id: r for r in s.execute(select(SyncedRecord).where(SyncedRecord.id.in_(sorted(activities)))
                                                .order_by(SyncedRecord.id).with_for_update()).scalars()}
    activity_rows = {i: a for i, a in activity_rows.items()
                     if all(r.unit_id == a.unit_id for r in records if _activity_of(r) == i)}
    for activity_id in sorted(activities):
        activity = activity_rows.get(activity_id)
        if activity is not None:
            _reopen_or_queue(activity)
    _track_interruption_reports([r for r in records if r.record_type == "interruption"])


def _reopen_or_queue(activity: SyncedRecord) -> None:
    s = db.session()
    state = s.get(RecordReview, activity.id)
    now = utcnow()
    if state is None:
        s.add(RecordReview(record_id=activity.id, unit_id=activity.unit_id, author_id=activity.author_id,
                           state=AWAITING, updated_at=now))
    elif state.state != AWAITING:
        # An answer to a return, or a change after approval: back in the queue, and history says so.
        event = ReviewEvent(record_id=activity.id, unit_id=activity.unit_id, action="reopened",
                            comment="answered" if state.state == RETURNED else "changed_after_approval", at=now)
        s.add(event)
        s.flush()
        state.state, state.updated_at = AWAITING, now
        record_change("review", event.id, unit_id=activity.unit_id, user_id=activity.author_id)  # the phone's banner goes


def _track_interruption_reports(interruptions: list[SyncedRecord]) -> None:
    if not interruptions:
        return
    s = db.session()
    heads = dict(s.execute(select(Revision.record_id, Revision.payload).join(SyncedRecord, and_(
        SyncedRecord.id == Revision.record_id, SyncedRecord.head_revision == Revision.revision))
        .where(Revision.record_id.in_([r.id for r in interruptions]))).all())
    for record in interruptions:
        payload = heads.get(record.id) or {}
        if not payload.get("cannot_continue"):
            continue
        report = s.get(InterruptionReport, record.id)
        if report is None:
            parent = s.get(SyncedRecord, record.parent_id) if record.parent_id else None
            report = InterruptionReport(record_id=record.id, unit_id=record.unit_id, author_id=record.author_id,
                                        case_id=parent.case_id if parent else None, received_at=utcnow())
            s.add(report)
        if payload.get("written_explanation") and report.explanation_at is None:
            report.explanation_at = utcnow()


def decide(activity_id: uuid.UUID, reviewer, action: str, comment: str | None, seen: str | None = None,
           confirmed: bool = False) -> ReviewEvent:
    """Approve, or return to the officer with a comment (a return needs one). Approval is
    deliberate: it needs ``confirmed`` (the lead ticked that they checked the whole record), since
    it cannot be taken back except by a new revision. ``seen`` is the review state's time on the
    page the lead decided from: a decision on changes the lead has not seen (the officer's answer
    arrived meanwhile) is refused."""
    comment = (comment or "").replace("\x00", "").strip() or None
    if action not in (APPROVED, RETURNED):
        raise ReviewError("bad_action", "approve or return")
    if action == RETURNED and not comment:
        raise ReviewError("comment_required", "say what the officer should do")
    if action == APPROVED and not confirmed:
        raise ReviewError("not_confirmed", "confirm the approval")
    if comment and len(comment) > 2000:
        raise ReviewError("comment_too_long", "at most 2000 characters")
    s = db.session()
    activity = s.get(SyncedRecord, activity_id)
    if activity is None or activity.record_type != "activity":
        raise ReviewError("not_found", "no such activity")
    state = s.get(RecordReview, activity_id)
    if seen is not None and state is not None and state.updated_at.isoformat() != seen:
        raise ReviewError("changed", "the activity changed since the page was opened; look at it again")
    now = utcnow()
    if state is None:
        state = RecordReview(record_id=activity_id, unit_id=activity.unit_id, author_id=activity.author_id,
                             state=action, updated_at=now)
        s.add(state)
    state.state, state.updated_at = action, now
    event = ReviewEvent(record_id=activity_id, unit_id=activity.unit_id, action=action, comment=comment,
                        by_id=reviewer.id, at=now)
    s.add(event)
    s.flush()
    record_change("review", event.id, unit_id=activity.unit_id, user_id=activity.author_id)
    return event


def history(activity_id: uuid.UUID) -> list[ReviewEvent]:
    return db.session().execute(select(ReviewEvent).where(ReviewEvent.record_id == activity_id)
                                .order_by(ReviewEvent.id)).scalars().all()
