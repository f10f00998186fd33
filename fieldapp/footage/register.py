"""The use register of body cameras (art. 7) and the station accounts: who may change them, and
the checks every change passes. Views and the CLI call these; each raises :class:`RegisterError`
with a code and a message a person can act on."""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy import and_, select

from .. import db
from ..models import Camera, CameraHandout, Revision, Station, SyncedRecord, User, utcnow

SERIAL = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,39}$")
TOKEN_PREFIX = "fst_"


class RegisterError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# ----------------------------------------------------------------------------------- cameras

def add_camera(unit_id: uuid.UUID, serial: str, label: str, by: uuid.UUID | None) -> Camera:
    serial = (serial or "").strip()
    if not SERIAL.match(serial):
        raise RegisterError("bad_serial", "产品序号只含字母、数字、- 和 _，最长 40 位 / The serial (产品序号) is letters, "
                                          "digits, - and _, at most 40 characters")
    s = db.session()
    if s.execute(select(Camera).where(Camera.serial == serial)).scalar_one_or_none() is not None:
        raise RegisterError("duplicate_serial", f"执法记录仪 {serial} 已登记 / Camera {serial} is already registered")
    camera = Camera(serial=serial, unit_id=unit_id, label=(label or "").strip()[:80], created_by=by)
    s.add(camera)
    s.flush()
    return camera


def unit_cameras(unit_id: uuid.UUID) -> list[Camera]:
    return list(db.session().execute(select(Camera).where(Camera.unit_id == unit_id)
                                     .order_by(Camera.serial)).scalars())


def carried_now(camera_ids: list[uuid.UUID], at: datetime | None = None) -> dict[uuid.UUID, tuple[CameraHandout, User]]:
    """Who carries each camera at ``at`` (now): the latest hand-out begun by then and not returned."""
    at = at or utcnow()
    rows = db.session().execute(select(CameraHandout, User).join(User, User.id == CameraHandout.user_id)
                                .where(CameraHandout.camera_id.in_(camera_ids), CameraHandout.taken_at <= at)
                                .order_by(CameraHandout.taken_at)).all()
    current = {}
    for handout, user in rows:
        if handout.returned_at is None or handout.returned_at > at:
            current[handout.camera_id] = (handout, user)
        else:
            current.pop(handout.camera_id, None)
    return current


def hand_out(camera: Camera, user: User, taken_at: datetime, returned_at: datetime | None,
             by: uuid.UUID | None) -> CameraHandout:
    if user.unit_id != camera.unit_id:
        raise RegisterError("other_unit", "只能登记本单位人员领用本单位执法记录仪 / A camera is handed out only to an "
                                          "officer of its own unit")
    if returned_at is not None and returned_at <= taken_at:
        raise RegisterError("bad_times", "归还时间须晚于领用时间 / The return must come after the hand-out")
    overlapping = [h for h in db.session().execute(select(CameraHandout).where(
        CameraHandout.camera_id == camera.id)).scalars()
        if h.taken_at < (returned_at or datetime.max.replace(tzinfo=taken_at.tzinfo))
        and (h.returned_at is None or h.returned_at > taken_at) and h.user_id != user.id]
    if overlapping:
        raise RegisterError("camera_carried", "该时段此执法记录仪已由他人领用，请先登记归还 / Somebody else carried this "
                                              "camera then; record its return first")
    row = CameraHandout(camera_id=camera.id, user_id=user.id, taken_at=taken_at, returned_at=returned_at,
                        source="register", created_by=by)
    db.session().add(row)
    db.session().flush()
    return row


def return_camera(handout: CameraHandout, returned_at: datetime) -> None:
    if returned_at <= handout.taken_at:
        raise RegisterError("bad_times", "归还时间须晚于领用时间 / The return must come after the hand-out")
    handout.returned_at = returned_at


def unregistered_phone_handouts(unit_ids: list[uuid.UUID]) -> list[tuple[SyncedRecord, dict, User]]:
    """Hand-outs officers logged on their phones that the register did not take: a camera nobody
    registered in the unit, or one somebody else carried then. The records administrator settles them."""
    s = db.session()
    rows = s.execute(select(SyncedRecord, Revision.payload, User)
                     .join(Revision, and_(Revision.record_id == SyncedRecord.id,
                                          Revision.revision == SyncedRecord.head_revision))
                     .join(User, User.id == SyncedRecord.author_id)
                     .outerjoin(CameraHandout, CameraHandout.record_id == SyncedRecord.id)
                     .where(SyncedRecord.record_type == "camera_use", SyncedRecord.withdrawn.is_(False),
                            SyncedRecord.unit_id.in_(unit_ids), CameraHandout.id.is_(None))
                     .order_by(SyncedRecord.created_at.desc()).limit(200)).all()
    return [(record, payload or {}, user) for record, payload, user in rows]


# ----------------------------------------------------------------------------------- stations

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_station(unit_id: uuid.UUID, name: str, part_of_storage: bool, by: uuid.UUID | None) -> tuple[Station, str]:
    """A new station account and its token, shown once: only the hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise RegisterError("bad_name", "采集站名称为 1–80 个字 / A station name is 1–80 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    station = Station(name=name, unit_id=unit_id, token_hash=token_hash(token), part_of_storage=part_of_storage,
                      created_by=by)
    db.session().add(station)
    db.session().flush()
    return station, token


def station_for_token(token: str) -> Station | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    station = db.session().execute(select(Station).where(Station.token_hash == token_hash(token))).scalar_one_or_none()
    return station if station is not None and station.revoked_at is None else None


def revoke_station(station: Station, by: uuid.UUID | None) -> None:
    if station.revoked_at is None:
        station.revoked_at, station.revoked_by = utcnow(), by
