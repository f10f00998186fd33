"""Which media of a record the server holds, for display: preview made by the server, the phone's
preview, or nothing yet; original stored or still pending."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from .. import db
from ..models import Media, MediaRef, SyncedRecord


@dataclass(frozen=True)
class MediaView:
    alg: str
    hash: str
    declared_type: str | None
    mime: str | None
    kind: str | None
    size: int | None
    original: bool
    preview: str | None  # "preview" (the server's), "phone-preview", or None
    flags: tuple[str, ...]
    taken_at: object
    taken_at_zone_assumed: bool | None
    lat_e6: int | None = None
    lon_e6: int | None = None


def media_of_head(record: SyncedRecord) -> list[MediaView]:
    rows = db.session().execute(
        select(MediaRef.alg, MediaRef.hash, Media)
        .outerjoin(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
        .where(MediaRef.record_id == record.id, MediaRef.revision == record.head_revision)
        .order_by(MediaRef.hash)).all()
    out = []
    for alg, digest, media in rows:
        if media is None:
            out.append(MediaView(alg, digest, None, None, None, None, False, None, (), None, None))
            continue
        preview = "preview" if "preview" in (media.previews or []) else (
            "phone-preview" if media.phone_preview_at else None)
        out.append(MediaView(alg, digest, media.declared_type, media.mime, media.kind, media.size,
                             media.original_at is not None, preview, tuple(media.flags or []), media.taken_at,
                             media.taken_at_zone_assumed, media.lat_e6, media.lon_e6))
    return out


def pending_originals_by_record(record_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """For each record: how many originals its head revision references that are not stored."""
    if not record_ids:
        return {}
    rows = db.session().execute(
        select(MediaRef.record_id, func.count())
        .join(SyncedRecord, and_(SyncedRecord.id == MediaRef.record_id,
                                 SyncedRecord.head_revision == MediaRef.revision))
        .outerjoin(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
        .where(MediaRef.record_id.in_(record_ids), Media.original_at.is_(None))
        .group_by(MediaRef.record_id)).all()
    return dict(rows)
