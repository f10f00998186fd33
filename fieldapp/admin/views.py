"""Admin pages. Each action is a form POST protected by the CSRF token."""
from __future__ import annotations

import uuid

import segno
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..access import allow
from ..accounts import AccountError, create_unit, create_user, parse_roles, update_user
from ..auth import enrollment
from ..models import Enrollment, EnrollmentEvent, Passkey, Role, Unit, User, utcnow
from . import bp


def _units() -> list[Unit]:
    return db.session().execute(select(Unit).order_by(Unit.code)).scalars().all()


def _user_or_404(user_id: uuid.UUID) -> User:
    user = db.session().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@allow(Role.ADMIN)
def index():
    users = db.session().execute(select(User).order_by(User.cert_no)).scalars().all()
    return render_template("admin/index.html", units=_units(), users=users, roles=list(Role))


@bp.post("/units")
@allow(Role.ADMIN)
def unit_create():
    try:
        with db.transaction():
            unit = create_unit(request.form.get("code", ""), request.form.get("name", ""))
        flash(_("Unit %(name)s created.", name=unit.name), "ok")
    except AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.index"))


@bp.post("/users")
@allow(Role.ADMIN)
def user_create():
    try:
        with db.transaction():
            unit = db.session().get(Unit, uuid.UUID(request.form.get("unit_id", "")))
            if unit is None:
                raise AccountError(_("Choose a unit."))
            user = create_user(request.form.get("name", ""), request.form.get("cert_no", ""), unit,
                               parse_roles(request.form.getlist("roles")))
    except (AccountError, ValueError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.index"))
    flash(_("User %(name)s created.", name=user.name), "ok")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.get("/users/<uuid:user_id>")
@allow(Role.ADMIN)
def user_detail(user_id: uuid.UUID):
    user = _user_or_404(user_id)
    enrollments = db.session().execute(
        select(Enrollment).where(Enrollment.user_id == user.id).order_by(Enrollment.created_at.desc())
    ).scalars().all()
    return render_template("admin/user.html", user=user, units=_units(), roles=list(Role),
                           enrollments=enrollments, now=utcnow())


@bp.post("/users/<uuid:user_id>")
@allow(Role.ADMIN)
def user_update(user_id: uuid.UUID):
    user = _user_or_404(user_id)
    form = request.form
    try:
        with db.transaction():
            unit = db.session().get(Unit, uuid.UUID(form.get("unit_id", str(user.unit_id))))
            overseen = [db.session().get(Unit, uuid.UUID(u)) for u in form.getlist("overseen")]
            if unit is None or None in overseen:
                raise AccountError(_("Choose a unit."))
            update_user(user, name=form.get("name"), unit=unit, roles=parse_roles(form.getlist("roles")),
                        active=form.get("active") == "1", overseen_units=overseen)
        flash(_("Saved."), "ok")
    except (AccountError, ValueError) as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.post("/users/<uuid:user_id>/enroll")
@allow(Role.ADMIN)
def user_enroll(user_id: uuid.UUID):
    user = _user_or_404(user_id)
    if not user.active:
        flash(_("Enable the user before issuing an enrolment code."), "error")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    settings = current_app.config["FIELDAPP_SETTINGS"]
    with db.transaction():
        issued = enrollment.issue(user, settings.enrollment_hours, created_by=current_user.id)
    link = enrollment.link(settings.base_url, issued.code)
    qr_svg = segno.make(link, error="m").svg_inline(scale=5, dark="#111", light="#fff")
    # Shown once: only the code's hash is stored, so it cannot be shown again later.
    return render_template("admin/enrollment_issued.html", user=user, link=link, code=issued.code,
                           qr_svg=qr_svg, expires_at=issued.enrollment.expires_at)


@bp.post("/users/<uuid:user_id>/passkeys/<uuid:passkey_id>/revoke")
@allow(Role.ADMIN)
def passkey_revoke(user_id: uuid.UUID, passkey_id: uuid.UUID):
    passkey = db.session().get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != user_id:
        abort(404)
    with db.transaction():
        if passkey.revoked_at is None:
            passkey.revoked_at = utcnow()
    flash(_("Passkey revoked."), "ok")
    return redirect(url_for("admin.user_detail", user_id=user_id))


@bp.get("/enrollments")
@allow(Role.ADMIN)
def enrollment_problems():
    """Which enrolments failed on the phone, and why (no platform passkey, cancelled, ...)."""
    rows = db.session().execute(
        select(EnrollmentEvent, Enrollment, User)
        .join(Enrollment, EnrollmentEvent.enrollment_id == Enrollment.id)
        .join(User, Enrollment.user_id == User.id)
        .where(EnrollmentEvent.outcome.in_(["failed", "capability"]))
        .order_by(EnrollmentEvent.at.desc()).limit(200)
    ).all()
    return render_template("admin/enrollments.html", rows=rows)


@bp.get("/catalogue")
@allow(Role.ADMIN)
def catalogue_page():
    from ..models import CatalogueVersion, UnitStepType
    from ..rules.catalogue import load_builtin

    s = db.session()
    versions = s.execute(select(CatalogueVersion).order_by(CatalogueVersion.version.desc()).limit(50)).scalars().all()
    unit_steps = s.execute(select(UnitStepType, Unit).join(Unit, UnitStepType.unit_id == Unit.id)
                           .order_by(UnitStepType.created_at)).all()
    builtin = load_builtin()
    return render_template("admin/catalogue.html", versions=versions, unit_steps=unit_steps, units=_units(),
                           kinds=builtin.kinds, stages=builtin.stages)


def _form_list(form, name: str) -> list[str]:
    """A list typed as lines or comma-separated (either comma: officers type the Chinese one)."""
    raw = form.get(name, "").replace("，", "\n").replace(",", "\n")
    return [item.strip() for item in raw.splitlines() if item.strip()]


@bp.post("/catalogue/steps")
@allow(Role.ADMIN)
def catalogue_add_step():
    """A unit's own step type ("other cases that rules require") publishes a new catalogue version."""
    from ..rules import publication
    from ..rules.catalogue import CatalogueError

    form = request.form
    lines = _form_list
    definition = {
        "id": form.get("step_id", "").strip(),
        "kind": form.get("kind", ""),
        "stage": form.get("stage", ""),
        "label_zh": form.get("label_zh", "").strip(),
        "label_en": form.get("label_en", "").strip(),
        "av_required": form.get("av_required") == "1",
        "articles": lines(form, "articles"),
        "documents": lines(form, "documents"),
        "field": form.get("field", "1") == "1",
    }
    if definition["av_required"]:
        definition["av_article"] = form.get("av_article", "").strip()
    try:
        unit = db.session().get(Unit, uuid.UUID(form.get("unit_id", "")))
        if unit is None:
            raise CatalogueError(_("Choose a unit."))
        with db.transaction():
            published = publication.add_unit_step_type(unit, definition, current_user.id)
        flash(_("Catalogue version %(version)s published.", version=published.version), "ok")
    except (CatalogueError, ValueError) as exc:
        db.session().rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.catalogue_page"))


@bp.get("/devices")
@allow(Role.ADMIN)
def devices_page():
    from ..models import Device

    rows = db.session().execute(select(Device, User).join(User, Device.user_id == User.id)
                                .order_by(Device.last_seen_at.desc().nulls_last())).all()
    return render_template("admin/devices.html", rows=rows)


@bp.post("/devices/<uuid:device_id>/revoke")
@allow(Role.ADMIN)
def device_revoke(device_id: uuid.UUID):
    """A lost phone: its later pushes are refused; what it sent before stays valid."""
    from ..models import Device

    with db.transaction():
        device = db.session().get(Device, device_id)
        if device is None:
            abort(404)
        if device.revoked_at is None:
            device.revoked_at = utcnow()
            device.revoked_by = current_user.id
    flash(_("Device revoked."), "ok")
    return redirect(url_for("admin.devices_page"))


@bp.post("/import")
@allow(Role.ADMIN)
def import_unsynced():
    """Import the export file of a phone that cannot sync."""
    import json

    from ..sync.importer import ImportError_, import_export

    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose an export file."), "error")
        return redirect(url_for("admin.devices_page"))
    try:
        data = json.loads(upload.read(50 * 1024 * 1024 + 1).decode("utf-8"))
        summary = import_export(data, current_app.config["FIELDAPP_SETTINGS"].clock_skew_seconds)
    except (ValueError, UnicodeDecodeError, ImportError_) as exc:
        db.session().rollback()
        flash(_("The file could not be imported: %(reason)s", reason=str(exc)[:300]), "error")
        return redirect(url_for("admin.devices_page"))
    flash(_("Imported: %(summary)s", summary=summary.line()), "ok")
    for problem in summary.problems[:20]:
        flash(problem, "error")
    return redirect(url_for("admin.devices_page"))


@bp.get("/calendar")
@allow(Role.ADMIN)
def calendar_page():
    """The working-day calendar deadlines count on: which years are loaded, and a form to load the
    next year's State Council notice (the holiday library only knows the years it was released for)."""
    from collections import Counter

    from ..models import CalendarDay, CalendarYear

    s = db.session()
    years = s.execute(select(CalendarYear).order_by(CalendarYear.year.desc())).scalars().all()
    counts = Counter(day.year for day in s.execute(select(CalendarDay.day)).scalars())  # a few dozen rows a year
    this_year = utcnow().year
    missing = [y for y in (this_year, this_year + 1) if y not in {row.year for row in years}]
    return render_template("admin/calendar.html", years=years, counts=counts, missing=missing)


@bp.post("/calendar")
@allow(Role.ADMIN)
def calendar_load():
    from ..compliance import calendar_admin, deadline_source, engine

    try:
        year = int(request.form.get("year", ""))
        rows = calendar_admin.parse_notice(request.form.get("notice", ""))
        with db.transaction():
            deadline_source.store_year(year, rows, source="admin")
        engine.refresh_all()
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        flash(_("%(year)s loaded: %(count)s special days; deadlines re-counted.", year=year, count=len(rows)), "ok")
    return redirect(url_for("admin.calendar_page"))


@bp.get("/audit")
@allow(Role.ADMIN)
def audit_page():
    """The audit chain's state and the checkpoint key's public half, to publish and pin (art. 30)."""
    from ..models import AuditCheckpoint
    from ..records import keys, sealer, service

    s = db.session()
    public = service.public_key()
    checkpoints = s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(20)).scalars().all()
    return render_template("admin/audit.html", public_pem=keys.public_pem(public), key_id=keys.key_id(public),
                           head=sealer.head(s), pending=sealer.unsealed_count(s), checkpoints=checkpoints)


@bp.post("/audit/checkpoint")
@allow(Role.ADMIN)
def audit_checkpoint():
    from ..records import service

    row = service.checkpoint_now("on demand")
    if row is None:
        flash(_("The chain is empty: nothing to sign yet."), "error")
    else:
        flash(_("Checkpoint signed at position %(seq)s.", seq=row.seq), "ok")
    return redirect(url_for("admin.audit_page"), 303)
