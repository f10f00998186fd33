"""Deadlines for the compliance engine: the deadline rules (``rules/deadlines.toml``) counted on
the working-day calendar the database holds (seeded from the holiday library, edited by the admin).

Which recorded steps start which period, and which later step meets it, is data here
(:data:`STEP_TRIGGERS`), next to the rules' own citations.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import g, has_app_context
from sqlalchemy import select

from .. import db
from ..models import CalendarDay, CalendarYear
from ..rules import deadlines
from ..rules.workcal import Calendar
from .checks import Due
from .facts import parse_time


@dataclass(frozen=True)
class Trigger:
    step_type: str  # the catalogue step that starts the period
    rule_id: str  # the deadlines.toml rule
    met_by: str  # the step that meets it
    extended_by: str | None = None  # a step that takes the rule's one extension
    excluded_by: str | None = None  # steps whose payload period_from/period_to is left out of the count


STEP_TRIGGERS = (
    # 行政处罚法 art. 56: a decision within 7 working days of 先行登记保存.
    Trigger("penalty_evidence_preservation", "evidence_preservation_decision", "penalty_evidence_preservation_release"),
    # 行政强制法 art. 25: 30 days, one 30-day extension, testing periods not counted.
    Trigger("coercion_seal_seize", "seizure_term", "coercion_lift", extended_by="coercion_extension",
            excluded_by="coercion_testing_period"),
)


def calendar() -> Calendar:
    """The calendar the database holds, read once per request or command."""
    if has_app_context() and "work_calendar" in g:
        return g.work_calendar
    s = db.session()
    days = [(row.day, row.is_working_day, row.name) for row in s.execute(select(CalendarDay)).scalars()]
    years = s.execute(select(CalendarYear.year)).scalars().all()
    cal = Calendar.from_rows(days, years)
    if has_app_context():
        g.work_calendar = cal
    return cal


def due(rule_id: str, at: datetime, *, extended: bool = False, excluded=()) -> Due:
    deadline = deadlines.compute(rule_id, at, calendar(), extended=extended, excluded_periods=excluded)
    return Due(deadline.due_at, deadline.warnings)


def excluded_periods(steps) -> list[tuple[date, date]]:
    periods = []
    for step in steps:
        start, end = parse_time(step.payload.get("period_from")), parse_time(step.payload.get("period_to"))
        if start and end and end >= start:
            periods.append((start, end))
    return periods


def label(rule_id: str, zh: bool = True) -> str:
    try:
        rule = deadlines.load_builtin().rule(rule_id)
    except KeyError:
        return rule_id
    return f"{rule.label_zh if zh else rule.label_en}（{'；'.join(rule.citations)}）"


def warning_text(code: str, zh: bool = True) -> str:
    return deadlines.message(code, "zh" if zh else "en")


def seed_from_library(replace: bool = False) -> list[int]:
    """Load every year the holiday library knows that the database does not hold yet (or all of
    them with ``replace``); years an admin entered are never overwritten."""
    s = db.session()
    held = {row.year: row for row in s.execute(select(CalendarYear)).scalars()}
    library = Calendar.from_library()
    loaded = []
    for year in sorted(library.years):
        if year in held and (not replace or held[year].source == "admin"):
            continue
        store_year(year, [r for r in library.to_rows() if r["date"].year == year], source="library")
        loaded.append(year)
    return loaded


def store_year(year: int, rows, source: str) -> None:
    """Replace a year's special days and mark it loaded (validated by the calendar first)."""
    checked = Calendar().load_year(year, rows)
    s = db.session()
    for row in s.execute(select(CalendarDay).where(CalendarDay.day >= date(year - 1, 12, 1),
                                                   CalendarDay.day <= date(year, 12, 31))).scalars():
        if row.day.year == year or any(d.date == row.day for d in checked.days):
            s.delete(row)
    s.flush()
    for day in checked.days:
        s.add(CalendarDay(day=day.date, is_working_day=day.is_working_day, name=day.name[:60], source=source))
    year_row = s.get(CalendarYear, year)
    if year_row is None:
        s.add(CalendarYear(year=year, source=source))
    else:
        year_row.source = source
    s.flush()
    if has_app_context():
        g.pop("work_calendar", None)
