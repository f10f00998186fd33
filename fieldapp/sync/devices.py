"""Devices: a phone registers the public half of its signing key under the signed-in user."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from .. import db
from ..models import Device, User, utcnow
from .push import parse_time
from .signing import BadPublicKey, b64url_decode, load_public_key


def _clean(text: str | None, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; labels and user agents are informational, so drop it.
    return (text or "").replace("\x00", "")[:limit]


class DeviceError(Exception):
    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def register(user: User, device_id: str, public_key_b64: str, label: str = "", user_agent: str = "") -> tuple[Device, bool]:
    """Register or confirm a device; returns (device, created). Idempotent for the same key and user."""
    try:
        ident = uuid.UUID(str(device_id))
        spki = b64url_decode(str(public_key_b64))
        load_public_key(spki)
    except (ValueError, BadPublicKey) as exc:
        raise DeviceError("bad_device", 400, f"device id or public key not valid: {exc}") from None
    s = db.session()
    device = s.get(Device, ident)
    if device is not None:
        if device.user_id != user.id or device.public_key != spki:
            raise DeviceError("device_conflict", 409, "this device id is registered with another key or user")
        if device.revoked_at is not None:
            raise DeviceError("device_revoked", 403, "this device was revoked; ask your admin")
        return device, False
    device = Device(id=ident, user_id=user.id, public_key=spki, label=_clean(label, 120),
                    user_agent=_clean(user_agent, 300), last_seen_at=utcnow())
    s.add(device)
    s.flush()
    return device, True


def usable_device(user: User, device_id) -> Device:
    """The device a push or heartbeat names, if it is this user's and not revoked."""
    try:
        ident = uuid.UUID(str(device_id))
    except ValueError:
        raise DeviceError("bad_device", 400, "device_id is not a UUID") from None
    device = db.session().get(Device, ident)
    if device is None:
        raise DeviceError("unknown_device", 404, "device not registered; register it first")
    if device.user_id != user.id:
        raise DeviceError("device_not_yours", 403, "this device belongs to another user")
    if device.revoked_at is not None:
        raise DeviceError("device_revoked", 403, "this device was revoked (lost phone?); ask your admin")
    return device


@dataclass
class Heartbeat:
    app_version: str | None = None
    catalogue_version: int | None = None
    unsynced_items: int | None = None
    bytes_pending: int | None = None
    oldest_unsynced_at: datetime | None = None


def parse_heartbeat(data) -> Heartbeat:
    if not isinstance(data, dict):
        return Heartbeat()

    def intish(key, maximum=2**31 - 1):
        value = data.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum
        return value if ok else None

    parsed = parse_time(data.get("oldest_unsynced_at"))
    app_version = data.get("app_version")
    return Heartbeat(app_version=_clean(app_version, 40) if isinstance(app_version, str) else None,
                     catalogue_version=intish("catalogue_version"), unsynced_items=intish("unsynced_items"),
                     bytes_pending=intish("bytes_pending", 2**63 - 1), oldest_unsynced_at=parsed)


def apply_heartbeat(device: Device, heartbeat: Heartbeat, skew_seconds: int | None) -> None:
    device.last_seen_at = utcnow()
    device.app_version = heartbeat.app_version or device.app_version
    device.catalogue_version = heartbeat.catalogue_version
    device.unsynced_items = heartbeat.unsynced_items
    device.bytes_pending = heartbeat.bytes_pending
    device.oldest_unsynced_at = heartbeat.oldest_unsynced_at
    if skew_seconds is not None:
        device.clock_skew_seconds = skew_seconds
