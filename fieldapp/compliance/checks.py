"""The compliance checks, one function per finding of the rules catalogue.

Each check reads :class:`~.facts.CaseFacts` and yields :class:`Hit` values; what a finding *is*
(its article, severity, whether it blocks archiving) lives in the catalogue's ``[[findings]]``,
keyed by the same id. A check is registered with ``@check("<finding id>")``; a test asserts that
the catalogue and this registry name the same findings, so neither can drift from the other.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..footage import coverage
from ..rules.credit_code import normalise
from . import clocks
from .facts import CaseFacts, FootageFact, RecordFact, parse_time


@dataclass(frozen=True)
class Hit:
    rule_id: str
    subject: str  # what the finding is about, stable across re-evaluations (record id, camera…)
    record_id: uuid.UUID | None
    detail: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule_id}:{self.subject}"


@dataclass(frozen=True)
class Due:
    """A deadline as the checks need it: when, and what the calendar could not vouch for."""
    at: datetime
    warnings: tuple[str, ...] = ()


@dataclass
class Context:
    """What the checks need besides the facts: the catalogue (step types, kinds, flags, reasons),
    the configured tolerances, the time now, and the deadline engine."""
    step_types: dict[str, dict]
    continuous_flags: frozenset[str]
    gap_tolerance: timedelta
    now: datetime
    # deadline(rule_id, at, *, extended=False, excluded=(), day_of=None) -> Due
    deadline: Callable[..., Due]
    archiving: bool = False  # evaluating for the archive action: every stage counts as done
    # The grace after art. 25's storage deadline within which body-camera footage may still arrive.
    footage_due: Callable[[datetime], Due] = lambda at: Due(at)
    continuous_reasons: frozenset[str] = frozenset()  # interruption reasons that make an activity continuous
    service_step_types: dict[str, str] = field(default_factory=dict)  # case kind → its 留置送达 step type
    # Body-camera and phone clocks drift: footage within this of a moment covers it.
    footage_clock_tolerance: timedelta = timedelta(minutes=2)


Check = Callable[[CaseFacts, Context], Iterator[Hit]]
CHECKS: dict[str, Check] = {}


def check(finding_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[finding_id] = fn
        return fn
    return register


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


# ---- arts. 12, 19, 22, 24: steps that must be recorded on audio/video ("应当同时进行音像记录") --------
# A step counts as recorded when a clip is attached to it, or when the officer declares it recorded
# on a named body camera ("footage pending" until art. 25's storage deadline plus a grace period).
# A typed reason does not excuse it: "not recorded" stays a blocking finding until a lead accepts it
# as an exception. No answer is not "recorded".

AV_CLIP_KINDS = ("video", "audio")


@dataclass(frozen=True)
class AvDuty:
    record: RecordFact
    step_type: dict  # the catalogue step whose duty it is (for a 留置送达 record: its kind's step)


def av_duties(facts: CaseFacts, ctx: Context) -> Iterator[AvDuty]:
    for step in facts.of_type("step"):
        step_type = ctx.step_types.get(step.payload.get("step_type"))
        if step_type and step_type.get("av_required"):
            yield AvDuty(step, step_type)
    service_type = ctx.step_types.get(ctx.service_step_types.get(facts.kind, ""))
    if service_type and service_type.get("av_required"):
        for service in facts.of_type("service"):
            yield AvDuty(service, service_type)


def av_answer(payload: dict, activity: RecordFact | None) -> tuple[str | None, str | None, str | None]:
    """(answer, camera, reason) — reading older phones too, which asked only "recorded on body
    camera?" with 是 pre-selected: their "yes" is a body-camera declaration on the activity's
    cameras; their "no" is "not recorded"."""
    answer = payload.get("av")
    if answer in ("clip", "body_camera", "not_recorded"):
        return answer, _text(payload.get("av_camera_id")) or None, _text(payload.get("av_reason")) or None
    legacy = payload.get("av_recorded")
    if legacy is True:
        cameras = [c.get("camera_id") for c in (activity.payload.get("cameras") or []) if isinstance(c, dict)
                   and _text(c.get("camera_id"))] if activity else []
        return "body_camera", "、".join(cameras) or None, None
    if legacy is False:
        return "not_recorded", None, _text(payload.get("av_reason")) or None
    return None, None, None


def _activity_of(facts: CaseFacts, record: RecordFact) -> RecordFact | None:
    return next((a for a in facts.of_type("activity") if a.id == record.parent_id), None)


def av_state(duty: AvDuty, facts: CaseFacts, ctx: Context) -> tuple[str, dict]:
    """What the record shows of its audio/video duty: ``recorded`` (a clip is attached),
    ``pending`` / ``overdue`` (declared on a body camera, footage awaited), or ``missing``."""
    record = duty.record
    base = {"step_type": duty.step_type["id"], "av_article": duty.step_type.get("av_article")}
    if any(m.kind in AV_CLIP_KINDS for m in record.media):
        return "recorded", base
    activity = _activity_of(facts, record)
    answer, camera, reason = av_answer(record.payload, activity)
    footage = facts.footage.get(activity.id, ()) if activity else ()
    at = parse_time(record.payload.get("at"))
    if footage and at and coverage.covers([coverage.Interval(f.start, f.end) for f in footage], at,
                                          ctx.footage_clock_tolerance):
        # The footage itself shows the step: recorded, whatever was (or was not) declared.
        return "recorded", {**base, "source": "footage"}
    declared = [f for f in footage if not camera or f.camera_serial in camera.split("、")]
    if answer == "body_camera" and camera and declared and at:
        # Footage of the declared camera is in, and it does not show this moment. A station may
        # still be copying the rest: "missing" only once the footage's grace has passed.
        storage = clocks.storage_due(activity, ctx.deadline)
        grace = ctx.footage_due(storage[0].at) if storage else None
        if grace is None or ctx.now <= grace.at:
            return "pending", {**base, "camera_id": camera, "footage": "partial"}
        return "missing", {**base, "answer": "footage_does_not_cover", "camera_id": camera, "reason": reason}
    if answer == "body_camera" and camera:
        storage = clocks.storage_due(activity, ctx.deadline) if activity else None
        if storage is None:
            return "pending", {**base, "camera_id": camera}
        grace = ctx.footage_due(storage[0].at)
        detail = {**base, "camera_id": camera, "due_at": grace.at.isoformat()}
        return ("overdue" if ctx.now > grace.at else "pending"), detail
    missing = {None: "no_answer", "clip": "clip_missing", "body_camera": "camera_not_named",
               "not_recorded": "not_recorded"}[answer]
    return "missing", {**base, "answer": missing, "reason": reason}


def _av_hits(rule_id: str, state: str):
    def run(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
        for duty in av_duties(facts, ctx):
            found, detail = av_state(duty, facts, ctx)
            if found == state:
                yield Hit(rule_id, str(duty.record.id), duty.record.id, detail)
    return run


check("av_missing")(_av_hits("av_missing", "missing"))
check("av_footage_pending")(_av_hits("av_footage_pending", "pending"))
check("av_footage_overdue")(_av_hits("av_footage_overdue", "overdue"))


# ---- art. 9: continuous recording and its interruptions ---------------------------------------

def interruption_explained(interruption: dict) -> bool:
    if interruption.get("cannot_continue"):
        return bool(_text(interruption.get("reported_to")) and _text(interruption.get("written_explanation")))
    return bool(_text(interruption.get("explanation")))


def _clip(t: datetime, lo: datetime, hi: datetime) -> datetime:
    return max(lo, min(hi, t))


def camera_gaps(activity: RecordFact, interruptions: list[RecordFact]) -> list[tuple[str, float]]:
    """Per body camera: seconds from arrival to departure not covered by recording or by an
    explained interruption."""
    p = activity.payload
    arrived, departed = parse_time(p.get("arrived_at")), parse_time(p.get("departed_at"))
    if not arrived or not departed or departed <= arrived:
        return []
    total = (departed - arrived).total_seconds()
    cameras = [c for c in p.get("cameras") or [] if isinstance(c, dict) and c.get("camera_id")]
    if not cameras:
        return [("", total)]
    gaps = []
    for camera in cameras:
        camera_id = camera["camera_id"]
        started = _clip(parse_time(camera.get("started_at")) or arrived, arrived, departed)
        stops = sorted((i for i in interruptions if i.payload.get("camera_id") == camera_id
                        and parse_time(i.payload.get("stopped_at"))),
                       key=lambda i: parse_time(i.payload["stopped_at"]))
        recorded = explained = 0.0
        cursor = started
        for stop in stops:
            stopped = _clip(parse_time(stop.payload["stopped_at"]), arrived, departed)
            resumed = parse_time(stop.payload.get("resumed_at"))
            resumed = departed if resumed is None else _clip(resumed, stopped, departed)
            recorded += max(0.0, (stopped - cursor).total_seconds())
            if interruption_explained(stop.payload):
                explained += max(0.0, (resumed - max(stopped, cursor)).total_seconds())
            cursor = max(cursor, resumed)
        recorded += max(0.0, (departed - cursor).total_seconds())
        gaps.append((camera_id, total - recorded - explained))
    return gaps


def continuous_required_by(facts: CaseFacts, activity: RecordFact, ctx: Context) -> str | None:
    """Why an activity had to be recorded without a break (art. 9 para. 2), or None: a case flag
    (set by the lead's form or the import), the officer's own flag, an emergency inspection step
    (art. 24(二)), or recording stopped by obstruction."""
    if set(facts.flags) & ctx.continuous_flags:
        return "case_flag"
    if activity.payload.get("continuous_required"):
        return "activity_flag"
    if any(ctx.step_types.get(s.payload.get("step_type"), {}).get("sets_continuous")
           for s in facts.children(activity.id, "step")):
        return "emergency_step"
    if any(i.payload.get("reason") in ctx.continuous_reasons for i in facts.children(activity.id, "interruption")):
        return "obstruction"
    return None


def footage_coverage(activity: RecordFact, interruptions: list[RecordFact], footage: tuple[FootageFact, ...],
                     ctx: Context) -> dict[str, coverage.CameraCoverage]:
    """Per camera whose footage is linked to the activity: arrival..departure minus the union of its
    segments, with the declared interruptions of that camera set against the gaps. The clock
    tolerance is taken off both ends of the visit (camera and phone clocks differ), never off the
    gaps between segments of one camera, which share a clock."""
    p = activity.payload
    arrived, departed = parse_time(p.get("arrived_at")), parse_time(p.get("departed_at"))
    tol = ctx.footage_clock_tolerance
    if not arrived or not departed or departed - arrived <= 2 * tol:
        return {}
    window = coverage.Interval(arrived + tol, departed - tol)
    found = {}
    for serial in dict.fromkeys(f.camera_serial for f in footage):
        stops = [coverage.DeclaredStop(str(i.id), parse_time(i.payload["stopped_at"]),
                                       parse_time(i.payload.get("resumed_at")), interruption_explained(i.payload))
                 for i in interruptions if i.payload.get("camera_id") == serial and parse_time(i.payload.get("stopped_at"))]
        found[serial] = coverage.camera_coverage(
            serial, window, [coverage.Interval(f.start, f.end) for f in footage if f.camera_serial == serial], stops)
    return found


@check("continuous_gap")
def continuous_gap(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    """From real footage where it has arrived (per camera); from the declared stops and resumes
    where it has not, saying so — a camera whose footage is not in yet has no measured gap."""
    tolerance = ctx.gap_tolerance.total_seconds()
    for activity in facts.of_type("activity"):
        required_by = continuous_required_by(facts, activity, ctx)
        if required_by is None:
            continue
        interruptions = facts.children(activity.id, "interruption")
        base = {"tolerance_seconds": round(tolerance), "required_by": required_by}
        measured = footage_coverage(activity, interruptions, facts.footage.get(activity.id, ()), ctx)
        for serial, cov in measured.items():
            if not cov.no_footage and cov.unexplained_seconds > tolerance:
                yield Hit("continuous_gap", f"{activity.id}:{serial}", activity.id,
                          {**base, "camera_id": serial, "gap_seconds": round(cov.unexplained_seconds),
                           "source": "footage", "gaps": [[g.start.isoformat(), g.end.isoformat()]
                                                         for g in cov.unexplained[:5]]})
        for camera_id, gap in camera_gaps(activity, interruptions):
            if camera_id in measured and not measured[camera_id].no_footage:
                continue
            if gap > tolerance:
                yield Hit("continuous_gap", f"{activity.id}:{camera_id}", activity.id,
                          {**base, "camera_id": camera_id or None, "gap_seconds": round(gap), "source": "declared",
                           "footage": "not_ingested"})


@check("footage_through_interruption")
def footage_through_interruption(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    """The camera kept recording through a stop the officer declared: not an art. 9 breach (there
    is footage), but the record and the footage disagree, and a lead should see why."""
    for activity in facts.of_type("activity"):
        interruptions = facts.children(activity.id, "interruption")
        measured = footage_coverage(activity, interruptions, facts.footage.get(activity.id, ()), ctx)
        for serial, cov in measured.items():
            for stop_id, seconds in cov.stops_with_footage:
                if seconds > ctx.gap_tolerance.total_seconds():
                    yield Hit("footage_through_interruption", stop_id, uuid.UUID(stop_id),
                              {"camera_id": serial, "footage_seconds": round(seconds)})


@check("interruption_unexplained")
def interruption_unexplained(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    departed = {a.id for a in facts.of_type("activity") if a.payload.get("departed_at")}
    for stop in facts.of_type("interruption"):
        p = stop.payload
        if p.get("cannot_continue"):
            continue
        resumed = bool(p.get("resumed_at"))
        if not _text(p.get("explanation")) and (resumed or stop.parent_id in departed):
            yield Hit("interruption_unexplained", str(stop.id), stop.id,
                      {"camera_id": p.get("camera_id"), "resumed": resumed})


@check("cannot_continue_unreported")
def cannot_continue_unreported(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for stop in facts.of_type("interruption"):
        p = stop.payload
        if not p.get("cannot_continue"):
            continue
        missing = [name for name, ok in (("report_to_head", _text(p.get("reported_to"))),
                                         ("written_explanation", _text(p.get("written_explanation")))) if not ok]
        if missing:
            yield Hit("cannot_continue_unreported", str(stop.id), stop.id,
                      {"camera_id": p.get("camera_id"), "missing": missing})


# ---- 行政处罚法 arts. 42, 55; 行政强制法 art. 18(二)(三); 行政许可法 art. 34 ----------------------------
# Two officers with enforcement certificates: counted by certificate number against the enrolled
# officers (of any unit), not by typed names.

def _officers(activity: RecordFact) -> list[dict]:
    return [o for o in activity.payload.get("officers") or []
            if isinstance(o, dict) and (_text(o.get("name")) or _text(o.get("cert_no")))]


def _cert(officer: dict) -> str:
    return normalise(officer.get("cert_no"))


@check("officers_fewer_than_two")
def officers_fewer_than_two(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        officers = _officers(activity)
        qualified = {_cert(o) for o in officers if _cert(o) in facts.enrolled_certs}
        if len(qualified) < 2:
            unqualified = [_text(o.get("name")) or _cert(o) for o in officers if _cert(o) not in facts.enrolled_certs]
            yield Hit("officers_fewer_than_two", str(activity.id), activity.id,
                      {"officers": len(qualified), "not_enrolled": unqualified})


@check("certificates_not_shown")
def certificates_not_shown(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        names = [_text(o.get("name")) or _cert(o) for o in _officers(activity) if o.get("cert_shown") is not True]
        if names:
            yield Hit("certificates_not_shown", str(activity.id), activity.id, {"officers": names})


# ---- 留置送达: 民事诉讼法 art. 89; 民诉解释 art. 130; the SAMR procedure rules art. 82 --------------
# The refusal facts are recorded, and EITHER a representative of the grassroots organisation or of
# the recipient's employer witnessed it and signed or otherwise confirmed, with the serving officers'
# signatures, OR the documents left and the process were photographed or filmed.

QUALIFIED_WITNESS_ORGS = ("grassroots", "employer")


def _witness_confirmed(witness: dict) -> bool:
    confirmation = witness.get("confirmation")
    if confirmation is None:  # older phones: a signature, or a refusal to sign
        confirmation = "signed" if witness.get("signature") else ("refused" if witness.get("refused_to_sign") else None)
    if confirmation == "signed":
        return bool(witness.get("signature"))
    return confirmation == "confirmed" and bool(_text(witness.get("confirmed_how")))


@check("service_by_leaving_incomplete")
def service_by_leaving_incomplete(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for service in facts.of_type("service"):
        p = service.payload
        recipient = p.get("recipient") if isinstance(p.get("recipient"), dict) else {}
        refusal = p.get("refusal") if isinstance(p.get("refusal"), dict) else {}
        documents = [d for d in p.get("documents") or [] if isinstance(d, dict) and _text(d.get("name"))]
        missing = [name for name, ok in (
            ("who_refused", _text(recipient.get("name"))),
            ("relation", _text(recipient.get("relation"))),
            ("refusal_words_or_acts", _text(refusal.get("words")) or _text(refusal.get("acts"))),
            ("date", parse_time(p.get("at"))),
            ("place", _text(p.get("place"))),
            ("documents_left", documents)) if not ok]
        if missing:
            yield Hit("service_by_leaving_incomplete", str(service.id), service.id, {"missing": missing})


@check("service_by_leaving_unproven")
def service_by_leaving_unproven(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for service in facts.of_type("service"):
        p = service.payload
        if p.get("media"):
            continue  # photographs or video of the documents left and of the process
        witnesses = [w for w in p.get("witnesses") or [] if isinstance(w, dict) and _text(w.get("name"))]
        qualified = [w for w in witnesses if w.get("org_kind") in QUALIFIED_WITNESS_ORGS and _witness_confirmed(w)]
        officers = [o for o in p.get("officers") or [] if isinstance(o, dict)]
        officers_signed = bool(officers) and all(o.get("signature") for o in officers)
        if qualified and officers_signed:
            continue
        yield Hit("service_by_leaving_unproven", str(service.id), service.id,
                  {"witnesses": len(witnesses), "qualified_confirmed": len(qualified),
                   "officers_signed": officers_signed, "photos": 0})


# ---- art. 25: storage by the day or 24 hours after returning, filing within 30 days, labels ------

def _activity_media(facts: CaseFacts, activity: RecordFact):
    yield from activity.media
    for record in facts.records:
        if record.parent_id == activity.id and not record.withdrawn:
            yield from record.media


@check("av_upload_late")
def av_upload_late(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        storage = clocks.storage_due(activity, ctx.deadline)
        if storage is None:
            continue
        due, counted_from = storage
        late = [m.hash for m in _activity_media(facts, activity)
                if (m.original_at is not None and m.original_at > due.at) or (m.original_at is None and ctx.now > due.at)]
        # Body-camera footage is stored when it reached the dedicated storage (see FootageFact).
        late += [str(f.segment_id) for f in facts.footage.get(activity.id, ()) if f.stored_at > due.at]
        if late:
            yield Hit("av_upload_late", str(activity.id), activity.id,
                      {"due_at": due.at.isoformat(), "late": len(late), "warnings": list(due.warnings),
                       "counted_from": counted_from})


@check("filing_late")
def filing_late(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    if facts.act_ended_at is None:
        return
    due = ctx.deadline("record_filing", facts.act_ended_at)
    filed = facts.archived_at
    if (filed is not None and filed > due.at) or (filed is None and ctx.now > due.at):
        yield Hit("filing_late", "case", None, {"due_at": due.at.isoformat(), "warnings": list(due.warnings)})


@check("media_unlabelled")
def media_unlabelled(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    """Labels are checked when the deadlines fall, not before: a case number is often assigned
    after the visit. Party and handler are due with the storage deadline; the case number with the
    30-day filing (or at archiving)."""
    if not any(r.media for r in facts.records if not r.withdrawn):
        return
    missing = []
    storage = [clocks.storage_due(a, ctx.deadline) for a in facts.of_type("activity")]
    party_due = any(s is not None and ctx.now > s[0].at for s in storage)
    if party_due and (not _text(facts.party_name) or facts.party_name == "?"):
        missing.append("party")
    number_due = ctx.archiving or facts.archived_at is not None or (
        facts.act_ended_at is not None and ctx.now > ctx.deadline("record_filing", facts.act_ended_at).at)
    if number_due and not _text(facts.case_number):
        missing.append("case_number")
    if missing:
        yield Hit("media_unlabelled", "case", None, {"missing": missing})


# ---- arts. 10–23: the documents checklist of a stage ------------------------------------------
# Required documents, one-of groups and conditional ones (catalogue data). A conditional document
# marked not applicable with a reason is settled; a required one so marked needs a lead's acceptance.

def _condition_holds(when: str, step: RecordFact, facts: CaseFacts) -> bool | None:
    """Whether a conditional document is due: True, False, or None when only the officer knows."""
    p = step.payload
    if when == "serious_case":
        return "serious" in facts.flags
    if when == "measure_seal":
        return {"seal": True, "seize": False}.get(p.get("measure"))
    if when == "questioning_notified":
        return p.get("notified_in_advance") if isinstance(p.get("notified_in_advance"), bool) else None
    return None


def _not_applicable(step: RecordFact) -> dict[str, str]:
    return {_text(d.get("name")): _text(d.get("reason")) for d in step.payload.get("documents_na") or []
            if isinstance(d, dict) and _text(d.get("name")) and _text(d.get("reason"))}


def checklist(step: RecordFact, step_type: dict, facts: CaseFacts) -> tuple[list[str], list[dict]]:
    """(missing, required documents marked not applicable) for one step."""
    ticked = set(step.payload.get("documents") or [])
    na = _not_applicable(step)
    one_of = [tuple(g) for g in step_type.get("one_of") or []]
    conditional = {c["document"]: c["when"] for c in step_type.get("conditional") or []}
    optional = {d for g in one_of for d in g} | set(conditional)
    missing, required_na = [], []
    for document in step_type.get("documents") or []:
        if document in optional or document in ticked:
            continue
        if document in na:
            required_na.append({"name": document, "reason": na[document]})
        else:
            missing.append(document)
    for group in one_of:
        if ticked & set(group):
            continue
        if all(d in na for d in group):
            required_na.append({"name": " / ".join(group), "reason": "；".join(na[d] for d in group)})
        else:
            missing.append(" / ".join(group))
    for document, when in conditional.items():
        if document in ticked or document in na or _condition_holds(when, step, facts) is False:
            continue
        missing.append(document)
    return missing, required_na


def _checklists(facts: CaseFacts, ctx: Context) -> Iterator[tuple[RecordFact, dict, list[str], list[dict]]]:
    for step in facts.of_type("step"):
        step_type = ctx.step_types.get(step.payload.get("step_type"))
        if step_type:
            yield step, step_type, *checklist(step, step_type, facts)


@check("documents_incomplete")
def documents_incomplete(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for step, step_type, missing, _ in _checklists(facts, ctx):
        stage_done = ctx.archiving or facts.archived_at is not None or step_type.get("stage") in facts.stages_done
        if missing and stage_done:
            yield Hit("documents_incomplete", str(step.id), step.id,
                      {"stage": step_type.get("stage"), "step_type": step_type["id"], "missing": missing})


@check("document_required_not_applicable")
def document_required_not_applicable(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for step, step_type, _, required_na in _checklists(facts, ctx):
        if required_na:
            yield Hit("document_required_not_applicable", str(step.id), step.id,
                      {"step_type": step_type["id"], "not_applicable": required_na})


# ---- 民事诉讼法 art. 95: service by public notice is the last resort ---------------------------------
# Only when the party cannot be found, or the other ways of service were tried and failed; it counts
# as served 30 days after publication (the timeline shows that date).

OTHER_SERVICE_STEPS = ("penalty_service_in_person", "penalty_service_by_leaving", "penalty_service_by_post")


@check("service_by_notice_unjustified")
def service_by_notice_unjustified(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for notice in facts.of_type("step"):
        if notice.payload.get("step_type") != "penalty_service_by_notice":
            continue
        published = parse_time(notice.payload.get("at"))
        reason = notice.payload.get("notice_reason")
        tried = [s for s in facts.of_type("step") if s.payload.get("step_type") in OTHER_SERVICE_STEPS] \
            + facts.of_type("service")
        tried_before = any(published and (t := parse_time(s.payload.get("at"))) and t < published for s in tried)
        if reason == "whereabouts_unknown" or (reason == "other_methods_failed" and tried_before):
            continue
        yield Hit("service_by_notice_unjustified", str(notice.id), notice.id,
                  {"reason": reason or "not_given", "other_service_tried": tried_before})


# ---- statutory periods the records start (行政处罚法 arts. 56, 60, 61; 行政强制法 arts. 19, 25, 27) ---

def _clock_hits(finding_id: str):
    def run(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
        key = ("clocks", id(ctx), ctx.now)
        if key not in facts.memo:
            facts.memo[key] = list(clocks.case_clocks(facts, ctx.deadline))
        for clock in facts.memo[key]:
            if clock.finding == finding_id and clock.ran_out(ctx.now):
                yield Hit(finding_id, clock.key, clock.record_id,
                          {"rule": clock.rule_id, "due_at": clock.due_at.isoformat(),
                           "met_at": clock.met_at.isoformat() if clock.met_at else None, **dict(clock.detail)})
    return run


for _rule in clocks.CLOCKS:
    check(_rule.finding)(_clock_hits(_rule.finding))


# ---- archiving means done (art. 13: the whole process on file; art. 25: stored and filed) -------
# Checked only when a lead archives: before then each is simply work in progress.

@check("originals_missing")
def originals_missing(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    if not ctx.archiving:
        return
    for record in facts.records:
        missing = [m.hash for m in record.media if m.original_at is None]
        if missing and not record.withdrawn:
            yield Hit("originals_missing", str(record.id), record.id, {"files": len(missing)})


@check("activity_not_approved")
def activity_not_approved(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    if not ctx.archiving:
        return
    for activity in facts.of_type("activity"):
        if activity.id not in facts.approved_activities:
            yield Hit("activity_not_approved", str(activity.id), activity.id, {})


@check("act_end_unknown")
def act_end_unknown(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    if ctx.archiving and facts.act_ended_at is None:
        yield Hit("act_end_unknown", "case", None, {})


def act_end_from_steps(facts: CaseFacts, ctx: Context) -> datetime | None:
    """When the act ended by its records: the earliest step of the case's own kind that ends it
    (结案, the licence delivered, the measure lifted or disposed of, the inspection closed). A
    measure taken inside a penalty case ends with its lifting, the case does not."""
    def ends(step: RecordFact) -> bool:
        step_type = ctx.step_types.get(step.payload.get("step_type"), {})
        return bool(step_type.get("ends_act")) and step_type.get("kind") == facts.kind
    times = [parse_time(s.payload.get("at")) for s in facts.of_type("step") if ends(s)]
    return min((t for t in times if t), default=None)


def evaluate(facts: CaseFacts, ctx: Context) -> list[Hit]:
    if facts.act_ended_at is None:  # a lead's entry wins; otherwise the steps say when the act ended
        facts.act_ended_at = act_end_from_steps(facts, ctx)
        facts.act_ended_source = "step" if facts.act_ended_at else None
    return [hit for fn in CHECKS.values() for hit in fn(facts, ctx)]
