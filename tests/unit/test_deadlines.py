"""The deadline engine, case by case, each case naming the article it rests on.

Dates are 2026 unless a case says otherwise; 2026's holidays and in-lieu working days are those of the
State Council notice as chinesecalendar (>= 1.11) lists them: New Year 1/1–1/3 (1/4 Sun worked),
Spring Festival 2/15–2/23 (2/14 Sat and 2/28 Sat worked), Qingming 4/4–4/6, Labour Day 5/1–5/5
(5/9 Sat worked), Mid-autumn 9/25–9/27, National Day 10/1–10/7 (9/20 Sun and 10/10 Sat worked).
Cases that need a year the calendar does not know *remove* that year, so they hold whatever year the
installed library has learnt.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.rules import deadlines
from fieldapp.rules.deadlines import SHANGHAI, Deadline, DeadlineRulesError, compute, due_within, is_overdue
from fieldapp.rules.workcal import Calendar

REGULATION = Path(__file__).parents[2].parent / "shared/regulation"
CST = timezone(timedelta(hours=8))


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def end_of(day: date) -> datetime:
    """24:00 Asia/Shanghai of ``day``."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendars() -> dict[str, Calendar]:
    library = Calendar.from_library()
    assert library.knows(2026), "chinesecalendar >= 1.11 carries 2026"
    return {
        "library": library,
        # An admin-loaded 2028 with no special days: the month-end case then holds whatever the
        # library learns about 2028 (late January is Spring Festival, nowhere near 1 March).
        "admin_2028": library.load_year(2028, []),
        "no_in_lieu_0104": library.with_days([("2026-01-04", False, "")]),
    }


# (article, rule, event, calendar, kwargs, expected due_at, expected excluded_days)
CASES = [
    ("art. 25: 24 h from 23:30 crosses midnight",
     "av_upload", at(2026, 3, 1, 23, 30), "library", {}, at(2026, 3, 2, 23, 30), 0),
    ("art. 25: the same instant given in UTC",
     "av_upload", datetime(2026, 3, 1, 15, 30, tzinfo=UTC), "library", {}, at(2026, 3, 2, 23, 30), 0),
    ("art. 25 + 民法典 art. 201: hours are not moved off a holiday",
     "av_upload", at(2026, 9, 30, 18), "library", {}, at(2026, 10, 1, 18), 0),
    ("art. 25: 30 days from 31 Jan 2026 end 2 Mar (28-day February)",
     "record_filing", at(2026, 1, 31), "library", {}, end_of(date(2026, 3, 2)), 0),
    ("art. 25: 30 days from 31 Jan 2028 end 1 Mar (leap year)",
     "record_filing", at(2028, 1, 31), "admin_2028", {}, end_of(date(2028, 3, 1)), 0),
    ("art. 25 + 民法典 art. 201: an act ending 23:59 counts from the next day",
     "record_filing", at(2026, 1, 31, 23, 59), "library", {}, end_of(date(2026, 3, 2)), 0),
    ("art. 25 + 民法典 art. 201: 23:30 UTC is already the next day in Shanghai",
     "record_filing", datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "library", {}, end_of(date(2026, 3, 3)), 0),
    ("art. 25 + 民法典 art. 203: last day Saturday 11 Jul moves to Monday 13 Jul",
     "record_filing", at(2026, 6, 11), "library", {}, end_of(date(2026, 7, 13)), 0),
    ("art. 25 + 民法典 art. 203: last day in Qingming (Sun 5 Apr) moves to Tue 7 Apr",
     "record_filing", at(2026, 3, 6), "library", {}, end_of(date(2026, 4, 7)), 0),
    ("行政处罚法 arts. 56, 85: 7 working days from 24 Sep skip Mid-autumn and National Day, count Sat 10 Oct",
     "evidence_preservation_decision", at(2026, 9, 24), "library", {}, end_of(date(2026, 10, 12)), 0),
    ("行政处罚法 arts. 56, 85: Sunday 20 Sep worked in lieu counts",
     "evidence_preservation_decision", at(2026, 9, 18), "library", {}, end_of(date(2026, 9, 29)), 0),
    ("行政处罚法 arts. 56, 85: Sunday 4 Jan worked in lieu counts",
     "evidence_preservation_decision", at(2026, 1, 3), "library", {}, end_of(date(2026, 1, 12)), 0),
    ("行政处罚法 arts. 56, 85: without the in-lieu Sunday the period is a day longer",
     "evidence_preservation_decision", at(2026, 1, 3), "no_in_lieu_0104", {}, end_of(date(2026, 1, 13)), 0),
    ("行政处罚法 arts. 61, 85: service across Spring Festival counts Sat 14 Feb and Sat 28 Feb",
     "penalty_decision_service", at(2026, 2, 13), "library", {}, end_of(date(2026, 3, 2)), 0),
    ("行政强制法 art. 25: sealing or seizure lasts 30 days",
     "seizure_term", at(2026, 3, 2), "library", {}, end_of(date(2026, 4, 1)), 0),
    ("行政强制法 art. 25: extended to 60 days, ending on Labour Day, does NOT move past the holiday",
     "seizure_term", at(2026, 3, 2), "library", {"extended": True}, end_of(date(2026, 5, 1)), 0),
    ("行政强制法 art. 25: a 10-day testing period is left out; the term ends Sat 11 Apr, not moved",
     "seizure_term", at(2026, 3, 2), "library",
     {"excluded_periods": [(date(2026, 3, 10), date(2026, 3, 19))]}, end_of(date(2026, 4, 11)), 10),
    ("行政强制法 art. 25: extension and testing period together",
     "seizure_term", at(2026, 3, 2), "library",
     {"extended": True, "excluded_periods": [(date(2026, 3, 10), date(2026, 3, 19))]}, end_of(date(2026, 5, 11)), 10),
    ("行政强制法 art. 25: overlapping testing periods count once; days before the measure are ignored",
     "seizure_term", at(2026, 3, 2), "library",
     {"excluded_periods": [("2026-02-20", "2026-03-03"), ("2026-03-10", "2026-03-15"),
                           (at(2026, 3, 14, 9), at(2026, 3, 19, 17))]}, end_of(date(2026, 4, 12)), 11),
    ("行政处罚法 art. 60 + 民法典 art. 203: 90 days from 立案 on 2 Mar end Sun 31 May, moved to Mon 1 Jun",
     "penalty_decision_term", at(2026, 3, 2), "library", {}, end_of(date(2026, 6, 1)), 0),
]


