"""A GET that writes outside write_transaction() is caught by the engine, not by memory (issue:
"database is locked" on the embedded default). Strict in tests: an error at once, whatever the
timing. In production: run again with the write lock, and it succeeds."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.access import allow
from fieldapp.db import WriteWithoutLock
from fieldapp.models import EnrollmentEvent, Unit
from tests.support.appfactory import make_app
from tests.support.flows import issue_code, seed_user


def _app_with_a_careless_route(url, tmp_path, strict: bool):
    app = make_app(url, tmp_path / "var", sqlite_strict_writes=strict)
    calls = []

    @allow(public=True)
    def careless():
        calls.append(1)
        s = db.session()
        count = len(s.execute(select(Unit)).scalars().all())  # read first, as the enrolment page did
        s.add(Unit(code=f"G{len(calls)}", name="写入测试"))
        s.commit()
        return {"units_before": count}

    app.add_url_rule("/careless", "careless", careless)
    return app, calls


def test_strict_mode_refuses_the_write_at_once(sqlite_url, tmp_path):
    app, _ = _app_with_a_careless_route(sqlite_url, tmp_path, strict=True)
    with pytest.raises(WriteWithoutLock, match="GET /careless"):
        app.test_client().get("/careless")
    with app.app_context():
        assert db.session().execute(select(Unit)).first() is None  # nothing half-written
    app.extensions["fieldapp.engine"].dispose()


def test_production_runs_the_request_again_with_the_write_lock(sqlite_url, tmp_path, caplog):
    app, calls = _app_with_a_careless_route(sqlite_url, tmp_path, strict=False)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/careless")
    assert response.status_code == 200 and response.get_json() == {"units_before": 0}
    assert len(calls) == 2 and "ran the request again with the write lock" in caplog.text
    with app.app_context():
        assert [u.code for u in db.session().execute(select(Unit)).scalars()] == ["G2"]
    app.extensions["fieldapp.engine"].dispose()


def test_a_retried_view_keeps_the_lock_through_write_transaction_and_answers_its_refusals(sqlite_url, tmp_path):
    app = make_app(sqlite_url, tmp_path / "var", sqlite_strict_writes=False)
    runs = []

    @allow(public=True)
    def careless_then_locked():
        runs.append(1)
        s = db.session()
        s.execute(select(Unit)).all()
        s.add(Unit(code=f"C{len(runs)}", name="先写"))
        s.commit()  # refused on the first run; on the second, the whole request holds the lock
        with db.write_transaction() as locked:
            locked.add(Unit(code=f"L{len(runs)}", name="后写"))
        s.add(Unit(code=f"T{len(runs)}", name="再写"))  # after write_transaction: still locked
        s.commit()
        if request.args.get("missing"):
            abort(404)
        return {"runs": len(runs)}

    from flask import abort, request
    app.add_url_rule("/careless-then-locked", "careless_then_locked", careless_then_locked)
    client = app.test_client()
    assert client.get("/careless-then-locked").get_json() == {"runs": 2}
    assert client.get("/careless-then-locked?missing=1").status_code == 404
    with app.app_context():
        codes = sorted(u.code for u in db.session().execute(select(Unit)).scalars())
    assert codes == ["C2", "C4", "L2", "L4", "T2", "T4"]  # each write once, from the second runs
    app.extensions["fieldapp.engine"].dispose()


def test_a_view_that_committed_under_the_lock_before_its_careless_write_is_not_run_twice(sqlite_url, tmp_path):
    app = make_app(sqlite_url, tmp_path / "var", sqlite_strict_writes=False)
    runs = []

    @allow(public=True)
    def locked_then_careless():
        runs.append(1)
        with db.write_transaction() as locked:
            locked.add(Unit(code=f"L{len(runs)}", name="先写"))
        s = db.session()
        s.execute(select(Unit)).all()
        s.add(Unit(code=f"C{len(runs)}", name="后写"))
        s.commit()
        return {}

    app.add_url_rule("/locked-then-careless", "locked_then_careless", locked_then_careless)
    with pytest.raises(WriteWithoutLock):
        app.test_client().get("/locked-then-careless")
    with app.app_context():
        assert [u.code for u in db.session().execute(select(Unit)).scalars()] == ["L1"]
    assert len(runs) == 1
    app.extensions["fieldapp.engine"].dispose()


def test_postgresql_is_not_guarded_and_the_same_route_works(request, tmp_path):
    from tests.conftest import _fresh_database
    app, calls = _app_with_a_careless_route(_fresh_database("postgresql", request, tmp_path), tmp_path, strict=True)
    assert app.test_client().get("/careless").status_code == 200 and len(calls) == 1
    app.extensions["fieldapp.engine"].dispose()


def test_the_enrolment_page_records_its_opening_under_the_write_lock(db_url, tmp_path):
    """The page that failed in CI: under the strict guard it fails at once without the fix."""
    app = make_app(db_url, tmp_path / "var")
    officer = seed_user(app, "新同事", "N-1", "ZF1")
    code = issue_code(app, officer.user_id)
    response = app.test_client().get(f"/enroll/{code}", headers={"User-Agent": "测试浏览器"})
    assert response.status_code == 200
    with app.app_context():
        events = db.session().execute(select(EnrollmentEvent.outcome)).scalars().all()
    assert events == ["opened"]
    app.extensions["fieldapp.engine"].dispose()
