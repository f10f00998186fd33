"""Deadlines for the compliance engine: the deadline rules (``rules/deadlines.toml``) counted on
the working-day calendar the database holds (seeded from the holiday library, edited by the admin).

Which recorded steps start which period, and what meets it, is ``clocks.CLOCKS``.
"""
from __future__ import annotations

from datetime import date, datetime

from flask import current_app, g, has_app_context
from sqlalchemy import select

from .. import db
from ..models import CalendarDay, CalendarYear
from ..rules import deadlines
from ..rules.workcal import Calendar
from .checks import Due


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


def due(rule_id: str, at: datetime, *, extended: bool = False, excluded=(), day_of: datetime | None = None) -> Due:
    deadline = deadlines.compute(rule_id, at, calendar(), extended=extended, excluded_periods=excluded, day_of=day_of)
    return Due(deadline.due_at, deadline.warnings)


def warn_from(due_at: datetime) -> datetime:
    """When the screens start to warn of a deadline: the configured working days before its day."""
    days = max(0, current_app.config["FIELDAPP_SETTINGS"].deadline_warning_working_days)
    return deadlines.working_days_before(due_at, days, calendar())


def running_deadlines(case_ids) -> dict:
    """case id → its running (unmet) deadlines as the phone and the desk show them."""
    from ..models import CaseDeadline  # here, not at the top: models import nothing of compliance

    out: dict = {}
    ids = list(case_ids)
    if not ids:
        return out
    rows = db.session().execute(select(CaseDeadline).where(CaseDeadline.case_id.in_(ids), CaseDeadline.met_at.is_(None))
                                .order_by(CaseDeadline.due_at)).scalars()
    for row in rows:
        rule = deadlines.load_builtin().rule(row.rule_id)
        out.setdefault(row.case_id, []).append({
            "key": row.key, "rule_id": row.rule_id, "label_zh": rule.label_zh, "label_en": rule.label_en,
            "due_at": row.due_at.isoformat(), "warn_from": warn_from(row.due_at).isoformat()})
    return out


def footage_due(storage_due: datetime) -> Due:
    """When body-camera footage declared for a step is late: the configured number of working days
    after art. 25's storage deadline."""
    days = current_app.config["FIELDAPP_SETTINGS"].footage_grace_working_days
    if days <= 0:
        return Due(storage_due)
    at, warnings = deadlines.working_days_after(storage_due, days, calendar())
    return Due(at, warnings)


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
