"""The versioned JSON API the phone talks to (/api/v1/). Record and media sync grow here."""
from flask import Blueprint

bp = Blueprint("sync", __name__, url_prefix="/api/v1")

from . import media_views, views  # noqa: E402,F401
