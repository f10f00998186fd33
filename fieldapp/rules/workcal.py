"""China's working-day calendar: public holidays and the weekend days worked in lieu (调休上班).

The State Council publishes each year's holiday arrangement (国务院办公厅关于某年部分节假日安排的通知)
late in the year before. The maintained library ``chinesecalendar`` (``import chinese_calendar``)
carries those notices as data; :meth:`Calendar.from_library` seeds a calendar from it. When a new
notice is out before the library has it, an administrator enters the year's rows and
:meth:`Calendar.load_year` merges them and marks the year as loaded.

A :class:`Calendar` is an immutable value built from plain data (dicts, tuples or :class:`Day`), so
one instance can be shared by all requests and a database table can round-trip it through
:meth:`Calendar.to_rows` / :meth:`Calendar.from_rows`. It only holds the *special* days — days off on a
weekday or as part of a holiday run, and weekend days worked in lieu; every other day is a working day
Monday to Friday and a rest day on Saturday and Sunday.

For a year the calendar does not know (:meth:`Calendar.knows` is false) :meth:`Calendar.is_working_day`
still answers, by weekends only; callers that count deadlines flag the result
(``fieldapp.rules.deadlines`` adds the warning ``calendar_not_loaded:<year>``). Nothing here raises
for an unknown year.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Day", "Calendar", "CalendarError", "library_years"]


class CalendarError(ValueError):
    """A calendar row is malformed (bad date, flag or year); the message names the row."""


@dataclass(frozen=True, order=True)
class Day:
    """One special day: off (holiday, or a weekend inside a holiday run) or a weekend day worked in lieu.

    ``is_working_day`` is what the day *is*, whatever its weekday; ``name`` is the holiday it belongs
    to (e.g. "国庆节"), empty when unknown.
    """
    date: dt.date
    is_working_day: bool
    name: str = ""

    @property
    def in_lieu(self) -> bool:
        """A weekend day worked in lieu of a holiday (调休上班)."""
        return self.is_working_day and self.date.weekday() >= 5


def _to_date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise CalendarError(f"{where}: expected a date, got a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarError(f"{where}: date {value!r} is not a date or an ISO date string (YYYY-MM-DD)")


def _to_day(row: Any, where: str) -> Day:
    """A row as :class:`Day`: a Day, a mapping {date, is_working_day, name?} or a tuple (date, flag[, name])."""
    if isinstance(row, Day):
        date, working, name = row.date, row.is_working_day, row.name
    elif isinstance(row, Mapping):
        unknown = sorted(set(row) - {"date", "is_working_day", "name"})
        if unknown:
            raise CalendarError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        if "date" not in row or "is_working_day" not in row:
            raise CalendarError(f"{where}: needs 'date' and 'is_working_day'")
        date, working, name = row["date"], row["is_working_day"], row.get("name")
    elif isinstance(row, (tuple, list)) and len(row) in (2, 3):
        date, working, name = row[0], row[1], row[2] if len(row) == 3 else ""
    else:
        raise CalendarError(f"{where}: expected a Day, a mapping or a (date, is_working_day, name) tuple")
    if not isinstance(working, bool):
        raise CalendarError(f"{where}: is_working_day must be true or false, got {working!r}")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise CalendarError(f"{where}: name must be a string")
    return Day(_to_date(date, where), working, name.strip())


def _to_year(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9999:
        raise CalendarError(f"year {value!r} is not a year")
    return value


@dataclass(frozen=True)
class Calendar:
    """Special days plus the set of years whose holiday arrangement is fully loaded. Immutable.

    Construct from plain data: ``Calendar(days=[{"date": "2026-10-01", "is_working_day": False,
    "name": "国庆节"}, ("2026-10-10", True, "国庆节")], years=[2026])``. Every method that changes
    something returns a new calendar.
    """
    days: tuple[Day, ...] = ()
    years: frozenset[int] = frozenset()
    _by_date: Mapping[dt.date, Day] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_date: dict[dt.date, Day] = {}
        for i, row in enumerate(self.days):
            day = _to_day(row, f"day {i}")
            by_date[day.date] = day  # a later row for the same date wins
        object.__setattr__(self, "days", tuple(sorted(by_date.values())))
        object.__setattr__(self, "years", frozenset(_to_year(y) for y in self.years))
        object.__setattr__(self, "_by_date", MappingProxyType(by_date))

    # ── construction ───────────────────────────────────────────────────────────────────────────

    @classmethod
    def from_rows(cls, rows: Iterable[Any], years: Iterable[int] = ()) -> Calendar:
        """From plain rows (as :meth:`to_rows` gives them, or tuples) and the loaded years."""
        return cls(days=tuple(rows), years=frozenset(years))

    @classmethod
    def from_library(cls, years: Iterable[int] | None = None) -> Calendar:
        """Seed from ``chinesecalendar``: every year it knows, or those of ``years`` it knows.

        A year the library has no data for is skipped (not marked loaded), never an error.
        """
        import chinese_calendar

        wanted = library_years() if years is None else frozenset(_to_year(y) for y in years)
        known = frozenset(y for y in wanted if _library_knows(y))
        zh = _chinese_names()
        days = [Day(d, False, zh.get(name, name or "")) for d, name in chinese_calendar.holidays.items()
                if d.year in known]
        days += [Day(d, True, zh.get(name, name or "")) for d, name in chinese_calendar.workdays.items()
                 if d.year in known]
        return cls(days=tuple(days), years=known)

    def with_days(self, rows: Iterable[Any]) -> Calendar:
        """A calendar with these rows merged in (a row replaces any day already held for its date).

        Does not mark any year loaded: use :meth:`load_year` when a year's arrangement is complete.
        """
        return Calendar(days=self.days + tuple(rows), years=self.years)

    def load_year(self, year: int, rows: Iterable[Any]) -> Calendar:
        """A calendar whose ``year`` is exactly the arrangement ``rows`` give, and marked loaded.

        This is the admin's "this year is complete" action for a new State Council notice: the days
        held for ``year`` are replaced, not merged. Rows may also fall in December of the year before
        (a New Year's in-lieu working day is sometimes arranged there); those are merged. Any other
        date is an error, so a mistyped year cannot slip in.
        """
        year = _to_year(year)
        new = [_to_day(row, f"{year} row {i}") for i, row in enumerate(rows)]
        for day in new:
            if not (day.date.year == year or (day.date.year == year - 1 and day.date.month == 12)):
                raise CalendarError(f"{year} row {day.date.isoformat()}: outside {year} "
                                    f"(only December {year - 1} may be arranged with it)")
        kept = tuple(d for d in self.days if d.date.year != year)
        return Calendar(days=kept + tuple(new), years=self.years | {year})

    def without_year(self, year: int) -> Calendar:
        """A calendar that forgets ``year``: its special days dropped and the year no longer loaded."""
        year = _to_year(year)
        return Calendar(days=tuple(d for d in self.days if d.date.year != year),
                        years=self.years - {year})

    # ── questions ──────────────────────────────────────────────────────────────────────────────

    def knows(self, year: int) -> bool:
        """True when ``year``'s holiday arrangement is loaded."""
        return year in self.years

    def is_working_day(self, date: dt.date) -> bool:
        """Whether ``date`` is a working day; for a year not loaded, by weekends only (never raises)."""
        if isinstance(date, dt.datetime):
            date = date.date()
        day = self._by_date.get(date)
        if day is not None:
            return day.is_working_day
        return date.weekday() < 5

    def day(self, date: dt.date) -> Day | None:
        """The special day held for ``date``, if any."""
        return self._by_date.get(date)

    @property
    def holidays(self) -> frozenset[dt.date]:
        """Days off other than ordinary weekends (and weekend days inside holiday runs)."""
        return frozenset(d.date for d in self.days if not d.is_working_day)

    @property
    def in_lieu_working_days(self) -> frozenset[dt.date]:
        """Weekend days worked in lieu (调休上班)."""
        return frozenset(d.date for d in self.days if d.in_lieu)

    def to_rows(self) -> list[dict[str, Any]]:
        """Plain rows ``{"date": date, "is_working_day": bool, "name": str}`` in date order, e.g. to
        seed a table; :attr:`years` says which years are complete."""
        return [{"date": d.date, "is_working_day": d.is_working_day, "name": d.name} for d in self.days]


# ── the library ─────────────────────────────────────────────────────────────────────────────────

def _library_knows(year: int) -> bool:
    """Ask the library: it raises NotImplementedError for a year it has no data for."""
    import chinese_calendar

    try:
        chinese_calendar.is_workday(dt.date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def library_years() -> frozenset[int]:
    """The years the installed ``chinesecalendar`` has holiday arrangements for."""
    import chinese_calendar

    dates = list(chinese_calendar.holidays) + list(chinese_calendar.workdays)
    if not dates:
        return frozenset()
    low, high = min(dates).year, max(dates).year
    return frozenset(y for y in range(low, high + 1) if _library_knows(y))


def _chinese_names() -> dict[str, str]:
    """English holiday names the library stores → their Chinese names ("National Day" → "国庆节")."""
    try:
        from chinese_calendar.constants import Holiday
    except ImportError:  # pragma: no cover - layout of a future release
        return {}
    return {h.value: getattr(h, "chinese", h.value) for h in Holiday}
