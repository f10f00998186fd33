"""Where each officer was when (the unit history statistics attribute records by), and the monthly
figures the policy section reads (art. 32): derived from the records, rebuilt by ``refresh``."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class UserUnitHistory(Base):
    """One stretch of an officer's service in a unit: from ``from_at`` until ``to_at`` (open while
    still there). A record counts for the unit its author belonged to when it was made."""

    __tablename__ = "user_unit_history"
    __table_args__ = (Index("ix_user_unit_history_user_from", "user_id", "from_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    from_at: Mapped[datetime]
    to_at: Mapped[datetime | None]


class MonthlyFigure(Base):
    """One figure of one month for a unit (``user_id`` NULL: the unit's total) or one officer of it.
    Ratios and averages keep numerator and denominator, so a total can be recomputed from them;
    ``items`` are the [case id, record id] pairs behind the number (the drill-down)."""

    __tablename__ = "monthly_figures"
    __table_args__ = (UniqueConstraint("year", "month", "unit_id", "user_id", "figure",
                                       name="uq_monthly_figures_cell"),
                      Index("ix_monthly_figures_month", "year", "month", "figure"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    year: Mapped[int] = mapped_column(Integer)
    month: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    figure: Mapped[str] = mapped_column(String(40))
    value: Mapped[float | None] = mapped_column(Float)
    numerator: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    items: Mapped[list] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Nothing the month counts changed between computed_at and this time (a check found no change):
    # the next check reads only what reached the server since (statistics.compute.freshness).
    checked_at: Mapped[datetime | None]
