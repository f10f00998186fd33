"""What leads do with synced work: assignments, reviews, findings, deadlines, interruption
reports, the register of originals opened, and the working-day calendar."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class CaseAssignment(Base):
    """An officer assigned to a case; phones learn of it on their next pull."""

    __tablename__ = "case_assignments"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    assigned_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseStage(Base):
    """A stage of a case the lead marked done (its documents checklist is then checked)."""

    __tablename__ = "case_stages"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class RecordReview(Base):
    """The current review state of an activity (one row per activity record)."""

    __tablename__ = "record_reviews"
    __table_args__ = (Index("ix_record_reviews_queue", "unit_id", "state", "updated_at"),)

    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(12))  # awaiting | returned | approved
    # What the last decision saw: a change to any record of the activity after it re-opens review.
    decided_fingerprint: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewEvent(Base):
    """The review history, append-only: approvals, returns with comments, re-openings."""

    __tablename__ = "review_events"
    __table_args__ = (Index("ix_review_events_record", "record_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    action: Mapped[str] = mapped_column(String(12))  # approved | returned | reopened
    comment: Mapped[str | None] = mapped_column(Text)
    by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Finding(Base):
    """One breach of a rule found by the compliance engine, open until the facts change."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_findings_case_key"),
                      Index("ix_findings_unit_open", "unit_id", "resolved_at", "severity"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    record_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    rule_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(200))  # rule + subject: stable across re-evaluations
    severity: Mapped[str] = mapped_column(String(10))
    article: Mapped[str] = mapped_column(String(200))
    blocks_archiving: Mapped[bool] = mapped_column(default=False)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class FindingException(Base):
    """A lead's recorded decision to accept an open finding as an exception (append-only).

    It covers the finding only as it stood when accepted (``fingerprint`` of its detail): when the
    facts behind the finding change, the finding blocks again until a lead decides anew. The
    finding itself stays open and visible, with who accepted it and why."""

    __tablename__ = "finding_exceptions"
    __table_args__ = (Index("ix_finding_exceptions_case", "case_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    finding_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("findings.id"), index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseDeadline(Base):
    """A deadline running on a case (art. 25, 行政处罚法 art. 56, 行政强制法 art. 25)."""

    __tablename__ = "case_deadlines"
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_case_deadlines_case_key"),
                      Index("ix_case_deadlines_unit_due", "unit_id", "met_at", "due_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    key: Mapped[str] = mapped_column(String(200))
    rule_id: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    met_at: Mapped[datetime | None]
    warnings: Mapped[list] = mapped_column(JSON, default=list)


class InterruptionReport(Base):
    """A "cannot continue" report (art. 9): seen and acknowledged by the lead, the written
    explanation tracked until the officer supplies it."""

    __tablename__ = "interruption_reports"
    __table_args__ = (Index("ix_interruption_reports_unit", "unit_id", "acknowledged_at"),)

    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[uuid.UUID | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    explanation_at: Mapped[datetime | None]


class OriginalAccess(Base):
    """Every opening of an original photo, video or audio file: who, which, when and why.
    Append-only; the start of the art. 29 access register."""

    __tablename__ = "original_access"
    __table_args__ = (Index("ix_original_access_media", "alg", "hash"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    alg: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))  # the unit that collected it
    reason: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CalendarDay(Base):
    """A day that differs from the Monday–Friday rule: a holiday off, or a weekend day worked in
    lieu. Seeded from the holiday library, edited by the admin from the State Council notice."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    is_working_day: Mapped[bool]
    name: Mapped[str] = mapped_column(String(60), default="")
    source: Mapped[str] = mapped_column(String(20), default="library")  # library | admin


class CalendarYear(Base):
    """A year whose holiday arrangement is loaded; other years count weekends only, flagged."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(20), default="library")
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
