"""Metrics at GET /metrics (ops/metrics.py): requests by URL rule, push and upload counts, gauges
read from the database, the internal-network-only rule, JSON request lines, and gunicorn's
multiprocess mode (counts of every worker summed, the folder cleaned by gunicorn.conf.py)."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from fieldapp import create_app, db
from fieldapp.accounts import create_unit, create_user, parse_roles
from fieldapp.config import Settings
from fieldapp.models import BackupRun, ChangeLog, Finding, MediaUpload, MediaUploadChunk
from fieldapp.review.cases import create_case
from tests.support.app_process import REPO_ROOT, AppProcess, app_env
from tests.support.appfactory import TEST_SECRET, make_app
from tests.support.flows import demo_sign_in, post_json, push_results, seed_user, sync_push

INTERNET = "203.0.113.9"  # TEST-NET-3: never an internal address


def parse(exposition: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value}"""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def scrape(client, **kwargs) -> dict[tuple, float]:
    response = client.get("/metrics", buffered=True, **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def jpeg(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


# ---- counted in the process ------------------------------------------------------------------------

def test_requests_are_counted_by_their_url_rule_never_their_path(sqlite_url, tmp_path):
    app = make_app(sqlite_url, tmp_path / "var")
    try:
        client = app.test_client()
        before = scrape(client)
        upload_id = uuid.uuid4()
        for _ in range(2):
            assert client.get("/livez", buffered=True).status_code == 200
        assert client.get(f"/api/v1/media/uploads/{upload_id}", buffered=True).status_code == 401
        assert client.get(f"/no-such-page/{upload_id}", buffered=True).status_code == 404
        assert client.open("/livez", method="BREW", buffered=True).status_code == 405
        exposition = client.get("/metrics", buffered=True).get_data(as_text=True)
    finally:
        app.extensions["fieldapp.engine"].dispose()
    after = parse(exposition)
    requests = "fieldapp_http_requests_total"
    assert delta(before, after, requests, route="/livez", method="GET", status="200") == 2
    assert delta(before, after, requests, route="/api/v1/media/uploads/<uuid:upload_id>", method="GET",
                 status="401") == 1
    assert delta(before, after, requests, route="unmatched", method="GET", status="404") == 1
    assert delta(before, after, requests, route="unmatched", method="other", status="405") == 1
    assert delta(before, after, "fieldapp_http_request_seconds_count", route="/livez", method="GET") == 2
    assert delta(before, after, "fieldapp_http_request_seconds_bucket", route="/livez", method="GET", le="+Inf") == 2
    assert str(upload_id) not in exposition and "no-such-page" not in exposition


def test_push_outcomes_upload_bytes_and_upload_states_are_counted(sync_app):
    app, client, device, _ = sync_app
    before = scrape(client)
    item = device.revision(payload={"notes": "原始记录"})
    assert push_results(sync_push(client, device.batch(item)))[0]["status"] == "created"
    assert push_results(sync_push(client, device.batch(item)))[0]["status"] == "duplicate"
    other = device.revision(record_id=item["record_id"], payload={"notes": "改过的记录"})
    assert push_results(sync_push(client, device.batch(other)))[0]["status"] == "conflict"

    data = jpeg()
    announce = {"alg": "sha-256", "hash": hashlib.sha256(data).hexdigest(), "size": len(data), "type": "image/jpeg"}
    begun = post_json(client, "/api/v1/media/uploads", announce).get_json()
    assert begun["status"] == "uploading"
    early = post_json(client, f"/api/v1/media/uploads/{begun['upload_id']}/complete")
    assert early.status_code == 409 and early.get_json()["error"] == "upload_incomplete"
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    chunk = client.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
                       headers={"X-CSRFToken": token, "Content-Type": "application/octet-stream"})
    assert chunk.status_code == 200, chunk.get_json()
    assert post_json(client, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
    assert post_json(client, "/api/v1/media/uploads", announce).get_json()["status"] == "stored"
    after = scrape(client)

    pushed = "fieldapp_push_items_total"
    assert [delta(before, after, pushed, outcome=o) for o in ("created", "duplicate", "conflict", "rejected")] \
        == [1, 1, 1, 0]
    assert delta(before, after, "fieldapp_push_item_errors_total", outcome="conflict", error="revision_exists") == 1
    assert delta(before, after, "fieldapp_upload_bytes_total") == len(data)
    states = {s: delta(before, after, "fieldapp_uploads_total", state=s)
              for s in ("begun", "resumed", "completed", "refused", "already_stored", "discarded")}
    assert states == {"begun": 1, "resumed": 0, "completed": 1, "refused": 1, "already_stored": 1, "discarded": 0}
    assert delta(before, after, "fieldapp_upload_refusals_total", code="upload_incomplete") == 1


# ---- read from the database ------------------------------------------------------------------------

def test_database_gauges_follow_the_rows(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var")
    client = app.test_client()
    try:
        empty = scrape(client)
        assert value(empty, "fieldapp_metrics_database_up") == 1
        assert value(empty, "fieldapp_backup_age_seconds") == math.inf  # never backed up: any threshold fires
        assert value(empty, "fieldapp_findings_open", severity="error") == 0
        assert value(empty, "fieldapp_uploads_in_flight") == 0
        assert value(empty, "fieldapp_feed_delay_seconds") == 0
        assert ("fieldapp_backup_last_run_ok", ()) not in empty

        now = datetime.now(UTC)
        with app.app_context(), db.transaction() as s:
            unit = create_unit("ZF1", "一中队")
            user = create_user("张伟", "C-1", unit, parse_roles("officer"))
            case = create_case(unit.id, user.id, kind="penalty", party_name="临淄区齐都镇鲜果超市")

            def finding(key, severity, blocking, opened_hours_ago, resolved=False):
                return Finding(case_id=case.id, unit_id=unit.id, rule_id=key, key=key, severity=severity,
                               article="第九条", blocks_archiving=blocking,
                               opened_at=now - timedelta(hours=opened_hours_ago),
                               resolved_at=now - timedelta(minutes=5) if resolved else None)

            s.add_all([finding("a", "error", True, 2), finding("b", "error", True, 0.5),
                       finding("c", "warning", False, 5), finding("d", "error", True, 9, resolved=True),
                       BackupRun(id="b-old", destination="/mnt/offsite", started_at=now - timedelta(hours=30),
                                 finished_at=now - timedelta(hours=29)),
                       BackupRun(id="b-new", destination="/mnt/offsite", started_at=now - timedelta(hours=4),
                                 finished_at=now - timedelta(hours=3)),
                       BackupRun(id="b-failed", destination="/mnt/offsite", started_at=now - timedelta(hours=2),
                                 finished_at=None, error="OSError: disk full")])
            uploads = {state: MediaUpload(id=uuid.uuid4(), alg="sha-256", hash=f"{i:064x}", size=100,
                                          began_by=user.id, began_at=now - timedelta(hours=5),
                                          head=None if state == "discarded" else b"\xff\xd8\xff",
                                          completed_at=now if state == "completed" else None)
                       for i, state in enumerate(("in_flight", "completed", "discarded"))}
            s.add_all(uploads.values())
            s.flush()
            s.add_all([MediaUploadChunk(upload_id=uploads["in_flight"].id, start=0, length=3, user_id=user.id,
                                        at=now - timedelta(hours=4)),
                       MediaUploadChunk(upload_id=uploads["in_flight"].id, start=3, length=3, user_id=user.id,
                                        at=now - timedelta(hours=3))])
        figures = scrape(client)
        assert value(figures, "fieldapp_findings_open", severity="error") == 2
        assert value(figures, "fieldapp_findings_open", severity="warning") == 1
        assert value(figures, "fieldapp_findings_open_blocking") == 2
        assert 7200 <= value(figures, "fieldapp_findings_oldest_open_blocking_seconds") < 7200 + 120
        assert 3 * 3600 <= value(figures, "fieldapp_backup_age_seconds") < 3 * 3600 + 120  # the failed run is no backup
        assert value(figures, "fieldapp_backup_last_run_ok") == 0
        assert value(figures, "fieldapp_uploads_in_flight") == 1
        assert 3 * 3600 <= value(figures, "fieldapp_uploads_oldest_idle_seconds") < 3 * 3600 + 120
        assert value(figures, "fieldapp_feed_delay_seconds") == 0

        if not db_url.startswith("postgresql"):
            return  # SQLite: one writer commits changes in order; the feed never waits
        # PostgreSQL: a transaction still running holds the feed's horizon back (decision record 009).
        engine = app.extensions["fieldapp.engine"]
        with engine.connect() as long_running:
            held = long_running.begin()
            long_running.execute(text("SELECT pg_current_xact_id()"))  # it has a transaction id now
            with engine.begin() as later:
                later.execute(ChangeLog.__table__.insert().values(entity="case", entity_id=str(uuid.uuid4()),
                                                                  at=now - timedelta(seconds=90)))
            waiting = value(scrape(client), "fieldapp_feed_delay_seconds")
            held.rollback()
        assert 90 <= waiting < 90 + 120
        assert value(scrape(client), "fieldapp_feed_delay_seconds") == 0
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_a_database_outage_still_serves_the_process_metrics(tmp_path):
    dead = tmp_path / "no-postgres-here"
    dead.mkdir()
    app = make_app(f"postgresql+psycopg://postgres@/fieldapp?host={dead}&port=5432", tmp_path / "var")
    samples = scrape(app.test_client())
    assert value(samples, "fieldapp_metrics_database_up") == 0
    assert ("fieldapp_backup_age_seconds", ()) not in samples
    assert any(name == "fieldapp_push_items_total" for name, _ in samples)


# ---- who may scrape --------------------------------------------------------------------------------

def test_metrics_answer_only_the_internal_network(sqlite_url, tmp_path):
    def status(app, address: str, **headers) -> int:
        response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)
        assert b"fieldapp_" not in response.data or response.status_code == 200
        return response.status_code

    default = make_app(sqlite_url, tmp_path / "var")
    assert [status(default, a) for a in ("127.0.0.1", "10.1.2.3", "172.20.0.4", "192.168.1.5", "::1",
                                         "fd12::5", "::ffff:10.0.0.8")] == [200] * 7
    assert [status(default, a) for a in (INTERNET, "2001:db8::1", "100.64.0.1", "::ffff:203.0.113.9")] == [404] * 4
    # No proxy is trusted, yet one forwarded this: the peer address says nothing about the client.
    assert status(default, "127.0.0.1", **{"X-Forwarded-For": "10.0.0.7"}) == 404

    behind_nginx = make_app(sqlite_url, tmp_path / "var", trusted_proxies=1)
    assert status(behind_nginx, "127.0.0.1", **{"X-Forwarded-For": INTERNET}) == 404
    assert status(behind_nginx, "127.0.0.1", **{"X-Forwarded-For": f"10.0.0.7, {INTERNET}"}) == 404
    assert status(behind_nginx, "127.0.0.1", **{"X-Forwarded-For": "10.0.0.7"}) == 200
    assert status(behind_nginx, "10.0.0.9") == 200  # Prometheus scraping the host directly

    narrow = make_app(sqlite_url, tmp_path / "var", metrics_allow="198.51.100.0/24, 2001:db8::/32")
    assert [status(narrow, a) for a in ("198.51.100.7", "2001:db8::1", "127.0.0.1")] == [200, 200, 404]
    switched_off = make_app(sqlite_url, tmp_path / "var", metrics=False)
    assert status(switched_off, "127.0.0.1") == 404
    with pytest.raises(ValueError, match="FIELDAPP_METRICS_ALLOW"):
        make_app(sqlite_url, tmp_path / "var", metrics_allow="10.0.0.0/8, intranet")
    for app in (default, behind_nginx, narrow, switched_off):
        app.extensions["fieldapp.engine"].dispose()


# ---- JSON request lines ------------------------------------------------------------------------------

class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_json_request_lines_carry_the_request_id_and_nothing_secret(sqlite_url, tmp_path):
    seeded = None
    settings = Settings(var_dir=tmp_path / "var", database_url=sqlite_url, rp_id="localhost",
                        origins=("http://localhost",), cookie_secure=False, demo=True, log_requests=True,
                        log_format="json")
    app = create_app({"SECRET_KEY": TEST_SECRET, "TESTING": True}, settings=settings)
    handler = Lines()
    from fieldapp.ops.request_log import _Formatter
    handler.setFormatter(_Formatter())
    log = logging.getLogger("fieldapp.request")
    try:
        seeded = seed_user(app, "张伟", "C-1", "ZF1")
        client = app.test_client()
        demo_sign_in(client, seeded.user_id)
        log.addHandler(handler)
        limits = client.get("/api/v1/media/limits?token=s3cr3t-t0ken", headers={"X-Request-ID": "nginx-abc123"},
                            buffered=True)
        missing = client.get("/no-such-page", buffered=True)
        app.test_client().get("/enroll/K7QXM-2PLRT-9WVHA-CDE4F", buffered=True)  # a one-time credential
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    finally:
        log.removeHandler(handler)
        app.extensions["fieldapp.engine"].dispose()
    assert limits.status_code == 200 and missing.status_code == 404
    assert len(handler.lines) == 3, handler.lines
    first, second, enrol = (json.loads(line) for line in handler.lines)
    assert enrol["path"] == "/enroll/…"
    assert first["request_id"] == "nginx-abc123" == limits.headers["X-Request-ID"]
    assert (first["method"], first["route"], first["path"], first["status"]) == \
        ("GET", "/api/v1/media/limits", "/api/v1/media/limits", 200)
    assert first["user"] == str(seeded.user_id) and first["bytes"] == len(limits.data)
    assert first["addr"] == "127.0.0.1" and first["duration_ms"] >= 0
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["request_id"] == missing.headers["X-Request-ID"] and second["route"] is None
    assert second["status"] == 404
    everything = "\n".join(handler.lines)
    assert "s3cr3t" not in everything and cookie not in everything and "张伟" not in everything
    assert "K7QXM" not in everything
    with pytest.raises(ValueError, match="FIELDAPP_LOG_FORMAT"):
        create_app({"SECRET_KEY": TEST_SECRET, "TESTING": True},
                   settings=Settings(var_dir=tmp_path / "var", database_url=sqlite_url, log_format="xml"))


# ---- several processes ---------------------------------------------------------------------------------

COUNT_IN_A_PROCESS = """
import sys
from fieldapp.ops import metrics
n = int(sys.argv[1])
metrics.PUSH_ITEMS.labels("created").inc(n)
metrics.upload_bytes(1000 * n)
metrics.observe_request({"fieldapp.route": "/api/v1/sync/push", "REQUEST_METHOD": "POST"}, "200", 0.02)
if len(sys.argv) > 2:
    from prometheus_client import generate_latest
    sys.stdout.write(generate_latest(metrics.scrape_registry()).decode())
"""


def test_a_scrape_sums_the_counts_of_every_worker_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, "3"], env=env, cwd=REPO_ROOT, check=True, timeout=60)
    scraped = subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, "4", "scrape"], env=env, cwd=REPO_ROOT,
                             check=True, timeout=60, capture_output=True, text=True).stdout
    samples = parse(scraped)
    assert value(samples, "fieldapp_push_items_total", outcome="created") == 7
    assert value(samples, "fieldapp_upload_bytes_total") == 7000
    assert value(samples, "fieldapp_http_requests_total", route="/api/v1/sync/push", method="POST", status="200") == 2
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process


