"""Operations surface: health check, security headers, CSRF, the PWA manifest and service worker."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from fieldapp import create_app, db
from fieldapp.config import Settings
from fieldapp.models import Unit
from tests.support.appfactory import make_app
from tests.support.flows import enroll, issue_code, post_form, seed_user
from tests.support.soft_authenticator import SoftAuthenticator

TEMPLATES = Path(__file__).resolve().parents[2] / "fieldapp" / "templates"
HAN = re.compile(r"[\u4e00-\u9fff]")


def signed_in_admin(app, client):
    seeded = seed_user(app, "系统管理员", "ADMIN-0001", "U1", "admin")
    response, _ = enroll(client, issue_code(app, seeded.user_id), SoftAuthenticator())
    assert response.status_code == 200, response.get_json()
    return seeded


def set_cookie_headers(response, name: str) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


# ---- health check ------------------------------------------------------------------------------

def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    # A PostgreSQL socket directory where no server runs: the connection fails at once.
    no_server = tmp_path / "no-postgres-here"
    no_server.mkdir()
    app = make_app(f"postgresql+psycopg://postgres@/fieldapp?host={no_server}&port=5432", tmp_path / "var")
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503
    assert response.is_json
    body = response.get_json()
    assert body["status"] != "ok" and body["database"] != "ok"
    # The probe's answer does not leak connection details to whoever polls it.
    assert str(no_server) not in response.get_data(as_text=True)


# ---- security headers --------------------------------------------------------------------------

def assert_security_headers(response):
    csp = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy")


def test_security_headers_on_an_html_page(client):
    response = client.get("/auth/signin")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert_security_headers(response)


def test_security_headers_on_a_json_response(client):
    response = client.get("/api/v1/session")
    assert response.status_code == 200 and response.is_json
    assert_security_headers(response)


def test_no_template_contains_a_script_that_would_run_inline():
    """CSP forbids inline script; a template that used one would break in the browser."""
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates
    seen = 0
    offending = []
    for path in templates:
        source = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b([^>]*)>", source, re.IGNORECASE):
            seen += 1
            attributes = match.group(1)
            if re.search(r"\bsrc\s*=", attributes):
                continue
            if re.search(r"""\btype\s*=\s*["']application/json["']""", attributes, re.IGNORECASE):
                continue
            offending.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)}")
        # Inline event handlers (onclick= …) are inline script too.
        for match in re.finditer(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", source):
            offending.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)}")
    assert seen > 0, "the scan found no <script> at all; is it looking at the right files?"
    assert offending == []


# ---- cookies and CSRF --------------------------------------------------------------------------

def test_session_cookie_is_httponly_secure_and_samesite_lax_by_default(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("FIELDAPP_COOKIE_SECURE", raising=False)
    app = create_app({"SECRET_KEY": "x"},
                     settings=Settings(var_dir=tmp_path / "var", database_url=db_url, log_requests=False))
    try:
        response = app.test_client().get("/api/v1/session")  # issues a CSRF token into the session
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 200
    cookies = set_cookie_headers(response, app.config["SESSION_COOKIE_NAME"])
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    flags = {part.strip().lower() for part in cookies[0].split(";")[1:]}
    assert "httponly" in flags
    assert "secure" in flags
    assert "samesite=lax" in flags


def test_a_form_post_without_csrf_token_is_refused_and_changes_nothing(app, client):
    signed_in_admin(app, client)
    refused = client.post("/admin/units", data={"code": "LZ-NEW", "name": "新建中队"})
    assert refused.status_code == 400
    with app.app_context():
        assert db.session().execute(select(func.count(Unit.id)).where(Unit.code == "LZ-NEW")).scalar_one() == 0

    # The same form with the token goes through: the refusal above was the missing token.
    accepted = post_form(client, "/admin/units", {"code": "LZ-NEW", "name": "新建中队"})
    assert accepted.status_code == 302
    with app.app_context():
        assert db.session().execute(select(func.count(Unit.id)).where(Unit.code == "LZ-NEW")).scalar_one() == 1


def test_a_wrong_csrf_token_is_refused_too(app, client):
    signed_in_admin(app, client)
    refused = client.post("/admin/units", data={"code": "LZ-NEW", "name": "新建中队", "csrf_token": "forged"})
    assert refused.status_code == 400
    with app.app_context():
        assert db.session().execute(select(func.count(Unit.id)).where(Unit.code == "LZ-NEW")).scalar_one() == 0


# ---- not found ---------------------------------------------------------------------------------

def test_unknown_page_is_a_404_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"] == "not_found"


# ---- PWA: manifest and service worker ----------------------------------------------------------

def test_manifest_describes_an_installable_chinese_app(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["lang"] == "zh-CN"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert HAN.search(manifest["name"]), manifest["name"]
    assert HAN.search(manifest["short_name"]), manifest["short_name"]

    by_purpose: dict[str, set[str]] = {}
    for icon in manifest["icons"]:
        for purpose in icon.get("purpose", "any").split():
            by_purpose.setdefault(purpose, set()).add(icon["sizes"])
    assert {"192x192", "512x512"} <= by_purpose.get("any", set())
    assert {"192x192", "512x512"} <= by_purpose.get("maskable", set())

    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200, icon["src"]
        assert icon["type"] == "image/png"
        with Image.open(io.BytesIO(image.data)) as png:
            assert png.format == "PNG", icon["src"]
            width, height = (int(n) for n in icon["sizes"].split("x"))
            assert png.size == (width, height), icon["src"]


def test_service_worker_is_served_uncached_for_the_whole_site_and_its_precache_list_exists(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype in {"text/javascript", "application/javascript"}
    assert response.headers.get("Service-Worker-Allowed") == "/"
    assert response.headers.get("Cache-Control") == "no-cache"
    source = response.get_data(as_text=True)
    head = "\n".join(source.splitlines()[:5])
    version = re.search(r'^const SHELL_VERSION = ("[^"\n]*");$', head, re.MULTILINE)
    assert version and json.loads(version.group(1))
    urls_line = re.search(r"^const PRECACHE_URLS = (\[.*\]);$", head, re.MULTILINE)
    assert urls_line
    urls = json.loads(urls_line.group(1))
    assert urls and "/manifest.webmanifest" in urls
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("path", ["/api/v1/devices", "/auth/demo", "/api/v1/media/previews"])
def test_a_multipart_part_name_broken_across_lines_is_a_clear_400_not_a_500(client, path):
    body = (b'--XX\r\nContent-Disposition: form-data; name="a\r\n b"\r\n\r\nvalue\r\n--XX--\r\n')
    response = client.post(path, data=body, content_type="multipart/form-data; boundary=XX")
    assert response.status_code == 400
