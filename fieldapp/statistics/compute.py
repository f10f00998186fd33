"""Computing a month's figures from the records, and storing them (``refresh``).

One pass per month, in batch: the records whose own time falls in the month (Beijing time) are
found with one query, the facts of their cases are loaded with a handful of queries (the same
``CaseFacts`` the compliance checks read), and the figures are counted by the same check functions
the findings come from — so the statistics and the findings cannot disagree. Findings open, the
deadlines, access requests and disposals are read from their own tables.

Every counted thing is an :class:`Item` (figure, unit, officer, case, record, what, value);
``aggregate`` turns items into cells per unit and per officer of it, and a cell keeps its items,
which is what the drill-down lists. A record counts for its author and the unit the author
belonged to at the record's time (``history``), not the unit they are in today.
"""
from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text

from .. import db
from ..compliance import engine
from ..compliance.checks import CHECKS, Context, av_duties, av_state
from ..compliance.clocks import CLOCKS
from ..compliance.facts import CaseFacts, FootageFact, MediaFact, RecordFact, parse_time
from ..i18n import SHANGHAI
from ..models import (AccessGrant, Case, CaseDeadline, CaseStage, Disposal, Finding, FootageLink, FootageSegment, Media,
                      MediaRef, MonthlyFigure, Revision, Role, Station, SyncedRecord, Unit, UserRole,
                      UserUnitHistory, utcnow)
from . import figures as figures_data
from . import history

CHUNK = 500  # ids per IN list (SQLite's limit on bound parameters is far above, PostgreSQL's too)
AUTOMATIC_BASES = ("camera_declared", "handout", "station_officer")
STATUTORY_CLOCKS = frozenset(rule.rule_id for rule in CLOCKS)
STALE_AFTER = timedelta(hours=1)
# How far a phone's local date may stand from the UTC date of the same moment, and then some: the
# cheap date filter on the stored text is widened by this, the exact filter is done in Python.
DATE_MARGIN = timedelta(days=2)


# ---- months in Beijing time ---------------------------------------------------------------------

def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in Beijing time, as UTC instants."""
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_of(at: datetime) -> tuple[int, int]:
    local = at.astimezone(SHANGHAI)
    return local.year, local.month


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def event_time(record_type: str, payload: dict, fallback: datetime | None = None) -> datetime | None:
    """The time a record is about: an activity's arrival, an interruption's stop, a step's or a
    service's ``at``; the time it reached the server when the record says none."""
    key = {"activity": "arrived_at", "interruption": "stopped_at"}.get(record_type, "at")
    return parse_time((payload or {}).get(key)) or fallback


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


# ---- what is counted ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    figure: str
    unit_id: uuid.UUID
    user_id: uuid.UUID | None  # None: a fact of the unit, not of one officer
    case_id: uuid.UUID | None
    record_id: uuid.UUID | None
    what: str = ""
    value: float = 1.0  # a count's 1, minutes, seconds of one sample, days; a ratio's 0 or 1


@dataclass
class Cell:
    figure: str
    unit_id: uuid.UUID
    user_id: uuid.UUID | None
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    items: list = field(default_factory=list)