@pytest.mark.parametrize(("article", "rule_id", "event_at", "calendar", "kwargs", "due_at", "excluded"),
                         CASES, ids=[c[0] for c in CASES])
def test_deadline(calendars, article, rule_id, event_at, calendar, kwargs, due_at, excluded):
    deadline = compute(rule_id, event_at, calendars[calendar], **kwargs)
    assert deadline.due_at == due_at
    assert deadline.due_at.utcoffset() == timedelta(hours=8)
    assert deadline.warnings == ()
    assert deadline.excluded_days == excluded
    assert deadline.extended is kwargs.get("extended", False)
    for part in article.split(":")[0].split(" + "):  # the case's own citations are the rule's
        law, numbers = re.fullmatch(r"(?:(\S+) )?arts?\. ([\d, ]+)", part).groups()
        for number in numbers.split(", "):
            assert (f"{law} " if law else "") + f"art. {number}" in deadline.citations, (part, deadline.citations)
    if deadlines.load_builtin().rule(rule_id).kind != "hours":
        assert deadline.due_at == end_of(deadline.last_day)


# ── a year the calendar has not loaded ─────────────────────────────────────────────────────────

def test_new_year_not_loaded_counts_weekends_only_and_flags_it(calendars):
    """行政处罚法 arts. 56, 85 across New Year 2027, with 2027 removed from the calendar."""
    calendar = calendars["library"].without_year(2027)
    deadline = compute("evidence_preservation_decision", at(2026, 12, 24), calendar)
    # 25, 28, 29, 30, 31 Dec; Fri 1 Jan 2027 counted (weekends only); Mon 4 Jan
    assert deadline.last_day == date(2027, 1, 4)
    assert deadline.warnings == ("calendar_not_loaded:2027",)
    assert deadlines.message(deadline.warnings[0], "zh") == "2027 年节假日安排未载入"
    assert deadlines.message(deadline.warnings[0], "en") == "calendar not loaded for 2027"


def test_removing_a_known_year_changes_the_count_and_flags_it(calendars):
    """行政处罚法 arts. 56, 85 across New Year 2026: loaded, then removed."""
    event = at(2025, 12, 24)
    loaded = compute("evidence_preservation_decision", event, calendars["library"])
    assert loaded.last_day == date(2026, 1, 5) and loaded.warnings == ()  # 1/1–1/3 off, Sun 1/4 worked
    removed = compute("evidence_preservation_decision", event, calendars["library"].without_year(2026))
    assert removed.last_day == date(2026, 1, 2)  # 1 and 2 Jan counted as ordinary Thursday and Friday
    assert removed.warnings == ("calendar_not_loaded:2026",)


