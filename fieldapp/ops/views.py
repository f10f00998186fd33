from __future__ import annotations

import time

from flask import current_app, jsonify, make_response, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import text

from .. import db
from ..access import allow
from ..i18n import LOCALES, LOCALE_COOKIE
from . import bp
from .pwa import service_worker_source


@bp.get("/healthz")
@allow(public=True)
def healthz():
    started = time.perf_counter()
    try:
        db.session().execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure makes us unhealthy
        current_app.logger.error("health check: database unreachable: %s", exc)
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok",
                   database_ms=round((time.perf_counter() - started) * 1000, 2))


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
    target = request.form.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = redirect(target)
    if locale in LOCALES:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    return response
