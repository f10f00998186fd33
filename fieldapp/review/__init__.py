"""What leads and supervisors see of synced work: records with their media (previews first,
originals when they arrive), and the media files themselves, unit-isolated."""
from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/review")

from . import labels, lead_views, views  # noqa: E402,F401

bp.record_once(lambda state: labels.init_app(state.app))
