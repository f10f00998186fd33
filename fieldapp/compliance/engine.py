"""Running the checks on a case and keeping its findings and deadlines current.

Findings are stored (not computed per page view), so the unit-wide list reads an index, not every
record: a case is re-evaluated when anything about it changes — a push touching its records, an
original arriving, a lead's action (stage done, act ended, archive) — and by ``flask
compliance-check`` for findings that appear with the mere passing of time (late uploads, late
filing). Re-evaluation opens new findings, resolves those whose facts went away, and re-opens a
resolved one that comes back; the history stays in the rows' times.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from .. import db
from ..models import Case, CaseDeadline, Finding, utcnow
from ..rules import publication
from ..sync.changes import record_change
from . import clocks, deadline_source
from .checks import Context, Due, Hit, evaluate
from .facts import CaseFacts, load_case_facts


def catalogue_content() -> dict:
    latest = publication.latest()
    if latest is None:  # init-db publishes it; a database made otherwise publishes on first use
        with db.writing():
            latest = publication.ensure_published()
    return latest.content


def context(now: datetime | None = None, *, archiving: bool = False) -> Context:
    content = catalogue_content()
    settings = current_app.config["FIELDAPP_SETTINGS"]
    return Context(
        step_types={st["id"]: st for st in content.get("step_types", [])},
        # Catalogues before version 2 had only the art. 9 flags, all continuous.
        continuous_flags=frozenset(f["id"] for f in content.get("case_flags", []) if f.get("continuous", True)),
        gap_tolerance=timedelta(seconds=settings.continuous_gap_tolerance_seconds),
        now=now or utcnow(),
        deadline=deadline_source.due,
        archiving=archiving,
        footage_due=deadline_source.footage_due,
        continuous_reasons=frozenset(r["id"] for r in content.get("interruption_reasons", []) if r.get("sets_continuous")),
        service_step_types={k["id"]: k["service_by_leaving"] for k in content.get("kinds", []) if k.get("service_by_leaving")},
        footage_clock_tolerance=timedelta(seconds=settings.footage_clock_tolerance_seconds),
    )


def finding_rules() -> dict[str, dict]:
    return {f["id"]: f for f in catalogue_content().get("findings", [])}


def findings_for(case_id: uuid.UUID, *, archiving: bool = False, now: datetime | None = None) -> list[Hit]:
    """Evaluate without storing (the archive action asks "what would block?")."""
    facts = load_case_facts(case_id)
    return [] if facts is None else evaluate(facts, context(now, archiving=archiving))


def refresh_case(case_id: uuid.UUID, now: datetime | None = None) -> list[Finding]:
    """Re-evaluate one case inside the caller's transaction; returns its open findings."""
    facts = load_case_facts(case_id)
    if facts is None:
        return []
    ctx = context(now)
    hits = {hit.key: hit for hit in evaluate(facts, ctx)}
    rules = finding_rules()
    s = db.session()
    stored = {f.key: f for f in s.execute(select(Finding).where(Finding.case_id == case_id)).scalars()}
    for key, hit in hits.items():
        rule = rules.get(hit.rule_id, {})
        row = stored.get(key)
        if row is None:
            s.add(Finding(case_id=case_id, unit_id=facts.unit_id, record_id=hit.record_id, rule_id=hit.rule_id,
                          key=key, severity=rule.get("severity", "error"), article=rule.get("article", ""),
                          blocks_archiving=bool(rule.get("blocks_archiving")), detail=hit.detail, opened_at=ctx.now))
        else:
            if row.resolved_at is not None:
                row.resolved_at, row.opened_at = None, ctx.now
            if row.detail != hit.detail:
                row.detail = hit.detail
    for key, row in stored.items():
        if key not in hits and row.resolved_at is None:
            row.resolved_at = ctx.now
    _refresh_deadlines(facts, ctx)
    s.flush()
    return [f for f in s.execute(select(Finding).where(Finding.case_id == case_id, Finding.resolved_at.is_(None)))
            .scalars()]


def refresh_cases(case_ids: Iterable[uuid.UUID | None], now: datetime | None = None) -> None:
    for case_id in sorted({c for c in case_ids if c is not None}):
        refresh_case(case_id, now)


# ---- deadlines running on a case ---------------------------------------------------------------

def _deadlines(facts: CaseFacts, ctx: Context) -> dict[str, tuple[str, Due, datetime | None]]:
    """key → (rule, due, met at): the case's clocks (see clocks.py)."""
    return {c.key: (c.rule_id, Due(c.due_at, c.warnings), c.met_at) for c in clocks.case_clocks(facts, ctx.deadline)}


def _refresh_deadlines(facts: CaseFacts, ctx: Context) -> None:
    s = db.session()
    wanted = _deadlines(facts, ctx)
    stored = {d.key: d for d in s.execute(select(CaseDeadline).where(CaseDeadline.case_id == facts.case_id)).scalars()}
    changed = False
    for key, (rule, due, met) in wanted.items():
        row = stored.get(key)
        if row is None:
            s.add(CaseDeadline(case_id=facts.case_id, unit_id=facts.unit_id, key=key, rule_id=rule, due_at=due.at,
                               met_at=met, warnings=list(due.warnings)))
            changed = True
        elif (row.due_at, row.met_at, row.warnings) != (due.at, met, list(due.warnings)):
            row.due_at, row.met_at, row.warnings = due.at, met, list(due.warnings)
            changed = True
    for key, row in stored.items():
        if key not in wanted:
            s.delete(row)
            changed = True
    if changed:  # phones show a case's running deadlines offline: the feed carries the case again
        record_change("case", facts.case_id, unit_id=facts.unit_id)


def refresh_all(now: datetime | None = None) -> int:
    """Every case not archived (the periodic run for time-dependent findings), one transaction
    per case: SQLite's write lock is never held for the whole run, and one failure stops nothing."""
    s = db.session()
    ids = s.execute(select(Case.id).where(Case.archived_at.is_(None))).scalars().all()
    s.commit()
    for case_id in ids:
        with db.transaction():
            refresh_case(case_id, now)
    return len(ids)
