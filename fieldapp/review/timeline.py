"""A case's timeline: every activity and what was recorded under it — steps, photos,
interruptions, service by leaving with witnesses and signatures — in time order, with the phone's
time beside the server's and the coordinates where they were taken.

Withdrawn records stay where they were, struck through, with who withdrew them, why and when
(art. 30: records are kept, not deleted)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from .. import db
from ..compliance.facts import parse_time
from ..models import Case, Finding, RecordReview, Revision, SyncedRecord, User
from .answers import Answer, answer_to_last_return
from .media_state import MediaView, media_of_head
from .workflow import history

_WHEN = {"activity": "arrived_at", "step": "at", "interruption": "stopped_at", "service": "at",
         "onsite_record": "started_at"}


@dataclass
class Entry:
    record: SyncedRecord
    head: Revision
    author: str
    at: datetime | None  # when it happened, as the phone recorded it
    media: list[MediaView]
    findings: list[Finding] = field(default_factory=list)
    head_author: str = ""  # who signed the head revision (for a withdrawn record: who withdrew it)

    @property
    def payload(self) -> dict:
        return self.head.payload or {}

    @property
    def withdrawn(self) -> bool:
        return bool(self.record.withdrawn)

    @property
    def withdrawn_reason(self) -> str:
        """Why it was withdrawn: the officer's words in the payload, else the revision's reason."""
        reason = self.payload.get("withdrawn_reason")
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
        return (self.head.reason or "").strip()

    @property
    def withdrawn_at(self) -> datetime | None:
        """When it was withdrawn: the phone's time of the withdrawing revision, unless its clock was
        off (then, as for any skewed revision, the server's time of arrival)."""
        if self.head.clock_skew_flag or self.head.device_time_parsed is None:
            return self.head.received_at
        return self.head.device_time_parsed

    @property
    def captions(self) -> dict[str, str]:
        """Whose signature, or what photo, each file of a service by leaving or an on-site record is (by hash)."""
        if self.record.record_type == "onsite_record":
            return self._onsite_captions()
        if self.record.record_type != "service":
            return {}
        p = self.payload
        out = {h: _("Photo of the document left") for h in p.get("media") or [] if isinstance(h, str)}
        for w in p.get("witnesses") or []:
            if isinstance(w, dict) and w.get("signature"):
                out[w["signature"]] = _("Signature of witness %(name)s", name=w.get("name") or "")
        for o in p.get("officers") or []:
            if isinstance(o, dict) and o.get("signature"):
                out[o["signature"]] = _("Signature of officer %(name)s", name=o.get("name") or "")
        return out


    def _onsite_captions(self) -> dict[str, str]:
        from ..rules.onsite_records import normalised
        clean = normalised(self.payload)[0]
        signing = clean["signing"]
        out = {}
        if signing["party"].get("signature"):
            out[signing["party"]["signature"]] = _("Signature of %(name)s", name=clean["subject"].get("name") or "")
        if (signing["witness"] or {}).get("signature"):
            out[signing["witness"]["signature"]] = _("Signature of witness %(name)s",
                                                     name=signing["witness"].get("name") or "")
        for o in signing["officers"]:
            if o.get("signature"):
                out[o["signature"]] = _("Signature of officer %(name)s", name=o.get("name") or "")
        return out


@dataclass
class ActivityBlock:
    activity: Entry
    items: list[Entry]
    review_state: str | None
    history: list
    review_seen: str | None = None  # the state's time, sent back with a decision
    answer: Answer | None = None  # the officer's answer to the last return, with what changed


def case_timeline(case_id: uuid.UUID) -> list[ActivityBlock]:
    s = db.session()
    case = s.get(Case, case_id)
    if case is None:
        return []
    # Only records of the case's own unit (the push refuses others; this keeps the page honest).
    activities = s.execute(select(SyncedRecord).where(SyncedRecord.case_id == case_id,
                                                      SyncedRecord.unit_id == case.unit_id,
                                                      SyncedRecord.record_type == "activity")).scalars().all()
    ids = [a.id for a in activities]
    if not ids:
        return []
    entries = _entries(case, or_(SyncedRecord.id.in_(ids), SyncedRecord.parent_id.in_(ids)))
    states = {r.record_id: r for r in s.execute(select(RecordReview).where(RecordReview.record_id.in_(ids))).scalars()}
    blocks = []
    for activity in sorted(activities, key=lambda a: (entries[a.id].at or a.created_at)):
        # Withdrawn items stay in place (shown struck through), never silently dropped.
        items = [e for e in entries.values() if e.record.parent_id == activity.id]
        items.sort(key=lambda e: (e.at or e.head.received_at))
        state = states.get(activity.id)
        events = history(activity.id)
        blocks.append(ActivityBlock(entries[activity.id], items, state.state if state else None, events,
                                    state.updated_at.isoformat() if state else None,
                                    answer_to_last_return(activity.id, events)))
    return blocks


def desk_steps(case_id: uuid.UUID) -> list[Entry]:
    """Steps recorded at the desk (filing approval, decisions, extensions, service by post or
    notice, closing…): signed revisions like any other, belonging to the case, not to a visit."""
    case = db.session().get(Case, case_id)
    if case is None:
        return []
    entries = _entries(case, SyncedRecord.case_id == case_id, SyncedRecord.record_type == "step",
                       SyncedRecord.parent_id.is_(None))
    return sorted(entries.values(), key=lambda e: (e.at or e.head.received_at))


def _entries(case: Case, *where) -> dict[uuid.UUID, Entry]:
    """The records of the case's own unit matching ``where``, each at its head revision, with
    who made it, who signed the head, its media and its open findings."""
    s = db.session()
    signer = aliased(User)
    rows = s.execute(select(SyncedRecord, Revision, User.name, signer.name)
                     .join(Revision, and_(Revision.record_id == SyncedRecord.id,
                                          Revision.revision == SyncedRecord.head_revision))
                     .join(User, User.id == SyncedRecord.author_id)
                     .join(signer, signer.id == Revision.author_id)
                     # Only records of the case's own unit (the push refuses others; this keeps the page honest).
                     .where(SyncedRecord.unit_id == case.unit_id, *where)).all()
    findings: dict[uuid.UUID, list[Finding]] = {}
    if rows:
        for f in s.execute(select(Finding).where(Finding.case_id == case.id, Finding.resolved_at.is_(None),
                                                 Finding.record_id.in_([rec.id for rec, *_ in rows]))).scalars():
            findings.setdefault(f.record_id, []).append(f)
    return {rec.id: Entry(rec, rev, name, parse_time((rev.payload or {}).get(_WHEN.get(rec.record_type, ""))),
                          media_of_head(rec), findings.get(rec.id, []), head_author)
            for rec, rev, name, head_author in rows}
