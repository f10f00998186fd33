"""Every compliance rule, table-driven and right in both directions: for each finding, cases where
the law is kept (no finding) and cases where it is broken (a finding), each row naming the
provision it tests. The checks read plain facts, so each row is a small hand-made case; deadlines
are counted on the real working-day calendar."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.compliance import exceptions
from fieldapp.compliance.checks import CHECKS, Context, Due, evaluate
from fieldapp.compliance.facts import CaseFacts, FootageFact, MediaFact, RecordFact
from fieldapp.rules import deadlines
from fieldapp.rules.catalogue import load_builtin
from fieldapp.rules.deadlines import SHANGHAI
from fieldapp.rules.workcal import Calendar

CATALOGUE = load_builtin()
CONTENT = CATALOGUE.to_json()  # the engine reads the published JSON; so do the rows
STEP_TYPES = {st["id"]: st for st in CONTENT["step_types"]}
CALENDAR = Calendar.from_library()


def sh(*parts) -> datetime:
    """A Linzi wall-clock time."""
    return datetime(*parts, tzinfo=SHANGHAI)


T0 = sh(2026, 11, 20, 9, 0)  # Friday 09:00 in Linzi
CASE_ID, ACTIVITY_ID = uuid.uuid4(), uuid.uuid4()
OFFICER = uuid.uuid4()


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def real_deadline(rule_id: str, at: datetime, *, extended=False, excluded=(), day_of=None) -> Due:
    d = deadlines.compute(rule_id, at, CALENDAR, extended=extended, excluded_periods=excluded, day_of=day_of)
    return Due(d.due_at, d.warnings)


def footage_due(storage_due: datetime) -> Due:  # the default grace: 3 working days
    return Due(*deadlines.working_days_after(storage_due, 3, CALENDAR))


def context(now: datetime = T0 + timedelta(hours=2), archiving: bool = False) -> Context:
    return Context(step_types=STEP_TYPES,
                   continuous_flags=frozenset(f["id"] for f in CONTENT["case_flags"] if f["continuous"]),
                   gap_tolerance=timedelta(seconds=30), now=now, deadline=real_deadline, archiving=archiving,
                   footage_due=footage_due,
                   continuous_reasons=frozenset(r["id"] for r in CONTENT["interruption_reasons"] if r["sets_continuous"]),
                   service_step_types={k["id"]: k["service_by_leaving"] for k in CONTENT["kinds"] if k["service_by_leaving"]})


def officers(n: int = 2, shown: bool = True, prefix: str = "3703") -> list[dict]:
    return [{"name": f"执法员{i}", "cert_no": f"{prefix}{i:04d}", "cert_shown": shown} for i in range(n)]


ENROLLED = frozenset(o["cert_no"] for o in officers(3))


def activity(**payload) -> RecordFact:
    base = {"arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)), "officers": officers(),
            "continuous_required": False, "cameras": [{"camera_id": "DSJ-01", "started_at": iso(T0)}]}
    base.update(payload)
    return RecordFact(ACTIVITY_ID, "activity", CASE_ID, OFFICER, base, T0)


def child(record_type: str, payload: dict, media=()) -> RecordFact:
    return RecordFact(uuid.uuid4(), record_type, ACTIVITY_ID, OFFICER, payload, T0, tuple(media))


def step(step_type="penalty_onsite_inspection", media=(), **payload) -> RecordFact:
    base = {"step_type": step_type, "at": iso(T0 + timedelta(minutes=10)), "av": "body_camera",
            "av_camera_id": "DSJ-01", "av_reason": None, "documents": list(STEP_TYPES[step_type]["documents"])}
    base.update(payload)
    return child("step", base, media)


def at_day(step_type: str, days: float, **payload) -> RecordFact:
    """A step recorded ``days`` after T0 (for the clocks)."""
    return step(step_type, at=iso(T0 + timedelta(days=days)), **payload)


def stop(minutes_from=10, minutes_to=20, **payload) -> RecordFact:
    base = {"activity_id": str(ACTIVITY_ID), "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=minutes_from)),
            "resumed_at": iso(T0 + timedelta(minutes=minutes_to)) if minutes_to is not None else None,
            "reason": "battery", "explanation": "电池耗尽，更换电池", "cannot_continue": False, "reported_to": None,
            "written_explanation": None}
    base.update(payload)
    return child("interruption", base)


SIGNED_OFFICERS = [{"name": "执法员0", "cert_no": "37030000", "signature": "ab" * 32},
                   {"name": "执法员1", "cert_no": "37030001", "signature": "cd" * 32}]


def witness(org_kind="grassroots", confirmation="signed", **extra) -> dict:
    base = {"name": "王见证", "org": "齐都镇某村民委员会", "org_kind": org_kind, "role": "村委会委员",
            "confirmation": confirmation, "signature": "ef" * 32 if confirmation == "signed" else None,
            "confirmed_how": "当场口头确认并按手印" if confirmation == "confirmed" else None,
            "refused_reason": "不愿签字" if confirmation == "refused" else None}
    base.update(extra)
    return base


def service(attached=(), **payload) -> RecordFact:
    base = {"recipient": {"name": "李某", "relation": "self", "id_no": None}, "place": "齐都镇某超市",
            "refusal": {"words": "拒绝签收", "acts": None}, "at": iso(T0 + timedelta(minutes=30)),
            "documents": [{"name": "行政处罚决定书", "number": "临市监罚〔2026〕1号"}],
            "witnesses": [witness()], "officers": SIGNED_OFFICERS, "media": [],
            "av": "body_camera", "av_camera_id": "DSJ-01"}
    base.update(payload)
    return child("service", base, attached)


def media(kind="video", arrived: datetime | None = T0 + timedelta(hours=3)) -> MediaFact:
    return MediaFact(uuid.uuid4().hex * 2, kind, arrived)


def footage(*spans: tuple[float, float], camera="DSJ-01", stored_after_hours: float = 3) -> dict:
    """Body-camera segments linked to the activity: (from, to) in minutes after T0."""
    return {ACTIVITY_ID: tuple(FootageFact(uuid.uuid4(), camera, T0 + timedelta(minutes=a), T0 + timedelta(minutes=b),
                                           T0 + timedelta(hours=stored_after_hours)) for a, b in spans)}


WHOLE_VISIT = ((-1, 61),)


@dataclass
class Row:
    rule: str
    article: str  # the provision the row tests, as the catalogue cites it
    name: str
    facts: CaseFacts
    fails: bool
    ctx: Context = field(default_factory=context)


def case(*records: RecordFact, **fields) -> CaseFacts:
    base = CaseFacts(CASE_ID, uuid.uuid4(), "penalty", "临市监罚〔2026〕1号", "临淄区齐都镇鲜果超市", (), None, None)
    base = replace(base, **{"enrolled_certs": ENROLLED, **fields})
    base.records = list(records)
    return base


LATER = context(T0 + timedelta(days=10))  # well past art. 25's deadline and the 3-working-day grace
NA = {"reason": "本次未提取"}

ROWS = [
    # ── arts. 12, 19, 22, 24 (应当同时进行音像记录) ───────────────────────────────────────────────
    Row("av_missing", "arts. 12, 19, 22, 24", "a clip is attached to the step",
        case(activity(), step(av="clip", media=[media("video")])), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "declared on a named body camera",
        case(activity(), step()), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "older phone: 是 on the activity's camera",
        case(activity(), step(av=None, av_recorded=True)), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "not recorded, with a reason: still a breach",
        case(activity(), step(av="not_recorded", av_reason="当事人拒绝，执法记录仪故障")), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "no answer is not 'recorded'",
        case(activity(), step(av=None, av_camera_id=None)), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "'clip' answered but no clip attached",
        case(activity(), step(av="clip", media=[media("image")])), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "body camera answered but not named",
        case(activity(), step(av_camera_id=" ")), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "a step that needs no audio/video, unanswered",
        case(activity(), step("inspection_routine", av=None)), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "art. 19(四): 留置送达 in a penalty case with no AV answer",
        case(activity(), service(av=None, av_camera_id=None, attached=[media("image")])), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "art. 19(四): 留置送达 filmed, the clip attached",
        case(activity(), service(av="clip", av_camera_id=None, attached=[media("video")])), False),
    Row("av_footage_pending", "arts. 12, 19, 22, 24; art. 25", "footage pending before its grace",
        case(activity(), step()), True),
    Row("av_footage_pending", "arts. 12, 19, 22, 24; art. 25", "a clip is attached: nothing pending",
        case(activity(), step(av="clip", media=[media("video")])), False),
    # ── the same duties, from real body-camera footage (arts. 12, 19, 22, 24) ─────────────────────
    Row("av_footage_pending", "arts. 12, 19, 22, 24; art. 25", "the camera's footage arrived and shows the step",
        case(activity(), step(), footage=footage(*WHOLE_VISIT)), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "declared, but past the grace the camera's footage does not show the step",
        case(activity(), step(), footage=footage((0, 5), (15, 60))), True, LATER),
    Row("av_missing", "arts. 12, 19, 22, 24", "the footage in so far misses the step; the rest may still come",
        case(activity(), step(), footage=footage((0, 5), (15, 60))), False),
    Row("av_footage_pending", "arts. 12, 19, 22, 24; art. 25", "part of the camera's footage in, not the step's",
        case(activity(), step(), footage=footage((0, 5), (15, 60))), True),
    Row("av_missing", "arts. 12, 19, 22, 24", "answered 'not recorded', yet the footage shows the step",
        case(activity(), step(av="not_recorded", av_reason="忘记"), footage=footage(*WHOLE_VISIT)), False),
    Row("av_missing", "arts. 12, 19, 22, 24", "footage one minute off the step: within the clock tolerance",
        case(activity(), step(), footage=footage((0, 9))), False),
    Row("av_footage_overdue", "arts. 12, 19, 22, 24; art. 25", "past the grace, but the footage shows the step",
        case(activity(), step(), footage=footage(*WHOLE_VISIT)), False, LATER),
    Row("av_footage_overdue", "arts. 12, 19, 22, 24; art. 25", "footage pending past the deadline plus grace",
        case(activity(), step()), True, LATER),
    Row("av_footage_overdue", "arts. 12, 19, 22, 24; art. 25", "pending, still within the grace (Monday)",
        case(activity(), step()), False, context(sh(2026, 11, 23, 12))),
    Row("av_footage_overdue", "arts. 12, 19, 22, 24; art. 25", "the clip arrived in time",
        case(activity(), step(av="clip", media=[media("video")])), False, LATER),
    # ── art. 9: continuous recording ───────────────────────────────────────────────────────────
    Row("continuous_gap", "art. 9", "gap explained on resuming",
        case(activity(continuous_required=True), stop()), False),
    Row("continuous_gap", "art. 9", "gap of 25 s within the 30-s tolerance",
        case(activity(continuous_required=True), stop(explanation="", minutes_from=10, minutes_to=10.4)), False),
    Row("continuous_gap", "art. 9", "unexplained 10-minute gap on a life-and-health case (lead's flag)",
        case(activity(), stop(explanation=""), flags=("life_health",)), True),
    Row("continuous_gap", "art. 9", "camera started 5 minutes late",
        case(activity(continuous_required=True, cameras=[{"camera_id": "DSJ-01", "started_at": iso(T0 + timedelta(minutes=5))}])),
        True),
    Row("continuous_gap", "art. 9", "no continuous recording required",
        case(activity(), stop(explanation="")), False),
    Row("continuous_gap", "art. 9", "a serious case (行政处罚法 57) alone does not require it",
        case(activity(), stop(explanation=""), flags=("serious",)), False),
    Row("continuous_gap", "art. 9", "obstruction sets it: the unexplained stop is a gap",
        case(activity(), stop(explanation="", reason="obstruction")), True),
    Row("continuous_gap", "art. 9", "art. 24(二): an emergency inspection step sets it",
        case(activity(), step("inspection_emergency"), stop(explanation="")), True),
    Row("continuous_gap", "art. 9", "footage covers the whole visit",
        case(activity(continuous_required=True), footage=footage(*WHOLE_VISIT)), False),
    Row("continuous_gap", "art. 9", "footage has a 6-minute hole nobody declared",
        case(activity(continuous_required=True), footage=footage((-1, 20), (26, 61))), True),
    Row("continuous_gap", "art. 9", "the footage hole is a declared, explained interruption",
        case(activity(continuous_required=True), stop(minutes_from=20, minutes_to=26), footage=footage((-1, 20), (26, 61))),
        False),
    Row("continuous_gap", "art. 9", "the declared stop explains only half of the footage hole",
        case(activity(continuous_required=True), stop(minutes_from=20, minutes_to=23), footage=footage((-1, 20), (26, 61))),
        True),
    Row("continuous_gap", "art. 9", "the declared times show no gap, the footage does",
        case(activity(continuous_required=True), footage=footage((-1, 30))), True),
    Row("continuous_gap", "art. 9", "3-s hole between two files of one camera: within the tolerance",
        case(activity(continuous_required=True), footage=footage((-1, 20), (20.05, 61))), False),
    Row("footage_through_interruption", "art. 9", "the camera was off during the declared stop",
        case(activity(), stop(minutes_from=20, minutes_to=26), footage=footage((-1, 20), (26, 61))), False),
    Row("footage_through_interruption", "art. 9", "the camera kept recording through the declared stop",
        case(activity(), stop(minutes_from=20, minutes_to=26), footage=footage(*WHOLE_VISIT)), True),
    Row("footage_through_interruption", "art. 9", "no footage in yet: nothing to compare",
        case(activity(), stop(minutes_from=20, minutes_to=26)), False),
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
    # ── 行政处罚法 art. 42; 行政强制法 art. 18(二): two qualified officers ──────────────────────────
    Row("officers_fewer_than_two", "行政处罚法 art. 42", "two enrolled officers", case(activity()), False),
    Row("officers_fewer_than_two", "行政处罚法 art. 42", "one officer", case(activity(officers=officers(1))), True),
    Row("officers_fewer_than_two", "行政处罚法 art. 42", "two names, one without an enrolled certificate",
        case(activity(officers=[officers(1)[0], {"name": "协管员", "cert_no": "", "cert_shown": True}])), True),
    Row("officers_fewer_than_two", "行政处罚法 art. 42", "the same officer listed twice",
        case(activity(officers=officers(1) * 2)), True),
    Row("officers_fewer_than_two", "行政处罚法 art. 42", "an officer of another unit, by certificate number",
        case(activity(officers=[officers(1)[0], {"name": "外单位", "cert_no": "37990001", "cert_shown": True}]),
             enrolled_certs=ENROLLED | {"37990001"}), False),
    # ── 行政处罚法 art. 55; 行政强制法 art. 18(三): certificates shown ──────────────────────────────
    Row("certificates_not_shown", "行政处罚法 art. 55", "shown", case(activity()), False),
    Row("certificates_not_shown", "行政处罚法 art. 55", "not shown", case(activity(officers=officers(2, shown=False))), True),
    Row("certificates_not_shown", "行政处罚法 art. 55", "not recorded either way",
        case(activity(officers=[{"name": "执法员0", "cert_no": "37030000"}, officers(2)[1]])), True),
    # ── 留置送达: 民事诉讼法 art. 89; 民诉解释 art. 130 ──────────────────────────────────────────────
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "all the refusal facts", case(activity(), service()), False),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no words or acts of refusal",
        case(activity(), service(refusal={"words": "", "acts": None})), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no date", case(activity(), service(at=None)), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "who refused, not their relation",
        case(activity(), service(recipient={"name": "李某", "relation": ""})), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no place", case(activity(), service(place="")), True),
    Row("service_by_leaving_incomplete", "民事诉讼法 art. 89", "no document left",
        case(activity(), service(documents=[])), True),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "grassroots witness signed, officers signed",
        case(activity(), service()), False),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "grassroots witness confirmed without signing",
        case(activity(), service(witnesses=[witness(confirmation="confirmed")])), False),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "photos of the documents left, no witness",
        case(activity(), service(witnesses=[], officers=[], media=["ab" * 32])), False),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "the witness refused to confirm, no photo",
        case(activity(), service(witnesses=[witness(confirmation="refused")])), True),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "民诉解释 130: a passer-by is no such witness",
        case(activity(), service(witnesses=[witness(org_kind="other")])), True),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "witness signed, the officers did not",
        case(activity(), service(officers=[{"name": "执法员0", "cert_no": "37030000", "signature": None}])), True),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "neither witness nor photo",
        case(activity(), service(witnesses=[], media=[])), True),
    Row("service_by_leaving_unproven", "民事诉讼法 art. 89", "an employer's representative signed",
        case(activity(), service(witnesses=[witness(org_kind="employer", org="某公司", role="行政主管")])), False),
    # ── art. 25: storage by the day or 24 h after the return, filing within 30 days, labels ───────
    Row("av_upload_late", "art. 25", "Friday 18:30 end, back 19:00, stored Saturday 17:00: lawful",
        case(activity(arrived_at=iso(sh(2026, 11, 20, 17)), departed_at=iso(sh(2026, 11, 20, 18, 30)),
                      returned_at=iso(sh(2026, 11, 20, 19))),
             step(av="clip", media=[media(arrived=sh(2026, 11, 21, 17))])), False, context(sh(2026, 11, 23, 9))),
    Row("av_upload_late", "art. 25", "back 19:00, stored Saturday 19:30: late",
        case(activity(arrived_at=iso(sh(2026, 11, 20, 17)), departed_at=iso(sh(2026, 11, 20, 18, 30)),
                      returned_at=iso(sh(2026, 11, 20, 19))),
             step(av="clip", media=[media(arrived=sh(2026, 11, 21, 19, 30))])), True, context(sh(2026, 11, 23, 9))),
    Row("av_upload_late", "art. 25", "no return recorded: the end stands in (due Sat 18:30)",
        case(activity(arrived_at=iso(sh(2026, 11, 20, 17)), departed_at=iso(sh(2026, 11, 20, 18, 30))),
             step(av="clip", media=[media(arrived=sh(2026, 11, 21, 18, 45))])), True, context(sh(2026, 11, 23, 9))),
    Row("av_upload_late", "art. 25", "body-camera footage stored 3 h after the visit",
        case(activity(), footage=footage(*WHOLE_VISIT)), False),
    Row("av_upload_late", "art. 25", "body-camera footage reached storage two days later",
        case(activity(), footage=footage(*WHOLE_VISIT, stored_after_hours=50)), True, context(T0 + timedelta(days=3))),
    Row("av_upload_late", "art. 25", "still missing 25 h after the activity",
        case(activity(), step(av="clip", media=[media(arrived=None)])), True, context(T0 + timedelta(hours=26))),
    Row("filing_late", "art. 25", "filed on day 20",
        case(activity(), act_ended_at=T0, archived_at=T0 + timedelta(days=20)), False),
    Row("filing_late", "art. 25", "filed on day 32",
        case(activity(), act_ended_at=T0, archived_at=T0 + timedelta(days=32)), True),
    Row("filing_late", "art. 25", "not filed 32 days on", case(activity(), act_ended_at=T0), True,
        context(T0 + timedelta(days=32))),
    Row("media_unlabelled", "art. 25", "no case number yet, deadline not reached",
        case(activity(), step(media=[media()]), case_number=None), False),
    Row("media_unlabelled", "art. 25", "no case number when the filing deadline falls",
        case(activity(), step(media=[media()]), case_number=None, act_ended_at=T0), True,
        context(T0 + timedelta(days=32))),
    Row("media_unlabelled", "art. 25", "no party after the storage deadline",
        case(activity(), step(media=[media()]), party_name="?"), True, context(T0 + timedelta(hours=30))),
    # ── arts. 10–23: checklists with alternatives and conditions ────────────────────────────────
    Row("documents_incomplete", "arts. 10–23", "stage not done yet",
        case(activity(), step(documents=[])), False),
    Row("documents_incomplete", "arts. 10–23", "stage done, checklist complete",
        case(activity(), step(), stages_done={"investigation": T0}), False),
    Row("documents_incomplete", "arts. 10–23", "stage done, a document missing",
        case(activity(), step(documents=[]), stages_done={"investigation": T0}), True),
    Row("documents_incomplete", "arts. 10–23", "archiving with a document missing",
        case(activity(), step(documents=[])), True, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "one of 勘验笔录/现场笔录 made; conditional ones not applicable",
        case(activity(), step("penalty_onsite_investigation", documents=["现场笔录"],
                              documents_na=[{"name": "证据提取单", **NA}, {"name": "电子数据证据提取笔录", **NA}])),
        False, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "neither 勘验笔录 nor 现场笔录",
        case(activity(), step("penalty_onsite_investigation", documents=[],
                              documents_na=[{"name": "证据提取单", **NA}, {"name": "电子数据证据提取笔录", **NA}])),
        True, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "'not applicable' with no reason is no answer",
        case(activity(), step("penalty_onsite_investigation", documents=["现场笔录"],
                              documents_na=[{"name": "证据提取单", "reason": " "}, {"name": "电子数据证据提取笔录", **NA}])),
        True, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "行政处罚决定书 or 不予行政处罚决定书: one is enough",
        case(activity(), step("penalty_decision", documents=["不予行政处罚决定书"])), False, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "行政强制法 art. 24: 扣押 needs no 封条",
        case(activity(), step("coercion_seal_seize", measure="seize",
                              documents=["实施行政强制措施决定书", "场所/设施/财物清单", "现场笔录"]), kind="coercion"),
        False, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "查封 without 封条",
        case(activity(), step("coercion_seal_seize", measure="seal",
                              documents=["实施行政强制措施决定书", "场所/设施/财物清单", "现场笔录"]), kind="coercion"),
        True, context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "行政处罚法 57: no 集体讨论记录 outside the serious cases",
        case(activity(), step("penalty_decision_approval", documents=["行政处理决定审批表"])), False,
        context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "a serious case without 集体讨论记录",
        case(activity(), step("penalty_decision_approval", documents=["行政处理决定审批表"]), flags=("serious",)), True,
        context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "询问通知书 not due when questioning was not notified",
        case(activity(), step("penalty_onsite_questioning", notified_in_advance=False, documents=["询问笔录"])), False,
        context(archiving=True)),
    Row("documents_incomplete", "arts. 10–23", "询问通知书 due when it was",
        case(activity(), step("penalty_onsite_questioning", notified_in_advance=True, documents=["询问笔录"])), True,
        context(archiving=True)),
    Row("document_required_not_applicable", "arts. 10–23", "a required document marked not applicable",
        case(activity(), step(documents=[], documents_na=[{"name": "现场笔录", "reason": "当事人拒绝"}])), True),
    Row("document_required_not_applicable", "arts. 10–23", "a conditional document marked not applicable",
        case(activity(), step("penalty_onsite_investigation", documents=["现场笔录"],
                              documents_na=[{"name": "证据提取单", **NA}, {"name": "电子数据证据提取笔录", **NA}])), False),
    # ── 行政处罚法 art. 56: 先行登记保存, 7 working days ─────────────────────────────────────────────
    Row("evidence_preservation_late", "行政处罚法 art. 56", "seized on day 5: a lawful decision on the goods",
        case(activity(), at_day("penalty_evidence_preservation", 0), at_day("coercion_seal_seize", 5)), False,
        context(T0 + timedelta(days=30))),
    Row("evidence_preservation_late", "行政处罚法 art. 56", "released on day 14",
        case(activity(), at_day("penalty_evidence_preservation", 0), at_day("penalty_evidence_preservation_release", 14)),
        True, context(T0 + timedelta(days=30))),
    Row("evidence_preservation_late", "行政处罚法 art. 56", "no decision after 12 days",
        case(activity(), at_day("penalty_evidence_preservation", 0)), True, context(T0 + timedelta(days=12))),
    # ── 行政强制法 arts. 25, 27: the term of 查封/扣押 ─────────────────────────────────────────────
    Row("seizure_term_exceeded", "行政强制法 art. 25", "lifted on day 25",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_lift", 25), kind="coercion"), False,
        context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "lifted on day 45, no extension",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_lift", 45), kind="coercion"), True,
        context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "extension approved on day 20, notified: lifted day 45 in time",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_extension", 20, notified_at=iso(T0 + timedelta(days=21))),
             at_day("coercion_lift", 45), kind="coercion"), False, context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "extension approved after expiry (day 35)",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_extension", 35, notified_at=iso(T0 + timedelta(days=35))),
             at_day("coercion_lift", 45), kind="coercion"), True, context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "extension never notified to the party",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_extension", 20, notified_at=None),
             at_day("coercion_lift", 45), kind="coercion"), True, context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "a 20-day testing period told in writing: day 45 in time",
        case(activity(), at_day("coercion_seal_seize", 0),
             at_day("coercion_testing_period", 3, period_from=iso(T0 + timedelta(days=3)),
                    period_to=iso(T0 + timedelta(days=22)), party_told_at=iso(T0 + timedelta(days=3))),
             at_day("coercion_lift", 45), kind="coercion"), False, context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "the testing period never told: it counts",
        case(activity(), at_day("coercion_seal_seize", 0),
             at_day("coercion_testing_period", 3, period_from=iso(T0 + timedelta(days=3)),
                    period_to=iso(T0 + timedelta(days=22)), party_told_at=None),
             at_day("coercion_lift", 45), kind="coercion"), True, context(T0 + timedelta(days=90))),
    Row("seizure_term_exceeded", "行政强制法 art. 25", "扣押 taken inside a penalty case: its term runs there too",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_lift", 45)), True,
        context(T0 + timedelta(days=90))),
    Row("av_missing", "arts. 12, 19, 22, 24", "art. 22: 查封 inside a penalty case, not recorded",
        case(activity(), step("coercion_seal_seize", av="not_recorded", av_reason="设备故障", measure="seal")), True),
    Row("seizure_term_exceeded", "行政强制法 art. 27", "confiscated (a decision on the goods) on day 28",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_disposal", 28), kind="coercion"), False,
        context(T0 + timedelta(days=90))),
    # ── 行政处罚法 art. 61: service of a decision not handed over on the spot ────────────────────────
    Row("decision_service_late", "行政处罚法 art. 61", "handed over when announced: no clock at all",
        case(activity(), at_day("penalty_decision", 0, handed_over_on_spot=True)), False, context(T0 + timedelta(days=60))),
    Row("decision_service_late", "行政处罚法 art. 61", "not handed over, served in person on day 5",
        case(activity(), at_day("penalty_decision", 0, handed_over_on_spot=False), at_day("penalty_service_in_person", 5)),
        False, context(T0 + timedelta(days=60))),
    Row("decision_service_late", "行政处罚法 art. 61", "not handed over, served by leaving on day 5",
        case(activity(), at_day("penalty_decision", 0, handed_over_on_spot=False),
             service(at=iso(T0 + timedelta(days=5)))), False, context(T0 + timedelta(days=60))),
    Row("decision_service_late", "行政处罚法 art. 61", "not handed over, served on day 14",
        case(activity(), at_day("penalty_decision", 0, handed_over_on_spot=False), at_day("penalty_service_by_post", 14)),
        True, context(T0 + timedelta(days=60))),
    # ── 民事诉讼法 art. 95: service by public notice only as the last resort ──────────────────────
    Row("service_by_notice_unjustified", "民事诉讼法 art. 95", "the party cannot be found",
        case(activity(), at_day("penalty_service_by_notice", 3, notice_reason="whereabouts_unknown")), False),
    Row("service_by_notice_unjustified", "民事诉讼法 art. 95", "after service by post failed",
        case(activity(), at_day("penalty_service_by_post", 1), at_day("penalty_service_by_notice", 9,
                                                                      notice_reason="other_methods_failed")), False),
    Row("service_by_notice_unjustified", "民事诉讼法 art. 95", "'other ways failed' but none was tried",
        case(activity(), at_day("penalty_service_by_notice", 3, notice_reason="other_methods_failed")), True),
    Row("service_by_notice_unjustified", "民事诉讼法 art. 95", "no reason for the public notice",
        case(activity(), at_day("penalty_service_by_notice", 3)), True),
    # ── 行政强制法 art. 19: the report after an emergency measure ──────────────────────────────────
    Row("emergency_report_missing", "行政强制法 art. 19", "reported to the head after 20 hours",
        case(activity(), at_day("coercion_seal_seize", 0, emergency=True), at_day("coercion_emergency_report", 20 / 24),
             kind="coercion"), False, context(T0 + timedelta(days=5))),
    Row("emergency_report_missing", "行政强制法 art. 19", "never reported",
        case(activity(), at_day("coercion_seal_seize", 0, emergency=True), kind="coercion"), True,
        context(T0 + timedelta(days=2))),
    Row("emergency_report_missing", "行政强制法 art. 19", "not an emergency measure: no report due",
        case(activity(), at_day("coercion_seal_seize", 0, emergency=False), kind="coercion"), False,
        context(T0 + timedelta(days=5))),
    # ── 行政处罚法 art. 60: the decision within 90 days of 立案 ────────────────────────────────────
    Row("penalty_decision_late", "行政处罚法 art. 60", "decided on day 80",
        case(activity(), at_day("penalty_case_filing", 0), at_day("penalty_decision", 80, handed_over_on_spot=True)), False,
        context(T0 + timedelta(days=200))),
    Row("penalty_decision_late", "行政处罚法 art. 60", "decided on day 100",
        case(activity(), at_day("penalty_case_filing", 0), at_day("penalty_decision", 100, handed_over_on_spot=True)), True,
        context(T0 + timedelta(days=200))),
    Row("penalty_decision_late", "行政处罚法 art. 60", "extension approved on day 60, decided on day 120",
        case(activity(), at_day("penalty_case_filing", 0), at_day("penalty_decision_extension", 60),
             at_day("penalty_decision", 120, handed_over_on_spot=True)), False, context(T0 + timedelta(days=200))),
    # ── art. 25: "act ended" follows from the steps and starts the 30 days to file ───────────────
    Row("filing_late", "art. 25", "结案 recorded 40 days ago, not filed: the clock ran from the step",
        case(activity(), at_day("penalty_case_closing", 0)), True, context(T0 + timedelta(days=40))),
    Row("filing_late", "art. 25", "a 扣押 lifted inside a penalty case does not end the penalty act",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_lift", 2)), False,
        context(T0 + timedelta(days=60))),
    Row("filing_late", "art. 25", "the measure lifted 10 days ago: still in time",
        case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_lift", 20), kind="coercion"), False,
        context(T0 + timedelta(days=30))),
    # ── archiving means done (arts. 13, 25), checked when a lead archives ─────────────────────────
    Row("originals_missing", "art. 25", "every original stored",
        case(activity(), step(media=[media()])), False, context(archiving=True)),
    Row("originals_missing", "art. 25", "a photo's original still on the phone",
        case(activity(), step(media=[media(arrived=None)])), True, context(archiving=True)),
    Row("originals_missing", "art. 25", "not archiving: an original on its way is no finding",
        case(activity(), step(media=[media(arrived=None)])), False),
    Row("activity_not_approved", "art. 13", "the activity approved",
        case(activity(), approved_activities=frozenset({ACTIVITY_ID})), False, context(archiving=True)),
    Row("activity_not_approved", "art. 13", "the activity awaiting review",
        case(activity()), True, context(archiving=True)),
    Row("act_end_unknown", "art. 25", "a lead entered when the act ended",
        case(activity(), act_ended_at=T0), False, context(archiving=True)),
    Row("act_end_unknown", "art. 25", "结案 recorded", case(activity(), at_day("penalty_case_closing", 3)), False,
        context(archiving=True)),
    Row("act_end_unknown", "art. 25", "nothing says the act ended", case(activity()), True, context(archiving=True)),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.rule}[{r.article}]-{r.name}" for r in ROWS])
def test_rule(row: Row):
    hits = [h for h in evaluate(row.facts, row.ctx) if h.rule_id == row.rule]
    assert bool(hits) == row.fails, hits
    # The row names a provision the finding actually cites.
    cited = CATALOGUE.finding(row.rule).article
    assert all(part.strip() in cited for part in row.article.split(";")), (row.article, cited)


def test_every_catalogue_finding_has_a_check_and_rows_both_ways():
    assert set(CHECKS) == {f.id for f in CATALOGUE.findings}
    for rule in CHECKS:
        outcomes = {r.fails for r in ROWS if r.rule == rule}
        assert outcomes == {True, False}, f"{rule} needs a row where the law is kept and one where it is broken"


def test_the_gap_is_measured_per_camera():
    two_cameras = activity(continuous_required=True, cameras=[{"camera_id": "DSJ-01", "started_at": iso(T0)},
                                                              {"camera_id": "DSJ-02", "started_at": iso(T0)}])
    hits = [h for h in evaluate(case(two_cameras, stop(explanation="", camera_id="DSJ-02")), context())
            if h.rule_id == "continuous_gap"]
    assert [h.detail["camera_id"] for h in hits] == ["DSJ-02"] and hits[0].detail["gap_seconds"] == 600


def test_findings_say_why_a_period_is_what_it_is():
    late = case(activity(), at_day("coercion_seal_seize", 0), at_day("coercion_extension", 35, notified_at=None),
                at_day("coercion_lift", 45), kind="coercion")
    [hit] = [h for h in evaluate(late, context(T0 + timedelta(days=90))) if h.rule_id == "seizure_term_exceeded"]
    assert hit.detail["extension_not_counted"] == "approved_after_expiry,not_notified_in_writing"
    no_return = case(activity(), step(av="clip", media=[media(arrived=None)]))
    [upload] = [h for h in evaluate(no_return, context(T0 + timedelta(hours=26))) if h.rule_id == "av_upload_late"]
    assert upload.detail["counted_from"] == "activity_end"


def test_a_lead_exception_covers_the_finding_only_as_it_stood():
    """arts. 12, 19, 22, 24: "not recorded" blocks until a lead accepts it; the acceptance binds to
    the facts it saw, so a changed reason needs a new decision."""
    [hit] = [h for h in evaluate(case(activity(), step(av="not_recorded", av_reason="设备故障")), context())
             if h.rule_id == "av_missing"]
    assert CATALOGUE.finding("av_missing").exception_allowed and CATALOGUE.finding("av_missing").blocks_archiving

    class Accepted:
        fingerprint = exceptions.fingerprint(hit.detail)
    assert exceptions.covers(Accepted, hit.detail)
    assert not exceptions.covers(None, hit.detail)
    assert not exceptions.covers(Accepted, {**hit.detail, "reason": "另一个理由"})
