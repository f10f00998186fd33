"""Re-checking stored revisions: rebuild each signed envelope from the database, canonicalise it
again and verify the device's signature, so an edit made directly in the database is caught."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from .. import db
from ..models import Device, Revision
from .signing import NotCanonicalizable, canonical_bytes, load_public_key, verify


@dataclass
class Finding:
    record_id: str
    revision: int
    problem: str


def envelope_of(revision: Revision) -> dict:
    return {
        "record_id": str(revision.record_id),
        "record_type": revision.record_type,
        "revision": revision.revision,
        "parent": revision.parent,
        "parent_id": str(revision.parent_id) if revision.parent_id else None,
        "catalogue_version": revision.catalogue_version,
        "author": str(revision.author_id),
        "device_id": str(revision.device_id),
        "device_time": revision.device_time,
        "reason": revision.reason,
        "payload": revision.payload,
        "media": revision.media,
        "withdrawn_media": revision.withdrawn_media,
    }


def check_all(batch_size: int = 500) -> Iterator[Finding | int]:
    """Yield a Finding per bad revision; finally yield the count of revisions checked."""
    s = db.session()
    keys = {d.id: load_public_key(d.public_key) for d in s.execute(select(Device)).scalars()}
    checked, last_seq = 0, 0
    while True:
        rows = s.execute(
            select(Revision).where(Revision.seq > last_seq).order_by(Revision.seq).limit(batch_size)
        ).scalars().all()
        if not rows:
            break
        for revision in rows:
            last_seq = revision.seq
            checked += 1
            key = keys.get(revision.device_id)
            try:
                ok = key is not None and verify(key, revision.signature, canonical_bytes(envelope_of(revision)))
            except NotCanonicalizable as exc:
                yield Finding(str(revision.record_id), revision.revision, f"content cannot be canonicalised: {exc}")
                continue
            if not ok:
                yield Finding(str(revision.record_id), revision.revision,
                              "signature does not match the stored content")
        s.expunge_all()
    yield checked
