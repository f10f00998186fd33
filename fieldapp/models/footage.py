"""Body cameras, who carried them, the stations that collect their footage, and the footage itself.

A segment is one file a collection station copied off a camera. Its bytes are an original in media
storage like every other (by SHA-256, SM3 kept beside it); the segment row says what the station
said of it (camera, officer, times, hashes, the "important file" mark) and what fieldapp found in
the container. Links tie segments to the activities they recorded, by camera and time.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class Camera(Base):
    """A body camera (执法记录仪) of a unit, known by its product serial (产品序号, GA/T 947)."""

    __tablename__ = "cameras"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), index=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CameraHandout(Base):
    """Who carried a camera from when to when (the use register of art. 7). Written by the records
    administrator, or made from a signed ``camera_use`` record an officer logged on the phone."""

    __tablename__ = "camera_handouts"
    __table_args__ = (Index("ix_camera_handouts_camera_taken", "camera_id", "taken_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    camera_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cameras.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    taken_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(10), default="register")  # register | phone
    record_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)  # the phone's camera_use record
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Station(Base):
    """A collection station (采集站) that pushes footage over the API with its own token, scoped to
    its unit. Only the token's hash is stored; revoking it refuses the next request."""

    __tablename__ = "stations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Art. 25: where the station itself is part of the dedicated storage, a file is "stored" when the
    # station collected it; otherwise when it reached fieldapp.
    part_of_storage: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]


class FootageSegment(Base):
    """One footage file. Identical bytes are one segment (the hash is unique), which is what makes
    ingesting the same export twice change nothing."""

    __tablename__ = "footage_segments"
    __table_args__ = (UniqueConstraint("alg", "hash", name="uq_footage_segments_alg_hash"),
                      Index("ix_footage_segments_camera_start", "camera_serial", "started_at"),
                      Index("ix_footage_segments_unit_start", "unit_id", "started_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alg: Mapped[str] = mapped_column(String(16), default="sha-256")
    hash: Mapped[str] = mapped_column(String(128))
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    camera_serial: Mapped[str] = mapped_column(String(40))
    camera_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cameras.id"))  # None: not registered
    officer_no: Mapped[str] = mapped_column(String(40), default="")
    unit_code: Mapped[str] = mapped_column(String(32), default="")
    file_name: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    collected_at: Mapped[datetime | None]
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    station_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stations.id"))
    source: Mapped[str] = mapped_column(String(10))  # import | station
    station_md5: Mapped[str | None] = mapped_column(String(32))
    station_sm3: Mapped[str | None] = mapped_column(String(64))
    important: Mapped[bool] = mapped_column(default=False)  # the station's 重要文件 mark
    # What the container itself says, and what disagreed with the station (flagged, never resolved).
    container_duration_s: Mapped[float | None] = mapped_column(Float)
    container_started_at: Mapped[datetime | None]
    flags: Mapped[list] = mapped_column(JSON, default=list)
    probe_error: Mapped[str | None] = mapped_column(Text)
    previews: Mapped[list] = mapped_column(JSON, default=list)  # poster | preview, once made
    # Facts the retention work reads (art. 26): important mark, obstruction, case evidence.
    keep_reasons: Mapped[list] = mapped_column(JSON, default=list)


class FootageLink(Base):
    """A segment recorded an activity: found by camera and time, or tapped by a lead."""

    __tablename__ = "footage_links"
    __table_args__ = (Index("ix_footage_links_activity", "activity_id"),)

    segment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("footage_segments.id"), primary_key=True)
    activity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"), primary_key=True)
    case_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    basis: Mapped[str] = mapped_column(String(20))  # camera_declared | handout | station_officer | lead
    linked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # statistics: months changed since
