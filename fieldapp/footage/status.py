"""What footage there is for whom: an officer's visits (linked, or still waiting), the unlinked
queue with its suggestions, activities that should have footage and have none, and a case's
segments per camera for the timeline."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select

from .. import db
from ..compliance.facts import parse_time
from ..models import FootageLink, FootageSegment, Revision, SyncedRecord
from . import linker
from .linking import suggestions


def expects_footage(payload: dict, step_payloads: Iterable[dict]) -> bool:
    """A visit should have body-camera footage when it names a camera, or a step of it was
    declared as recorded on one."""
    if any(isinstance(c, dict) and c.get("camera_id") for c in payload.get("cameras") or []):
        return True
    return any(p.get("av") == "body_camera" or p.get("av_recorded") is True for p in step_payloads)


def _step_payloads(activity_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict]]:
    rows = db.session().execute(select(SyncedRecord.parent_id, Revision.payload).join(Revision, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.parent_id.in_(activity_ids), SyncedRecord.record_type.in_(("step", "service")),
               SyncedRecord.withdrawn.is_(False))).all() if activity_ids else []
    found: dict[uuid.UUID, list[dict]] = {}
    for parent, payload in rows:
        found.setdefault(parent, []).append(payload or {})
    return found


def _linked(activity_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, float]]:
    if not activity_ids:
        return {}
    rows = db.session().execute(select(FootageLink.activity_id, FootageSegment.started_at, FootageSegment.ended_at)
                                .join(FootageSegment, FootageSegment.id == FootageLink.segment_id)
                                .where(FootageLink.activity_id.in_(activity_ids))).all()
    found: dict[uuid.UUID, tuple[int, float]] = {}
    for activity_id, start, end in rows:
        n, seconds = found.get(activity_id, (0, 0.0))
        found[activity_id] = (n + 1, seconds + (end - start).total_seconds())
    return found


def officer_visits(user_id: uuid.UUID, unit_id: uuid.UUID, since: datetime) -> list[dict]:
    """The officer's own visits since ``since``: footage linked, still waiting, or none expected."""
    heads = [(rec, p) for rec, p in linker.activity_heads(unit_id, author_id=user_id)
             if (parse_time(p.get("arrived_at")) or since) >= since]
    ids = [rec.id for rec, _ in heads]
    steps, linked = _step_payloads(ids), _linked(ids)
    visits = []
    for rec, p in heads:
        count, seconds = linked.get(rec.id, (0, 0.0))
        state = "linked" if count else ("waiting" if expects_footage(p, steps.get(rec.id, [])) else "none_expected")
        visits.append({"activity_id": str(rec.id), "case_id": str(rec.case_id) if rec.case_id else None,
                       "arrived_at": p.get("arrived_at"), "state": state, "segments": count,
                       "seconds": round(seconds)})
    visits.sort(key=lambda v: v["arrived_at"] or "", reverse=True)
    return visits


@dataclass
class Queue:
    unlinked: list[tuple[FootageSegment, list[tuple[str, float]]]]
    missing: list[tuple[SyncedRecord, dict]]  # activities that should have footage and have none
    share: float
    total: int


def queue(unit_ids: frozenset[uuid.UUID] | None, limit: int = 200) -> Queue:
    """The unlinked segments (newest first, at most ``limit``) with suggestions, the visits missing
    footage, and the share of the units' segments linked with nobody's help — counted in SQL."""
    s = db.session()

    def of_units(query):
        return query if unit_ids is None else query.where(FootageSegment.unit_id.in_(unit_ids))

    total = s.execute(of_units(select(func.count()).select_from(FootageSegment))).scalar_one()
    automatic = s.execute(of_units(select(func.count(func.distinct(FootageLink.segment_id)))
                                   .join(FootageSegment, FootageSegment.id == FootageLink.segment_id)
                                   .where(FootageLink.basis != linker.LEAD))).scalar_one()
    unlinked = list(s.execute(of_units(select(FootageSegment)).where(
        ~select(FootageLink.segment_id).where(FootageLink.segment_id == FootageSegment.id).exists())
        .order_by(FootageSegment.started_at.desc()).limit(limit)).scalars())
    units = {seg.unit_id for seg in unlinked}
    windows = {u: linker.activity_windows(u)[0] for u in units}
    hand = {u: linker.handouts(u) for u in units}
    pending = [(seg, suggestions(linker.segment_window(seg), hand[seg.unit_id], windows[seg.unit_id]))
               for seg in unlinked]
    return Queue(pending, _missing(unit_ids, limit), automatic / total if total else 0.0, total)


def _missing(unit_ids, limit: int) -> list[tuple[SyncedRecord, dict]]:
    s = db.session()
    query = (select(SyncedRecord, Revision.payload).join(Revision, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.record_type == "activity", SyncedRecord.withdrawn.is_(False))
        .where(~select(FootageLink.activity_id).where(FootageLink.activity_id == SyncedRecord.id).exists())
        .order_by(SyncedRecord.created_at.desc()).limit(limit * 5))
    if unit_ids is not None:
        query = query.where(SyncedRecord.unit_id.in_(unit_ids))
    heads = s.execute(query).all()
    steps = _step_payloads([rec.id for rec, _ in heads])
    return [(rec, p or {}) for rec, p in heads if expects_footage(p or {}, steps.get(rec.id, []))][:limit]


def case_segments(case_id: uuid.UUID) -> list[tuple[FootageSegment, list[uuid.UUID]]]:
    """The segments linked to a case's activities, each with the activities it recorded."""
    rows = db.session().execute(select(FootageSegment, FootageLink.activity_id)
                                .join(FootageLink, FootageLink.segment_id == FootageSegment.id)
                                .where(FootageLink.case_id == case_id)
                                .order_by(FootageSegment.camera_serial, FootageSegment.started_at)).all()
    found: dict[uuid.UUID, tuple[FootageSegment, list[uuid.UUID]]] = {}
    for segment, activity_id in rows:
        found.setdefault(segment.id, (segment, []))[1].append(activity_id)
    return list(found.values())

