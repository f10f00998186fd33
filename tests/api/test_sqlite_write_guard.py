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
