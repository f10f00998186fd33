"""Evidence package routes: build one under a copy grant, see it, download its ZIP or disc images.
Thin: the work is in :mod:`.package`."""
from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..access import allow, can_see_unit
from ..models import AccessGrant, EvidencePackage, Role
from ..records import grants
from ..records import service as audit
from . import package as packages

bp = Blueprint("documents", __name__, url_prefix="/records")


def _grant_or_404(grant_id: uuid.UUID) -> AccessGrant:
    grant = db.session().get(AccessGrant, grant_id)
    if grant is None or grant.unit_id != current_user.unit_id:
        # Asking to extract another unit's records (or under no grant) is refused and in the chain.
        audit.accessed("export_refused", f"grant:{grant_id}", reason="no grant of this unit")
        db.session().commit()
        abort(404)
    return grant


@bp.post("/access/<uuid:grant_id>/package")
@allow(Role.RECORDS_ADMIN)
def package_build(grant_id: uuid.UUID):
    """The records administrator builds the package from the files chosen, with what each proves
    and any transcript the officer or lead gave."""
    grant = _grant_or_404(grant_id)
    chosen = []
    for value in request.form.getlist("item"):
        alg, _, digest = value.partition(":")
        chosen.append((alg, digest))
    statements = {digest: {"proves": request.form.get(f"proves-{digest}", ""),
                           "transcript": request.form.get(f"transcript-{digest}", "")} for _, digest in chosen}
    try:
        with db.transaction():
            package = packages.start(grant, current_user, selected=chosen, statements=statements,
                                     method=request.form.get("method", ""), place=request.form.get("place", ""),
                                     process=request.form.get("process", ""))
    except packages.PackageRefused as exc:
        # A refused extraction is in the chain too: who tried, under which grant, and why not.
        audit.accessed("export_refused", f"grant:{grant.id}", reason=str(exc)[:300])
        db.session().commit()
        flash(str(exc), "error")
        return redirect(url_for("records.grant_page", grant_id=grant.id), 303)
    if packages.total_size(package) > packages.INLINE_BYTES:
        # Gigabytes of footage: built beside the request, the page refreshes until it is ready.
        packages.build_in_background(current_app._get_current_object(), package.id)
        return redirect(url_for(".package_page", package_id=package.id), 303)
    try:
        packages.build(package.id)
    except Exception as exc:  # noqa: BLE001 — stored as the package's error and shown; nothing half-made is offered
        flash(f"证据包未能完成 / The package could not be completed: {exc}", "error")
    return redirect(url_for(".package_page", package_id=package.id), 303)


def _package_or_404(package_id: uuid.UUID) -> EvidencePackage:
    package = db.session().get(EvidencePackage, package_id)
    if package is None or not can_see_unit(current_user, package.unit_id):
        abort(404)
    return package


@bp.get("/packages/<uuid:package_id>")
@allow(Role.RECORDS_ADMIN, Role.LEAD)
def package_page(package_id: uuid.UUID):
    package = _package_or_404(package_id)
    grant = db.session().get(AccessGrant, package.grant_id)
    return render_template("documents/package.html", package=package, grant=grant,
                           may_download=_may_download(package))


def _may_download(package: EvidencePackage) -> bool:
    return package.state == "ready" and current_user.has_role(Role.RECORDS_ADMIN) \
        and current_user.unit_id == package.unit_id


@bp.get("/packages/<uuid:package_id>/files/<name>")
@allow(Role.RECORDS_ADMIN)
def package_file(package_id: uuid.UUID, name: str):
    """The ZIP or a disc image, only once the whole package is ready; each download is an event."""
    package = _package_or_404(package_id)
    names = {package.zip_name, *(d["name"] for d in package.discs or [])} - {None}
    if not _may_download(package) or name not in names:
        abort(404)
    path = packages.packages_dir() / str(package.id) / name
    if not path.is_file():
        abort(404)
    audit.accessed("export", f"evidence-package:{package.id}", file=name)
    return send_file(path, as_attachment=True, download_name=name, max_age=0)


def package_list(grant: AccessGrant) -> list[EvidencePackage]:
    return list(db.session().execute(select(EvidencePackage).where(EvidencePackage.grant_id == grant.id)
                                     .order_by(EvidencePackage.built_at.desc())).scalars())


bp.add_app_template_global(package_list, "evidence_packages_of")
bp.add_app_template_global(grants.active, "grant_active")

