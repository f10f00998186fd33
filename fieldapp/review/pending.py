"""The lead's first screen: what is still on officers' phones, and which synced records still
wait for their originals — sorted past art. 25's 24-hour deadline first, then by the age of the
oldest unsynced item, then by bytes pending.

Two sources, and the server's own wins where it knows better:
- what the server holds: the originals it still lacks, per phone that referenced them (only the
  few media references still waiting are read — an index on (unit, author, original_stored)), and
  what each phone delivered since its last heartbeat (read from the originals stored since, by
  their indexed storing time, not from every reference the phones ever made);
- the phone's last heartbeat: what it had not sent when it last reported. A heartbeat is counted on
  the phone before the push or upload that follows it, so whatever arrived afterwards is taken off
  its figures; otherwise a phone that has sent everything would still show "1 item · 3.9 MB".

Only phones that pushed records, or report something waiting, are listed: a lead's desk browser
that opened the app but never captured is not a phone with work on it. A lead who also captures on
a phone is listed for that phone. Phones are named by model and owner, not by raw User-Agent.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from .. import db
from ..i18n import parse_when
from ..models import Device, Media, MediaRef, Revision, Unit, User
from .device_names import device_name

UPLOAD_DEADLINE = timedelta(hours=24)  # art. 25: the same day or within 24 hours
# A push carries a heartbeat counted before the push left the phone, and the server applies it just
# after storing the push's revisions: those revisions, received this close before the heartbeat,
# were in its count. (Exact once the push applies its heartbeat net of what it stored.)
SAME_PUSH = timedelta(seconds=2)


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
    bytes_missing: int = 0  # originals the server lacks from this phone, by their declared size
    app_version: str | None = None  # the release the phone last reported (releases.toml)


def _per_device(stmt) -> dict:
    return {row[0]: tuple(row[1:]) for row in db.session().execute(stmt)}


def pending_syncs(unit_ids: frozenset[uuid.UUID] | None, now: datetime, limit: int = 500,
                  zh: bool = True) -> list[PendingRow]:
    s = db.session()
    stmt = select(Device, User).join(User, User.id == Device.user_id).where(Device.revoked_at.is_(None))
    if unit_ids is not None:
        stmt = stmt.where(User.unit_id.in_(unit_ids))
    devices = s.execute(stmt.limit(limit)).all()
    ids = [d.id for d, _ in devices]
    if not ids:
        return []
    pushed = set(s.execute(select(Revision.device_id).where(Revision.device_id.in_(ids)).distinct()).scalars())
    by_device = [Revision.device_id.in_(ids)]
    # Originals the server still lacks, by the phone whose revision referenced them.
    ref_join = and_(Revision.record_id == MediaRef.record_id, Revision.revision == MediaRef.revision)
    media_join = and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash)
    # Read through the index on (unit, author, original_stored): a reference carries the unit its
    # author was in when it was pushed, so every unit is named (an officer who moved keeps theirs).
    every_unit = list(s.execute(select(Unit.id)).scalars())
    waiting = _per_device(
        select(Revision.device_id, func.count(func.distinct(MediaRef.record_id)), func.count(func.distinct(MediaRef.hash)),
               func.coalesce(func.sum(Media.size), 0))
        .join(Revision, ref_join).outerjoin(Media, media_join)
        .where(MediaRef.original_stored.is_(False), MediaRef.unit_id.in_(every_unit),
               MediaRef.author_id.in_({u.id for _d, u in devices}), *by_device).group_by(Revision.device_id))
    heard = {d.id: d.last_seen_at for d, _ in devices if d.last_seen_at is not None}
    arrived = _arrived_since_heartbeat(heard)
    rows = []
    for device, user in devices:
        records, originals, missing_bytes = waiting.get(device.id, (0, 0, 0))
        revisions_after, originals_after, bytes_after = arrived.get(device.id, (0, 0, 0))
        unsynced = max(0, (device.unsynced_items or 0) - revisions_after - originals_after)
        bytes_pending = max(0, (device.bytes_pending or 0) - bytes_after)
        if device.id not in pushed and not unsynced:
            continue
        oldest = parse_when(device.oldest_unsynced_at) if unsynced else None
        label = device_name(device.user_agent or device.label, zh=zh) or (device.label or "")[:60]
        rows.append(PendingRow(user.id, user.name, device.id, label, device.last_seen_at, unsynced, bytes_pending,
                               oldest, records, originals,
                               past_deadline=bool(oldest and now - oldest > UPLOAD_DEADLINE),
                               bytes_missing=int(missing_bytes or 0), app_version=device.app_version))
    rows.sort(key=lambda r: (not r.past_deadline, r.oldest_unsynced_at or datetime.max.replace(tzinfo=now.tzinfo),
                             -r.bytes_pending, r.user_name))
    return rows


def _arrived_since_heartbeat(heard: dict[uuid.UUID, datetime]) -> dict[uuid.UUID, tuple[int, int, int]]:
    """Per phone: revisions received, and originals stored (count, bytes), after its last heartbeat
    was counted on the phone. Few rows: only what came after the latest heartbeat."""
    if not heard:
        return {}
    s = db.session()
    out: dict[uuid.UUID, list[int]] = {}
    # One indexed range per phone (revisions are indexed by device): only what came after.
    after = or_(*(and_(Revision.device_id == d, Revision.received_at >= at - SAME_PUSH) for d, at in heard.items()))
    for device_id in s.execute(select(Revision.device_id).where(after)).scalars():
        out.setdefault(device_id, [0, 0, 0])[0] += 1
    seen = set()
    for device_id, digest, size in _stored_after(heard):
        if (device_id, digest) in seen:
            continue
        seen.add((device_id, digest))
        counts = out.setdefault(device_id, [0, 0, 0])
        counts[1] += 1
        counts[2] += size or 0
    return {k: tuple(v) for k, v in out.items()}


# Phones heard from within this long are matched from the originals stored since (by the indexed
# storing time); a phone silent for longer, by its own revisions, not every original stored since.
RECENTLY_HEARD = timedelta(days=7)


def _stored_after(heard: dict[uuid.UUID, datetime]) -> list[tuple[uuid.UUID, str, int | None]]:
    """(phone, hash, size) of each original stored after the phone's heartbeat that one of its
    revisions references. Starting from the phones' revisions reads every reference they ever made
    (a few thousand per phone, each with a lookup in the media table); starting from what was
    stored since the earliest recent heartbeat reads only the new originals."""
    s = db.session()
    newest = max(heard.values())
    recent = {d: at for d, at in heard.items() if newest - at <= RECENTLY_HEARD}
    silent = {d: at for d, at in heard.items() if d not in recent}
    found = []
    if recent:
        # hash IN (what was stored since): SQLite and PostgreSQL read the new originals by their
        # storing time, then each one's references; the phones' own filter is applied after.
        new = select(Media.hash).where(Media.original_at > min(recent.values()))
        rows = s.execute(select(Revision.device_id, Media.hash, Media.size, Media.original_at)
                         .select_from(MediaRef)
                         .join(Revision, and_(Revision.record_id == MediaRef.record_id,
                                              Revision.revision == MediaRef.revision))
                         .join(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
                         .where(MediaRef.hash.in_(new), Revision.device_id.in_(list(recent))))
        found += [(device_id, digest, size) for device_id, digest, size, at in rows if at > recent[device_id]]
    if silent:
        stored_after = or_(*(and_(Revision.device_id == d, Media.original_at > at) for d, at in silent.items()))
        found += s.execute(select(Revision.device_id, Media.hash, Media.size)
                           .join(MediaRef, and_(Revision.record_id == MediaRef.record_id,
                                                Revision.revision == MediaRef.revision))
                           .join(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
                           .where(stored_after).distinct()).all()
    return found