def aggregate(items: Iterable[Item], units: Iterable[uuid.UUID],
              officers: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> list[Cell]:
    """Cells for every unit (its total) and every (unit, officer), every figure: zeros where nothing
    was counted, so a unit without activity is there with its zeros."""
    defs = figures_data.builtin()
    grouped: dict[tuple, list[Item]] = defaultdict(list)
    for item in items:
        grouped[(item.unit_id, None, item.figure)].append(item)
        if item.user_id is not None:
            grouped[(item.unit_id, item.user_id, item.figure)].append(item)
    keys = {(u, None) for u in units} | set(officers) | {(k[0], k[1]) for k in grouped}
    cells = []
    for unit_id, user_id in sorted(keys, key=lambda k: (str(k[0]), str(k[1] or ""))):
        for f in defs:
            if user_id is not None and f.level == "unit":
                continue  # a unit's fact has no officer
            found = grouped.get((unit_id, user_id, f.id), [])
            cells.append(_cell(f, unit_id, user_id, found))
    return cells


def _cell(f: figures_data.Figure, unit_id, user_id, found: list[Item]) -> Cell:
    values = [i.value for i in found]
    if f.kind == "ratio" or f.kind == "days":
        num, den = float(sum(values)), float(len(values))
        value = (num / den if den else None)
        cell = Cell(f.id, unit_id, user_id, value, num, den)
    elif f.kind == "seconds":
        p = 95 if f.id.endswith("p95") else 50
        value = percentile(values, p)
        cell = Cell(f.id, unit_id, user_id, None if value is None else round(value, 3), None, float(len(values)))
    else:
        cell = Cell(f.id, unit_id, user_id, round(float(sum(values)), 3))
    seen = set()
    for i in found:
        key = (i.case_id, i.record_id, i.what)
        if key not in seen:
            seen.add(key)
            cell.items.append([str(i.case_id) if i.case_id else None, str(i.record_id) if i.record_id else None,
                               i.what])
    return cell


# ---- loading the facts of many cases at once --------------------------------------------------------

def _chunks(ids: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _heads():
    return and_(Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision)


def load_facts(case_ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, CaseFacts], dict[str, datetime]]:
    """``CaseFacts`` of many cases, as ``compliance.facts.load_case_facts`` loads one, and the
    capture time of each medium (EXIF) by hash."""
    s = db.session()
    facts: dict[uuid.UUID, CaseFacts] = {}
    for chunk in _chunks(case_ids):
        for case in s.execute(select(Case).where(Case.id.in_(chunk))).scalars():
            facts[case.id] = CaseFacts(case.id, case.unit_id, case.kind, case.case_number, case.party_name,
                                       tuple(case.flags or ()), case.act_ended_at, case.archived_at)
        for row in s.execute(select(CaseStage).where(CaseStage.case_id.in_(chunk))).scalars():
            facts[row.case_id].stages_done[row.stage] = row.done_at
    cols = (SyncedRecord.id, SyncedRecord.record_type, SyncedRecord.parent_id, SyncedRecord.author_id,
            SyncedRecord.unit_id, SyncedRecord.case_id, SyncedRecord.withdrawn, Revision.payload,
            Revision.received_at, Revision.media)
    heads: list = []
    for chunk in _chunks(list(facts)):
        heads += s.execute(select(*cols).join(Revision, _heads()).where(SyncedRecord.case_id.in_(chunk))).all()
    heads = [h for h in heads if facts[h.case_id].unit_id == h.unit_id]
    case_of = {h.id: h.case_id for h in heads if h.record_type == "activity"}
    for chunk in _chunks(list(case_of)):  # interruptions name only their activity
        for h in s.execute(select(*cols).join(Revision, _heads()).where(
                SyncedRecord.parent_id.in_(chunk), SyncedRecord.case_id.is_(None))).all():
            if facts[case_of[h.parent_id]].unit_id == h.unit_id:
                heads.append(h)
    record_case = {h.id: (h.case_id or case_of.get(h.parent_id)) for h in heads}
    media: dict[uuid.UUID, list[MediaFact]] = defaultdict(list)
    taken: dict[str, datetime] = {}
    declared = {m["hash"]: m.get("type", "") for h in heads for m in (h.media or []) if isinstance(m, dict)}
    for chunk in _chunks(list(record_case)):
        rows = s.execute(select(MediaRef.record_id, MediaRef.hash, Media.kind, Media.declared_type, Media.original_at,
                                Media.taken_at)
                         .outerjoin(Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
                         .join(SyncedRecord, and_(SyncedRecord.id == MediaRef.record_id,
                                                  SyncedRecord.head_revision == MediaRef.revision))
                         .where(MediaRef.record_id.in_(chunk))).all()
        for record_id, digest, kind, declared_type, original_at, taken_at in rows:
            media[record_id].append(MediaFact(digest, kind or (declared_type or "").split("/")[0]
                                              or declared.get(digest, "").split("/")[0] or None, original_at))
            if taken_at is not None:
                taken[digest] = taken_at
    for h in heads:
        facts[record_case[h.id]].records.append(RecordFact(h.id, h.record_type, h.parent_id, h.author_id,
                                                           h.payload or {}, h.received_at, tuple(media.get(h.id, ())),
                                                           bool(h.withdrawn)))
    for activity_id, footage in load_footage(list(case_of)).items():
        facts[case_of[activity_id]].footage[activity_id] = tuple(f for f, _basis in footage)
    return facts, taken


def load_footage(activity_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[FootageFact, str]]]:
    """Footage linked to activities, with how each link was made, as ``facts._footage`` reads it."""
    found: dict[uuid.UUID, list[tuple[FootageFact, str]]] = defaultdict(list)
    for chunk in _chunks(activity_ids):
        rows = db.session().execute(
            select(FootageLink.activity_id, FootageLink.basis, FootageSegment.id, FootageSegment.camera_serial,
                   FootageSegment.started_at, FootageSegment.ended_at, FootageSegment.collected_at,
                   FootageSegment.ingested_at, Station.part_of_storage)
            .join(FootageSegment, FootageSegment.id == FootageLink.segment_id)
            .outerjoin(Station, Station.id == FootageSegment.station_id)
            .where(FootageLink.activity_id.in_(chunk)).order_by(FootageSegment.started_at)).all()
        for activity_id, basis, seg_id, serial, start, end, collected, ingested, station_stores in rows:
            stored = collected if station_stores and collected is not None else ingested
            found[activity_id].append((FootageFact(seg_id, serial, start, end, stored), basis))
    return found


def _candidate_cases(start: datetime, end: datetime) -> list[uuid.UUID]:
    """Cases with a record that may fall in [start, end): a cheap filter on the date part of the
    time the record states (stored text, so compared as text, widened by DATE_MARGIN); the exact
    filter is done on the loaded facts."""
    s = db.session()
    p = Revision.payload
    stated = func.coalesce(p["at"].as_string(), p["arrived_at"].as_string(), p["stopped_at"].as_string())
    day = func.substr(stated, 1, 10)
    lo, hi = (start - DATE_MARGIN).date().isoformat(), (end + DATE_MARGIN).date().isoformat()
    rows = s.execute(select(SyncedRecord.case_id, SyncedRecord.parent_id).join(Revision, _heads())
                     .where(SyncedRecord.record_type.in_(("activity", "step", "service", "interruption")),
                            or_(and_(day >= lo, day <= hi), stated.is_(None)))).all()
    cases = {c for c, _ in rows if c is not None}
    parents = sorted({p for c, p in rows if c is None and p is not None})
    for chunk in _chunks(parents):
        cases |= {c for c in s.execute(select(SyncedRecord.case_id).where(SyncedRecord.id.in_(chunk))).scalars() if c}
    return sorted(cases)


# ---- the month's items ------------------------------------------------------------------------------

class Month:
    def __init__(self, year: int, month: int, now: datetime | None = None):
        self.year, self.month = year, month
        self.start, self.end = month_bounds(year, month)
        self.now = now or utcnow()
        self.where = history.load()

    def within(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end

    def item(self, figure: str, author: uuid.UUID, at: datetime, case_id, record_id, what: str = "",
             value: float = 1.0, owning_unit: uuid.UUID | None = None) -> Item:
        """One counted thing, for its author under the unit that owns it — the case's (a record is
        the unit's its author was in when it was made, and belongs to that unit's case): an officer
        who moved counts in the old unit for the old unit's cases and in the new one after. The
        unit history answers only for what no unit owns."""
        unit = owning_unit or self.where.unit_at(author, at)
        return Item(figure, unit, author, case_id, record_id, what, value)


def month_items(year: int, month: int, now: datetime | None = None) -> list[Item]:
    """Everything counted in one month."""
    m = Month(year, month, now)
    ctx = engine.context(m.now)
    facts, taken = load_facts(_candidate_cases(m.start, m.end))
    activity_ids = [r.id for f in facts.values() for r in f.of_type("activity")]
    links = {activity_id: [(f.camera_serial, basis) for f, basis in found]
             for activity_id, found in load_footage(activity_ids).items()}
    items: list[Item] = []
    for case in facts.values():
        items += _case_items(m, case, ctx, taken, links)
    items += _finding_items(m)
    items += _deadline_items(m)
    items += _register_items(m)
    return items


def _case_items(m: Month, facts: CaseFacts, ctx: Context, taken: dict[str, datetime],
                links: dict[uuid.UUID, list[tuple[str, str]]]) -> Iterator[Item]:
    case_id = facts.case_id
    times = {r.id: event_time(r.type, r.payload, r.received_at) for r in facts.records}
    reasons = {f.reason for f in figures_data.builtin() if f.reason}

    def item(figure, record: RecordFact, what="", value=1.0, at=None):
        return m.item(figure, record.author_id, at or times[record.id], case_id, record.id, what, value,
                      facts.unit_id)

    for duty in av_duties(facts, ctx):
        if m.within(times[duty.record.id]):
            state, _detail = av_state(duty, facts, ctx)
            what = duty.step_type["id"]
            yield item("av_required", duty.record, what)
            yield item("av_recorded", duty.record, what, 1.0 if state == "recorded" else 0.0)
    gaps = [h for h in CHECKS["continuous_gap"](facts, ctx)]
    late = {h.record_id for h in CHECKS["av_upload_late"](facts, ctx)}
    unfit = {h.record_id for rule in ("service_by_leaving_incomplete", "service_by_leaving_unproven")
             for h in CHECKS[rule](facts, ctx)}
    activities = {a.id: a for a in facts.of_type("activity")}
    for activity in activities.values():
        if not m.within(times[activity.id]):
            continue
        for hit in gaps:
            if hit.record_id == activity.id:
                camera = hit.detail.get("camera_id") or ""
                yield item("continuous_gaps", activity, camera)
                yield item("continuous_gap_minutes", activity, camera, hit.detail["gap_seconds"] / 60)
        if activity.id in late:
            yield item("storage_late", activity)
        for footage in facts.footage.get(activity.id, ()):
            yield item("storage_p50", activity, footage.camera_serial, _seconds(footage.stored_at - footage.end))
            yield item("storage_p95", activity, footage.camera_serial, _seconds(footage.stored_at - footage.end))
    for record in facts.records:
        if record.withdrawn or not m.within(times[record.id]):
            continue
        for medium in record.media:  # photos and clips: from capture (EXIF, else the record's time) to stored
            if medium.original_at is not None and medium.kind in ("image", "video", "audio"):
                seconds = _seconds(medium.original_at - taken.get(medium.hash, times[record.id]))
                yield item("storage_p50", record, medium.hash[:12], seconds)
                yield item("storage_p95", record, medium.hash[:12], seconds)
        if record.type == "service":
            yield item("service_by_leaving", record)
            yield item("service_complete", record, "", 0.0 if record.id in unfit else 1.0)
        elif record.type == "interruption":
            reason = record.payload.get("reason")
            reason = reason if reason in reasons else "other"
            yield item(f"interruptions_{reason}", record, record.payload.get("camera_id") or "")
    for activity_id, activity in activities.items():  # one link, one item
        if m.within(times[activity_id]):
            for serial, basis in links.get(activity_id, ()):
                yield item("footage_manual" if basis == "lead" else "footage_auto", activity, serial)


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def _record_heads(record_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, datetime | None, uuid.UUID | None]]:
    """record id → (author, the record's time, case)."""
    found = {}
    for chunk in _chunks(record_ids):
        for rid, rtype, author, case_id, _parent, payload, received in db.session().execute(
                select(SyncedRecord.id, SyncedRecord.record_type, SyncedRecord.author_id, SyncedRecord.case_id,
                       SyncedRecord.parent_id, Revision.payload, Revision.received_at)
                .join(Revision, _heads()).where(SyncedRecord.id.in_(chunk))).all():
            found[rid] = (author, event_time(rtype, payload, received), case_id)
    return found


def _finding_items(m: Month) -> Iterator[Item]:
    """Blocking findings open at the month's end (or now, in the month in progress)."""
    at = min(m.end, m.now)
    rows = db.session().execute(select(Finding.case_id, Finding.unit_id, Finding.record_id, Finding.rule_id,
                                       Finding.opened_at)
                                .where(Finding.blocks_archiving.is_(True), Finding.opened_at < at,
                                       or_(Finding.resolved_at.is_(None), Finding.resolved_at >= at))).all()
    heads = _record_heads(sorted({r.record_id for r in rows if r.record_id}))
    for case_id, unit_id, record_id, rule_id, opened_at in rows:
        days = (at - opened_at).total_seconds() / 86400
        if record_id in heads:
            author, when, _case = heads[record_id]
            yield m.item("blocking_open", author, when, case_id, record_id, rule_id, 1.0, unit_id)
            yield m.item("blocking_open_age", author, when, case_id, record_id, rule_id, days, unit_id)
        else:
            yield Item("blocking_open", unit_id, None, case_id, record_id, rule_id)
            yield Item("blocking_open_age", unit_id, None, case_id, record_id, rule_id, days)


def _ran_out(due_at: datetime, met_at: datetime | None, now: datetime) -> bool:
    return (met_at is not None and met_at > due_at) or (met_at is None and now > due_at)


def _deadline_items(m: Month) -> Iterator[Item]:
    rows = db.session().execute(select(CaseDeadline.case_id, CaseDeadline.unit_id, CaseDeadline.key,
                                       CaseDeadline.rule_id, CaseDeadline.due_at, CaseDeadline.met_at)
                                .where(CaseDeadline.due_at >= m.start, CaseDeadline.due_at < m.end)).all()
    late = [r for r in rows if _ran_out(r.due_at, r.met_at, m.now)]
    started_by = {}
    for r in late:
        if r.rule_id in STATUTORY_CLOCKS:
            try:
                started_by[r.key] = uuid.UUID(r.key.split(":", 1)[1])
            except (IndexError, ValueError):
                pass
    heads = _record_heads(sorted(set(started_by.values())))
    for r in late:
        if r.rule_id == "record_filing":
            yield Item("filing_late", r.unit_id, None, r.case_id, None, r.rule_id)
        elif r.rule_id in STATUTORY_CLOCKS:
            record_id = started_by.get(r.key)
            if record_id in heads:
                author, when, _case = heads[record_id]
                yield m.item("deadlines_missed", author, when, r.case_id, record_id, r.rule_id, 1.0, r.unit_id)
            else:
                yield Item("deadlines_missed", r.unit_id, None, r.case_id, record_id, r.rule_id)


def _register_items(m: Month) -> Iterator[Item]:
    s = db.session()
    for grant in s.execute(select(AccessGrant.unit_id, AccessGrant.number, AccessGrant.subject_kind,
                                  AccessGrant.subject_id)
                           .where(AccessGrant.registered_at >= m.start, AccessGrant.registered_at < m.end)).all():
        case_id = _uuid(grant.subject_id) if grant.subject_kind == "case" else None
        yield Item("access_grants", grant.unit_id, None, case_id, None, grant.number)
    for unit_id, digest in s.execute(select(Disposal.unit_id, Disposal.hash).where(
            Disposal.disposed_at >= m.start, Disposal.disposed_at < m.end, Disposal.unit_id.is_not(None))).all():
        yield Item("disposals", unit_id, None, None, None, digest[:12])


def _uuid(text) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None


# ---- who is shown: every enforcement unit, every officer who served in it that month ---------------

def shown_units() -> list[uuid.UUID]:
    return list(db.session().execute(select(Unit.id).where(Unit.kind.is_(None))).scalars())


def officers_in_month(start: datetime, end: datetime) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(unit, user) for officers and leads whose stretch in the unit overlaps [start, end)."""
    field_roles = select(UserRole.user_id).where(UserRole.role.in_((Role.OFFICER.value, Role.LEAD.value)))
    rows = db.session().execute(select(UserUnitHistory.unit_id, UserUnitHistory.user_id).where(
        UserUnitHistory.from_at < end, or_(UserUnitHistory.to_at.is_(None), UserUnitHistory.to_at > start),
        UserUnitHistory.user_id.in_(field_roles))).all()
    return {(unit, user) for unit, user in rows}


def compute(year: int, month: int, now: datetime | None = None) -> list[Cell]:
    start, end = month_bounds(year, month)
    return aggregate(month_items(year, month, now), shown_units(), officers_in_month(start, end))


# ---- storing ----------------------------------------------------------------------------------------

def refresh(year: int, month: int, now: datetime | None = None) -> int:
    """Recompute one month and replace its stored figures in one write transaction. Returns the
    number of cells stored."""
    now = now or utcnow()
    with db.reading():
        cells = compute(year, month, now)
    rows = [{"year": year, "month": month, "unit_id": c.unit_id, "user_id": c.user_id, "figure": c.figure,
             "value": c.value, "numerator": c.numerator, "denominator": c.denominator, "items": c.items,
             "computed_at": now} for c in cells]
    with db.write_transaction() as s:
        if s.get_bind().dialect.name == "postgresql":
            # One refresh of a month at a time (page views, the button and cron may coincide): the
            # second waits, then its DELETE sees the first one's rows and replaces them whole.
            s.execute(text("SELECT pg_advisory_xact_lock(:ns, :month)"), {"ns": 20_032, "month": year * 100 + month})
        s.execute(delete(MonthlyFigure).where(MonthlyFigure.year == year, MonthlyFigure.month == month))
        for start in range(0, len(rows), 5000):
            s.execute(MonthlyFigure.__table__.insert(), rows[start:start + 5000])  # one executemany
    return len(rows)


def computed_at(year: int, month: int) -> datetime | None:
    return db.session().execute(select(func.min(MonthlyFigure.computed_at)).where(
        MonthlyFigure.year == year, MonthlyFigure.month == month)).scalar()


def _fresh_as_of():
    return func.coalesce(MonthlyFigure.checked_at, MonthlyFigure.computed_at)


def freshness(year: int, month: int) -> datetime | None:
    """Up to when the stored figures of a month are known to hold: computed then, or checked then
    and found unchanged. None: never computed."""
    return db.session().execute(select(func.min(_fresh_as_of())).where(
        MonthlyFigure.year == year, MonthlyFigure.month == month)).scalar()


def mark_checked(months: Iterable[tuple[int, int]], at: datetime) -> None:
    """Note that nothing these months count changed up to ``at`` (the time a check began)."""
    months = sorted(set(months))
    if not months:
        return
    with db.write_transaction() as s:
        for year, month in months:
            s.execute(MonthlyFigure.__table__.update().where(
                MonthlyFigure.year == year, MonthlyFigure.month == month,
                _fresh_as_of() < at).values(checked_at=at))


def refresh_if_stale(year: int, month: int, now: datetime | None = None) -> bool:
    """On a page view: see ``refresh_stale``."""
    return refresh_stale(year, [month], now)


def refresh_stale(year: int, months: list[int], now: datetime | None = None) -> bool:
    """Bring the stored figures of these months of a year up to date, for a page view or an export:
    a month never computed is computed (from the first month with records on, never a month to
    come); the month in progress and the one before are recomputed when older than an hour; an
    earlier month when something it counts reached the server after it was last known to hold (a
    phone back from weeks without signal, an original stored late, footage linked by a lead), and
    otherwise noted as checked, so the next look reads only what arrived after. The changes are
    read in one pass for all the months."""
    now = now or utcnow()
    current = month_of(now)
    recent = {current, previous_month(*current)}
    stamps = {m: freshness(year, m) for m in months if (year, m) <= current}
    older = [at for m, at in stamps.items() if at is not None and (year, m) not in recent]
    changes = months_changed_since(min(older)) if older else {}
    first = None
    changed, unchanged = False, []
    for m, at in stamps.items():
        key = (year, m)
        if at is None:
            first = first or first_month(now)
            if key < first:
                continue  # before the first record: nothing to count, and no zeros to store
        elif key in recent:
            if now - at <= STALE_AFTER:
                continue
        elif key not in changes or changes[key] <= at - CHANGE_MARGIN:
            unchanged.append(key)
            continue
        refresh(year, m, now)
        changed = True
    mark_checked(unchanged, now)
    return changed


def months_to_refresh(now: datetime | None = None) -> list[tuple[int, int]]:
    """What the hourly command recomputes: the month in progress and the one before, and every
    earlier month that something reached the server for since the figures were last known to hold
    (the command then notes the others as checked at ``now``: ``mark_checked``). Nothing stored
    yet: every month from the first record."""
    now = now or utcnow()
    current = month_of(now)
    recent = [previous_month(*current), current]
    since = db.session().execute(select(func.min(_fresh_as_of()))).scalar()
    if since is None:
        return months_with_records(now)
    first = first_month(now)
    late = {m for m in months_changed_since(since) if first <= m <= current}
    return sorted(late | set(recent))


def stored_months() -> list[tuple[int, int]]:
    return [tuple(r) for r in db.session().execute(
        select(MonthlyFigure.year, MonthlyFigure.month).distinct()).all()]


# A revision is stamped received when its push transaction writes it, and may commit a little after
# a refresh that began later has read: a change this close before a computation counts as after it.
CHANGE_MARGIN = timedelta(minutes=2)


def months_changed_since(since: datetime) -> dict[tuple[int, int], datetime]:
    """Month (Beijing time) → the latest time something that month counts reached the server after
    ``since`` (less CHANGE_MARGIN): revisions received since — and every month any revision of
    their records states, so an edit that moves a record from one month to another changes both —,
    records whose original was stored since, activities whose footage was linked since. Each found
    by an indexed time column (migration 0021)."""
    s = db.session()
    after = since - CHANGE_MARGIN
    p = Revision.payload
    stated = func.coalesce(p["at"].as_string(), p["arrived_at"].as_string(), p["stopped_at"].as_string())
    latest: dict[uuid.UUID, datetime] = {}
    for record_id, received in s.execute(select(Revision.record_id, func.max(Revision.received_at))
                                         .where(Revision.received_at > after).group_by(Revision.record_id)):
        latest[record_id] = received
    for record_id, stored in s.execute(select(MediaRef.record_id, func.max(Media.original_at)).join(
            Media, and_(Media.alg == MediaRef.alg, Media.hash == MediaRef.hash))
            .where(Media.original_at > after).group_by(MediaRef.record_id)):
        latest[record_id] = max(latest.get(record_id, stored), stored)
    for record_id, linked in s.execute(select(FootageLink.activity_id, func.max(FootageLink.linked_at))
                                       .where(FootageLink.linked_at > after).group_by(FootageLink.activity_id)):
        latest[record_id] = max(latest.get(record_id, linked), linked)
    months: dict[tuple[int, int], datetime] = {}

    def note(at: datetime, changed: datetime) -> None:
        key = month_of(at)
        months[key] = max(months.get(key, changed), changed)

    by_case: dict[uuid.UUID, datetime] = {}

    def note_case(case_id, changed: datetime) -> None:
        by_case[case_id] = max(by_case.get(case_id, changed), changed)

    parents: dict[uuid.UUID, datetime] = {}
    for chunk in _chunks(sorted(latest)):
        for record_id, text, received in s.execute(select(Revision.record_id, stated, Revision.received_at)
                                                   .where(Revision.record_id.in_(chunk))):
            note(parse_time(text) or received, latest[record_id])
        for record_id, case_id, parent_id in s.execute(select(SyncedRecord.id, SyncedRecord.case_id,
                                                              SyncedRecord.parent_id).where(SyncedRecord.id.in_(chunk))):
            note_case(record_id, latest[record_id])  # a case record is its own case (others match nothing)
            if case_id is not None:
                note_case(case_id, latest[record_id])
            elif parent_id is not None:  # a step of an activity: the activity's case
                parents[parent_id] = max(parents.get(parent_id, latest[record_id]), latest[record_id])
    for chunk in _chunks(sorted(parents)):
        for parent_id, case_id in s.execute(select(SyncedRecord.id, SyncedRecord.case_id)
                                            .where(SyncedRecord.id.in_(chunk), SyncedRecord.case_id.is_not(None))):
            note_case(case_id, parents[parent_id])
    # A record can start or meet a deadline that falls due in another month (deadlines_missed,
    # filing_late count by the month the deadline falls due).
    for chunk in _chunks(sorted(by_case)):
        for case_id, due_at in s.execute(select(CaseDeadline.case_id, CaseDeadline.due_at)
                                         .where(CaseDeadline.case_id.in_(chunk))):
            note(due_at, by_case[case_id])
    return months


def first_month(now: datetime | None = None) -> tuple[int, int]:
    """The first month (Beijing time) any record speaks of; the month in progress when none does."""
    months = months_with_records(now)
    return months[0] if months else month_of(now or utcnow())


def months_with_records(now: datetime | None = None) -> list[tuple[int, int]]:
    """Every month (Beijing time) from the earliest time a record states, or the earliest record
    received, to now: what ``--all`` refreshes."""
    s = db.session()
    p = Revision.payload
    stated = func.coalesce(p["at"].as_string(), p["arrived_at"].as_string(), p["stopped_at"].as_string())
    first_day = s.execute(select(func.min(func.substr(stated, 1, 10)))).scalar()
    first = [s.execute(select(func.min(SyncedRecord.created_at))).scalar()]
    try:
        first.append(datetime.fromisoformat(first_day).replace(tzinfo=UTC) - timedelta(days=1) if first_day else None)
    except ValueError:
        pass
    candidates = [t for t in first if t is not None]
    end = month_of(now or utcnow())
    y, mo = month_of(min(candidates)) if candidates else end
    out = []
    while (y, mo) <= end:
        out.append((y, mo))
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    return out


def parse_month(text: str) -> tuple[int, int]:
    year, month = text.strip().split("-")
    y, mo = int(year), int(month)
    if not (1 <= mo <= 12 and 2000 <= y <= 2100):
        raise ValueError(text)
    date(y, mo, 1)
    return y, mo
