"""Security headers, CSRF protection and origin checks for every response and request."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request
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


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # "none": the user's own navigation


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin_reason(headers, allowed: tuple[str, ...]) -> str | None:
    """Why a state-changing request comes from a page of another origin, or None if it does not.

    The Origin header decides when present (``null`` — a sandboxed frame, a data: URL — is never
    ours); without it, Fetch Metadata, then the Referer. A request with none of them is not from
    a browser page (a test client, curl) and is left to the CSRF token, which it still needs."""
    allowed_set = {o.lower() for o in allowed}
    origin = headers.get("Origin")
    if origin is not None:
        return None if origin.strip().lower() in allowed_set else f"origin {origin[:100]!r} is not allowed"
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return None if fetch_site.strip().lower() in _SAME_ORIGIN_FETCH else f"a {fetch_site[:20]} request"
    referer = headers.get("Referer")
    if referer:
        return None if _origin_of(referer) in allowed_set else "the referring page is of another origin"
    return None


def _refuse_other_origins():
    """Browsers send cookies with some cross-site requests (SameSite=Lax: top-level POST forms
    from another site are refused by the browser, but same-site subdomains, older browsers and
    GET-then-POST tricks are not): a state-changing request must come from one of our origins.
    Clients that authenticate with a bearer token are not browsers and carry no cookie to abuse."""
    if request.method in _SAFE_METHODS:
        return None
    if request.headers.get("Authorization", "").startswith("Bearer ") and \
            current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return None  # a station's token, and no browser session a page could be riding
    reason = cross_origin_reason(request.headers, current_app.config["FIELDAPP_SETTINGS"].origins)
    if reason is None:
        return None
    current_app.logger.warning("refused a cross-origin %s %s: %s", request.method, request.path, reason)
    if request.path.startswith("/api/") or request.is_json:
        return jsonify(error="origin_refused",
                       message="请求来自其他网站，已拒绝 / Refused: the request came from another site"), 403
    return (
        "<!doctype html><meta charset=utf-8><title>403</title>"
        "<p>请求来自其他网站，已拒绝。请直接打开本系统再操作。<br>"
        "Refused: the request came from another site. Open this app directly and try again.</p>",
        403,
    )


def init_app(app: Flask) -> None:
    # Origins first (headers only), then malformed multipart, then the CSRF check, which reads the form.
    app.before_request(_refuse_other_origins)
    app.before_request(_refuse_malformed_multipart)
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _csrf_error)
    app.after_request(_add_headers)
