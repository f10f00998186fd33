"""Operations: health check, PWA manifest and service worker, language switch, security headers."""
from flask import Blueprint

bp = Blueprint("ops", __name__)

from . import metrics, views  # noqa: E402,F401
