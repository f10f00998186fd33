"""What a restore could not bring back, listed for the records administrator (never hidden).

After a restore the database holds what the backup held. What phones were told was 已同步 after the
backup returns when each phone offers it again (``capture/epoch.js``); until a phone has done so,
anything it sent after the backup is at risk, and what it can no longer offer (acknowledged before
its keep window, or originals whose bytes it already released) is lost unless another copy exists.
This module works that out per device from what the phones reported (``Device.reoffer``).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from .. import db
from ..models import BackupRun, Device, Media, MediaRef, Revision, ServerEpoch, SyncedRecord, User


@dataclass
class LostOriginal:
    hash: str
    records: list[SyncedRecord]
    recovered: bool  # another phone (or a later upload) brought it back


@dataclass
class DeviceState:
    device: Device
    user: User
    state: str  # reoffered | not_heard
    last_contact: datetime | None = None  # the last the restored database knows of: before the backup
    revisions: int = 0
    beyond_window: int = 0
    lost: list[LostOriginal] = field(default_factory=list)


@dataclass
class Recovery:
    epoch: ServerEpoch | None
    restores: list[ServerEpoch]
    backups: list[BackupRun]
    devices: list[DeviceState]

    @property
    def open_items(self) -> int:
        return sum(1 for d in self.devices if d.state == "not_heard") + sum(
            d.beyond_window + sum(1 for lost in d.lost if not lost.recovered) for d in self.devices)


def recovery(unit_id: uuid.UUID, *, backups: int = 10) -> Recovery:
    s = db.session()
    restores = list(s.execute(select(ServerEpoch).order_by(ServerEpoch.seq.desc())).scalars())
    runs = list(s.execute(select(BackupRun).order_by(BackupRun.started_at.desc()).limit(backups)).scalars())
    epoch = restores[0] if restores else None
    devices: list[DeviceState] = []
    if epoch is not None:
        rows = s.execute(select(Device, User).join(User, User.id == Device.user_id)
                         .where(User.unit_id == unit_id, Device.revoked_at.is_(None))
                         .order_by(User.name, Device.registered_at)).all()
        last_push = dict(s.execute(select(Revision.device_id, func.max(Revision.received_at))
                                   .where(Revision.device_id.in_([d.id for d, _ in rows]))
                                   .group_by(Revision.device_id)).all()) if rows else {}
        for device, user in rows:
            devices.append(_state(device, user, epoch, last_push.get(device.id), unit_id))
    return Recovery(epoch=epoch, restores=restores, backups=runs, devices=devices)


def _state(device: Device, user: User, epoch: ServerEpoch, last_push: datetime | None, unit_id) -> DeviceState:
    report = device.reoffer if isinstance(device.reoffer, dict) else {}
    if report.get("epoch") == str(epoch.id):
        hashes = [h for h in report.get("lost_originals") or [] if isinstance(h, str)]
        return DeviceState(device, user, "reoffered", revisions=int(report.get("revisions") or 0),
                           beyond_window=int(report.get("beyond_window") or 0), lost=_lost(hashes, unit_id))
    # Until the phone reports for this epoch it is at risk, whatever the restored rows say: they
    # only know its contacts up to the backup, and it may well have synced after it.
    contacts = [_aware(x) for x in (device.last_seen_at, last_push) if x is not None]
    return DeviceState(device, user, "not_heard", last_contact=max(contacts) if contacts else None)


def _aware(value: datetime) -> datetime:
    from datetime import UTC
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _lost(hashes: list[str], unit_id) -> list[LostOriginal]:
    """Each original a phone could not offer again: the unit's records that name it, and whether
    the server holds it now (another phone, or a later upload, brought it back)."""
    if not hashes:
        return []
    s = db.session()
    held = set(s.execute(select(Media.hash).where(Media.alg == "sha-256", Media.hash.in_(hashes),
                                                  Media.original_at.is_not(None))).scalars())
    named: dict[str, list[SyncedRecord]] = {}
    for digest, record in s.execute(select(MediaRef.hash, SyncedRecord)
                                    .join(SyncedRecord, MediaRef.record_id == SyncedRecord.id)
                                    .where(MediaRef.hash.in_(hashes), SyncedRecord.unit_id == unit_id)):
        named.setdefault(digest, []).append(record)
    return [LostOriginal(hash=h, records=named.get(h, [])[:20], recovered=h in held) for h in hashes]
