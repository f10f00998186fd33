from __future__ import annotations

from flask import current_app, jsonify, make_response, redirect, request, url_for
from flask_babel import gettext as _

from ..access import allow
from ..i18n import LOCALES, LOCALE_COOKIE
from ..safe_redirect import safe_next
from . import bp, health
from .pwa import service_worker_source


@bp.get("/livez")
@allow(public=True)
def livez():
    """Liveness: the process answers. Touches nothing else, so a database or media outage never
    makes a supervisor restart healthy processes."""
    return jsonify(status="ok")


@bp.get("/readyz")
@bp.get("/healthz")
@allow(public=True)
def healthz():
    """Readiness (also at /healthz, its older name): the database and the media store answer.
    503 with the failing part named when either does not; a load balancer takes the host out."""
    settings = current_app.config["FIELDAPP_SETTINGS"]
    database = health.check_database()
    media = health.check_media(settings.health_media_timeout_seconds)
    ready = database.ok and media.ok
    body = {"status": "ok" if ready else "error", "database": database.verdict, "database_ms": database.ms,
            "media": media.verdict, "media_ms": media.ms}
    return jsonify(body), (200 if ready else 503)


@bp.get("/manifest.webmanifest")
@allow(public=True)
def manifest():
    body = {
        "name": _("Linzi Market Supervision Enforcement Records"),
        "short_name": _("Enforcement Records"),
        "lang": "zh-CN",
        "dir": "ltr",
        "start_url": "/",
        "scope": "/",
        "id": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b4f8a",
        "icons": [
            {"src": url_for("static", filename="icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": url_for("static", filename="icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": url_for("static", filename="icons/maskable-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "maskable"},
            {"src": url_for("static", filename="icons/maskable-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
@allow(public=True)
def service_worker():
    response = make_response(service_worker_source())
    response.mimetype = "text/javascript"
    response.headers["Service-Worker-Allowed"] = "/"
    # Browsers check for a new worker on navigation; it must never come from an HTTP cache.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/lang")
@allow(public=True)
def set_language():
    locale = request.form.get("locale", "")
    response = redirect(safe_next(request.form.get("next"), "/"))
    if locale in LOCALES:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    return response