def test_weekends_still_skipped_in_a_year_not_loaded(calendars):
    """行政处罚法 art. 85 in an unloaded year: Fri 8 Jan 2027 + 7 working days is Tue 19 Jan."""
    deadline = compute("penalty_decision_service", at(2027, 1, 8), calendars["library"].without_year(2027))
    assert deadline.last_day == date(2027, 1, 19)
    assert deadline.warnings == ("calendar_not_loaded:2027",)


@pytest.mark.parametrize(("event", "warnings"), [
    (at(2026, 11, 20), ()),                             # last day Sun 20 Dec 2026 → Mon 21 Dec
    (at(2026, 12, 15), ("calendar_not_loaded:2027",)),  # last day 14 Jan 2027
])
def test_calendar_days_flag_only_when_the_last_day_is_in_an_unloaded_year(calendars, event, warnings):
    """art. 25 + 民法典 art. 203: only the last day's status depends on the calendar."""
    deadline = compute("record_filing", event, calendars["library"].without_year(2027))
    assert deadline.warnings == warnings


def test_art_25_friday_evening_return():
    """art. 25 "当天或返回单位后24小时内": activity ends Friday 18:30, the officer is back at 19:00 — due
    Saturday 19:00 (the later of Friday 24:00 and 24 h after the return); without the return the end
    stands in (Saturday 18:30); an upload well past midnight is in time only by the return."""
    friday_end, back = at(2026, 11, 20, 18, 30), at(2026, 11, 20, 19)
    assert compute("av_upload", back, Calendar(), day_of=friday_end).due_at == at(2026, 11, 21, 19)
    assert compute("av_upload", friday_end, Calendar(), day_of=friday_end).due_at == at(2026, 11, 21, 18, 30)
    # An activity ending at 01:00 and a return at 01:30: the day's end (24:00) is earlier than 24 h on.
    early = compute("av_upload", at(2026, 11, 20, 1, 30), Calendar(), day_of=at(2026, 11, 20, 1))
    assert early.due_at == at(2026, 11, 21, 1, 30)


@pytest.mark.parametrize(("due", "days", "warn"), [
    # Due at 24:00 Wednesday 18 Nov 2026: two working days before that day is Monday 16 Nov.
    (end_of(date(2026, 11, 18)), 2, at(2026, 11, 16, 0)),
    # Due at 24:00 Monday 23 Nov: the weekend does not count; Thursday 19 Nov.
    (end_of(date(2026, 11, 23)), 2, at(2026, 11, 19, 0)),
    # Due 10:00 Friday 9 Oct 2026, just after National Day (1–7 Oct off): Thursday 8 Oct, then the
    # holiday is skipped, so the second working day back is Wednesday 30 Sep.
    (at(2026, 10, 9, 10), 2, at(2026, 9, 30, 0)),
    # Zero days: the warning starts on the day itself.
    (at(2026, 11, 20, 18, 30), 0, at(2026, 11, 20, 0)),
])
def test_when_the_warning_of_a_deadline_starts(calendars, due, days, warn):
    assert deadlines.working_days_before(due, days, calendars["library"]) == warn


def test_hours_never_consult_the_calendar():
    """art. 25: 24 h from an instant in a year nobody knows."""
    deadline = compute("av_upload", at(2090, 12, 31, 23, 30), Calendar())
    assert deadline.due_at == at(2091, 1, 1, 23, 30) and deadline.warnings == ()


RULE_IDS = ("av_upload", "record_filing", "evidence_preservation_decision", "penalty_decision_service",
            "seizure_term", "emergency_report", "penalty_decision_term")


@settings(max_examples=300, deadline=None)
@given(rule_id=st.sampled_from(RULE_IDS),
       event=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31),
                          timezones=st.sampled_from([UTC, CST, SHANGHAI])),
       extended=st.booleans())
def test_an_unknown_year_never_raises(rule_id, event, extended):
    calendar = Calendar.from_library([1990, 2026, 2027, 2100])  # only what the library knows
    rule = deadlines.load_builtin().rule(rule_id)
    deadline = compute(rule_id, event, calendar, extended=extended and rule.extendable)
    assert deadline.due_at > deadline.event_at
    for code in deadline.warnings:
        year = int(code.removeprefix("calendar_not_loaded:"))
        assert not calendar.knows(year)
    if rule.kind != "hours" and rule.rolls_over and not calendar.knows(deadline.last_day.year):
        assert f"calendar_not_loaded:{deadline.last_day.year}" in deadline.warnings


