"""Media known by their hash: what the server holds of each, which revisions reference them, and
the resumable uploads bringing their bytes."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Media(Base):
    """One media file by (algorithm, hash). The row exists as soon as anything about the file is
    known (a phone preview may come first); ``original_at`` is set only once the original's bytes
    were verified against the hash and stored. Until then the file's originals are pending."""

    __tablename__ = "media"

    alg: Mapped[str] = mapped_column(String(16), primary_key=True)
    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    declared_type: Mapped[str | None] = mapped_column(String(100))  # what the phone said
    mime: Mapped[str | None] = mapped_column(String(100))  # what the bytes are
    kind: Mapped[str | None] = mapped_column(String(10))  # image | video | audio
    original_at: Mapped[datetime | None] = mapped_column(index=True)  # statistics: months changed since
    phone_preview_at: Mapped[datetime | None]
    previews: Mapped[list] = mapped_column(JSON, default=list)  # derivatives the server made
    width: Mapped[int | None]
    height: Mapped[int | None]
    # Frames of an animation (GIF, animated PNG or WebP), 1 for a still; None for other types or a
    # GIF too large to count cheaply.
    frames: Mapped[int | None]
    flags: Mapped[list] = mapped_column(JSON, default=list)
    taken_at: Mapped[datetime | None]
    taken_at_zone_assumed: Mapped[bool | None]  # EXIF gave no offset: read as Asia/Shanghai
    lat_e6: Mapped[int | None]
    lon_e6: Mapped[int | None]
    gps_accuracy_m: Mapped[int | None]
    camera_make: Mapped[str | None] = mapped_column(String(100))
    camera_model: Mapped[str | None] = mapped_column(String(100))
    # SM3 (GB/T 32905) of the original, computed as it was stored: the national hash an evidence
    # package lists beside SHA-256 (NULL for files stored before it was kept).
    sm3: Mapped[str | None] = mapped_column(String(64))
    orientation: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaRef(Base):
    """A revision's reference to a media file: how a record finds its media, how a lead's unit is
    allowed to see a file, and how "originals pending" is answered with one indexed join."""

    __tablename__ = "media_refs"
    __table_args__ = (Index("ix_media_refs_media", "alg", "hash"),
                      Index("ix_media_refs_unit", "unit_id", "record_id"),
                      Index("ix_media_refs_pending", "unit_id", "author_id", "original_stored"),
                      # Only the few references still waiting: the pending-syncs screen of a viewer
                      # who sees every unit reads these, not every reference ever made.
                      Index("ix_media_refs_waiting", "unit_id", "author_id", "record_id",
                            sqlite_where=text("original_stored IS 0"),
                            postgresql_where=text("original_stored IS false")))

    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), primary_key=True)
    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    # Kept in step with media.original_at, so that "originals pending" per officer reads only the
    # few references still waiting (a partial index on PostgreSQL), not every reference ever made.
    original_stored: Mapped[bool] = mapped_column(default=False)


class MediaUpload(Base):
    """A resumable upload. Its bytes and offset live in media storage (every host reaches them);
    this row says who began it, what the first bytes were (for type checks from any host) and
    when it completed."""

    __tablename__ = "media_uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    declared_type: Mapped[str | None] = mapped_column(String(100))
    # A phone's user, or a collection station pushing footage (never both).
    began_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    station_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stations.id"))
    began_at: Mapped[datetime] = mapped_column(default=utcnow)
    head: Mapped[bytes | None] = mapped_column(LargeBinary(65536))
    completed_at: Mapped[datetime | None]


class MediaUploadChunk(Base):
    """Every chunk the server accepted, as a byte range: the audit of how an original arrived,
    and the proof that no byte range was stored twice."""

    __tablename__ = "media_upload_chunks"
    __table_args__ = (Index("ix_media_upload_chunks_upload", "upload_id", "start"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    upload_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media_uploads.id"))
    start: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    station_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stations.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
