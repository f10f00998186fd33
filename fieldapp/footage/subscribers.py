"""Footage's answers to domain events: a phone's camera hand-outs become the use register, and
activities arriving or changing are linked to the footage already in (fieldapp/events.py)."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import and_, select

from .. import db, events
from ..compliance.facts import parse_time
from ..models import Camera, CameraHandout, Revision, SyncedRecord
from . import linker

log = logging.getLogger(__name__)


def _heads(record_ids: Iterable[uuid.UUID]) -> list[tuple[SyncedRecord, dict]]:
    rows = db.session().execute(select(SyncedRecord, Revision.payload).join(Revision, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.id.in_(list(record_ids)),
               SyncedRecord.record_type.in_(("camera_use", "activity", "interruption")))).all()
    return [(rec, payload or {}) for rec, payload in rows]


TIME_KEYS = ("arrived_at", "departed_at", "stopped_at", "resumed_at", "taken_at", "returned_at")


def _previous_payloads(records: list[SyncedRecord]) -> dict[uuid.UUID, dict]:
    later = [r for r in records if r.head_revision > 1]
    if not later:
        return {}
    rows = db.session().execute(select(Revision.record_id, Revision.revision, Revision.payload).where(
        Revision.record_id.in_([r.id for r in later]))).all()
    heads = {r.id: r.head_revision for r in later}
    return {rid: payload or {} for rid, rev, payload in rows if rev == heads[rid] - 1}


def register_camera_use(record: SyncedRecord, payload: dict) -> CameraHandout | None:
    """The hand-out an officer logged on the phone, kept in step with its latest revision. A camera
    of another unit, or one nobody registered, is not the officer's to log (the phone offers only
    the unit's cameras): such a record stays a signed record and changes no register."""
    s = db.session()
    camera = s.execute(select(Camera).where(Camera.serial == str(payload.get("camera_serial", "")).strip(),
                                            Camera.unit_id == record.unit_id)).scalar_one_or_none()
    taken = parse_time(payload.get("taken_at"))
    row = s.execute(select(CameraHandout).where(CameraHandout.record_id == record.id)).scalar_one_or_none()
    returned = parse_time(payload.get("returned_at"))
    if camera is None or taken is None or record.withdrawn or _carried_by_another(camera, record, taken, returned):
        if row is not None:
            s.delete(row)
        return None
    if row is None:
        row = CameraHandout(camera_id=camera.id, user_id=record.author_id, source="phone", record_id=record.id,
                            created_by=record.author_id, taken_at=taken)
        s.add(row)
    row.camera_id, row.taken_at, row.returned_at = camera.id, taken, returned
    return row


def _carried_by_another(camera: Camera, record: SyncedRecord, taken, returned) -> bool:
    """Somebody else carried the camera then, by the register: a camera picked by mistake on the
    phone must not hand that officer's footage to this one (the record stays, signed, for the
    records administrator to look at)."""
    others = db.session().execute(select(CameraHandout).where(
        CameraHandout.camera_id == camera.id, CameraHandout.user_id != record.author_id,
        CameraHandout.taken_at < (returned or datetime.max.replace(tzinfo=UTC)))).scalars()
    clash = [h for h in others if h.returned_at is None or h.returned_at > taken]
    if clash:
        log.warning("camera_use %s: camera %s was carried by another officer then; not registered", record.id,
                    camera.serial)
    return bool(clash)


@events.revisions_arrived.connect
def link_after_push(_sender, record_ids) -> None:
    heads = _heads(dict.fromkeys(record_ids))
    if not heads:
        return
    units: dict[uuid.UUID, list] = {}
    previous = _previous_payloads([record for record, _ in heads])
    for record, payload in heads:
        if record.record_type == "camera_use":
            register_camera_use(record, payload)
        # The times before the change count too: links the old times made may have to go.
        times = [parse_time(p.get(k)) for p in (payload, previous.get(record.id, {})) for k in TIME_KEYS]
        units.setdefault(record.unit_id, []).extend(t for t in times if t)
    db.session().flush()
    cases: set[uuid.UUID] = set()
    for unit_id, times in units.items():
        # An activity still open has no end: relink from its start on.
        cases |= linker.relink(unit_id, min(times) if times else None, None)
    db.session().commit()
    if cases:
        events.publish(events.footage_linked, case_ids=cases)

