"""The working-day calendar: seeded from chinesecalendar, built from plain data, edited by admins."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from fieldapp.rules.workcal import Calendar, CalendarError, Day, library_years

# Years no release of the library will ever know (its data starts in 2004; 9999 is the last year).
NEVER_KNOWN = (1990, 9999)


@pytest.fixture(scope="module")
def library() -> Calendar:
    return Calendar.from_library()


def test_library_knows_2004_to_2026():
    assert set(range(2004, 2027)) <= library_years()


def test_from_library_asks_per_year_and_never_raises_for_unknown_years():
    calendar = Calendar.from_library([2026, 2027, *NEVER_KNOWN])
    assert calendar.knows(2026)
    assert calendar.knows(2027) == (2027 in library_years())  # holds before and after the library learns 2027
    assert not any(calendar.knows(y) for y in NEVER_KNOWN)
    assert {d.date.year for d in calendar.days} <= calendar.years


# (date, working?, why) — 2026 as the State Council notice (国办发明电〔2025〕7号) and the library list it.
LIBRARY_2026 = [
    (date(2026, 10, 1), False, "National Day, Thursday"),
    (date(2026, 10, 3), False, "National Day run, Saturday"),
    (date(2026, 10, 7), False, "last day of National Day"),
    (date(2026, 10, 10), True, "Saturday worked in lieu of National Day"),
    (date(2026, 9, 20), True, "Sunday worked in lieu of National Day"),
    (date(2026, 9, 25), False, "Mid-autumn Festival, Friday"),
    (date(2026, 1, 4), True, "Sunday worked in lieu of New Year"),
    (date(2026, 2, 14), True, "Saturday worked in lieu of Spring Festival"),
    (date(2026, 2, 16), False, "Spring Festival, Monday"),
    (date(2026, 3, 7), False, "ordinary Saturday"),
    (date(2026, 3, 9), True, "ordinary Monday"),
]


@pytest.mark.parametrize(("day", "working", "why"), LIBRARY_2026, ids=[c[2] for c in LIBRARY_2026])
def test_library_2026(library, day, working, why):
    assert library.is_working_day(day) is working


def test_library_names_are_chinese_and_in_lieu_days_are_listed(library):
    assert library.day(date(2026, 10, 1)).name == "国庆节"
    assert library.day(date(2026, 10, 10)) == Day(date(2026, 10, 10), True, "国庆节")
    assert {date(2026, 9, 20), date(2026, 10, 10)} <= library.in_lieu_working_days
    assert date(2026, 10, 1) in library.holidays and date(2026, 10, 10) not in library.holidays


def test_an_unknown_year_counts_weekends_only_and_never_raises():
    calendar = Calendar.from_library([2026]).without_year(2026)
    assert not calendar.knows(2026)
    assert calendar.is_working_day(date(2026, 10, 1))       # National Day, but not loaded: a Thursday
    assert not calendar.is_working_day(date(2026, 10, 10))  # in-lieu Saturday, not loaded: a Saturday
    for year in NEVER_KNOWN:
        assert Calendar().is_working_day(date(year, 6, 1)) is (date(year, 6, 1).weekday() < 5)


def test_built_from_plain_data_in_any_row_shape():
    as_dicts = Calendar(days=[{"date": "2026-10-01", "is_working_day": False, "name": "国庆节"},
                              {"date": date(2026, 10, 10), "is_working_day": True, "name": "国庆节"}],
                        years=[2026])
    as_tuples = Calendar.from_rows([(date(2026, 10, 10), True, "国庆节"), ("2026-10-01", False, "国庆节")], {2026})
    as_days = Calendar(days=(Day(date(2026, 10, 1), False, "国庆节"), Day(date(2026, 10, 10), True, "国庆节")),
                       years=frozenset({2026}))
    assert as_dicts == as_tuples == as_days
    assert hash(as_dicts) == hash(as_tuples)
    assert as_dicts.knows(2026) and not as_dicts.is_working_day(date(2026, 10, 1))


def test_to_rows_round_trips(library):
    rows = library.to_rows()
    assert rows[0].keys() == {"date", "is_working_day", "name"}
    assert {"date": date(2026, 10, 10), "is_working_day": True, "name": "国庆节"} in rows
    assert Calendar.from_rows(rows, library.years) == library


def test_with_days_merges_rows_without_marking_the_year_loaded(library):
    base = library.without_year(2027)
    edited = base.with_days([("2027-01-01", False, "元旦"), ("2026-10-10", False, "corrected")])
    assert not edited.is_working_day(date(2027, 1, 1))
    assert not edited.is_working_day(date(2026, 10, 10))  # an admin row replaces the library's day
    assert not edited.knows(2027)
    assert base.is_working_day(date(2027, 1, 1)) and base.is_working_day(date(2026, 10, 10))  # unchanged


def test_load_year_replaces_the_year_and_marks_it_loaded(library):
    # A made-up notice: the real 2027 arrangement is whatever the State Council publishes.
    notice = [("2026-12-27", True, "元旦"), ("2027-01-01", False, "元旦"), ("2027-01-04", False, "元旦")]
    calendar = library.without_year(2027).load_year(2027, notice)
    assert calendar.knows(2027)
    assert calendar.is_working_day(date(2026, 12, 27))  # December of the year before is allowed
    assert not calendar.is_working_day(date(2027, 1, 1))
    again = calendar.load_year(2027, [("2027-01-01", False, "元旦")])
    assert again.is_working_day(date(2027, 1, 4))  # replaced, not merged: a Monday again
    assert again.is_working_day(date(2026, 12, 27))  # December 2026 belongs to 2026: kept


@pytest.mark.parametrize("row", [("2028-01-01", False, "元旦"), ("2026-11-30", True, "x")])
def test_load_year_refuses_dates_outside_the_year(library, row):
    with pytest.raises(CalendarError, match="outside 2027"):
        library.load_year(2027, [row])


def test_without_year_forgets_days_and_loaded_flag(library):
    calendar = library.without_year(2026)
    assert not calendar.knows(2026) and calendar.knows(2025)
    assert not any(d.date.year == 2026 for d in calendar.days)


@pytest.mark.parametrize(("row", "message"), [
    ({"date": "2026-10-01", "is_working_day": "no"}, "true or false"),
    ({"date": "2026-13-01", "is_working_day": False}, "not a date"),
    ({"date": datetime(2026, 10, 1), "is_working_day": False}, "datetime"),
    ({"date": "2026-10-01", "is_working_day": False, "holiday": "x"}, "unknown key"),
    ({"date": "2026-10-01"}, "needs"),
    (("2026-10-01",), "expected"),
    (("2026-10-01", False, 3), "name"),
])
def test_bad_rows_are_refused(row, message):
    with pytest.raises(CalendarError, match=message):
        Calendar(days=[row])


def test_bad_year_is_refused():
    with pytest.raises(CalendarError):
        Calendar(years=["2026"])


def test_calendar_is_immutable(library):
    with pytest.raises(dataclasses.FrozenInstanceError):
        library.years = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        library._by_date[date(2026, 1, 1)] = None  # type: ignore[index]