def _run_conf(monkeypatch, tmp_path, multiproc_dir: str | None) -> dict:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", multiproc_dir or "")  # restored after the test
    if multiproc_dir is None:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    return runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))


def test_gunicorn_conf_gives_each_master_a_clean_folder_and_removes_its_own(monkeypatch, tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / "fieldapp-prometheus-orphan"
    orphan.mkdir()
    (orphan / "master.pid").write_text(gone.stdout.strip())
    (orphan / "counter_1.db").write_bytes(b"\0")
    conf = _run_conf(monkeypatch, tmp_path, None)
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir() and folder.parent == tmp_path and folder.name.startswith("fieldapp-prometheus-")
    conf["on_starting"](None)
    assert not orphan.exists()  # its master died without cleaning up
    assert (folder / "master.pid").read_text() == str(os.getpid())
    conf["child_exit"](None, types.SimpleNamespace(pid=4242))
    conf["on_exit"](None)
    assert not folder.exists()

    given = tmp_path / "run" / "fieldapp-metrics"  # systemd's RuntimeDirectory, say
    given.mkdir(parents=True)
    (given / "counter_4242.db").write_bytes(b"\0")
    conf = _run_conf(monkeypatch, tmp_path, str(given))
    conf["on_starting"](None)
    assert list(given.glob("*.db")) == []  # counters start again with the master
    conf["on_exit"](None)
    assert given.is_dir()  # the operator's folder stays


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_under_gunicorn_a_restarted_worker_keeps_its_counts(sqlite_url, tmp_path):
    (tmp_path / "tmp").mkdir()
    env = app_env(database_url=sqlite_url, var_dir=tmp_path / "var", secret_key=TEST_SECRET,
                  origin="http://127.0.0.1")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["TMPDIR"] = str(tmp_path / "tmp")
    server = AppProcess(env, tmp_path / "gunicorn.log").start()
    try:
        for _ in range(3):
            _get(f"{server.url}/livez")
        worker = children(server.process.pid)[0]
        os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if worker not in children(server.process.pid) and children(server.process.pid):
                try:
                    _get(f"{server.url}/livez")
                    break
                except OSError:
                    pass
            time.sleep(0.1)
        else:
            pytest.fail(f"no new worker:\n{server.log_tail()}")
        samples = parse(_get(f"{server.url}/metrics"))
        folders = list((tmp_path / "tmp").glob("fieldapp-prometheus-*"))
    finally:
        server.stop()
    assert value(samples, "fieldapp_http_requests_total", route="/livez", method="GET", status="200") == 4
    assert value(samples, "fieldapp_metrics_database_up") == 1
    assert not any(name == "python_info" for name, _ in samples)  # the multiprocess collector answered
    assert len(folders) == 1 and not folders[0].exists()  # removed when the master exited
