"""The lead's first screen: what is still on officers' phones, and which synced records still
wait for their originals — sorted past art. 25's 24-hour deadline first, then by the age of the
oldest unsynced item, then by bytes pending.

It reads the heartbeats the phones report (one row per device) and only the media references
still waiting for their original (an index on (unit, author, original_stored)), so it stays fast
however many media a unit has stored.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .. import db
from ..models import Device, MediaRef, User

UPLOAD_DEADLINE = timedelta(hours=24)  # art. 25: the same day or within 24 hours


@dataclass
class PendingRow:
    user_id: uuid.UUID
    user_name: str
    device_id: uuid.UUID | None
    device_label: str
    last_seen_at: datetime | None
    unsynced_items: int
    bytes_pending: int
    oldest_unsynced_at: datetime | None
    records_missing_originals: int
    originals_missing: int
    past_deadline: bool


def pending_syncs(unit_ids: frozenset[uuid.UUID] | None, now: datetime, limit: int = 500) -> list[PendingRow]:
    s = db.session()
    devices = select(Device, User).join(User, User.id == Device.user_id).where(Device.revoked_at.is_(None))
    missing = (select(MediaRef.author_id, func.count(func.distinct(MediaRef.record_id)), func.count())
               .where(MediaRef.original_stored.is_(False)).group_by(MediaRef.author_id))
    if unit_ids is not None:
        devices = devices.where(User.unit_id.in_(unit_ids))
        missing = missing.where(MediaRef.unit_id.in_(unit_ids))
    waiting = {author: (records, count) for author, records, count in s.execute(missing)}
    rows: list[PendingRow] = []
    seen_users = set()
    for device, user in s.execute(devices.limit(limit)):
        records, count = waiting.get(user.id, (0, 0)) if user.id not in seen_users else (0, 0)
        seen_users.add(user.id)
        rows.append(_row(user, device, records, count, now))
    for author_id in set(waiting) - seen_users:  # waiting originals, but no device heard from
        user = s.get(User, author_id)
        if user is not None:
            rows.append(_row(user, None, *waiting[author_id], now))
    rows = [r for r in rows if r.unsynced_items or r.bytes_pending or r.originals_missing or r.last_seen_at]
    rows.sort(key=lambda r: (not r.past_deadline,
                             r.oldest_unsynced_at or datetime.max.replace(tzinfo=now.tzinfo),
                             -r.bytes_pending))
    return rows


def _row(user: User, device: Device | None, records: int, count: int, now: datetime) -> PendingRow:
    oldest = device.oldest_unsynced_at if device else None
    unsynced = (device.unsynced_items or 0) if device else 0
    return PendingRow(user.id, user.name, device.id if device else None, (device.label if device else "")[:60],
                      device.last_seen_at if device else None, unsynced,
                      (device.bytes_pending or 0) if device else 0, oldest, records, count,
                      past_deadline=bool(oldest and unsynced and now - oldest > UPLOAD_DEADLINE))
