"""Keeping footage links current: read segments, hand-outs and activities of a unit from the
database, let :mod:`.linking` decide (pure), and write the difference.

Runs after an import or a station push (new segments), after a push of activities or camera hand-
outs from phones, and after a lead corrects the hand-out log. A lead's own link is never undone
here; automatic links follow the facts, so a corrected hand-out moves them. Every case whose
links changed is announced (``events.footage_linked``) for the compliance engine to re-check.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, select

from .. import db, events
from ..compliance.facts import parse_time
from ..models import Camera, CameraHandout, FootageLink, FootageSegment, Revision, SyncedRecord, User
from ..rules.credit_code import normalise
from .linking import ActivityWindow, Handout, SegmentWindow, link_segments

LEAD = "lead"


def tolerance() -> timedelta:
    return timedelta(seconds=current_app.config["FIELDAPP_SETTINGS"].footage_clock_tolerance_seconds)


def _cert(value) -> str:
    return normalise(str(value)) if value else ""


def activity_heads(unit_id: uuid.UUID, author_id: uuid.UUID | None = None) -> list[tuple[SyncedRecord, dict]]:
    query = (select(SyncedRecord, Revision.payload).join(Revision, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.unit_id == unit_id, SyncedRecord.record_type == "activity",
               SyncedRecord.withdrawn.is_(False)))
    if author_id is not None:
        query = query.where(SyncedRecord.author_id == author_id)
    return [(rec, payload or {}) for rec, payload in db.session().execute(query).all()]


def activity_windows(unit_id: uuid.UUID) -> tuple[list[ActivityWindow], dict[str, uuid.UUID | None]]:
    """Every activity of the unit as the linker sees it, and the case of each."""
    heads = activity_heads(unit_id)
    authors = dict(db.session().execute(select(User.id, User.cert_no).where(
        User.id.in_({rec.author_id for rec, _ in heads}))).all()) if heads else {}
    windows, cases = [], {}
    for rec, p in heads:
        start = parse_time(p.get("arrived_at"))
        if start is None:
            continue
        certs = {_cert(o.get("cert_no")) for o in p.get("officers") or [] if isinstance(o, dict)}
        certs.add(_cert(authors.get(rec.author_id)))
        cameras = {str(c.get("camera_id")).strip() for c in p.get("cameras") or []
                   if isinstance(c, dict) and c.get("camera_id")}
        windows.append(ActivityWindow(str(rec.id), start, parse_time(p.get("departed_at")),
                                      frozenset(certs - {""}), frozenset(cameras)))
        cases[str(rec.id)] = rec.case_id
    return windows, cases


def handouts(unit_id: uuid.UUID) -> list[Handout]:
    rows = db.session().execute(select(Camera.serial, User.cert_no, CameraHandout.taken_at, CameraHandout.returned_at)
                                .join(Camera, Camera.id == CameraHandout.camera_id)
                                .join(User, User.id == CameraHandout.user_id)
                                .where(Camera.unit_id == unit_id)).all()
    return [Handout(serial, _cert(cert), taken, returned) for serial, cert, taken, returned in rows]


def segment_window(segment: FootageSegment) -> SegmentWindow:
    return SegmentWindow(str(segment.id), segment.camera_serial, _cert(segment.officer_no) or None,
                         segment.started_at, segment.ended_at)


def relink(unit_id: uuid.UUID, start: datetime | None = None, end: datetime | None = None) -> set[uuid.UUID]:
    """Recompute the automatic links of the unit's segments between ``start`` and ``end`` (all of
    them when not given) inside the caller's transaction; returns the cases whose links changed."""
    s = db.session()
    query = select(FootageSegment).where(FootageSegment.unit_id == unit_id)
    slack = timedelta(days=1)
    if start is not None:
        query = query.where(FootageSegment.ended_at >= start - slack)
    if end is not None:
        query = query.where(FootageSegment.started_at <= end + slack)
    segments = list(s.execute(query).scalars())
    if not segments:
        return set()
    windows, case_of = activity_windows(unit_id)
    wanted = {(uuid.UUID(link.segment_id), uuid.UUID(link.activity_id)): link.basis
              for link in link_segments([segment_window(seg) for seg in segments], handouts(unit_id), windows,
                                        tolerance())}
    ids = [seg.id for seg in segments]
    present = {(row.segment_id, row.activity_id): row for row in s.execute(
        select(FootageLink).where(FootageLink.segment_id.in_(ids))).scalars()}
    changed: set[uuid.UUID | None] = set()
    for key, row in present.items():
        if row.basis != LEAD and key not in wanted:
            changed.add(row.case_id)
            s.execute(delete(FootageLink).where(FootageLink.segment_id == key[0], FootageLink.activity_id == key[1]))
    for (segment_id, activity_id), basis in wanted.items():
        row = present.get((segment_id, activity_id))
        case_id = case_of.get(str(activity_id))
        if row is None:
            s.add(FootageLink(segment_id=segment_id, activity_id=activity_id, case_id=case_id, basis=basis))
            changed.add(case_id)
        elif row.basis != LEAD and (row.basis != basis or row.case_id != case_id):
            changed |= {row.case_id, case_id}  # the case it left is re-checked too
            row.basis, row.case_id = basis, case_id
    s.flush()
    _note_keep_reasons(segments)
    return {c for c in changed if c}


def _note_keep_reasons(segments: list[FootageSegment]) -> None:
    """Store the facts art. 26's retention reads later: the station's important mark, footage of a
    visit where recording was obstructed, footage linked to a case."""
    s = db.session()
    ids = [seg.id for seg in segments]
    links = s.execute(select(FootageLink.segment_id, FootageLink.activity_id, FootageLink.case_id)
                      .where(FootageLink.segment_id.in_(ids))).all()
    activities = {a for _, a, _ in links}
    obstructed = set()
    if activities:
        reasons = s.execute(select(SyncedRecord.parent_id, Revision.payload).join(Revision, and_(
            Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
            .where(SyncedRecord.parent_id.in_(activities), SyncedRecord.record_type == "interruption")).all()
        obstructed = {parent for parent, payload in reasons if (payload or {}).get("reason") == "obstruction"}
    for seg in segments:
        mine = [(a, c) for sid, a, c in links if sid == seg.id]
        reasons = (["important"] if seg.important else []) + (
            ["obstruction"] if any(a in obstructed for a, _ in mine) else []) + (
            ["case"] if any(c for _, c in mine) else [])
        if reasons != list(seg.keep_reasons or []):
            seg.keep_reasons = reasons


def announce(case_ids: set[uuid.UUID]) -> None:
    """After the links' transaction committed: the compliance engine re-checks these cases."""
    if case_ids:
        events.publish(events.footage_linked, case_ids=set(case_ids))


def relink_and_announce(unit_ids: Iterable[uuid.UUID], start: datetime | None = None,
                        end: datetime | None = None) -> set[uuid.UUID]:
    cases: set[uuid.UUID] = set()
    for unit_id in set(unit_ids):
        with db.transaction():
            cases |= relink(unit_id, start, end)
    announce(cases)
    return cases