# ── misuse ─────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize(("rule_id", "event", "kwargs", "error", "match"), [
    ("record_filing", datetime(2026, 3, 1, 10), {}, ValueError, "timezone-aware"),
    ("record_filing", at(2026, 3, 1), {"extended": True}, ValueError, "cannot be extended"),
    ("record_filing", at(2026, 3, 1), {"excluded_periods": [(date(2026, 3, 2), date(2026, 3, 3))]},
     ValueError, "no periods may be excluded"),
    ("seizure_term", at(2026, 3, 1), {"excluded_periods": [(date(2026, 3, 5), date(2026, 3, 3))]},
     ValueError, "before it starts"),
    ("seizure_term", at(2026, 3, 1), {"excluded_periods": [(datetime(2026, 3, 5), date(2026, 3, 6))]},
     ValueError, "timezone-aware"),
    ("seizure_term", at(2026, 3, 1), {"excluded_periods": [date(2026, 3, 5)]}, ValueError, "pair"),
    ("no_such_rule", at(2026, 3, 1), {}, KeyError, "no_such_rule"),
])
def test_misuse_is_refused(calendars, rule_id, event, kwargs, error, match):
    with pytest.raises(error, match=match):
        compute(rule_id, event, calendars["library"], **kwargs)


def test_a_calendar_without_working_days_is_an_error_not_a_hang():
    all_off = Calendar(days=[(date(2026, 1, 1) + timedelta(days=i), False, "") for i in range(800)],
                       years=[2026, 2027, 2028])
    with pytest.raises(ValueError, match="no working day"):
        compute("record_filing", at(2026, 1, 1), all_off)
    with pytest.raises(ValueError, match="no working day"):
        compute("evidence_preservation_decision", at(2026, 1, 1), all_off)


# ── overdue and due soon ───────────────────────────────────────────────────────────────────────

def test_is_overdue_at_the_boundary(calendars):
    """民法典 art. 203: a period in days ends at 24:00 of its last day (Asia/Shanghai)."""
    deadline = compute("record_filing", at(2026, 1, 31), calendars["library"])  # last day 2 Mar
    assert not is_overdue(deadline, at(2026, 3, 2, 23, 59), at(2026, 4, 1))
    assert not is_overdue(deadline, end_of(date(2026, 3, 2)), at(2026, 4, 1))  # 24:00 itself
    assert not is_overdue(deadline, datetime(2026, 3, 2, 15, 59, tzinfo=UTC), at(2026, 4, 1))
    assert is_overdue(deadline, datetime(2026, 3, 2, 16, 0, 1, tzinfo=UTC), at(2026, 4, 1))
    assert not is_overdue(deadline, None, at(2026, 3, 2, 23, 59))
    assert is_overdue(deadline, None, at(2026, 3, 3, 0, 1))
    with pytest.raises(ValueError):
        is_overdue(deadline, None, datetime(2026, 3, 3))


def test_is_overdue_for_hours(calendars):
    """art. 25: 24 h from 23:30 means by 23:30 the next day."""
    deadline = compute("av_upload", at(2026, 3, 1, 23, 30), calendars["library"])
    assert not is_overdue(deadline, at(2026, 3, 2, 23, 30), at(2026, 3, 5))
    assert is_overdue(deadline, at(2026, 3, 2, 23, 31), at(2026, 3, 5))


def test_due_within(calendars):
    cal = calendars["library"]
    upload = compute("av_upload", at(2026, 3, 1, 23, 30), cal)  # due 2 Mar 23:30
    filing = compute("record_filing", at(2026, 1, 31), cal)  # due end of 2 Mar
    decision = compute("evidence_preservation_decision", at(2026, 3, 2, 8), cal)  # due end of 11 Mar
    past = compute("av_upload", at(2026, 2, 27, 8), cal)  # due 28 Feb 08:00
    items = [decision, past, filing, upload]
    now = at(2026, 3, 2, 9)
    assert due_within(items, now, 0) == [upload, filing]
    assert due_within(items, now, 8) == [upload, filing]
    assert due_within(items, now, 9) == [upload, filing, decision]
    assert due_within(items, at(2026, 3, 2, 23, 45), 0) == [filing]
    with pytest.raises(ValueError):
        due_within(items, now, -1)


