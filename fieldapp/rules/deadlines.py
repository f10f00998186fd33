"""One deadline engine, in Asia/Shanghai time, over a working-day calendar.

The periods themselves are data (``deadlines.toml``), each citing its article: art. 25 of the district
regulation (24 h to store audio/video, 30 days to file the records), 行政处罚法 arts. 56, 61, 85
(7 working days), 行政强制法 arts. 25, 69 (30 days for sealing or seizure, one 30-day extension,
testing periods left out). This module loads and validates them and applies one set of counting rules:

* ``hours`` run from the instant of the event (民法典 art. 201 para. 2); nothing moves them.
* ``calendar_days`` start the day after the event (民法典 art. 201 para. 1); a last day that is not a
  working day moves to the next working day (民法典 art. 203).
* ``working_days`` start the day after the event and count only working days of the calendar
  (调休上班 weekend days count, holidays do not).
* A period in days ends at 24:00 Asia/Shanghai of its last day; ``Deadline.due_at`` is that instant
  (00:00 of the following day), and anything done at or before it is in time.

Where counting consults a day of a year the calendar has not loaded (see
:meth:`fieldapp.rules.workcal.Calendar.knows`), that day is judged by weekends only and the deadline
carries the warning ``calendar_not_loaded:<year>``; nothing raises for an unknown year.
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from types import MappingProxyType
from typing import Any

from . import tomldata
from .workcal import Calendar

__all__ = [
    "KINDS", "SHANGHAI", "DeadlineRulesError", "Rule", "Rules", "Deadline", "load_builtin", "parse",
    "compute", "due_within", "is_overdue", "message",
]

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        SHANGHAI: dt.tzinfo = ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # no tz database: China has kept +08:00 without DST since 1991
        SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
except ImportError:  # pragma: no cover
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

KINDS = ("hours", "calendar_days", "working_days")

NOT_LOADED = "calendar_not_loaded"

_ID = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# One citation, the same form as catalogue.py: "art. 25", "行政处罚法 art. 56", "arts. 56, 85".
_CITATION = re.compile(r"(?:[^\s;]+ )?arts?\. \d+(?:(?:–|-|/|, )\d+)*")
# Days a search for a working day may scan before the calendar is judged broken (all days off).
_SCAN_LIMIT = 366


class DeadlineRulesError(ValueError):
    """The deadline rules are malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class Rule:
    """One period: how long (``amount`` of ``kind``), from what event, and on what authority."""
    id: str
    label_zh: str
    label_en: str
    citations: tuple[str, ...]
    kind: str
    amount: int
    event_zh: str
    event_en: str
    note: str
    extension: int | None = None
    excludes_zh: str | None = None
    excludes_en: str | None = None
    # calendar_days only: False where the period restricts property and must not grow by a holiday
    # (the last day stays where it falls; the screens warn ahead of it instead).
    rolls_over: bool = True
    # hours only: the period also runs to 24:00 of the day of this second event, whichever is later
    # (art. 25: "当天或者返回单位后24小时内").
    or_end_of_day_zh: str | None = None
    or_end_of_day_en: str | None = None

    @property
    def extendable(self) -> bool:
        return self.extension is not None

    @property
    def allows_exclusions(self) -> bool:
        return self.excludes_zh is not None


