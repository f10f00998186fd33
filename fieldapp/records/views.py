"""Records management pages: the access register and grants (art. 29), retention, holds and
disposal (art. 26), case marks (arts. 26, 31). Thin: the rules are in :mod:`.grants`,
:mod:`.retention` and :mod:`fieldapp.rules.records_rules`."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import uuid
from datetime import timedelta

from flask import (Blueprint, Response, abort, after_this_request, flash, redirect, render_template, request,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import db
from ..access import allow, can_see_unit, visible_unit_ids
from ..media import storage as media_store
from ..media.service import media_storage, original_file
from ..models import (AccessGrant, AccessUse, Case, Disposal, FootageSegment, Media, RetentionHold,
                      RetentionState, Role, User, utcnow)
from ..rules import records_rules
from ..rules.records_rules import RequestRefused
from . import grants, register as access_register, retention, secrecy
from .retention import DisposalRefused

bp = Blueprint("records", __name__, url_prefix="/records")
bp.add_app_template_global(secrecy.needs_identity, "needs_identity")
bp.add_app_template_global(secrecy.mask, "mask_private")
bp.add_app_template_global(secrecy.private_text, "private_text")
bp.add_app_template_global(records_rules.builtin, "records_rules")


@bp.app_template_global("records_label")
def records_label(entry) -> str:
    """A rule's label in the reader's language (the rules carry both)."""
    from flask_babel import get_locale
    return entry.label_zh if get_locale().language == "zh" else entry.label_en

REGISTER_READERS = (Role.RECORDS_ADMIN, Role.LEAD, Role.DIVISION_HEAD, Role.BUREAU_HEAD, Role.SUPERVISOR)
APPROVERS = (Role.LEAD, Role.DIVISION_HEAD, Role.BUREAU_HEAD)
RETENTION_READERS = (Role.RECORDS_ADMIN, Role.DIVISION_HEAD, Role.LEAD)
HOLDERS = (Role.RECORDS_ADMIN, Role.LEAD)
VIEW_MAX_SIDE = 1280
PAGE = 500
VIEW_MAX_HEIGHT = 480


def _form(name: str, limit: int = 2000) -> str:
    return (request.form.get(name) or "").replace("\x00", "").strip()[:limit]


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------ the register


@bp.get("/access")
@allow(*REGISTER_READERS)
def register_page():
    filters = access_register.Filters.from_args(request.args)
    rows = access_register.rows(visible_unit_ids(current_user), filters, viewer=current_user)
    if request.args.get("format") == "csv":
        return _csv(rows)
    s = db.session()
    pending = [g for g in s.execute(select(AccessGrant).where(AccessGrant.state == "pending")
                                    .order_by(AccessGrant.registered_at)).scalars()
               if grants.may_decide(g, current_user)]
    users = []
    if Role.RECORDS_ADMIN in current_user.roles:
        users = list(s.execute(select(User).where(User.active.is_(True)).order_by(User.name)).scalars())
    return render_template("records/register.html", rows=rows, filters=filters, pending=pending, users=users,
                           rules=records_rules.builtin(), status=grants.status)


def _csv(rows) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 Chinese correctly only with the byte-order mark
    writer = csv.writer(out)
    writer.writerow(access_register.CSV_HEADER)
    for row in rows:
        writer.writerow(row.csv())
    return Response(out.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=access-register.csv"})


@bp.get("/mine")
@allow(signed_in=True)
def my_grants():
    """The grants made out to me: what I may view, until when, and what was decided."""
    mine = list(db.session().execute(select(AccessGrant).where(AccessGrant.requester_id == current_user.id)
                                     .order_by(AccessGrant.registered_at.desc()).limit(PAGE)).scalars())
    return render_template("records/mine.html", grants=mine, status=grants.status, rules=records_rules.builtin(),
                           label=lambda g: secrecy.subject_label_for(current_user, g))


@bp.post("/access")
@allow(Role.RECORDS_ADMIN)
def grant_register():
    requester = None
    if (requester_id := _uuid_or_none(request.form.get("requester_id"))) is not None:
        requester = db.session().get(User, requester_id)
        if requester is None:
            flash(_("The requester was not found."), "error")
            return redirect(url_for(".register_page"))
    try:
        days = int(request.form.get("days") or records_rules.builtin().default_days)
    except ValueError:
        days = -1
    for _attempt in range(3):  # the register number is unique: two at once, the second takes the next
        try:
            with db.transaction():
                grant = grants.register(
                    current_user, subject_kind=_form("subject_kind", 10), subject_id=_form("subject_id", 200),
                    mode=_form("mode", 10), purpose=_form("purpose", 40), purpose_note=_form("purpose_note"),
                    requester=requester, outside_name=_form("outside_name", 80), outside_org=_form("outside_org", 200),
                    days=days)
            break
        except RequestRefused as exc:
            flash(str(exc), "error")
            return redirect(url_for(".register_page")), 303
        except IntegrityError:
            continue
    else:
        abort(409)
    return redirect(url_for(".grant_page", grant_id=grant.id), 303)


def _grant_or_404(grant_id: uuid.UUID) -> AccessGrant:
    grant = db.session().get(AccessGrant, grant_id)
    if grant is None:
        abort(404)
    mine = current_user.id in (grant.requester_id, grant.registered_by)
    if not (mine or grants.may_decide(grant, current_user) or (
            current_user.has_role(*REGISTER_READERS) and can_see_unit(current_user, grant.unit_id))):
        abort(404)
    return grant


@bp.get("/access/<uuid:grant_id>")
@allow(signed_in=True)
def grant_page(grant_id: uuid.UUID):
    grant = _grant_or_404(grant_id)
    s = db.session()
    items = []
    label = secrecy.subject_label_for(current_user, grant)
    if grants.active(grant):
        for alg, digest in grants.objects(grant):
            media = s.get(Media, (alg, digest))
            segment = s.execute(select(FootageSegment).where(FootageSegment.alg == alg, FootageSegment.hash == digest)).scalar_one_or_none()
            kind = "video" if segment is not None else (media.kind if media else None)
            picture = None  # what the records administrator draws the rectangles to blur on
            if segment is not None and "poster" in (segment.previews or []):
                picture = url_for("footage.segment_derivative", segment_id=segment.id, variant="poster")
            elif kind == "image":
                picture = url_for("review.media_file", alg=alg, digest=digest, variant="preview")
            items.append({"alg": alg, "hash": digest, "kind": kind, "hidden": retention.is_hidden(alg, digest),
                          "name": segment.file_name if segment else (media.mime if media else digest[:12]),
                          "picture": picture})
    uses = list(s.execute(select(AccessUse).where(AccessUse.grant_id == grant.id).order_by(AccessUse.id)).scalars())
    people = {u.id: u for u in s.execute(select(User).where(User.id.in_(
        {grant.registered_by, grant.decided_by, grant.revoked_by, *(u.by_id for u in uses)} - {None}))).scalars()}
    return render_template("records/grant.html", grant=grant, subject_label=label, items=items, uses=uses, people=people,
                           status=grants.status(grant), may_decide=grants.may_decide(grant, current_user),
                           may_view=grants.may_view(grant, current_user), may_copy=grants.may_copy(grant, current_user),
                           may_redact=grants.may_redact(grant), rules=records_rules.builtin())


@bp.post("/access/<uuid:grant_id>/decide")
@allow(*APPROVERS)
def grant_decide(grant_id: uuid.UUID):
    grant = _grant_or_404(grant_id)
    try:
        with db.transaction():
            grants.decide(grant, current_user, approve=request.form.get("decision") == "approve",
                          note=_form("note"))
    except RequestRefused as exc:
        flash(str(exc), "error")
    return redirect(url_for(".grant_page", grant_id=grant.id), 303)


@bp.post("/access/<uuid:grant_id>/revoke")
@allow(Role.RECORDS_ADMIN)
def grant_revoke(grant_id: uuid.UUID):
    grant = _grant_or_404(grant_id)
    if grant.unit_id != current_user.unit_id:
        abort(404)
    try:
        with db.transaction():
            grants.revoke(grant, current_user)
    except RequestRefused as exc:
        flash(str(exc), "error")
    return redirect(url_for(".grant_page", grant_id=grant.id), 303)


def _covered_or_404(grant: AccessGrant, alg: str, digest: str) -> tuple[str, str]:
    try:
        media_store.validate_digest(alg, digest)
    except ValueError:
        abort(404)
    if not grants.covers(grant, alg, digest):
        abort(404)
    if retention.is_hidden(alg, digest):
        abort(410)
    return alg, digest


def _source_kind(key) -> tuple[str | None, FootageSegment | None, Media | None]:
    s = db.session()
    segment = s.execute(select(FootageSegment).where(FootageSegment.alg == key[0], FootageSegment.hash == key[1])).scalar_one_or_none()
    media = s.get(Media, key)
    if segment is not None:
        return "video", segment, media
    return (media.kind if media else None), None, media


def _mark(grant: AccessGrant) -> object:
    """Who is looking, and for whom when the records administrator shows or hands out the records
    to a requester (a body outside the bureau has no account of its own)."""
    from .marking import Mark
    viewer = f"{current_user.name} ({current_user.cert_no})"
    if current_user.id != grant.requester_id:
        viewer += f" → {grant.requester_org} {grant.requester_name}"
    return Mark(viewer=viewer[:120], at=utcnow(), grant_number=grant.number)


@bp.get("/access/<uuid:grant_id>/view/<alg>/<digest>")
@allow(signed_in=True)
def grant_view(grant_id: uuid.UUID, alg: str, digest: str):
    """A view grant shows a watermarked preview — never the original's bytes (art. 29)."""
    grant = _grant_or_404(grant_id)
    if not grants.may_view(grant, current_user):
        abort(403)
    key = _covered_or_404(grant, alg, digest)
    kind, segment, media = _source_kind(key)
    if kind not in ("image", "video"):
        abort(404)
    with db.write_transaction():  # registered before a byte is shown
        grants.record_use(grant, "view", current_user, key)
    mark = _mark(grant)
    store = media_storage()
    from . import marking
    if kind == "image":
        previews = (media.previews or []) if media else []
        try:
            data = store.get_derivative(*key, "preview") if "preview" in previews else None
        except media_store.MediaNotFound:
            data = None
        if data is None:
            with original_file(store, *key) as path, open(path, "rb") as fh:
                data = fh.read()
        marked = marking.mark_image(data, mark, max_side=VIEW_MAX_SIDE)
        return Response(marked, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
    path = _marked_video_file(store, key, mark, (), VIEW_MAX_HEIGHT, segment, from_preview=True)
    return _send_and_remove(path, f"{grant.number}-{digest[:12]}.mp4", attachment=False)


def _marked_video_file(store, key, mark, redactions, max_height, segment, *, from_preview: bool) -> str:
    """A marked MP4 in a temporary file (the caller sends and removes it)."""
    from . import marking
    handle, out = tempfile.mkstemp(prefix="fieldapp-marked-", suffix=".mp4")
    os.close(handle)
    try:
        if from_preview and segment is not None and "preview" in (segment.previews or []):
            with tempfile.NamedTemporaryFile(prefix="fieldapp-marked-src-", suffix=".mp4") as src:
                src.write(store.get_derivative(*key, "preview"))
                src.flush()
                marking.mark_video(src.name, out, mark, redactions, max_height=max_height)
        else:
            with original_file(store, *key) as path:
                marking.mark_video(path, out, mark, redactions, max_height=max_height)
    except BaseException:
        if os.path.exists(out):
            os.unlink(out)
        raise
    return out


def _send_and_remove(path: str, name: str, *, attachment: bool):
    @after_this_request
    def _remove(response):
        try:
            os.unlink(path)
        except OSError:
            pass
        return response

    return send_file(path, mimetype="video/mp4", max_age=0, conditional=False, download_name=name,
                     as_attachment=attachment)


@bp.post("/access/<uuid:grant_id>/copy/<alg>/<digest>")
@allow(Role.RECORDS_ADMIN)
def grant_copy(grant_id: uuid.UUID, alg: str, digest: str):
    """The records administrator makes a marked copy to hand out; for a body outside the bureau
    rectangles may be blurred on the copy, with a reason. The original never changes."""
    from . import marking
    grant = _grant_or_404(grant_id)
    if not grants.may_copy(grant, current_user):
        abort(403)
    key = _covered_or_404(grant, alg, digest)
    kind, segment, media = _source_kind(key)
    if kind not in ("image", "video"):
        abort(404)
    try:
        raw = json.loads(request.form.get("redactions") or "[]")
        redactions = [marking.Redaction.parse(r) for r in (raw if isinstance(raw, list) else [raw])]
    except (ValueError, TypeError) as exc:
        flash(str(exc), "error")
        return redirect(url_for(".grant_page", grant_id=grant.id), 303)
    reason = _form("redaction_reason")
    if redactions and not grants.may_redact(grant):
        flash(_("Only copies for a body outside the bureau are redacted."), "error")
        return redirect(url_for(".grant_page", grant_id=grant.id), 303)
    if redactions and not reason:
        flash(_("Say why the copy is redacted."), "error")
        return redirect(url_for(".grant_page", grant_id=grant.id), 303)
    mark = _mark(grant)
    store = media_storage()
    if kind == "image":
        with original_file(store, *key) as path, open(path, "rb") as fh:
            marked = marking.mark_image(fh.read(), mark, redactions)
        with db.transaction():
            grants.record_use(grant, "copy", current_user, key, copy_sha256=hashlib.sha256(marked).hexdigest(),
                              redactions=[r.__dict__ for r in redactions], reason=reason)
        return Response(marked, mimetype="image/jpeg", headers={
            "Content-Disposition": f"attachment; filename={grant.number}-{digest[:12]}.jpg", "Cache-Control": "no-store"})
    path = _marked_video_file(store, key, mark, redactions, None, segment, from_preview=False)
    try:
        with open(path, "rb") as copied:
            copy_digest = hashlib.file_digest(copied, "sha256").hexdigest()
        with db.transaction():
            grants.record_use(grant, "copy", current_user, key, copy_sha256=copy_digest,
                              redactions=[r.__dict__ for r in redactions], reason=reason)
    except BaseException:
        os.unlink(path)
        raise
    return _send_and_remove(path, f"{grant.number}-{digest[:12]}.mp4", attachment=True)


# ------------------------------------------------------------------------------ retention (art. 26)


@bp.get("/retention")
@allow(*RETENTION_READERS)
def retention_page():
    s = db.session()
    units = visible_unit_ids(current_user)
    now = utcnow()
    due = retention.due(units, now)
    soon_stmt = select(RetentionState).where(RetentionState.klass == records_rules.SIX_MONTHS,
                                             RetentionState.keep_until > now,
                                             RetentionState.keep_until <= now + timedelta(days=7))
    disposals_stmt = select(Disposal).where(Disposal.state.in_(("proposed", "disposed", "purged")))
    holds_stmt = select(RetentionHold).where(RetentionHold.released_at.is_(None))
    if units is not None:
        soon_stmt = soon_stmt.where(RetentionState.unit_id.in_(units))
        disposals_stmt = disposals_stmt.where(Disposal.unit_id.in_(units))
        holds_stmt = holds_stmt.where(RetentionHold.unit_id.in_(units))
    disposals = list(s.execute(disposals_stmt.order_by(Disposal.records_admin_at.desc()).limit(PAGE)).scalars())
    people_ids = {d.records_admin_id for d in disposals} | {d.division_head_id for d in disposals}
    people = {u.id: u for u in s.execute(select(User).where(User.id.in_(people_ids - {None}))).scalars()} if people_ids else {}
    cases = list(s.execute(select(Case).where(Case.unit_id == current_user.unit_id)
                           .order_by(Case.created_at.desc()).limit(PAGE)).scalars())
    return render_template("records/retention.html", cases=cases, due=due[:PAGE], soon=list(s.execute(soon_stmt.limit(PAGE)).scalars()),
                           disposals=disposals, holds=list(s.execute(holds_stmt.limit(PAGE)).scalars()), people=people, now=now,
                           rules=records_rules.builtin())


def _back():
    return redirect(url_for(".retention_page"), 303)


def _key_from_form() -> tuple[str, str]:
    alg, digest = _form("alg", 16), _form("hash", 128)
    try:
        media_store.validate_digest(alg, digest)
    except ValueError:
        abort(400)
    return alg, digest


@bp.post("/retention/propose")
@allow(Role.RECORDS_ADMIN)
def disposal_propose():
    key = _key_from_form()
    try:
        with db.transaction():
            retention.propose(key, current_user, _form("note"))
    except DisposalRefused as exc:
        flash(str(exc), "error")
    return _back()


def _disposal_or_404(disposal_id: uuid.UUID) -> Disposal:
    disposal = db.session().get(Disposal, disposal_id, with_for_update=True)  # one decision at a time
    if disposal is None or disposal.unit_id is None or not can_see_unit(current_user, disposal.unit_id):
        abort(404)
    return disposal


def _disposal_step(disposal_id: uuid.UUID, step):
    """One step of a disposal, refused with its reason when the rules do not allow it now."""
    disposal = _disposal_or_404(disposal_id)
    try:
        with db.transaction():
            step(disposal, current_user)
    except DisposalRefused as exc:
        flash(str(exc), "error")
    return _back()


@bp.post("/disposals/<uuid:disposal_id>/approve")
@allow(Role.DIVISION_HEAD)
def disposal_approve(disposal_id: uuid.UUID):
    return _disposal_step(disposal_id, retention.approve)


@bp.post("/disposals/<uuid:disposal_id>/withdraw")
@allow(Role.RECORDS_ADMIN)
def disposal_withdraw(disposal_id: uuid.UUID):
    return _disposal_step(disposal_id, retention.withdraw)


@bp.post("/disposals/<uuid:disposal_id>/recover")
@allow(Role.RECORDS_ADMIN, Role.DIVISION_HEAD)
def disposal_recover(disposal_id: uuid.UUID):
    return _disposal_step(disposal_id, retention.recover)


@bp.post("/holds")
@allow(*HOLDERS)
def hold_place():
    kind = _form("kind", 10)
    case = None
    key = None
    if kind == "case":
        case = db.session().get(Case, _uuid_or_none(request.form.get("case_id")) or uuid.uuid4())
        if case is None or case.unit_id != current_user.unit_id:
            abort(404)
        unit_id = case.unit_id
    else:
        key = _key_from_form()
        state = db.session().get(RetentionState, key)
        if state is None or state.unit_id != current_user.unit_id:
            abort(404)
        unit_id = state.unit_id
    try:
        with db.transaction():
            hold = retention.place_hold(current_user, kind=kind, reason=_form("reason"), case=case, key=key,
                                        unit_id=unit_id)
            changes = retention.recompute(retention.keys_of_hold(hold))
        retention.apply_to_storage(changes)
    except DisposalRefused as exc:
        flash(str(exc), "error")
    return _back()


@bp.post("/holds/<uuid:hold_id>/release")
@allow(*HOLDERS)
def hold_release(hold_id: uuid.UUID):
    hold = db.session().get(RetentionHold, hold_id)
    if hold is None or hold.unit_id != current_user.unit_id:
        abort(404)
    try:
        with db.transaction():
            retention.release_hold(hold, current_user)
            changes = retention.recompute(retention.keys_of_hold(hold))
        retention.apply_to_storage(changes)
    except DisposalRefused as exc:
        flash(str(exc), "error")
    return _back()


@bp.post("/cases/<uuid:case_id>/marks")
@allow(Role.LEAD)
def case_marks(case_id: uuid.UUID):
    """The lead marks a case: what it involves (art. 31) and how significant it is (art. 26 (三)(四))."""
    case = db.session().get(Case, case_id)
    if case is None or case.unit_id != current_user.unit_id:
        abort(404)
    rules = records_rules.builtin()
    secrecy = [m for m in request.form.getlist("confidentiality") if m in rules.confidentiality]
    significance = [m for m in request.form.getlist("significance") if m in rules.significance]
    with db.transaction():
        case.confidentiality = sorted(set(secrecy)) or None
        case.significance = sorted(set(significance)) or None
        changes = retention.recompute(retention.keys_of_cases([case.id]))
    retention.apply_to_storage(changes)
    flash(_("Case marks saved."), "ok")
    return redirect(url_for("review.case_page", case_id=case.id), 303)