# ── the rules as data ──────────────────────────────────────────────────────────────────────────

def test_builtin_rules():
    rules = deadlines.load_builtin()
    assert rules.ids == RULE_IDS
    upload = rules.rule("av_upload")
    assert (upload.kind, upload.amount) == ("hours", 24) and "当天或返回单位后24小时内" in upload.note
    assert upload.or_end_of_day_zh == "执法活动结束"
    assert (rules.rule("record_filing").kind, rules.rule("record_filing").amount) == ("calendar_days", 30)
    seizure = rules.rule("seizure_term")
    assert (seizure.kind, seizure.amount, seizure.extension) == ("calendar_days", 30, 30)
    assert seizure.allows_exclusions and "检测" in seizure.excludes_zh and not seizure.rolls_over
    assert rules.rule("emergency_report").citations[0] == "行政强制法 art. 19"
    assert rules.rule("penalty_decision_term").citations[0] == "行政处罚法 art. 60"
    for rule_id in ("evidence_preservation_decision", "penalty_decision_service"):
        rule = rules.rule(rule_id)
        assert (rule.kind, rule.amount) == ("working_days", 7) and "行政处罚法 art. 85" in rule.citations
    assert "行政强制法 art. 25" in seizure.citations and "art. 25" in upload.citations


_DIGITS = "零一二三四五六七八九"


def _chinese_number(n: int) -> str:
    """1..999 as written in article headings: 25 → 二十五, 110 → 一百一十, 201 → 二百零一."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    text = f"{_DIGITS[hundreds]}百" if hundreds else ""
    if tens:
        text += ("" if tens == 1 and not hundreds else _DIGITS[tens]) + "十"
    elif hundreds and units:
        text += "零"
    return text + (_DIGITS[units] if units else "")


SOURCES = {
    "": "full-process-recording-rules.zh.txt",
    "行政处罚法": "law/administrative-penalty-law-2021.zh.md",
    "行政强制法": "law/administrative-coercion-law-2011.zh.md",
}


@pytest.mark.skipif(not REGULATION.exists(), reason="shared regulation texts not present")
def test_every_cited_article_exists_in_its_source():
    assert [_chinese_number(n) for n in (10, 25, 85, 110, 201)] == ["十", "二十五", "八十五", "一百一十", "二百零一"]
    for rule in deadlines.load_builtin().deadlines:
        for citation in rule.citations:
            law, number = re.fullmatch(r"(?:(\S+) )?art\. (\d+)", citation).groups()
            if (law or "") not in SOURCES:
                continue  # 民法典: not among the shared texts
            text = (REGULATION / SOURCES[law or ""]).read_text(encoding="utf-8")
            assert f"第{_chinese_number(int(number))}条" in text, (rule.id, citation)
    regulation = (REGULATION / SOURCES[""]).read_text(encoding="utf-8")
    assert "当天或返回单位后24小时内" in regulation and "终结之日起30日内" in regulation


def _toml() -> dict:
    import tomllib
    from importlib import resources
    return tomllib.loads(resources.files("fieldapp.rules").joinpath("deadlines.toml").read_text("utf-8"))


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["deadlines"][0].update(kind="weeks"), "kind"),
    (lambda d: d["deadlines"][0].update(amount=0), "amount"),
    (lambda d: d["deadlines"][0].update(citations=["第二十五条"]), "citation"),
    (lambda d: d["deadlines"][0].update(citations=[]), "citations"),
    (lambda d: d["deadlines"][0].update(amont=24), "unknown key"),
    (lambda d: d["deadlines"][1].update(id="av_upload"), "duplicate"),
    (lambda d: d["deadlines"][0].update(excludes_zh="检测期间"), "go together"),
    (lambda d: d["deadlines"][0].update(excludes_zh="检测期间", excludes_en="testing"), "periods in days"),
    (lambda d: d["warnings"].pop("calendar_not_loaded"), "calendar_not_loaded"),
    (lambda d: d.update(version=0), "version"),
])
def test_malformed_rules_fail_loudly(change, match):
    data = _toml()
    change(data)
    with pytest.raises(DeadlineRulesError, match=match):
        deadlines.parse(data)


def test_compute_with_custom_rules(calendars):
    data = _toml()
    data["deadlines"][0]["amount"] = 48
    rules = deadlines.parse(data)
    deadline = compute("av_upload", at(2026, 3, 1, 23, 30), calendars["library"], rules=rules)
    assert isinstance(deadline, Deadline) and deadline.due_at == at(2026, 3, 3, 23, 30)
