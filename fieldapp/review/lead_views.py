"""The lead's pages: pending syncs (the first screen), the review queue, cases with their
timeline, findings, deadlines and "cannot continue" reports. Unit-isolated: another unit's case
answers 404; only leads of the case's unit decide, others read."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from .. import db, events
from ..access import allow, require_unit, visible_unit_ids
from ..compliance import engine, exceptions
from ..footage import bars
from ..records import secrecy
from ..models import (
    Case, CaseDeadline, CaseStage, Finding, FindingException, InterruptionReport, RecordReview, Revision, Role,
    SyncedRecord, User, utcnow,
)
from . import bp, cases, workflow
from .labels import _zh
from .messages import message_for
from .pending import pending_syncs
from .roles import DECIDERS, REVIEWERS
from .timeline import case_timeline, desk_steps

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE = 100


def _units():
    return visible_unit_ids(current_user)


def _scoped(stmt, column):
    units = _units()
    return stmt if units is None else stmt.where(column.in_(units))


def _case_or_404(case_id: uuid.UUID) -> Case:
    case = db.session().get(Case, case_id)
    if case is None:
        abort(404)
    require_unit(current_user, case.unit_id)
    secrecy.require_case(current_user, case)
    return case


def _decider_for(unit_id: uuid.UUID) -> None:
    """Decisions belong to the leads of the case's own unit."""
    if Role.LEAD not in current_user.roles or current_user.unit_id != unit_id:
        abort(403)


@dataclass
class FindingState:
    """What a page says of a finding beyond the finding itself: the latest exception a lead
    accepted for it (with the lead's name), whether that still covers its current facts, and
    whether the reader may accept it now."""
    exception: FindingException | None
    by_name: str
    covers: bool
    fingerprint: str  # of the detail the page shows: the lead accepts what they saw
    can_accept: bool


def _finding_states(findings, rules: dict[str, dict], *, can_decide: bool) -> dict[uuid.UUID, FindingState]:
    findings = list(findings)
    if not findings:
        return {}
    s = db.session()
    latest: dict[tuple[uuid.UUID, str], tuple[FindingException, str]] = {}
    for row, name in s.execute(select(FindingException, User.name).join(User, User.id == FindingException.by_id)
                               .where(FindingException.case_id.in_({f.case_id for f in findings}))
                               .order_by(FindingException.at)).all():
        latest[(row.case_id, row.key)] = (row, name)
    states = {}
    for f in findings:
        exc, name = latest.get((f.case_id, f.key), (None, ""))
        covers = exceptions.covers(exc, f.detail)
        allowed = bool(rules.get(f.rule_id, {}).get("exception_allowed"))
        states[f.id] = FindingState(exc, name, covers, exceptions.fingerprint(f.detail),
                                    can_decide and allowed and f.resolved_at is None and not covers)
    return states


def _flag_groups(flags: list[dict]) -> tuple[list[dict], list[dict]]:
    """(flags that make recording continuous (art. 9), other flags such as 行政处罚法 art. 57's
    serious case). Catalogues before version 2 listed only art. 9's, all continuous."""
    return ([f for f in flags if f.get("continuous", True)], [f for f in flags if not f.get("continuous", True)])


def _id_check_text(checked) -> str:
    """The identity number check's outcome in the reader's language ("" when there is none)."""
    if checked is None:
        return ""
    return checked.message_zh if _zh() else checked.message_en


def _party_id_warning(checked) -> str:
    return _("Party's identity number: %(message)s", message=_id_check_text(checked))


@bp.get("/")
@allow(*REVIEWERS)
def pending_page():
    now = utcnow()
    return render_template("review/pending.html", rows=pending_syncs(_units(), now, zh=_zh()), now=now)


@bp.get("/queue")
@allow(*REVIEWERS)
def queue_page():
    s = db.session()
    stmt = _scoped(select(RecordReview, SyncedRecord, User, Case)
                   .join(SyncedRecord, SyncedRecord.id == RecordReview.record_id)
                   .join(User, User.id == RecordReview.author_id)
                   .outerjoin(Case, Case.id == SyncedRecord.case_id)
                   .where(RecordReview.state == workflow.AWAITING)
                   .order_by(RecordReview.updated_at).limit(PAGE), RecordReview.unit_id)
    rows = s.execute(stmt).all()
    case_ids = [c.id for *_, c in rows if c is not None]
    counts = dict(s.execute(select(Finding.case_id, func.count()).where(
        Finding.case_id.in_(case_ids), Finding.resolved_at.is_(None)).group_by(Finding.case_id)).all()) if case_ids else {}
    return render_template("review/queue.html", rows=rows, finding_counts=counts)


