"""What phones send: devices and their keys, records, and their immutable signed revisions."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, FetchedValue, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Device(Base):
    """One installation of the app on a phone, with the public half of its signing key."""

    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # made on the phone
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(512))  # SPKI DER, ECDSA P-256
    label: Mapped[str] = mapped_column(String(120), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # The latest heartbeat: what is still on the phone (the leads' pending-syncs screen reads it).
    last_seen_at: Mapped[datetime | None]
    app_version: Mapped[str | None] = mapped_column(String(40))
    catalogue_version: Mapped[int | None]
    unsynced_items: Mapped[int | None]
    bytes_pending: Mapped[int | None] = mapped_column(BigInteger)
    oldest_unsynced_at: Mapped[datetime | None]
    clock_skew_seconds: Mapped[int | None]
    # What the phone offered again after the server's epoch changed (a restore), and what it could
    # not: {epoch, at, revisions, beyond_window, lost_originals: [hash, …]} (models/backup.py).
    reoffer: Mapped[dict | None] = mapped_column(JSON)


ACTIVITY_CHILD_TYPES = ("step", "interruption", "service", "onsite_record")
"""Record types made inside an on-site activity (their parent is the activity): a step, an
interruption of recording, a service by leaving (留置送达), an on-site record (现场笔录, 询问笔录)."""


class SyncedRecord(Base):
    """A record made on a phone (case proposal, activity, step, interruption, service by leaving).
    Owned by its author; its content is the chain of revisions."""

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_unit_type", "unit_id", "record_type"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # made on the phone
    record_type: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # activity of a step, case of an activity
    case_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    head_revision: Mapped[int] = mapped_column(Integer)
    withdrawn: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Revision(Base):
    """One immutable revision exactly as the phone signed it. The (record, revision) pair is unique,
    which is what makes a retried or duplicated push harmless."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("record_id", "revision", name="uq_revisions_record_revision"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"))
    revision: Mapped[int]
    parent: Mapped[int | None]
    parent_id: Mapped[uuid.UUID | None]  # the record this one belongs to (signed with the revision)
    record_type: Mapped[str] = mapped_column(String(20))
    catalogue_version: Mapped[int] = mapped_column(ForeignKey("catalogue_versions.version"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id"), index=True)
    device_time: Mapped[str] = mapped_column(String(40))  # as the phone wrote it (it is signed)
    device_time_parsed: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # statistics: months changed since
    clock_skew_seconds: Mapped[int | None]
    clock_skew_flag: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON)
    media: Mapped[list] = mapped_column(JSON, default=list)
    withdrawn_media: Mapped[list] = mapped_column(JSON, default=list)
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical signed form
    signature: Mapped[bytes] = mapped_column(LargeBinary(128))  # raw r||s as WebCrypto made it
    missing_media: Mapped[list] = mapped_column(JSON, default=list)


class ChangeLog(Base):
    """An append-only sequence of server-side changes phones pull (cases, assignments, comments).
    Its order is (txid, id): see ``sync/feed.py`` for why the id alone is not a safe cursor."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_unit", "unit_id", "id"), Index("ix_change_log_feed", "txid", "id"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    entity: Mapped[str] = mapped_column(String(20))  # case | assignment | comment | catalogue
    entity_id: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))  # addressed to one user
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The writing transaction (PostgreSQL's pg_current_xact_id(), set by the column's server
    # default); NULL on SQLite, whose single writer commits ids in order.
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())
