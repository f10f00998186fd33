"""Fixtures shared by every layer: databases (SQLite and a real PostgreSQL), apps and clients.

API and model tests take the ``db_url`` fixture and so run once per backend. The PostgreSQL cluster
is started once per session; when it cannot start the tests skip on a developer's machine and fail
under CI=true, so a missing install step cannot hide behind a skip.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from fieldapp import migrate
from tests.support.appfactory import make_app
from tests.support.postgres import PostgresUnavailable, start_cluster
from tests.support.s3_server import S3ServerUnavailable, start_s3_server

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Apps a test builds itself seal the audit chain when the test says so (service.seal_now), not on a
# background timer that would outlive the test and its database.
os.environ.setdefault("FIELDAPP_AUDIT_SEAL_SECONDS", "0")
PG_TEMPLATE = "fieldapp_template"


def skip_or_fail(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster():
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        skip_or_fail(f"PostgreSQL unavailable: {exc}")
    try:
        cluster.execute(f"CREATE DATABASE {PG_TEMPLATE}")
        migrate.upgrade(cluster.url(PG_TEMPLATE))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def s3_server():
    """One S3-speaking server on loopback for the whole session (moto in server mode); tests
    take a bucket or prefix of their own."""
    try:
        server = start_s3_server()
    except S3ServerUnavailable as exc:
        skip_or_fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def backend(request) -> str:
    """A media storage backend: the local folder or S3."""
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _fresh_database(backend: str, request, tmp_path: Path) -> str:
    if backend == "sqlite":
        target = tmp_path / "fieldapp.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    cluster = request.getfixturevalue("pg_cluster")
    name = f"t_{uuid.uuid4().hex[:16]}"
    cluster.execute(f"CREATE DATABASE {name} TEMPLATE {PG_TEMPLATE}")
    request.addfinalizer(lambda: cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database on each backend."""
    return _fresh_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request, tmp_path) -> str:
    return _fresh_database("sqlite", request, tmp_path)


@pytest.fixture
def app(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var")
    yield app
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """After each test, before its databases are dropped: every row of a covered table that the
    test's apps wrote must stand as the audit chain's latest event about it left it (art. 30). So a
    code path that writes without an event — or an event whose hash disagrees with the row — fails
    the test that exercised it, whichever test that is."""
    from tests.support import appfactory

    appfactory.made_in_this_test.clear()
    outcome = yield
    apps, appfactory.made_in_this_test[:] = list(appfactory.made_in_this_test), []
    if outcome.excinfo is not None or item.get_closest_marker("tampers"):
        return
    for app in apps:
        problems = _rows_the_chain_does_not_vouch_for(app)
        if problems:
            pytest.fail("rows written without a matching audit event:\n  " + "\n  ".join(problems[:20]), pytrace=False)


def _rows_the_chain_does_not_vouch_for(app) -> list[str]:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from fieldapp import db
    from fieldapp.records.verification import Report, check_rows

    if not app.config["FIELDAPP_SETTINGS"].audit_events:
        return []
    report = Report()
    try:
        with app.app_context():
            check_rows(db.session(), report)
    except (OperationalError, ProgrammingError):
        return []  # the test removed its database or never made its schema
    return [f"{f.what}: {f.problem}" for f in report.faults]
