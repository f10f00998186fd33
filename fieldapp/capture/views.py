"""The home page (the app shell a signed-in officer opens) and unit pages."""
from __future__ import annotations

import uuid

from flask import abort, render_template
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..access import allow, require_unit, visible_unit_ids
from ..models import Unit, User
from . import bp


@bp.get("/")
@allow(signed_in=True)
def home():
    return render_template("capture/home.html")


@bp.get("/help")
@allow(public=True)
def help_page():
    return render_template("capture/help.html")


@bp.get("/units")
@allow(signed_in=True)
def units():
    stmt = select(Unit).order_by(Unit.code)
    visible = visible_unit_ids(current_user)
    if visible is not None:
        stmt = stmt.where(Unit.id.in_(visible))
    return render_template("capture/units.html", units=db.session().execute(stmt).scalars().all())


@bp.get("/units/<uuid:unit_id>")
@allow(signed_in=True)
def unit_page(unit_id: uuid.UUID):
    require_unit(current_user, unit_id)
    unit = db.session().get(Unit, unit_id)
    if unit is None:
        abort(404)
    members = db.session().execute(
        select(User).where(User.unit_id == unit.id).order_by(User.cert_no)
    ).scalars().all()
    return render_template("capture/unit.html", unit=unit, members=members)
