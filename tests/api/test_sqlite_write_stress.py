"""The embedded default under the load that broke it: phones pushing back to back while new
officers open their enrolment links and leads and phones make every other GET that writes, on
SQLite, across two app processes (as gunicorn workers are). No 5xx, no "database is locked", and
no GET that needed to be run again because it wrote without the write lock."""
from __future__ import annotations

import threading
import time

import requests

from tests.support.app_process import AppProcess, app_env
from tests.support.appfactory import TEST_SECRET, make_app
from tests.support.flows import issue_code, seed_user
from tests.support.soft_device import SoftDevice

DURATION_S = 10
PUSHERS = 4
OPENERS = 4


def _signed_in(host: str, user_id) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{host}/auth/demo", timeout=10)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert http.post(f"{host}/auth/demo", data={"user_id": str(user_id), "csrf_token": token},
                     allow_redirects=False, timeout=10).status_code == 302
    return http


def test_pushes_and_gets_that_write_never_meet_a_locked_database(sqlite_url, tmp_path):
    app = make_app(sqlite_url, tmp_path / "var", demo=True)
    officers = [seed_user(app, f"推送{i}", f"P-{i}", "ZF1") for i in range(PUSHERS)]
    newcomers = [seed_user(app, f"新人{i}", f"N-{i}", "ZF1") for i in range(OPENERS)]
    lead = seed_user(app, "负责人", "L-1", "ZF1", "lead,officer")
    codes = [issue_code(app, n.user_id) for n in newcomers]
    app.extensions["fieldapp.engine"].dispose()
    env = app_env(database_url=sqlite_url, var_dir=tmp_path / "var", secret_key=TEST_SECRET,
                  origin="http://localhost", sqlite_strict_writes="0", log_requests="1")
    hosts = [AppProcess(env, tmp_path / f"host{i}.log").start() for i in range(2)]
    statuses: list[tuple[str, int]] = []
    failures: list[str] = []
    deadline = time.monotonic() + DURATION_S

    def note(kind: str, response: requests.Response) -> None:
        statuses.append((kind, response.status_code))
        if response.status_code >= 500:
            failures.append(f"{kind} {response.status_code} {response.text[:200]}")

    def push(i: int) -> None:
        host = hosts[i % 2].url
        http = _signed_in(host, officers[i].user_id)
        csrf = http.get(f"{host}/api/v1/session", timeout=10).json()["csrf_token"]
        version = http.get(f"{host}/api/v1/catalogue", timeout=10).json()["version"]
        phone = SoftDevice(author=str(officers[i].user_id), catalogue_version=version)
        headers = {"X-CSRFToken": csrf}
        http.post(f"{host}/api/v1/devices", json={"device_id": phone.device_id, "public_key": phone.public_key_b64,
                                                  "label": "压测"}, headers=headers, timeout=10)
        while time.monotonic() < deadline:
            note("push", http.post(f"{host}/api/v1/sync/push", headers=headers, timeout=30,
                                   json=phone.batch(*[phone.revision() for _ in range(20)])))

    def open_links(i: int) -> None:
        host = hosts[(i + 1) % 2].url
        http = requests.Session()
        lead_http = _signed_in(host, lead.user_id)
        while time.monotonic() < deadline:
            note("enroll", http.get(f"{host}/enroll/{codes[i]}", timeout=30))
            note("catalogue", lead_http.get(f"{host}/api/v1/catalogue", timeout=30))
            for page in ("/review/", "/review/findings", "/review/deadlines", "/review/records"):
                note(page, lead_http.get(f"{host}{page}", timeout=30))
            note("pull", lead_http.get(f"{host}/api/v1/sync/pull", timeout=30))

    def guarded(target, i):
        try:
            target(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"{target.__name__}: {exc!r}")

    threads = [threading.Thread(target=guarded, args=(push, i)) for i in range(PUSHERS)]
    threads += [threading.Thread(target=guarded, args=(open_links, i)) for i in range(OPENERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for host in hosts:
            host.stop()
    logs = "".join(h.log_path.read_text(errors="replace") for h in hosts)
    assert not failures, failures[:5]
    pushes = sum(1 for kind, code in statuses if kind == "push" and code == 200)
    opens = sum(1 for kind, code in statuses if kind == "enroll" and code == 200)
    assert pushes >= 10 and opens >= 10, (pushes, opens)
    assert "database is locked" not in logs
    assert "ran the request again with the write lock" not in logs, "a GET writes outside write_transaction()"
    assert "Traceback" not in logs
