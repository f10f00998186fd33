"""Security headers, CSRF protection and origin checks for every response and request."""
from __future__ import annotations

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError, CSRFProtect

csrf = CSRFProtect()

# No inline script anywhere: pages load ES modules from /static, data goes in JSON <script> blocks
# (type="application/json" is not executed, so CSP does not apply to it).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def _add_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(self), geolocation=(self), microphone=(self)")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _csrf_error(exc: CSRFError):
    if request.path.startswith("/api/") or request.is_json:
        return jsonify(error="csrf_failed", message="页面已过期，请刷新后重试 / The page expired; reload and try again"), 400
    return (
        "<!doctype html><meta charset=utf-8><title>400</title>"
        "<p>页面已过期，请返回并刷新后重试。<br>The page expired; go back, reload and try again.</p>",
        400,
    )


def _refuse_malformed_multipart():
    """A multipart part whose name breaks across lines is parsed with the name None, on which the
    CSRF check (and any view) would fail with a server error: refuse such a body first."""
    if request.mimetype == "multipart/form-data" and (None in request.form or None in request.files):
        if request.path.startswith("/api/"):
            return jsonify(error="bad_request", message="every form part needs a one-line name"), 400
        return "<!doctype html><meta charset=utf-8><title>400</title><p>表单格式有误 / Malformed form</p>", 400
    return None


def init_app(app: Flask) -> None:
    # Before the CSRF check, which reads the form.
    app.before_request(_refuse_malformed_multipart)
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _csrf_error)
    app.after_request(_add_headers)