@dataclass(frozen=True)
class Rules:
    """One validated version of ``deadlines.toml``."""
    version: int
    title_zh: str
    title_en: str
    deadlines: tuple[Rule, ...]
    warnings: Mapping[str, Mapping[str, str]] = field(hash=False)

    def rule(self, rule_id: str) -> Rule:
        for item in self.deadlines:
            if item.id == rule_id:
                return item
        raise KeyError(f"unknown deadline rule {rule_id!r}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.deadlines)


@dataclass(frozen=True)
class Deadline:
    """A computed deadline.

    ``due_at`` is the aware Asia/Shanghai instant the period ends (for a period in days, 24:00 of
    ``last_day``, i.e. 00:00 of the day after); ``warnings`` are codes such as
    ``"calendar_not_loaded:2027"`` (see :func:`message`); ``excluded_days`` counts the days of excluded
    periods that fell inside the count.
    """
    rule_id: str
    citations: tuple[str, ...]
    event_at: dt.datetime
    due_at: dt.datetime
    last_day: dt.date
    warnings: tuple[str, ...]
    note: str
    extended: bool = False
    excluded_days: int = 0


# ── loading and validating the rules ────────────────────────────────────────────────────────────

@functools.cache
def load_builtin() -> Rules:
    """The rules shipped beside this module (cached: they are immutable)."""
    data = tomldata.load(__package__, "deadlines.toml", DeadlineRulesError)
    return parse(data)


class _Entry(tomldata.Entry):
    error = DeadlineRulesError


def _text(value: Any, where: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DeadlineRulesError(f"{where}: {name} must be a non-empty string")


def _count(value: Any, where: str, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeadlineRulesError(f"{where}: {name} must be a positive integer")


def _rule(entry: _Entry) -> Rule:
    rule = Rule(
        id=entry.get("id"), label_zh=entry.get("label_zh"), label_en=entry.get("label_en"),
        citations=entry.get("citations"), kind=entry.get("kind"), amount=entry.get("amount"),
        event_zh=entry.get("event_zh"), event_en=entry.get("event_en"), note=entry.get("note"),
        extension=entry.get("extension", optional=True),
        excludes_zh=entry.get("excludes_zh", optional=True),
        excludes_en=entry.get("excludes_en", optional=True),
        rolls_over=entry.get("rolls_over", optional=True) is not False,
        or_end_of_day_zh=entry.get("or_end_of_day_zh", optional=True),
        or_end_of_day_en=entry.get("or_end_of_day_en", optional=True),
    )
    if entry.data.get("rolls_over") not in (None, True, False):
        raise DeadlineRulesError(f"deadlines: {rule.id!r}: rolls_over must be true or false")
    entry.close()
    where = f"deadlines: {rule.id!r}"
    if not (isinstance(rule.id, str) and _ID.fullmatch(rule.id)):
        raise DeadlineRulesError(f"{where}: id must be snake_case ([a-z0-9_], starting with a letter)")
    for name in ("label_zh", "label_en", "event_zh", "event_en", "note"):
        _text(getattr(rule, name), where, name)
    if not isinstance(rule.citations, tuple) or not rule.citations:
        raise DeadlineRulesError(f"{where}: citations must list at least one citation")
    for citation in rule.citations:
        if not (isinstance(citation, str) and _CITATION.fullmatch(citation)):
            raise DeadlineRulesError(f"{where}: citation {citation!r} is not like 'art. 25' or "
                                     f"'行政处罚法 art. 56'")
    if rule.kind not in KINDS:
        raise DeadlineRulesError(f"{where}: kind {rule.kind!r} is not one of {KINDS}")
    _count(rule.amount, where, "amount")
    if rule.extension is not None:
        _count(rule.extension, where, "extension")
    if (rule.excludes_zh is None) != (rule.excludes_en is None):
        raise DeadlineRulesError(f"{where}: excludes_zh and excludes_en go together")
    if rule.excludes_zh is not None:
        if rule.kind == "hours":
            raise DeadlineRulesError(f"{where}: excluded periods apply to periods in days")
        _text(rule.excludes_zh, where, "excludes_zh")
        _text(rule.excludes_en, where, "excludes_en")
    if not rule.rolls_over and rule.kind != "calendar_days":
        raise DeadlineRulesError(f"{where}: rolls_over applies to calendar_days only")
    if (rule.or_end_of_day_zh is None) != (rule.or_end_of_day_en is None):
        raise DeadlineRulesError(f"{where}: or_end_of_day_zh and or_end_of_day_en go together")
    if rule.or_end_of_day_zh is not None:
        if rule.kind != "hours":
            raise DeadlineRulesError(f"{where}: or_end_of_day applies to periods in hours")
        _text(rule.or_end_of_day_zh, where, "or_end_of_day_zh")
        _text(rule.or_end_of_day_en, where, "or_end_of_day_en")
    return rule


def parse(data: Mapping[str, Any]) -> Rules:
    """Build and validate the rules from TOML-shaped data."""
    top = _Entry(data, "deadlines.toml")
    meta = _Entry(top.get("meta"), "meta")
    version = top.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DeadlineRulesError("version must be a positive integer")
    title_zh, title_en = meta.get("title"), meta.get("title_en")
    _text(title_zh, "meta", "title")
    _text(title_en, "meta", "title_en")
    meta.close()

    raw_warnings = _Entry(top.get("warnings"), "warnings")
    warnings: dict[str, Mapping[str, str]] = {}
    for code in raw_warnings.data:
        entry = _Entry(raw_warnings.get(code), f"warnings.{code}")
        texts = {"zh": entry.get("zh"), "en": entry.get("en")}
        entry.close()
        for lang, template in texts.items():
            _text(template, f"warnings.{code}", lang)
            try:
                template.format(year=2000)
            except (KeyError, IndexError, ValueError) as exc:
                raise DeadlineRulesError(f"warnings.{code}: {lang} template: {exc!r}") from exc
        warnings[code] = MappingProxyType(texts)
    raw_warnings.close()
    if NOT_LOADED not in warnings:
        raise DeadlineRulesError(f"warnings: missing {NOT_LOADED!r}")

    raw = top.get("deadlines")
    if not isinstance(raw, tuple) or not raw:
        raise DeadlineRulesError("deadlines: expected a non-empty array of tables")
    rules = []
    for i, item in enumerate(raw):
        ident = item.get("id") if isinstance(item, Mapping) else None
        rules.append(_rule(_Entry(item, f"deadlines[{i}]" + (f" ({ident})" if isinstance(ident, str) else ""))))
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DeadlineRulesError(f"deadlines: duplicate id(s) {', '.join(map(repr, duplicates))}")
    top.close()
    return Rules(version=version, title_zh=title_zh, title_en=title_en, deadlines=tuple(rules),
                 warnings=MappingProxyType(warnings))


def message(code: str, lang: str = "zh", rules: Rules | None = None) -> str:
    """The text of a warning code in ``lang`` ("zh" or "en"): "2027 年节假日安排未载入" for
    ``"calendar_not_loaded:2027"``. An unknown code comes back as it is."""
    base, _, argument = code.partition(":")
    texts = (rules or load_builtin()).warnings.get(base)
    if texts is None:
        return code
    return texts.get(lang, texts["en"]).format(year=argument)


# ── counting ────────────────────────────────────────────────────────────────────────────────────

def _local(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(SHANGHAI)


def _end_of(day: dt.date) -> dt.datetime:
    """24:00 Asia/Shanghai of ``day``: the first instant of the next day."""
    return dt.datetime.combine(day + timedelta(days=1), dt.time(0), tzinfo=SHANGHAI)


def _as_day(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return _local(value, name).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{name}: {value!r} is not a date")


def _excluded_ranges(periods: Iterable[Any], after: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Excluded periods as sorted, merged, inclusive date ranges, clipped to the days after ``after``."""
    ranges = []
    for i, period in enumerate(periods):
        try:
            start, end = period
        except (TypeError, ValueError):
            raise ValueError(f"excluded period {i}: expected a (start, end) pair, got {period!r}") from None
        start, end = _as_day(start, f"excluded period {i} start"), _as_day(end, f"excluded period {i} end")
        if end < start:
            raise ValueError(f"excluded period {i}: ends ({end}) before it starts ({start})")
        start = max(start, after + timedelta(days=1))
        if start <= end:
            ranges.append((start, end))
    merged: list[tuple[dt.date, dt.date]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Count:
    """Counts days over a calendar, noting each year it consults."""

    def __init__(self, calendar: Calendar, excluded: Sequence[tuple[dt.date, dt.date]]) -> None:
        self.calendar, self.excluded = calendar, excluded
        self.starts = [start for start, _ in excluded]
        self.consulted: set[int] = set()
        self.skipped = 0

    def working(self, day: dt.date) -> bool:
        self.consulted.add(day.year)
        return self.calendar.is_working_day(day)

    def excluded_until(self, day: dt.date) -> dt.date | None:
        """The last day of the excluded range holding ``day``, if one does."""
        i = bisect.bisect_right(self.starts, day) - 1
        if i >= 0 and day <= self.excluded[i][1]:
            return self.excluded[i][1]
        return None

    def calendar_days(self, start: dt.date, amount: int, rolls_over: bool = True) -> dt.date:
        """The ``amount``-th day after ``start`` that is not excluded, moved to a working day
        unless ``rolls_over`` is false."""
        day, remaining = start, amount
        for low, high in self.excluded:
            free = (low - day).days - 1  # countable days strictly between day and low
            if remaining <= free:
                break
            remaining -= free
            self.skipped += (high - low).days + 1
            day = high
        day += timedelta(days=remaining)
        return self.next_working(day) if rolls_over else day

    def working_days(self, start: dt.date, amount: int, step: int = 1) -> dt.date:
        """The ``amount``-th working day after ``start`` (before it, with ``step`` -1), skipping
        excluded days."""
        day, counted, idle = start, 0, 0
        while counted < amount:
            day += timedelta(days=step)
            until = self.excluded_until(day)
            if until is not None:
                self.skipped += (until - day).days + 1
                day = until
            elif self.working(day):
                counted, idle = counted + 1, 0
            else:
                idle += 1
                if idle > _SCAN_LIMIT:
                    raise ValueError(f"the calendar has no working day within {_SCAN_LIMIT} days after {day}")
        return day

    def next_working(self, day: dt.date) -> dt.date:
        """``day`` itself if a working day, else the next working day (民法典 art. 203)."""
        for _ in range(_SCAN_LIMIT):
            if self.working(day):
                return day
            day += timedelta(days=1)
        raise ValueError(f"the calendar has no working day within {_SCAN_LIMIT} days after {day}")

    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{NOT_LOADED}:{year}" for year in sorted(self.consulted)
                     if not self.calendar.knows(year))


def compute(rule_id: str, event_at: dt.datetime, calendar: Calendar, *, extended: bool = False,
            excluded_periods: Iterable[tuple[dt.date, dt.date]] = (), day_of: dt.datetime | None = None,
            rules: Rules | None = None) -> Deadline:
    """The deadline of ``rule_id`` for an event at ``event_at`` (a timezone-aware datetime).

    ``extended`` adds the rule's one extension (an error for a rule without one). ``excluded_periods``
    are inclusive (start, end) date ranges — dates, ISO strings or aware datetimes read in
    Asia/Shanghai — whose days do not count (only for a rule with ``excludes_zh``, e.g. the testing
    periods of ``seizure_term``); overlapping ranges count once, days on or before the event day are
    ignored. ``day_of`` is the second event of a rule with ``or_end_of_day``: the deadline is then
    no earlier than 24:00 of that event's day. ``rules`` defaults to the built-in ``deadlines.toml``.

    Raises KeyError for an unknown rule, ValueError for a naive datetime or a misuse above; never for
    a year the calendar does not know (the deadline is flagged instead).
    """
    rule = (rules or load_builtin()).rule(rule_id)
    local = _local(event_at, "event_at")
    if extended and not rule.extendable:
        raise ValueError(f"{rule_id}: this period cannot be extended")
    periods = tuple(excluded_periods)
    if periods and not rule.allows_exclusions:
        raise ValueError(f"{rule_id}: no periods may be excluded from this period")
    amount = rule.amount + ((rule.extension or 0) if extended else 0)
    count = _Count(calendar, _excluded_ranges(periods, local.date()))
    try:
        if rule.kind == "hours":
            due_at = (local + timedelta(hours=amount)).astimezone(SHANGHAI)
            if day_of is not None and rule.or_end_of_day_zh is not None:
                due_at = max(due_at, _end_of(_local(day_of, "day_of").date()))
            last_day = due_at.date()
        else:
            if rule.kind == "calendar_days":
                last_day = count.calendar_days(local.date(), amount, rule.rolls_over)
            else:
                last_day = count.working_days(local.date(), amount)
            due_at = _end_of(last_day)
    except OverflowError:
        raise ValueError(f"{rule_id}: the deadline for {event_at} falls outside the supported dates") from None
    return Deadline(rule_id=rule.id, citations=rule.citations, event_at=local, due_at=due_at,
                    last_day=last_day, warnings=count.warnings(), note=rule.note, extended=extended,
                    excluded_days=count.skipped)


def working_days_after(at: dt.datetime, amount: int, calendar: Calendar) -> tuple[dt.datetime, tuple[str, ...]]:
    """24:00 of the ``amount``-th working day after the day of ``at`` (a grace period the unit sets,
    not a statutory one), with the calendar warnings of the count."""
    count = _Count(calendar, ())
    last_day = count.working_days(_local(at, "at").date(), amount)
    return _end_of(last_day), count.warnings()


def working_days_before(due_at: dt.datetime, amount: int, calendar: Calendar) -> dt.datetime:
    """00:00 Asia/Shanghai of the ``amount``-th working day before the day ``due_at`` falls in
    (when to start warning of it); ``amount`` 0 is the start of that day itself."""
    local = _local(due_at, "due_at")
    due_day = (local - timedelta(microseconds=1)).date()  # a due_at of 24:00 belongs to the day before
    day = _Count(calendar, ()).working_days(due_day, amount, step=-1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)


# ── questions about computed deadlines ─────────────────────────────────────────────────────────

def due_within(deadlines: Iterable[Deadline], now: dt.datetime, days: int) -> list[Deadline]:
    """Deadlines not yet passed that fall due by 24:00 Asia/Shanghai ``days`` days after today,
    soonest first: ``days=0`` is "by the end of today", ``days=3`` "today and the next three days".
    Filtering out what is already done is the caller's business."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a non-negative integer, got {days!r}")
    local = _local(now, "now")
    horizon = _end_of(local.date() + timedelta(days=days))
    return sorted((d for d in deadlines if local <= d.due_at <= horizon), key=lambda d: (d.due_at, d.rule_id))


def is_overdue(deadline: Deadline, done_at: dt.datetime | None, now: dt.datetime) -> bool:
    """True when the act was done after the deadline (``done_at``), or, not done yet (``None``), when
    ``now`` is past it. Done at exactly ``due_at`` is in time."""
    if done_at is not None:
        return _local(done_at, "done_at") > deadline.due_at
    return _local(now, "now") > deadline.due_at
