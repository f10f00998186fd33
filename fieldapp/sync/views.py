from __future__ import annotations

from flask import jsonify
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from ..access import allow
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
