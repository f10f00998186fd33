"""Devices: a phone registers the public half of its signing key under the signed-in user."""
from __future__ import annotations

import re
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
    reoffer: dict | None = None


# What a phone reports of its re-offer after the server's epoch changed (capture/epoch.js).
MAX_LOST_ORIGINALS = 500
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_COUNTS = ("revisions", "beyond_window")
_OPTIONAL_COUNTS = ("records", "lost_originals_total")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31 - 1


def parse_reoffer(data) -> dict | None:
    """The phone's report of what it offered again after a restore, checked strictly: the epoch it
    saw (a string of at most 40 characters), when, how many revisions it offered again and how many
    acknowledged ones were older than the window, and the originals it no longer holds (at most 500
    SHA-256 hashes, lower-case hex). Anything else is None: a malformed report is ignored, never a
    reason to refuse the heartbeat."""
    if not isinstance(data, dict):
        return None
    epoch, lost = data.get("epoch"), data.get("lost_originals")
    at = parse_time(data.get("at"))
    if not isinstance(epoch, str) or not 0 < len(epoch) <= 40 or "\x00" in epoch or at is None:
        return None
    if not all(_count(data.get(key)) for key in _COUNTS):
        return None
    if not all(data.get(key) is None or _count(data.get(key)) for key in _OPTIONAL_COUNTS):
        return None
    if not isinstance(lost, list) or len(lost) > MAX_LOST_ORIGINALS:
        return None
    if not all(isinstance(h, str) and _SHA256_HEX.fullmatch(h) for h in lost):
        return None
    report = {"epoch": epoch, "at": at.isoformat(), **{key: data[key] for key in _COUNTS},
              "lost_originals": list(dict.fromkeys(lost))}
    report.update({key: data[key] for key in _OPTIONAL_COUNTS if data.get(key) is not None})
    return report


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
                     bytes_pending=intish("bytes_pending", 2**63 - 1), oldest_unsynced_at=parsed,
                     reoffer=parse_reoffer(data.get("reoffer")))


def apply_heartbeat(device: Device, heartbeat: Heartbeat, skew_seconds: int | None) -> None:
    device.last_seen_at = utcnow()
    device.app_version = heartbeat.app_version or device.app_version
    device.catalogue_version = heartbeat.catalogue_version
    device.unsynced_items = heartbeat.unsynced_items
    device.bytes_pending = heartbeat.bytes_pending
    device.oldest_unsynced_at = heartbeat.oldest_unsynced_at
    if skew_seconds is not None:
        device.clock_skew_seconds = skew_seconds
    # The last re-offer the phone reports stays until it reports another (a heartbeat without one,
    # or with a malformed one, leaves it as it was).
    if heartbeat.reoffer is not None and heartbeat.reoffer != device.reoffer:
        device.reoffer = heartbeat.reoffer
