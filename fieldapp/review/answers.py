"""What the officer did about a return: their answer in their own words, and every record of the
activity that changed since the lead returned it, each changed field before and after.

The lead decides on the answer, so the page must show it beside what was there when the lead
returned the activity; "re-opened" alone tells the lead nothing. Revisions are immutable, so
"before" is simply the head each record had at the moment of the return.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from .. import db
from ..i18n import local_time, parse_when
from ..models import Revision, ReviewEvent, SyncedRecord
from .labels import interruption_reason_label, record_type_label, revision_reason_label, step_label

# Payload fields the lead reads, with their labels; others change rarely and are shown by name.
FIELD_LABELS = {
    "av_reason": _l("Why not recorded"), "av_recorded": _l("Recorded on audio/video"),
    "explanation": _l("Explanation on resuming"), "resumed_at": _l("Recording resumed"),
    "stopped_at": _l("Recording stopped"), "reason": _l("Reason for the interruption"),
    "written_explanation": _l("Written explanation"), "reported_to": _l("Reported to"),
    "notes": _l("Notes"), "documents": _l("Documents"), "at": _l("Time"), "arrived_at": _l("Arrived"),
    "departed_at": _l("Departed"), "step_type": _l("Step"), "place": _l("Place"),
}
TIME_FIELDS = frozenset({"resumed_at", "stopped_at", "at", "arrived_at", "departed_at"})
# The answer itself is shown as the answer, not as a changed field.
NOT_SHOWN = frozenset({"review_answers", "activity_id", "case_id"})


@dataclass
class FieldChange:
    label: str
    before: str
    after: str


@dataclass
class RecordChange:
    record_id: uuid.UUID
    title: str
    reason: str
    fields: list[FieldChange] = field(default_factory=list)


@dataclass
class Answer:
    returned: ReviewEvent
    text: str | None  # the officer's answer, None while none came
    changes: list[RecordChange]


def _show(key: str, value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if key in TIME_FIELDS:
        return local_time(value)
    if key == "step_type":
        return step_label(value)
    if key == "reason":
        return interruption_reason_label(value)
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    if isinstance(value, list):
        return "、".join(_show(key, v) for v in value)
    if isinstance(value, dict):
        return value.get("text") or value.get("name") or "、".join(str(v) for v in value.values() if v)
    return str(value)


def _diff(before: dict, after: dict) -> list[FieldChange]:
    out = []
    for key in list(dict.fromkeys([*before, *after])):
        if key in NOT_SHOWN or before.get(key) == after.get(key):
            continue
        out.append(FieldChange(str(FIELD_LABELS.get(key, key)), _show(key, before.get(key)), _show(key, after.get(key))))
    return out


def answer_to_last_return(activity_id: uuid.UUID, history: list[ReviewEvent]) -> Answer | None:
    returns = [e for e in history if e.action == "returned"]
    if not returns:
        return None
    returned = returns[-1]
    since = parse_when(returned.at)
    s = db.session()
    records = s.execute(select(SyncedRecord).where(or_(SyncedRecord.id == activity_id,
                                                       SyncedRecord.parent_id == activity_id))).scalars().all()
    revisions: dict[uuid.UUID, list[Revision]] = {}
    for rev in s.execute(select(Revision).where(Revision.record_id.in_([r.id for r in records]))
                         .order_by(Revision.record_id, Revision.revision)).scalars():
        revisions.setdefault(rev.record_id, []).append(rev)
    text, changes = None, []
    for record in sorted(records, key=lambda r: (r.id != activity_id, r.created_at)):
        chain = revisions.get(record.id, [])
        old = [r for r in chain if parse_when(r.received_at) <= since]
        new = [r for r in chain if parse_when(r.received_at) > since]
        if not new:
            continue
        head, before = new[-1], (old[-1].payload if old else {})
        if record.id == activity_id:
            answers = [a for a in (head.payload or {}).get("review_answers") or [] if isinstance(a, dict)]
            mine = [a for a in answers if a.get("review_id") == returned.id] or answers[-1:]
            text = (mine[-1].get("answer") or None) if mine else None
        fields = _diff(before or {}, head.payload or {})
        if fields or not old:
            title = record_type_label(record.record_type)
            if record.record_type == "step":
                title = f"{title} · {step_label((head.payload or {}).get('step_type'))}"
            changes.append(RecordChange(record.id, title, _reason(head.reason, text), fields))
    return Answer(returned, text, changes)


def _reason(reason: str | None, answer: str | None) -> str:
    # The phone gives "<答复审核意见>: <the answer>" as the reason of every revision of an answer;
    # the answer is shown once, above, so a reason line repeats only other reasons.
    if reason and answer and reason.endswith(answer):
        return ""
    return revision_reason_label(reason)
