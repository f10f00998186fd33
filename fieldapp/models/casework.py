"""Cases (案件/事项) and the published versions of the rules catalogue."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_id, utcnow
from .identity import Unit


class Case(Base):
    """A case or matter of one unit. Its header (number, party) belongs to the server: a case a phone
    opened on site is a proposal, and once synced only the lead edits the header."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_unit_status", "unit_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(20))  # licensing | penalty | coercion | inspection
    case_number: Mapped[str | None] = mapped_column(String(60))  # 案号, often assigned later
    party_name: Mapped[str] = mapped_column(String(200))
    party_credit_code: Mapped[str | None] = mapped_column(String(18))
    party_id_number: Mapped[str | None] = mapped_column(String(18))  # 居民身份证号 of a party who is a person
    party_address: Mapped[str | None] = mapped_column(String(300))
    flags: Mapped[list] = mapped_column(JSON, default=list)  # catalogue case_flags (art. 9)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | closed | archived
    origin: Mapped[str] = mapped_column(String(10), default="server")  # server | phone
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # 执法行为终结 entered by a lead, with why (art. 25's 30 days to file count from it); without it the
    # steps that end the act say when it ended (compliance.checks.act_end_from_steps).
    act_ended_at: Mapped[datetime | None]
    act_ended_reason: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None]
    archived_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # The inspection a penalty case was opened from on the spot (to take 先行登记保存 or a measure).
    linked_case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    # Art. 31: state_secret | trade_secret | privacy — who may see the case's records narrows.
    confidentiality: Mapped[list | None] = mapped_column(JSON)
    # Art. 26 (三)(四) as the lead marks them: major_emergency | major_complex (permanent retention).
    significance: Mapped[list | None] = mapped_column(JSON)

    unit: Mapped[Unit] = relationship()


class CatalogueVersion(Base):
    """Every catalogue ever published, whole: a record made with version N is read with version N."""

    __tablename__ = "catalogue_versions"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(300), default="")
    content: Mapped[dict] = mapped_column(JSON)


class UnitStepType(Base):
    """A step type a unit added ("other cases that rules require", arts. 12, 19, 22, 24)."""

    __tablename__ = "unit_step_types"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(80), unique=True)
    definition: Mapped[dict] = mapped_column(JSON)  # the catalogue entry, as the TOML would hold it
    introduced_in: Mapped[int] = mapped_column(ForeignKey("catalogue_versions.version"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
