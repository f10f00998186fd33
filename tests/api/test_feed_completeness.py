"""The pull feed loses nothing however transactions interleave (hardening issue, item 1).

Writers in this process create cases in transactions held open for random times, so that on
PostgreSQL change-log ids commit out of order; two phones of the unit pull in a tight loop through
two app processes (gunicorn) on the same database, alternating between them as a proxy would.
Every case created for their unit must reach each phone exactly once, and no case of another
unit may reach them. Several rounds per backend, within a budget of about half a minute each.
"""
from __future__ import annotations

import random
import threading
import time

import pytest
import requests

from fieldapp import db
from fieldapp.review.cases import create_case
from tests.support.app_process import AppProcess, app_env
from tests.support.appfactory import TEST_SECRET, make_app
from tests.support.flows import seed_user

WRITERS = 6
CASES_PER_WRITER = 15
ROUNDS = 3


class Phone:
    """A phone that pulls over HTTP, alternating between the app hosts, following `more`."""

    def __init__(self, hosts: list[str], user_id):
        self.hosts = hosts
        self.http = requests.Session()
        self.cursor = "0"
        self.deliveries: list[str] = []  # case ids, in the order the feed served them
        self.turn = 0
        page = self.http.get(f"{hosts[0]}/auth/demo", timeout=10)
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = self.http.post(f"{hosts[0]}/auth/demo", data={"user_id": str(user_id), "csrf_token": token},
                                timeout=10, allow_redirects=False)
        assert signed.status_code == 302, signed.text
        self.resync_cases: set[str] = set()
        self.pull_until_quiet()
        self.deliveries.clear()  # what the first resync held is not part of the feed under test

    def pull_once(self) -> bool:
        host = self.hosts[self.turn % len(self.hosts)]
        self.turn += 1
        answer = self.http.get(f"{host}/api/v1/sync/pull", params={"cursor": self.cursor}, timeout=30)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if page.get("resync", page["full"]):  # (the previous release had no "resync")
            self.resync_cases |= {c["id"] for c in page["cases"]}
        else:
            self.deliveries += [c["id"] for c in page["cases"]]
        self.cursor = page["cursor"]
        return page["more"]

    def pull_until_quiet(self) -> None:
        while self.pull_once():
            pass


def write_cases(app, unit_id, by, count: int, created: list, seed: int) -> None:
    rng = random.Random(seed)
    with app.app_context():
        for i in range(count):
            s = db.session()
            case = create_case(unit_id, by, kind="inspection", party_name=f"商户{seed}-{i}")
            created.append(str(case.id))
            time.sleep(rng.choice([0, 0.001, 0.005, 0.02, 0.06, 0.1]))  # hold the transaction open
            s.commit()
        db.session().close()


