"""Passkey sign-in, enrolment and passkey management (no passwords anywhere)."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import views  # noqa: E402,F401  (routes register on import)
