"""The stored figures of a period — one month, or a whole year made from its months by each
figure's year rule (figures.toml: sum, last, none) — as the pages, the drill-down and the export read
them. A year's figures are derived from the stored months, never computed apart, so a year and its
twelve months cannot disagree."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select

from .. import db
from ..models import MonthlyFigure, utcnow
from . import compute
from . import figures as figures_data


@dataclass
class PeriodCell:
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    items: list = field(default_factory=list)


def year_value(figure: figures_data.Figure, by_month: dict[int, tuple]) -> tuple | None:
    """(value, numerator, denominator) of the year from its months, by the figure's year rule."""
    if figure.year == "none" or not by_month:
        return None
    if figure.year == "last":
        return by_month[max(by_month)]
    if figure.kind in ("ratio", "days"):
        num = sum(v[1] or 0 for v in by_month.values())
        den = sum(v[2] or 0 for v in by_month.values())
        return (num / den if den else None, num, den)
    return (sum(v[0] or 0 for v in by_month.values()), None, None)


def months_of(year: int, month: int | None, now=None) -> list[int]:
    """The months a period spans, up to the month in progress."""
    if month is not None:
        return [month]
    current = compute.month_of(now or utcnow())
    return [m for m in range(1, 13) if (year, m) <= current]


def refresh_if_stale(year: int, month: int | None) -> bool:
    """Bring every month of the period up to date (``compute.refresh_stale``)."""
    return compute.refresh_stale(year, months_of(year, month))


def cells(year: int, month: int | None, visible: frozenset[uuid.UUID] | None, *, unit_id: uuid.UUID | None = None,
          user_id: uuid.UUID | None | bool = False, figure: str | None = None,
          with_items: bool = False) -> dict[tuple, PeriodCell]:
    """(unit, user, figure) → PeriodCell for one month or the whole year. ``user_id`` False: every
    row; None: unit totals only; a user: theirs."""
    t = MonthlyFigure
    columns = [t.month, t.unit_id, t.user_id, t.figure, t.value, t.numerator, t.denominator]
    if with_items:
        columns.append(t.items)
    query = select(*columns).where(t.year == year)
    if month is not None:
        query = query.where(t.month == month)
    if visible is not None:
        query = query.where(t.unit_id.in_(sorted(visible)))
    if unit_id is not None:
        query = query.where(t.unit_id == unit_id)
    if user_id is None:
        query = query.where(t.user_id.is_(None))
    elif user_id is not False:
        query = query.where(t.user_id == user_id)
    if figure is not None:
        query = query.where(t.figure == figure)
    rows = db.session().execute(query).all()
    if month is not None:
        return {(r.unit_id, r.user_id, r.figure): PeriodCell(r.value, r.numerator, r.denominator,
                                                              list(r.items) if with_items else [])
                for r in rows}
    defs = figures_data.by_id()
    by_key: dict[tuple, dict[int, tuple]] = {}
    items: dict[tuple, list] = {}
    for r in rows:
        by_key.setdefault((r.unit_id, r.user_id, r.figure), {})[r.month] = (r.value, r.numerator, r.denominator)
        if with_items:
            items.setdefault((r.unit_id, r.user_id, r.figure), []).extend(r.items or [])
    out = {}
    for key, by_month in by_key.items():
        f = defs.get(key[2])
        if f is None:
            continue
        found = year_value(f, by_month)
        cell = PeriodCell(*found) if found else PeriodCell(None)
        if with_items:
            # "last" figures are a state at the year's end: the items of the last month only.
            chosen = items[key] if f.year != "last" else next(
                (list(r.items or []) for r in rows if (r.unit_id, r.user_id, r.figure) == key
                 and r.month == max(by_month)), [])
            cell.items = [list(x) for x in dict.fromkeys(tuple(i) for i in chosen)]
        out[key] = cell
    return out
