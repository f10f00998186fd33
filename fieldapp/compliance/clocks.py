"""The clocks a case's records start: which recorded step starts which statutory period, what
meets it, and what lawfully extends or pauses it.

The periods themselves (length, counting, citations) are ``rules/deadlines.toml``; this table says
how the records drive them, each row citing its provision. The engine stores the clocks as the
case's deadlines (the leads' deadline list) and the checks raise a finding for a clock that ran
out — one computation for both, so the list and the findings cannot disagree.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .facts import CaseFacts, RecordFact, parse_time


@dataclass(frozen=True)
class ClockRule:
    rule_id: str  # the deadlines.toml period
    finding: str  # the catalogue finding raised when it runs out
    started_by: str  # the step type that starts it
    met_by: tuple[str, ...]  # steps any of which meets it (the earliest at or after the start)
    met_by_service_records: bool = False  # a 留置送达 record (type "service") meets it too
    only_if: tuple[str, object] | None = None  # the starting step's payload must hold this value
    unless: tuple[str, object] | None = None  # ...or must not
    extended_by: str | None = None  # a step that takes the period's one extension, if lawful
    lifted_by: str | None = None  # a step that lifts the statutory term altogether
    excluded_by: str | None = None  # steps whose period does not count, if told to the party


CLOCKS = (
    # 行政处罚法 art. 56: within 7 working days a decision on the goods preserved — release, or a
    # lawful decision to seize, confiscate or transfer them; any of these meets the period.
    ClockRule("evidence_preservation_decision", "evidence_preservation_late", "penalty_evidence_preservation",
              met_by=("penalty_evidence_preservation_release", "penalty_evidence_preservation_handling",
                      "coercion_seal_seize", "penalty_decision", "penalty_on_the_spot_decision")),
    # 行政处罚法 art. 61: a decision not handed over on the spot is served within 7 working days;
    # one handed over when announced starts no clock.
    ClockRule("penalty_decision_service", "decision_service_late", "penalty_decision",
              met_by=("penalty_service_in_person", "penalty_service_by_leaving", "penalty_service_by_post",
                      "penalty_service_by_notice"),
              met_by_service_records=True, unless=("handed_over_on_spot", True)),
    # 行政强制法 arts. 25, 27: 30 days (one 30-day extension approved before they end and notified
    # in writing; testing periods told to the party in writing do not count); met by lifting the
    # measure or by a decision on the goods.
    ClockRule("seizure_term", "seizure_term_exceeded", "coercion_seal_seize",
              met_by=("coercion_lift", "coercion_disposal", "penalty_goods_destruction"),
              extended_by="coercion_extension", excluded_by="coercion_testing_period"),
    # 行政强制法 art. 19: a measure taken on the spot in an emergency is reported to the head within
    # 24 hours; the approval follows without a statutory term, so only the report is clocked.
    ClockRule("emergency_report", "emergency_report_missing", "coercion_seal_seize",
              met_by=("coercion_emergency_report",), only_if=("emergency", True)),
    # 行政处罚法 art. 60: the decision within 90 days of 立案, unless an approved extension lifts it.
    ClockRule("penalty_decision_term", "penalty_decision_late", "penalty_case_filing",
              met_by=("penalty_decision", "penalty_on_the_spot_decision"), lifted_by="penalty_decision_extension"),
)


@dataclass(frozen=True)
class Clock:
    key: str
    rule_id: str
    finding: str | None  # None: the clock has a finding of its own elsewhere (art. 25's)
    started_at: datetime
    due_at: datetime
    met_at: datetime | None
    warnings: tuple[str, ...] = ()
    detail: tuple[tuple[str, object], ...] = ()  # why the period is what it is (extension not counted…)
    record_id: object = None

    def ran_out(self, now: datetime) -> bool:
        return (self.met_at is not None and self.met_at > self.due_at) or (self.met_at is None and now > self.due_at)


Deadline = Callable[..., object]  # ctx.deadline(rule_id, at, *, extended=False, excluded=(), day_of=None) -> Due


def _at(record: RecordFact) -> datetime | None:
    return parse_time(record.payload.get("at"))


def _steps_by_type(facts: CaseFacts) -> dict[str, list[RecordFact]]:
    by_type: dict[str, list[RecordFact]] = {}
    for step in facts.of_type("step"):
        by_type.setdefault(step.payload.get("step_type"), []).append(step)
    return by_type


def storage_due(activity: RecordFact, deadline: Deadline):
    """Art. 25's storage deadline of an activity: the later of 24:00 of its day and 24 hours after
    the return to the unit; without a recorded return, the end of the activity stands in.
    Returns (due, counted_from) or None while the activity has not ended."""
    ended = parse_time(activity.payload.get("departed_at"))
    if ended is None:
        return None
    returned = parse_time(activity.payload.get("returned_at"))
    if returned is not None and returned >= ended:
        return deadline("av_upload", returned, day_of=ended), "return"
    return deadline("av_upload", ended, day_of=ended), "activity_end"


def _extension_counts(extension: RecordFact, base_due: datetime) -> list[str]:
    """Why an extension of 查封/扣押 does not count (行政强制法 art. 25); empty when it does."""
    problems = []
    approved = _at(extension)
    if approved is None or approved > base_due:
        problems.append("approved_after_expiry")
    if parse_time(extension.payload.get("notified_at")) is None:
        problems.append("not_notified_in_writing")
    return problems


def _testing_periods(steps: list[RecordFact]) -> tuple[list[tuple[datetime, datetime]], int]:
    """Testing periods that lawfully pause the term (told to the party in writing), and how many
    recorded periods did not because the party was not told."""
    periods, untold = [], 0
    for step in steps:
        start, end = parse_time(step.payload.get("period_from")), parse_time(step.payload.get("period_to"))
        if not (start and end and end >= start):
            continue
        if parse_time(step.payload.get("party_told_at")) is None:
            untold += 1
        else:
            periods.append((start, end))
    return periods, untold


def _matches(payload: dict, condition: tuple[str, object] | None) -> bool:
    return condition is not None and payload.get(condition[0]) == condition[1]


def case_clocks(facts: CaseFacts, deadline: Deadline) -> Iterator[Clock]:
    """Every clock the case's records start, with when each is due and when it was met."""
    for activity in facts.of_type("activity"):
        storage = storage_due(activity, deadline)
        if storage is None:
            continue
        due, counted_from = storage
        media = [m for r in facts.records if (r.id == activity.id or r.parent_id == activity.id) and not r.withdrawn
                 for m in r.media]
        arrived = [m.original_at for m in media]
        ended = parse_time(activity.payload["departed_at"])
        met = max(arrived) if media and all(arrived) else (ended if not media else None)
        yield Clock(f"av_upload:{activity.id}", "av_upload", None, ended, due.at, met, due.warnings,
                    (("counted_from", counted_from),), activity.id)
    if facts.act_ended_at is not None:
        due = deadline("record_filing", facts.act_ended_at)
        yield Clock("record_filing:case", "record_filing", None, facts.act_ended_at, due.at, facts.archived_at,
                    due.warnings)
    by_type = _steps_by_type(facts)
    services = [r for r in facts.of_type("service")]
    for rule in CLOCKS:
        for start in by_type.get(rule.started_by, []):
            started = _at(start)
            if started is None or (rule.only_if and not _matches(start.payload, rule.only_if)) \
                    or _matches(start.payload, rule.unless):
                continue
            if rule.lifted_by:
                term = deadline(rule.rule_id, started)
                if any(started <= t <= term.at for t in (_at(s) for s in by_type.get(rule.lifted_by, [])) if t):
                    continue  # extended by an approval given while the term ran
            detail: list[tuple[str, object]] = []
            excluded: list = []
            if rule.excluded_by:
                excluded, untold = _testing_periods(by_type.get(rule.excluded_by, []))
                if untold:
                    detail.append(("testing_periods_not_counted", untold))
            extended = False
            if rule.extended_by and by_type.get(rule.extended_by):
                base = deadline(rule.rule_id, started, excluded=excluded)
                problems = sorted({p for e in by_type[rule.extended_by] for p in _extension_counts(e, base.at)})
                counted = [e for e in by_type[rule.extended_by] if not _extension_counts(e, base.at)]
                extended = bool(counted)
                if not extended:
                    detail.append(("extension_not_counted", ",".join(problems)))
            due = deadline(rule.rule_id, started, extended=extended, excluded=excluded)
            met_times = [t for t in (_at(s) for name in rule.met_by for s in by_type.get(name, [])) if t and t >= started]
            if rule.met_by_service_records:
                met_times += [t for t in (_at(s) for s in services) if t and t >= started]
            yield Clock(f"{rule.rule_id}:{start.id}", rule.rule_id, rule.finding, started, due.at,
                        min(met_times, default=None), due.warnings, tuple(detail), start.id)
