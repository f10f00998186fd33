"""Every compliance rule, table-driven: for each, a case that passes and a case that fails, named by
the article it enforces. The checks read plain facts, so each row is a small hand-made case."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.compliance.checks import CHECKS, Context, Due, evaluate
from fieldapp.compliance.facts import CaseFacts, MediaFact, RecordFact
from fieldapp.rules.catalogue import load_builtin

CATALOGUE = load_builtin()
STEP_TYPES = {st.id: {"id": st.id, "av_required": st.av_required, "av_article": st.av_article, "stage": st.stage,
                      "documents": list(st.documents)} for st in CATALOGUE.step_types}
T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Linzi
CASE_ID, ACTIVITY_ID = uuid.uuid4(), uuid.uuid4()
OFFICER = uuid.uuid4()


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def simple_deadline(rule_id: str, event: datetime) -> Due:
    return Due(event + (timedelta(hours=24) if rule_id == "av_upload" else timedelta(days=30)))


def context(now: datetime = T0 + timedelta(hours=2), archiving: bool = False) -> Context:
    return Context(step_types=STEP_TYPES, continuous_flags=frozenset(f.id for f in CATALOGUE.case_flags),
                   gap_tolerance=timedelta(seconds=30), now=now, deadline=simple_deadline, archiving=archiving)


def officers(n: int = 2, shown: bool = True) -> list[dict]:
    return [{"name": f"执法员{i}", "cert_no": f"3703{i:04d}", "cert_shown": shown} for i in range(n)]


def activity(**payload) -> RecordFact:
    base = {"arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)), "officers": officers(),
            "continuous_required": False, "cameras": [{"camera_id": "DSJ-01", "started_at": iso(T0)}]}
    base.update(payload)
    return RecordFact(ACTIVITY_ID, "activity", CASE_ID, OFFICER, base, T0)


def child(record_type: str, payload: dict, media=()) -> RecordFact:
    return RecordFact(uuid.uuid4(), record_type, ACTIVITY_ID, OFFICER, payload, T0, tuple(media))


def step(step_type="penalty_onsite_inspection", **payload) -> RecordFact:
    base = {"step_type": step_type, "at": iso(T0 + timedelta(minutes=10)), "av_recorded": True, "av_reason": None,
            "documents": list(STEP_TYPES[step_type]["documents"])}
    base.update(payload)
    return child("step", base)


def stop(minutes_from=10, minutes_to=20, **payload) -> RecordFact:
    base = {"activity_id": str(ACTIVITY_ID), "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=minutes_from)),
            "resumed_at": iso(T0 + timedelta(minutes=minutes_to)) if minutes_to is not None else None,
            "explanation": "电池耗尽，更换电池", "cannot_continue": False, "reported_to": None, "written_explanation": None}
    base.update(payload)
    return child("interruption", base)


def service(**payload) -> RecordFact:
    base = {"refusal": {"words": "拒绝签收", "acts": None}, "at": iso(T0 + timedelta(minutes=30)),
            "witnesses": [{"name": "王见证", "id_no": "370303"}], "media": [], "recipient": {"name": "李某"}}
    base.update(payload)
    return child("service", base)


@dataclass
class Row:
    rule: str
    article: str  # the article the rule enforces, as the catalogue cites it
    name: str
    facts: CaseFacts
    fails: bool
    ctx: Context = field(default_factory=context)


def case(*records: RecordFact, **fields) -> CaseFacts:
    base = CaseFacts(CASE_ID, uuid.uuid4(), "penalty", "临市监罚〔2026〕1号", "临淄区齐都镇鲜果超市", (), None, None)
    base = replace(base, **fields)
    base.records = list(records)
    return base


def media(kind="video", arrived_after_hours: float | None = 2) -> MediaFact:
    return MediaFact(uuid.uuid4().hex * 2, kind,
                     None if arrived_after_hours is None else T0 + timedelta(hours=1 + arrived_after_hours))


assert STEP_TYPES["penalty_onsite_inspection"]["av_required"], "the table assumes an AV-required step type"

ROWS = [
    # arts. 12, 19, 22, 24 — steps that must be recorded on audio/video
    Row("av_missing", "arts. 12, 19, 22, 24", "recorded", case(activity(), step()), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "not recorded, reason given",
        case(activity(), step(av_recorded=False, av_reason="当事人拒绝，执法记录仪故障")), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "not recorded, no reason",
        case(activity(), step(av_recorded=False, av_reason="  ")), True),
    # art. 9 — continuous recording
    Row("continuous_gap", "art. 9", "gap explained on resuming",
        case(activity(continuous_required=True), stop()), False),
    Row("continuous_gap", "art. 9", "gap of 25 s within the 30-s tolerance",
        case(activity(continuous_required=True), stop(explanation="", minutes_from=10, minutes_to=10.4)), False),
    Row("continuous_gap", "art. 9", "unexplained 10-minute gap on a life-and-health case",
        case(activity(), stop(explanation=""), flags=("life_health",)), True),
    Row("continuous_gap", "art. 9", "camera started 5 minutes late",
        case(activity(continuous_required=True, cameras=[{"camera_id": "DSJ-01", "started_at": iso(T0 + timedelta(minutes=5))}])),
        True),
    Row("continuous_gap", "art. 9", "no continuous recording required",
        case(activity(), stop(explanation="")), False),
    Row("interruption_unexplained", "art. 9", "explained", case(activity(), stop()), False),
    Row("interruption_unexplained", "art. 9", "resumed without explanation", case(activity(), stop(explanation="")), True),
    Row("interruption_unexplained", "art. 9", "never resumed, activity over",
        case(activity(), stop(minutes_to=None, explanation=None)), True),
    Row("cannot_continue_unreported", "art. 9", "reported and explained in writing",
        case(activity(), stop(minutes_to=None, cannot_continue=True, reported_to="李队长", written_explanation="设备损坏")), False),
    Row("cannot_continue_unreported", "art. 9", "not reported to the head",
        case(activity(), stop(minutes_to=None, cannot_continue=True, reported_to=None, written_explanation="设备损坏")), True),
    Row("cannot_continue_unreported", "art. 9", "no written explanation afterwards",
        case(activity(), stop(minutes_to=None, cannot_continue=True, reported_to="李队长")), True),
    # 行政处罚法 arts. 42, 55; 行政强制法 art. 18; 行政许可法 art. 34
    Row("officers_fewer_than_two", "行政处罚法 art. 42, 55", "two officers", case(activity()), False),
    Row("officers_fewer_than_two", "行政处罚法 art. 42, 55", "one officer", case(activity(officers=officers(1))), True),
    Row("certificates_not_shown", "行政处罚法 art. 42, 55", "shown", case(activity()), False),
    Row("certificates_not_shown", "行政处罚法 art. 42, 55", "not shown", case(activity(officers=officers(2, shown=False))), True),
    # 民事诉讼法 art. 89 — service by leaving
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "reason, date, witness", case(activity(), service()), False),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "photo instead of witnesses",
        case(activity(), service(witnesses=[], media=["ab" * 32])), False),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no refusal reason",
        case(activity(), service(refusal={"words": "", "acts": None})), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no date", case(activity(), service(at=None)), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "neither witnesses nor photo",
        case(activity(), service(witnesses=[], media=[])), True),
    # art. 25 — storage within 24 hours, filing within 30 days, labels
    Row("av_upload_late", "art. 25", "stored 2 h after the activity",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection", "av_recorded": True}, [media()])), False),
    Row("av_upload_late", "art. 25", "stored 30 h after the activity",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection", "av_recorded": True},
                                [media(arrived_after_hours=30)])), True),
    Row("av_upload_late", "art. 25", "still missing 25 h after the activity",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection", "av_recorded": True},
                                [media(arrived_after_hours=None)])), True, context(T0 + timedelta(hours=26))),
    Row("filing_late", "art. 25", "filed on day 20",
        case(activity(), act_ended_at=T0, archived_at=T0 + timedelta(days=20)), False),
    Row("filing_late", "art. 25", "filed on day 31",
        case(activity(), act_ended_at=T0, archived_at=T0 + timedelta(days=31)), True),
    Row("filing_late", "art. 25", "not filed 31 days on", case(activity(), act_ended_at=T0), True,
        context(T0 + timedelta(days=31))),
    Row("media_unlabelled", "art. 25", "no case number yet, deadline not reached",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection"}, [media()]), case_number=None), False),
    Row("media_unlabelled", "art. 25", "no case number when the filing deadline falls",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection"}, [media()]), case_number=None,
             act_ended_at=T0), True, context(T0 + timedelta(days=31))),
    Row("media_unlabelled", "art. 25", "no party after the 24-hour deadline",
        case(activity(), child("step", {"step_type": "penalty_onsite_inspection"}, [media()]), party_name="?"), True,
        context(T0 + timedelta(hours=30))),
    # arts. 10–23 — documents checklist of a stage done
    Row("documents_incomplete", "arts. 10–23", "stage not done yet",
        case(activity(), step(documents=[])), False),
    Row("documents_incomplete", "arts. 10–23", "stage done, checklist complete",
        case(activity(), step(), stages_done={"investigation": T0}), False),
    Row("documents_incomplete", "arts. 10–23", "stage done, a document missing",
        case(activity(), step(documents=[]), stages_done={"investigation": T0}), True),
    Row("documents_incomplete", "arts. 10–23", "archiving with a document missing",
        case(activity(), step(documents=[])), True, context(archiving=True)),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.rule}[{r.article}]-{r.name}" for r in ROWS])
def test_rule(row: Row):
    hits = [h for h in evaluate(row.facts, row.ctx) if h.rule_id == row.rule]
    assert bool(hits) == row.fails, hits
    catalogue_article = CATALOGUE.finding(row.rule).article
    assert row.article.split(",")[0].split()[-1] in catalogue_article  # the row names the rule's article


def test_every_catalogue_finding_has_a_check_and_a_passing_and_failing_row():
    assert set(CHECKS) == {f.id for f in CATALOGUE.findings}
    for rule in CHECKS:
        outcomes = {r.fails for r in ROWS if r.rule == rule}
        assert outcomes == {True, False}, f"{rule} needs a passing and a failing case"


def test_the_gap_is_measured_per_camera():
    two_cameras = activity(continuous_required=True, cameras=[{"camera_id": "DSJ-01", "started_at": iso(T0)},
                                                              {"camera_id": "DSJ-02", "started_at": iso(T0)}])
    hits = [h for h in evaluate(case(two_cameras, stop(explanation="", camera_id="DSJ-02")), context())
            if h.rule_id == "continuous_gap"]
    assert [h.detail["camera_id"] for h in hits] == ["DSJ-02"] and hits[0].detail["gap_seconds"] == 600