@bp.get("/cases")
@allow(*REVIEWERS)
def cases_page():
    stmt = _scoped(select(Case).order_by(Case.archived_at.is_not(None), Case.created_at.desc()).limit(PAGE), Case.unit_id)
    flags = list(cases.case_flags().values())
    continuous, other = _flag_groups(flags)
    visible = [c for c in db.session().execute(stmt).scalars().all() if secrecy.may_see_case(current_user, c)]
    return render_template("review/cases.html", cases=visible, kinds=cases.KINDS,
                           case_flags=flags, continuous_flags=continuous, other_flags=other)


@bp.post("/cases")
@allow(*DECIDERS)
def create_case():
    f = request.form
    try:
        with db.transaction():
            case = cases.create_case(current_user.unit_id, current_user.id, kind=f.get("kind", ""),
                                     party_name=f.get("party_name", ""), party_credit_code=f.get("party_credit_code"),
                                     party_address=f.get("party_address"), case_number=f.get("case_number"),
                                     flags=f.getlist("flags"), party_id_number=f.get("party_id_number"))
            warning = cases.id_number_warning(case)
    except cases.CaseError as exc:
        flash(message_for(exc), "error")
        return redirect(url_for("review.cases_page"))
    flash(_("Case created."), "ok")
    if warning is not None:  # kept as written: the officer records what the card shows
        flash(_party_id_warning(warning), "warning")
    return redirect(url_for("review.case_page", case_id=case.id))


@bp.post("/cases/import")
@allow(*DECIDERS)
def import_cases():
    upload = request.files.get("file")
    if upload is None:
        flash(_("Choose a CSV file."), "error")
        return redirect(url_for("review.cases_page"))
    try:
        text = upload.stream.read(2 * 1024 * 1024).decode("utf-8")
    except UnicodeDecodeError:
        flash(_("The file is not UTF-8 text."), "error")
        return redirect(url_for("review.cases_page"))
    with db.transaction() as s:
        result = cases.import_cases(current_user.unit_id, current_user.id, text)
        if result.errors:
            s.rollback()
    if result.errors:
        for line, error in result.errors[:20]:
            flash(_("Line %(line)s: %(message)s", line=line, message=message_for(error)), "error")
        flash(_("Nothing was imported: correct the lines above and import the file again."), "error")
    else:
        flash(_("%(count)s cases imported.", count=len(result.created)), "ok")
        for line, checked in result.warnings[:20]:
            flash(_("Line %(line)s: %(message)s", line=line, message=_party_id_warning(checked)), "warning")
    return redirect(url_for("review.cases_page"))


@bp.get("/cases/<uuid:case_id>")
@allow(*REVIEWERS)
def case_page(case_id: uuid.UUID):
    case = _case_or_404(case_id)
    s = db.session()
    findings = s.execute(select(Finding).where(Finding.case_id == case_id, Finding.resolved_at.is_(None))
                         .order_by(Finding.severity, Finding.opened_at)).scalars().all()
    deadlines = s.execute(select(CaseDeadline).where(CaseDeadline.case_id == case_id)
                          .order_by(CaseDeadline.due_at)).scalars().all()
    officers = s.execute(select(User).where(User.unit_id == case.unit_id, User.active.is_(True))
                         .order_by(User.name)).scalars().all()
    content = engine.catalogue_content()
    stages = [st for st in content.get("stages", [])]
    done = {row.stage: row for row in s.execute(select(CaseStage).where(CaseStage.case_id == case_id)).scalars()}
    can_decide = Role.LEAD in current_user.roles and current_user.unit_id == case.unit_id
    # What would stop archiving is shown before the lead tries, each linked to its record.
    blockers = cases.archive_blockers(case_id) if can_decide and case.archived_at is None else []
    rules = engine.finding_rules()
    blocks = case_timeline(case_id)
    footage_tracks = bars.case_tracks(case_id, blocks)
    desk = desk_steps(case_id)
    shown = {f.id: f for f in findings}
    for block in blocks:  # the timeline's findings are the same open ones, keyed the same way
        for entry in (block.activity, *block.items):
            shown.update((f.id, f) for f in entry.findings)
    for entry in desk:
        shown.update((f.id, f) for f in entry.findings)
    flags = cases.case_flags()
    # An inspection and the penalty case opened from it on the spot point at each other.
    linked = [c for c in s.execute(select(Case).where(
        (Case.id == case.linked_case_id) | (Case.linked_case_id == case.id))).scalars() if c.unit_id == case.unit_id]
    return render_template("review/case.html", case=case, blocks=blocks, linked_cases=linked, desk=desk, findings=findings,
                           blockers=blockers,
                           finding_states=_finding_states(shown.values(), rules,
                                                          can_decide=can_decide and case.archived_at is None),
                           flag_groups=_flag_groups([flags.get(flag, {"id": flag}) for flag in case.flags or []]),
                           id_warning=_id_check_text(cases.id_number_warning(case)),
                           deadlines=deadlines, assignees=cases.assignees(case_id),
                           officers=[o for o in officers if Role.OFFICER in o.roles], stages=stages, done=done,
                           can_decide=can_decide, footage_tracks=footage_tracks,
                           rules=rules, now=utcnow())