@pytest.fixture
def two_hosts(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    officer = seed_user(app, "张伟", "C-1", "ZF1")
    colleague = seed_user(app, "李娜", "C-2", "ZF1")
    outsider = seed_user(app, "王强", "C-3", "QX")
    with app.app_context():
        from fieldapp.models import User
        units = {u.id: u.unit_id for u in db.session().query(User).all()}
    hosts = []
    env = app_env(database_url=db_url, var_dir=tmp_path / "var", secret_key=TEST_SECRET, origin="http://localhost")
    processes = [AppProcess(env, tmp_path / f"host{i}.log").start() for i in range(2)]
    try:
        hosts = [p.url for p in processes]
        yield app, hosts, (officer, colleague, outsider), units
    finally:
        for process in processes:
            process.stop()
        app.extensions["fieldapp.engine"].dispose()


def test_every_change_reaches_every_entitled_phone_exactly_once(two_hosts):
    app, hosts, (officer, colleague, outsider), units = two_hosts
    phones = [Phone(hosts, officer.user_id), Phone(list(reversed(hosts)), colleague.user_id)]
    ours, theirs = units[officer.user_id], units[outsider.user_id]
    expected: list[str] = []
    for round_no in range(ROUNDS):
        created_ours: list[str] = []
        created_theirs: list[str] = []
        writers = [threading.Thread(target=write_cases, args=(
            app, ours if w % 4 else theirs, officer.user_id if w % 4 else outsider.user_id, CASES_PER_WRITER,
            created_ours if w % 4 else created_theirs, round_no * 100 + w)) for w in range(WRITERS)]
        stop = threading.Event()
        errors: list[BaseException] = []

        def keep_pulling(phone: Phone, stop=stop, errors=errors) -> None:
            try:
                while not stop.is_set():
                    phone.pull_once()
            except BaseException as exc:  # noqa: BLE001 — reported below
                errors.append(exc)

        pullers = [threading.Thread(target=keep_pulling, args=(p,)) for p in phones]
        for t in pullers + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in pullers:
            t.join()
        assert not errors, errors
        expected += created_ours
        for phone in phones:
            phone.pull_until_quiet()
            assert not set(phone.deliveries) & set(created_theirs), "another unit's case reached the phone"

    for phone in phones:
        missed = set(expected) - set(phone.deliveries)
        twice = {c for c in phone.deliveries if phone.deliveries.count(c) > 1}
        assert not missed, f"{len(missed)} of {len(expected)} changes never reached the phone"
        assert not twice, f"{len(twice)} changes reached the phone more than once"
        assert len(phone.deliveries) == len(expected)


def unit_phone(db_url, tmp_path, cases: int):
    """An app with an officer's phone signed in and ``cases`` open cases in the unit; and a function
    that opens one more case by name."""
    from tests.support.flows import demo_sign_in

    app = make_app(db_url, tmp_path / "var", demo=True)
    officer = seed_user(app, "张伟", "C-1", "ZF1")
    with app.app_context():
        from fieldapp.models import User
        unit_id = db.session().get(User, officer.user_id).unit_id

    def add_case(name: str) -> None:
        with app.app_context():
            create_case(unit_id, officer.user_id, kind="inspection", party_name=name)
            db.session().commit()

    with app.app_context():
        for i in range(cases):
            create_case(unit_id, officer.user_id, kind="inspection", party_name=f"商户{i}")
        db.session().commit()
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    return app, phone, add_case


def test_a_phone_whose_cursor_predates_positions_resyncs_every_open_case_in_pages(db_url, tmp_path):
    """An integer cursor (the previous release's) may have skipped rows: it starts a full resync
    that pages through every open case — not the newest 500 — and then continues the feed."""
    from tests.support.pulling import pull_all

    app, phone, add_case = unit_phone(db_url, tmp_path, cases=1234)
    from fieldapp.sync import pull as pull_module
    pull_module.PAGE, saved = 100, pull_module.PAGE  # many pages without a slow test
    try:
        whole = pull_all(phone, "42")
    finally:
        pull_module.PAGE = saved
    assert whole["full"] is True and len(whole["pages"]) >= 13
    assert len({c["id"] for c in whole["cases"]}) == 1234
    assert whole["cursor"].startswith("f.")
    add_case("之后新建")
    later = pull_all(phone, whole["cursor"])
    assert [c["party_name"] for c in later["cases"]] == ["之后新建"] and later["full"] is False
    app.extensions["fieldapp.engine"].dispose()


def test_a_cursor_beyond_what_this_database_reached_resyncs_instead_of_waiting_for_ever(db_url, tmp_path):
    """After a restore from a backup, or a move to a new PostgreSQL cluster, the phones' cursors
    may lie beyond every position the database holds; they resync. A damaged cursor is refused."""
    from tests.support.pulling import pull_all

    app, phone, add_case = unit_phone(db_url, tmp_path, cases=0)
    add_case("恢复后仍在的案件")
    beyond = pull_all(phone, "f.999999999999.0")
    assert beyond["full"] is True and [c["party_name"] for c in beyond["cases"]] == ["恢复后仍在的案件"]
    assert beyond["cursor"] != "f.999999999999.0"
    for damaged in ("r.0.0.v." + "9" * 36, "r.0.0.v.99999999999999999999"):
        assert phone.get("/api/v1/sync/pull", query_string={"cursor": damaged}).status_code == 400
    app.extensions["fieldapp.engine"].dispose()


def test_a_resync_interrupted_half_way_continues_and_misses_what_changed_meanwhile(db_url, tmp_path):

    app, phone, add_case = unit_phone(db_url, tmp_path, cases=30)
    from fieldapp.sync import pull as pull_module
    pull_module.PAGE, saved = 10, pull_module.PAGE
    try:
        first = phone.get("/api/v1/sync/pull?cursor=0").get_json()
        add_case("期间新建")  # created while the phone is between pages of its resync
        seen, cursor, more = {c["party_name"] for c in first["cases"]}, first["cursor"], first["more"]
        while more:
            page = phone.get("/api/v1/sync/pull", query_string={"cursor": cursor}).get_json()
            seen |= {c["party_name"] for c in page["cases"]}
            cursor, more = page["cursor"], page["more"]
    finally:
        pull_module.PAGE = saved
    assert {f"商户{i}" for i in range(30)} | {"期间新建"} <= seen
    app.extensions["fieldapp.engine"].dispose()
