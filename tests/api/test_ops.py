"""Operations surface: health check, security headers, CSRF, the PWA manifest and service worker."""
from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from fieldapp import create_app, db
from fieldapp.config import Settings
from fieldapp.media.storage import S3Storage
from fieldapp.models import Unit
from fieldapp.ops import health
from tests.support.appfactory import TEST_SECRET, make_app
from tests.support.flows import demo_sign_in, enroll, issue_code, post_form, seed_user
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


# ---- health: liveness and readiness -------------------------------------------------------------

def dead_postgres_url(tmp_path) -> str:
    """A PostgreSQL socket directory where no server runs: connections fail at once."""
    no_server = tmp_path / "no-postgres-here"
    no_server.mkdir(exist_ok=True)
    return f"postgresql+psycopg://postgres@/fieldapp?host={no_server}&port=5432"


@pytest.fixture
def black_hole():
    """An address that accepts TCP connections and never answers: a hung S3 endpoint."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def s3_settings(server, bucket: str | None = None, endpoint: str | None = None) -> dict:
    bucket = bucket or f"fieldapp-{uuid.uuid4().hex[:16]}"
    return {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint": endpoint or server.endpoint_url,
            "s3_region": server.region, "s3_access_key": server.access_key,
            "s3_secret_key": server.secret_key}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_readiness_reports_a_reachable_database_and_media_store(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.is_json
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["media"] == "ok"


def test_readiness_reaches_an_s3_media_store(sqlite_url, tmp_path, s3_server):
    settings = s3_settings(s3_server)
    S3Storage(settings["s3_bucket"], endpoint_url=s3_server.endpoint_url, region=s3_server.region,
              access_key=s3_server.access_key, secret_key=s3_server.secret_key).ensure_bucket()
    app = make_app(sqlite_url, tmp_path / "var", **settings)
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["media"] == "ok"


def test_readiness_answers_503_when_the_bucket_is_missing(sqlite_url, tmp_path, s3_server):
    app = make_app(sqlite_url, tmp_path / "var", **s3_settings(s3_server))  # never created
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503
    assert response.get_json()["media"] == "unreachable"


def test_readiness_answers_503_when_the_database_is_unreachable(tmp_path):
    no_server = tmp_path / "no-postgres-here"
    app = make_app(dead_postgres_url(tmp_path), tmp_path / "var")
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503
    assert response.is_json
    body = response.get_json()
    assert body["status"] != "ok" and body["database"] != "ok"
    assert body["media"] == "ok"  # the answer says which part failed
    # The probe's answer does not leak connection details to whoever polls it.
    assert str(no_server) not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_readiness_answers_503_within_seconds_when_the_s3_endpoint_hangs(sqlite_url, tmp_path, s3_server,
                                                                          black_hole, path):
    app = make_app(sqlite_url, tmp_path / "var", health_media_timeout_seconds=1.0,
                   **s3_settings(s3_server, endpoint=black_hole))
    try:
        started = time.monotonic()
        response = app.test_client().get(path)
        elapsed = time.monotonic() - started
        # A second check while the first probe may still hang answers at once, without a new thread.
        again = app.test_client().get(path)
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503 and again.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["media"] in {"timeout", "unreachable"}
    assert elapsed < 3.0, elapsed
    assert black_hole not in response.get_data(as_text=True)


def test_readiness_answers_503_when_the_s3_endpoint_refuses_connections(sqlite_url, tmp_path, s3_server):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    app = make_app(sqlite_url, tmp_path / "var", **s3_settings(s3_server, endpoint=dead))
    try:
        started = time.monotonic()
        response = app.test_client().get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503
    assert response.get_json()["media"] == "unreachable"
    assert elapsed < 3.0, elapsed


def test_readiness_answers_503_when_the_media_folder_cannot_be_written(sqlite_url, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    app = make_app(sqlite_url, tmp_path / "var", media_dir=blocker / "media")
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["media"] == "unreachable"


def test_liveness_touches_neither_the_database_nor_the_media_store(tmp_path, s3_server, black_hole):
    app = make_app(dead_postgres_url(tmp_path), tmp_path / "var", **s3_settings(s3_server, endpoint=black_hole))
    try:
        started = time.monotonic()
        response = app.test_client().get("/livez")
        elapsed = time.monotonic() - started
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert elapsed < 0.5, elapsed


class SlowStore:
    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def probe(self, timeout):
        self.calls += 1
        time.sleep(self.seconds)


def test_checks_arriving_together_share_one_media_probe():
    probe, store = health._MediaProbe(), SlowStore(0.3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(probe.run(store, 2.0).verdict)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 3 and store.calls == 1


def test_a_hung_media_probe_is_not_started_again_while_it_hangs():
    probe, store = health._MediaProbe(), SlowStore(3.0)
    assert probe.run(store, 0.3).verdict == "timeout"
    started = time.monotonic()
    assert probe.run(store, 0.3).verdict == "timeout"
    assert time.monotonic() - started < 0.1 and store.calls == 1


# ---- the request log ---------------------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def request_lines():
    handler = Lines()
    log = logging.getLogger("fieldapp.request")
    log.addHandler(handler)
    yield handler.lines
    log.removeHandler(handler)


def logging_app(database_url: str, var_dir: Path, **overrides):
    """An app that logs requests. Its test client's requests are made ``buffered=True``: the line
    is written when the server closes the response, which the test client does only then."""
    settings = Settings(var_dir=var_dir, database_url=database_url, rp_id="localhost",
                        origins=("http://localhost",), cookie_secure=False, log_requests=True, **overrides)
    return create_app({"SECRET_KEY": TEST_SECRET, "TESTING": True}, settings=settings)


def signed_in_cookie(database_url: str, var_dir: Path) -> tuple[str, str]:
    """A session cookie of a signed-in officer, made on a working database: (cookie, user id)."""
    app = make_app(database_url, var_dir, demo=True)
    try:
        seeded = seed_user(app, "张伟", "C-1", "ZF1")
        client = app.test_client()
        demo_sign_in(client, seeded.user_id)
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        return cookie.value, str(seeded.user_id)
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client):
    first, second = client.get("/livez"), client.get("/no-such-page")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    kept = client.get("/livez", headers={"X-Request-ID": "nginx-5f2b9c0e7a1d4e3f"})
    assert kept.headers["X-Request-ID"] == "nginx-5f2b9c0e7a1d4e3f"
    for forged in ("two words", "x" * 200, "a\tb", "<script>", ""):
        replaced = client.get("/livez", headers={"X-Request-ID": forged})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"]), forged


def test_one_line_per_request_with_its_status_user_and_request_id(sqlite_url, tmp_path, request_lines):
    cookie, user_id = signed_in_cookie(sqlite_url, tmp_path / "var")
    app = logging_app(sqlite_url, tmp_path / "var")
    try:
        client = app.test_client()
        anonymous = client.get("/livez", headers={"X-Request-ID": "rid-anonymous"}, buffered=True)
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        signed_in = client.get("/api/v1/media/limits", headers={"X-Request-ID": "rid-signed-in"}, buffered=True)
        missing = client.get("/no-such-page", headers={"X-Request-ID": "rid-missing"}, buffered=True)
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert (anonymous.status_code, signed_in.status_code, missing.status_code) == (200, 200, 404)
    assert len(request_lines) == 3, request_lines
    assert re.search(r" GET /livez 200 [0-9.]+ms user=- rid=rid-anonymous$", request_lines[0])
    assert re.search(rf" GET /api/v1/media/limits 200 [0-9.]+ms user={user_id} rid=rid-signed-in$",
                     request_lines[1])
    assert re.search(rf" GET /no-such-page 404 [0-9.]+ms user={user_id} rid=rid-missing$", request_lines[2])


def test_a_database_outage_still_logs_one_line_per_request(sqlite_url, tmp_path, request_lines):
    """The user of the line comes from the session, never from a query that fails in an outage."""
    cookie, user_id = signed_in_cookie(sqlite_url, tmp_path / "var")
    app = logging_app(dead_postgres_url(tmp_path), tmp_path / "var")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: Flask answers 500 itself
    try:
        client = app.test_client()
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        failed = client.get("/api/v1/media/limits", headers={"X-Request-ID": "rid-outage"}, buffered=True)
        ready = client.get("/readyz", headers={"X-Request-ID": "rid-ready"}, buffered=True)
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert failed.status_code == 500 and ready.status_code == 503
    assert failed.headers["X-Request-ID"] == "rid-outage"
    assert len(request_lines) == 2, request_lines
    assert re.search(rf" GET /api/v1/media/limits 500 [0-9.]+ms user={user_id} rid=rid-outage$", request_lines[0])
    assert re.search(rf" GET /readyz 503 [0-9.]+ms user={user_id} rid=rid-ready$", request_lines[1])


def test_an_exception_escaping_the_app_is_logged_once_with_its_kind(sqlite_url, tmp_path, request_lines):
    cookie, user_id = signed_in_cookie(sqlite_url, tmp_path / "var")
    app = logging_app(dead_postgres_url(tmp_path), tmp_path / "var")  # TESTING: exceptions propagate
    try:
        client = app.test_client()
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        with pytest.raises(OperationalError):
            client.get("/api/v1/media/limits", headers={"X-Request-ID": "rid-escaped"}, buffered=True)
    finally:
        app.extensions["fieldapp.engine"].dispose()
    assert len(request_lines) == 1, request_lines
    assert re.search(rf" GET /api/v1/media/limits 500 [0-9.]+ms user={user_id} rid=rid-escaped error=OperationalError$",
                     request_lines[0])


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
