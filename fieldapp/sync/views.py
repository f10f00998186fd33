from __future__ import annotations

from flask import abort, jsonify
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from .. import db
from ..access import allow, visible_unit_ids
from ..models import Case
from ..rules import publication
from . import bp


@bp.get("/session")
@allow(public=True)
def session_state():
    """Who is signed in, and a fresh CSRF token. The phone also uses it to probe for the server:
    ``navigator.onLine`` says only that some network exists, not that ours answers."""
    if not current_user.is_authenticated:
        return jsonify(authenticated=False, csrf_token=generate_csrf())
    return jsonify(
        authenticated=True,
        csrf_token=generate_csrf(),
        user={
            "id": str(current_user.id),
            "name": current_user.name,
            "cert_no": current_user.cert_no,
            "unit": {"id": str(current_user.unit.id), "code": current_user.unit.code,
                     "name": current_user.unit.name},
            "roles": sorted(r.value for r in current_user.roles),
        },
    )


@bp.get("/catalogue")
@allow(signed_in=True)
def catalogue_latest():
    current = publication.latest()
    if current is None or current.content.get("builtin_version") is None:
        with db.write_transaction():
            current = publication.ensure_published()
    return jsonify(current.content)


@bp.get("/catalogue/<int:version>")
@allow(signed_in=True)
def catalogue_version(version: int):
    row = publication.get_version(version)
    if row is None:
        abort(404)
    return jsonify(row.content)


def case_json(case: Case) -> dict:
    return {
        "id": str(case.id), "unit_id": str(case.unit_id), "kind": case.kind, "case_number": case.case_number,
        "party_name": case.party_name, "party_credit_code": case.party_credit_code,
        "party_address": case.party_address, "flags": case.flags or [], "status": case.status,
        "origin": case.origin, "updated_at": case.updated_at.isoformat(),
    }


@bp.get("/cases")
@allow(signed_in=True)
def open_cases():
    """The open cases of the units the user may see (their own unit for officers and leads)."""
    stmt = select(Case).where(Case.status == "open").order_by(Case.created_at.desc()).limit(500)
    visible = visible_unit_ids(current_user)
    if visible is not None:
        stmt = stmt.where(Case.unit_id.in_(visible))
    return jsonify(cases=[case_json(c) for c in db.session().execute(stmt).scalars()])
