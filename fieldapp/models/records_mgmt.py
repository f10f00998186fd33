"""Records management (arts. 26, 29, 31): access to audio/video by approval with its register, and
retention with holds and approved disposal.

An **access grant** is one registered request (who asks, for which records, view or copy, why), the
approval the regulation requires for it, and the time it is good for. Every use of a grant — each
viewing, each copy handed out — is an ``access_uses`` row: together with the originals opened
(``original_access``) they are the register art. 29 asks the records administrator to keep.

**Retention** is worked out per stored object (a content-addressed original): the longest rule over
every record that refers to it wins, so an object shared by two records goes only when both have
expired. A **disposal** is the approved removal of one object: listed, approved by the records
administrator and the division head, hidden but recoverable for seven days, then its bytes purged;
the row stays as the tombstone (hash, class, approvers, times).
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class AccessGrant(Base):
    """A request to view or copy audio/video records (调阅/复制), registered by the collecting unit's
    records administrator, decided by the approver art. 29 names for the requester's kind."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_unit_registered", "unit_id", "registered_at"),
                      Index("ix_access_grants_requester", "requester_id", "state"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # 调阅/复制 register number, DY-2026-0007
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))  # the unit that collected the records
    subject_kind: Mapped[str] = mapped_column(String(10))  # case | activity | segment | media
    subject_id: Mapped[str] = mapped_column(String(200))
    subject_label: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(10))  # view | copy
    purpose: Mapped[str] = mapped_column(String(40))
    purpose_note: Mapped[str] = mapped_column(Text, default="")
    requester_kind: Mapped[str] = mapped_column(String(20))  # own_unit | internal_office | other_enforcement | outside_body
    requester_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))  # None: a body outside
    requester_name: Mapped[str] = mapped_column(String(80))
    requester_org: Mapped[str] = mapped_column(String(200))
    approver_role: Mapped[str] = mapped_column(String(20))  # lead | division_head | bureau_head
    article: Mapped[str] = mapped_column(String(120))
    days: Mapped[int] = mapped_column(Integer)  # how long the grant runs once approved
    registered_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | approved | refused | revoked
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(Text, default="")
    valid_until: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]


class AccessUse(Base):
    """One use of a grant: a viewing (调阅) or a copy handed out (复制), with what it covered.
    Append-only; a copy records the SHA-256 of the marked bytes handed out, so a copy found later
    can be traced to its grant, and the rectangles blurred on it with the reason."""

    __tablename__ = "access_uses"
    __table_args__ = (Index("ix_access_uses_grant", "grant_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("access_grants.id"))
    action: Mapped[str] = mapped_column(String(10))  # view | copy
    by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))  # who viewed, or who made the copy
    alg: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(128))
    copy_sha256: Mapped[str | None] = mapped_column(String(64))
    redactions: Mapped[list] = mapped_column(JSON, default=list)
    redaction_reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionHold(Base):
    """A case hold (a case still being handled, reconsidered or litigated) or a legal hold on one
    object: while it is on, nothing it covers can be disposed of, whatever its date."""

    __tablename__ = "retention_holds"
    __table_args__ = (Index("ix_retention_holds_case", "case_id"), Index("ix_retention_holds_media", "alg", "hash"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))  # case | legal
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    alg: Mapped[str | None] = mapped_column(String(16))
    hash: Mapped[str | None] = mapped_column(String(128))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None]


class EvidenceUse(Base):
    """An object used as evidence (art. 26 (一)): put in an evidence package, or marked by a lead."""

    __tablename__ = "evidence_uses"
    __table_args__ = (Index("ix_evidence_uses_media", "alg", "hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alg: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(20))  # export | lead
    ref: Mapped[str] = mapped_column(String(200), default="")
    by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionState(Base):
    """What retention says of one stored object now: its class, the date it may go (None while
    permanent or held) and the rules that decided it. Recomputed when the facts change."""

    __tablename__ = "retention_states"
    __table_args__ = (Index("ix_retention_states_due", "klass", "keep_until"),)

    alg: Mapped[str] = mapped_column(String(16), primary_key=True)
    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    klass: Mapped[str] = mapped_column(String(12))  # six_months | held | permanent
    captured_at: Mapped[datetime]
    keep_until: Mapped[datetime | None]
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the store was last told (class and date), so the review mirrors only what differs and
    # catches up whatever a store that did not answer missed.
    mirrored: Mapped[str | None] = mapped_column(String(60))


class Disposal(Base):
    """The approved disposal of one object, and afterwards its tombstone."""

    __tablename__ = "disposals"
    __table_args__ = (Index("ix_disposals_media", "alg", "hash"), Index("ix_disposals_state", "state"),
                      # One disposal under way (or done) per object: two proposals at once cannot both stand.
                      Index("uq_disposals_active", "alg", "hash", unique=True,
                            sqlite_where=text("state IN ('proposed', 'disposed', 'purging', 'purged')"),
                            postgresql_where=text("state IN ('proposed', 'disposed', 'purging', 'purged')")))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alg: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    klass: Mapped[str] = mapped_column(String(12))
    keep_until: Mapped[datetime]
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    # proposed | disposed (hidden, recoverable) | purging | purged (bytes gone) | recovered | withdrawn
    state: Mapped[str] = mapped_column(String(10), default="proposed")
    records_admin_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    records_admin_at: Mapped[datetime | None]
    division_head_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    division_head_at: Mapped[datetime | None]
    disposed_at: Mapped[datetime | None]
    recoverable_until: Mapped[datetime | None]
    recovered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    recovered_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")
