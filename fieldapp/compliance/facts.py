"""The facts of one case the compliance checks read: plain values, no database.

Loading them (:func:`load_case_facts`) is the only part that touches the database, so every check
is a pure function of ``CaseFacts`` and can be tested with a table of hand-written cases.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, select

from .. import db
from ..models import (Case, CaseStage, FootageLink, FootageSegment, Media, MediaRef, RecordReview, Revision, Station,
                      SyncedRecord, User)
from ..rules.credit_code import normalise


def parse_time(text) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else None


@dataclass(frozen=True)
class MediaFact:
    hash: str
    kind: str | None  # image | video | audio, once the original is known; else from the declared type
    original_at: datetime | None


@dataclass(frozen=True)
class FootageFact:
    """A body-camera segment linked to an activity: its camera, its span, and when it reached the
    dedicated storage (art. 25: the station's collection where the station is part of it)."""
    segment_id: uuid.UUID
    camera_serial: str
    start: datetime
    end: datetime
    stored_at: datetime


@dataclass(frozen=True)
class RecordFact:
    id: uuid.UUID
    type: str  # activity | step | interruption | service
    parent_id: uuid.UUID | None
    author_id: uuid.UUID
    payload: dict
    received_at: datetime
    media: tuple[MediaFact, ...] = ()
    withdrawn: bool = False


@dataclass
class CaseFacts:
    case_id: uuid.UUID
    unit_id: uuid.UUID
    kind: str
    case_number: str | None
    party_name: str | None
    flags: tuple[str, ...]
    act_ended_at: datetime | None
    archived_at: datetime | None
    stages_done: dict[str, datetime] = field(default_factory=dict)
    records: list[RecordFact] = field(default_factory=list)
    # Certificate numbers (normalised) of active enrolled users among those the activities name:
    # the officers qualified to enforce (行政处罚法 art. 42).
    enrolled_certs: frozenset[str] = frozenset()
    # Activities a lead approved (their review state is "approved": a later change re-opens review).
    approved_activities: frozenset[uuid.UUID] = frozenset()
    # Where act_ended_at came from: "lead" (entered by hand), "step" (a step that ends the act), or None.
    act_ended_source: str | None = None
    # Body-camera footage linked to each activity (by activity id).
    footage: dict[uuid.UUID, tuple[FootageFact, ...]] = field(default_factory=dict)
    # Values several checks derive from the same facts (the case's clocks), computed once per evaluation.
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def of_type(self, record_type: str) -> list[RecordFact]:
        return [r for r in self.records if r.type == record_type and not r.withdrawn]

    def children(self, parent_id: uuid.UUID, record_type: str) -> list[RecordFact]:
        return [r for r in self.of_type(record_type) if r.parent_id == parent_id]


def load_case_facts(case_id: uuid.UUID) -> CaseFacts | None:
    s = db.session()
    case = s.get(Case, case_id)
    if case is None:
        return None
    facts = CaseFacts(case.id, case.unit_id, case.kind, case.case_number, case.party_name, tuple(case.flags or ()),
                      case.act_ended_at, case.archived_at)
    facts.stages_done = {row.stage: row.done_at for row in s.execute(
        select(CaseStage).where(CaseStage.case_id == case_id)).scalars()}
    heads = s.execute(select(SyncedRecord, Revision).join(Revision, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.case_id == case_id, SyncedRecord.unit_id == case.unit_id)).all()
    activity_ids = [rec.id for rec, _ in heads if rec.record_type == "activity"]
    if activity_ids:  # interruptions name only their activity
        heads += s.execute(select(SyncedRecord, Revision).join(Revision, and_(
            Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
            .where(SyncedRecord.parent_id.in_(activity_ids), SyncedRecord.case_id.is_(None),
                   SyncedRecord.unit_id == case.unit_id)).all()
    media_by_record: dict[uuid.UUID, list[MediaFact]] = {}
    if heads:
        rows = s.execute(select(MediaRef.record_id, MediaRef.hash, Media.kind, Media.declared_type, Media.original_at)
                         .outerjoin(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
                         .where(MediaRef.record_id.in_([rec.id for rec, _ in heads]))
                         .where(MediaRef.revision == select(SyncedRecord.head_revision)
                                .where(SyncedRecord.id == MediaRef.record_id).scalar_subquery())).all()
        for record_id, digest, kind, declared, original_at in rows:
            media_by_record.setdefault(record_id, []).append(
                MediaFact(digest, kind or (declared or "").split("/")[0] or None, original_at))
    declared_types = {}
    for _rec, rev in heads:
        for m in rev.media or []:
            declared_types[m["hash"]] = m.get("type", "")
    for rec, rev in heads:
        media = tuple(MediaFact(m.hash, m.kind or declared_types.get(m.hash, "").split("/")[0] or None, m.original_at)
                      for m in media_by_record.get(rec.id, []))
        facts.records.append(RecordFact(rec.id, rec.record_type, rec.parent_id, rec.author_id, rev.payload or {},
                                        rev.received_at, media, bool(rec.withdrawn)))
    facts.enrolled_certs = _enrolled(facts)
    if facts.act_ended_at is not None:
        facts.act_ended_source = "lead"
    if activity_ids:
        facts.footage = _footage(activity_ids)
        facts.approved_activities = frozenset(s.execute(select(RecordReview.record_id).where(
            RecordReview.record_id.in_(activity_ids), RecordReview.state == "approved")).scalars())
    return facts


def _footage(activity_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[FootageFact, ...]]:
    rows = db.session().execute(
        select(FootageLink.activity_id, FootageSegment.id, FootageSegment.camera_serial, FootageSegment.started_at,
               FootageSegment.ended_at, FootageSegment.collected_at, FootageSegment.ingested_at,
               Station.part_of_storage)
        .join(FootageSegment, FootageSegment.id == FootageLink.segment_id)
        .outerjoin(Station, Station.id == FootageSegment.station_id)
        .where(FootageLink.activity_id.in_(activity_ids))
        .order_by(FootageSegment.started_at)).all()
    found: dict[uuid.UUID, list[FootageFact]] = {}
    for activity_id, seg_id, serial, start, end, collected, ingested, station_stores in rows:
        stored = collected if station_stores and collected is not None else ingested
        found.setdefault(activity_id, []).append(FootageFact(seg_id, serial, start, end, stored))
    return {k: tuple(v) for k, v in found.items()}


def _enrolled(facts: CaseFacts) -> frozenset[str]:
    typed = {str(o["cert_no"])[:40] for a in facts.of_type("activity")
             for o in a.payload.get("officers") or [] if isinstance(o, dict) and o.get("cert_no")}
    named = {normalise(c) for c in typed} - {""}
    if not named:
        return frozenset()
    # As typed on the phone or normalised (full-width digits, spaces, lower case): either may match
    # the number as enrolled.
    rows = db.session().execute(select(User.cert_no).where(User.active.is_(True),
                                                           User.cert_no.in_(sorted(typed | named)))).scalars()
    return frozenset(c for c in (normalise(r) for r in rows) if c in named)
