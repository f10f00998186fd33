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

from .facts import CaseFacts, RecordFact, parse_time


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
    """What the checks need besides the facts: the catalogue's step types and case flags, the
    configured tolerance, the time now, and the deadline engine."""
    step_types: dict[str, dict]
    continuous_flags: frozenset[str]
    gap_tolerance: timedelta
    now: datetime
    deadline: Callable[[str, datetime], Due]
    archiving: bool = False  # evaluating for the archive action: every stage counts as done


Check = Callable[[CaseFacts, Context], Iterator[Hit]]
CHECKS: dict[str, Check] = {}


def check(finding_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[finding_id] = fn
        return fn
    return register


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


# ---- arts. 12, 19, 22, 24: steps that must be recorded on audio/video -------------------------

@check("av_missing")
def av_missing(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for step in facts.of_type("step"):
        step_type = ctx.step_types.get(step.payload.get("step_type"))
        if not step_type or not step_type.get("av_required"):
            continue
        if step.payload.get("av_recorded") is False and not _text(step.payload.get("av_reason")):
            yield Hit("av_missing", str(step.id), step.id,
                      {"step_type": step_type["id"], "av_article": step_type.get("av_article")})


# ---- art. 9: continuous recording and its interruptions ---------------------------------------

def _explained(interruption: dict) -> bool:
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
            if _explained(stop.payload):
                explained += max(0.0, (resumed - max(stopped, cursor)).total_seconds())
            cursor = max(cursor, resumed)
        recorded += max(0.0, (departed - cursor).total_seconds())
        gaps.append((camera_id, total - recorded - explained))
    return gaps


@check("continuous_gap")
def continuous_gap(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    case_requires = bool(set(facts.flags) & ctx.continuous_flags)
    for activity in facts.of_type("activity"):
        if not (case_requires or activity.payload.get("continuous_required")):
            continue
        interruptions = facts.children(activity.id, "interruption")
        for camera_id, gap in camera_gaps(activity, interruptions):
            if gap > ctx.gap_tolerance.total_seconds():
                yield Hit("continuous_gap", f"{activity.id}:{camera_id}", activity.id,
                          {"camera_id": camera_id or None, "gap_seconds": round(gap),
                           "tolerance_seconds": round(ctx.gap_tolerance.total_seconds())})


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


# ---- 行政处罚法 arts. 42, 55; 行政强制法 art. 18; 行政许可法 art. 34 -------------------------------

def _officers(activity: RecordFact) -> list[dict]:
    return [o for o in activity.payload.get("officers") or [] if isinstance(o, dict) and _text(o.get("name"))]


@check("officers_fewer_than_two")
def officers_fewer_than_two(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        count = len(_officers(activity))
        if count < 2:
            yield Hit("officers_fewer_than_two", str(activity.id), activity.id, {"officers": count})


@check("certificates_not_shown")
def certificates_not_shown(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        names = [o["name"] for o in _officers(activity) if not o.get("cert_shown")]
        if names:
            yield Hit("certificates_not_shown", str(activity.id), activity.id, {"officers": names})


# ---- 民事诉讼法 art. 89: service by leaving ------------------------------------------------------

@check("service_by_leaving_incomplete")
def service_by_leaving_incomplete(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for service in facts.of_type("service"):
        p = service.payload
        refusal = p.get("refusal") if isinstance(p.get("refusal"), dict) else {}
        witnesses = [w for w in p.get("witnesses") or [] if isinstance(w, dict) and _text(w.get("name"))]
        missing = []
        if not (_text(refusal.get("words")) or _text(refusal.get("acts"))):
            missing.append("refusal_reason")
        if not parse_time(p.get("at")):
            missing.append("date")
        if not witnesses and not p.get("media"):
            missing.append("witnesses_or_photo")
        if missing:
            yield Hit("service_by_leaving_incomplete", str(service.id), service.id, {"missing": missing})


# ---- art. 25: upload within 24 hours, filing within 30 days, labels ----------------------------

def _activity_media(facts: CaseFacts, activity: RecordFact):
    yield from activity.media
    for record in facts.records:
        if record.parent_id == activity.id and not record.withdrawn:
            yield from record.media


@check("av_upload_late")
def av_upload_late(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for activity in facts.of_type("activity"):
        ended = parse_time(activity.payload.get("departed_at"))
        if ended is None:
            continue
        due = ctx.deadline("av_upload", ended)
        late = [m.hash for m in _activity_media(facts, activity)
                if (m.original_at is not None and m.original_at > due.at) or (m.original_at is None and ctx.now > due.at)]
        if late:
            yield Hit("av_upload_late", str(activity.id), activity.id,
                      {"due_at": due.at.isoformat(), "late": len(late), "warnings": list(due.warnings),
                       "counted_from": "activity_end"})


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
    after the visit. Party and handler are due with the 24-hour storage; the case number with the
    30-day filing (or at archiving)."""
    if not any(r.media for r in facts.records if not r.withdrawn):
        return
    missing = []
    ended = [parse_time(a.payload.get("departed_at")) for a in facts.of_type("activity")]
    ended = [e for e in ended if e]
    party_due = ended and ctx.now > ctx.deadline("av_upload", min(ended)).at
    if party_due and (not _text(facts.party_name) or facts.party_name == "?"):
        missing.append("party")
    number_due = ctx.archiving or facts.archived_at is not None or (
        facts.act_ended_at is not None and ctx.now > ctx.deadline("record_filing", facts.act_ended_at).at)
    if number_due and not _text(facts.case_number):
        missing.append("case_number")
    if missing:
        yield Hit("media_unlabelled", "case", None, {"missing": missing})


# ---- arts. 10–23: the documents checklist of a stage ------------------------------------------

@check("documents_incomplete")
def documents_incomplete(facts: CaseFacts, ctx: Context) -> Iterator[Hit]:
    for step in facts.of_type("step"):
        step_type = ctx.step_types.get(step.payload.get("step_type"))
        if not step_type:
            continue
        stage_done = ctx.archiving or facts.archived_at is not None or step_type.get("stage") in facts.stages_done
        if not stage_done:
            continue
        ticked = set(step.payload.get("documents") or [])
        missing = [d for d in step_type.get("documents") or [] if d not in ticked]
        if missing:
            yield Hit("documents_incomplete", str(step.id), step.id,
                      {"stage": step_type.get("stage"), "step_type": step_type["id"], "missing": missing})


def evaluate(facts: CaseFacts, ctx: Context) -> list[Hit]:
    return [hit for fn in CHECKS.values() for hit in fn(facts, ctx)]
