"""Pages that serve the officer's app shell."""
from flask import Blueprint

bp = Blueprint("capture", __name__)

from . import views  # noqa: E402,F401