def _case_action(case_id: uuid.UUID, action) -> object:
    case = _case_or_404(case_id)
    _decider_for(case.unit_id)
    try:
        with db.transaction():
            action(db.session().get(Case, case_id))
    except cases.CaseError as exc:
        flash(message_for(exc), "error")
        if exc.code == "blocked":  # the case page lists what blocks, each with a link to it
            return redirect(url_for("review.case_page", case_id=case_id) + "#archive-blockers")
    return redirect(url_for("review.case_page", case_id=case_id))


@bp.post("/cases/<uuid:case_id>/assign")
@allow(*DECIDERS)
def assign(case_id: uuid.UUID):
    def act(case):
        officer = db.session().get(User, _uuid_or_400(request.form.get("user_id")))
        if officer is None:
            raise cases.CaseError("unknown_user", _("No such officer."))
        cases.assign(case, officer, current_user.id)
    return _case_action(case_id, act)


@bp.post("/cases/<uuid:case_id>/unassign")
@allow(*DECIDERS)
def unassign(case_id: uuid.UUID):
    return _case_action(case_id, lambda case: cases.unassign(case, _uuid_or_400(request.form.get("user_id"))))


@bp.post("/cases/<uuid:case_id>/stage")
@allow(*DECIDERS)
def stage_done(case_id: uuid.UUID):
    stages = {st["id"] for st in engine.catalogue_content().get("stages", [])}
    response = _case_action(case_id, lambda case: cases.mark_stage_done(case, request.form.get("stage", ""),
                                                                        current_user.id, stages))
    events.publish(events.case_changed, case_ids={case_id})  # a decision makes its records evidence (art. 26)
    return response


@bp.post("/cases/<uuid:case_id>/act-ended")
@allow(*DECIDERS)
def act_ended(case_id: uuid.UUID):
    def act(case):
        try:
            local = datetime.fromisoformat(request.form.get("ended_at", ""))
            if not 2000 <= local.year <= 2200:
                raise ValueError
            ended = (local if local.tzinfo else local.replace(tzinfo=SHANGHAI)).astimezone(utcnow().tzinfo)
        except (ValueError, OverflowError):
            raise cases.CaseError("bad_time", _("Give the date and time the act ended.")) from None
        cases.set_act_ended(case, ended, request.form.get("reason"))
    return _case_action(case_id, act)


@bp.post("/cases/<uuid:case_id>/archive")
@allow(*DECIDERS)
def archive(case_id: uuid.UUID):
    response = _case_action(case_id, lambda case: cases.archive(case, current_user.id))
    if db.session().get(Case, case_id).archived_at is not None:
        flash(_("Case archived."), "ok")
    return response


@bp.post("/activities/<uuid:activity_id>/decision")
@allow(*DECIDERS)
def decide(activity_id: uuid.UUID):
    activity = db.session().get(SyncedRecord, activity_id)
    if activity is None or activity.record_type != "activity":
        abort(404)
    require_unit(current_user, activity.unit_id)
    _decider_for(activity.unit_id)
    try:
        with db.transaction():
            workflow.decide(activity_id, current_user, request.form.get("action", ""), request.form.get("comment"),
                            seen=request.form.get("seen"), confirmed=request.form.get("confirm") == "yes")
    except workflow.ReviewError as exc:
        flash(message_for(exc), "error")
    else:
        flash(_("Approved.") if request.form.get("action") == workflow.APPROVED else _("Returned to the officer."), "ok")
    return redirect(url_for("review.case_page", case_id=activity.case_id) + f"#a-{activity_id}"
                    if activity.case_id else url_for("review.queue_page"))


