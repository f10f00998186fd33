"""The records administrator's page of backups and restores (arts. 7, 25): the backups taken, each
restore, and per phone of the unit what came back after a restore and what could not."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from ..access import allow
from ..models import Role
from .recovery import recovery

bp = Blueprint("backups", __name__, url_prefix="/records")


@bp.get("/backups")
@allow(Role.RECORDS_ADMIN, Role.LEAD)
def backups_page():
    """For the unit's records administrator and lead: never hide what a restore lost."""
    return render_template("records/backups.html", found=recovery(current_user.unit_id))