@bp.post("/cases/<uuid:case_id>/findings/<uuid:finding_id>/exception")
@allow(*DECIDERS)
def accept_exception(case_id: uuid.UUID, finding_id: uuid.UUID):
    """A lead of the case's unit accepts an open finding as an exception, with the reason: the
    finding stays on record, and stops blocking archiving while its facts stay as they were."""
    case = _case_or_404(case_id)
    finding = db.session().get(Finding, finding_id)
    if finding is None or finding.case_id != case.id:
        abort(404)
    _decider_for(case.unit_id)
    back = url_for("review.case_page", case_id=case_id) + f"#finding-{finding_id}"
    try:
        with db.transaction() as s:
            case, finding = s.get(Case, case_id), s.get(Finding, finding_id)
            if case.archived_at is not None:
                raise cases.CaseError("archived", "the case is archived; it can no longer change here")
            seen = request.form.get("seen")
            if seen and seen != exceptions.fingerprint(finding.detail):
                raise exceptions.ExceptionRefused("finding_changed", "the finding changed since the page was opened")
            exceptions.accept(finding, current_user.id, request.form.get("reason", ""), engine.finding_rules())
    except (exceptions.ExceptionRefused, cases.CaseError) as exc:
        flash(message_for(exc), "error")
        return redirect(back)
    flash(_("Accepted as an exception. The finding stays on record with your reason and no longer blocks archiving "
            "while its facts stay as they are."), "ok")
    return redirect(back)


@bp.get("/findings")
@allow(*REVIEWERS)
def findings_page():
    severity = request.args.get("severity")
    stmt = select(Finding, Case).join(Case, Case.id == Finding.case_id).where(Finding.resolved_at.is_(None))
    if severity in ("error", "warning"):
        stmt = stmt.where(Finding.severity == severity)
    stmt = _scoped(stmt.order_by(Finding.opened_at.desc()).limit(PAGE), Finding.unit_id)
    rows = db.session().execute(stmt).all()
    rules = engine.finding_rules()
    return render_template("review/findings.html", rows=rows, rules=rules, severity=severity,
                           finding_states=_finding_states((f for f, _case in rows), rules, can_decide=False))


@bp.get("/deadlines")
@allow(*REVIEWERS)
def deadlines_page():
    try:
        days = max(1, min(60, int(request.args.get("days", "7"))))
    except ValueError:
        days = 7
    now = utcnow()
    stmt = _scoped(select(CaseDeadline, Case).join(Case, Case.id == CaseDeadline.case_id)
                   .where(CaseDeadline.met_at.is_(None), CaseDeadline.due_at <= now + timedelta(days=days))
                   .order_by(CaseDeadline.due_at).limit(PAGE), CaseDeadline.unit_id)
    return render_template("review/deadlines.html", rows=db.session().execute(stmt).all(), days=days, now=now)


@bp.get("/reports")
@allow(*REVIEWERS)
def reports_page():
    stmt = _scoped(select(InterruptionReport, User, Revision)
                   .join(User, User.id == InterruptionReport.author_id)
                   .join(SyncedRecord, SyncedRecord.id == InterruptionReport.record_id)
                   .join(Revision, (Revision.record_id == SyncedRecord.id)
                         & (Revision.revision == SyncedRecord.head_revision))
                   .order_by(InterruptionReport.acknowledged_at.is_not(None), InterruptionReport.received_at.desc())
                   .limit(PAGE), InterruptionReport.unit_id)
    return render_template("review/reports.html", rows=db.session().execute(stmt).all())


@bp.post("/reports/<uuid:record_id>/acknowledge")
@allow(*DECIDERS)
def acknowledge_report(record_id: uuid.UUID):
    with db.transaction() as s:
        report = s.get(InterruptionReport, record_id)
        if report is None:
            abort(404)
        require_unit(current_user, report.unit_id)
        _decider_for(report.unit_id)
        if report.acknowledged_at is None:
            report.acknowledged_at, report.acknowledged_by = utcnow(), current_user.id
    flash(_("Report acknowledged."), "ok")
    return redirect(url_for("review.reports_page"))


def _uuid_or_400(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        abort(400)
