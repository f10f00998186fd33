"""Upgrading a database of the release before the chain: every row it holds gets a baseline event,
so the chain vouches for it from the upgrade on, and verify passes — then catches a later edit."""
from __future__ import annotations

import uuid

import pytest

from alembic import command
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

from fieldapp import db, migrate
from fieldapp.models import AuditEvent, Case, Unit, User
from fieldapp.records import service
from fieldapp.records.verification import verify
from tests.support.appfactory import make_app


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite3'}"
    cluster = request.getfixturevalue("pg_cluster")
    name = f"t_{uuid.uuid4().hex[:16]}"
    cluster.execute(f"CREATE DATABASE {name}")
    request.addfinalizer(lambda: cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return cluster.url(name)


@pytest.mark.tampers
def test_rows_stored_before_the_chain_get_baseline_events_and_verify(empty_url, tmp_path):
    url = empty_url
    command.upgrade(migrate.alembic_config(url), "0014_footage")
    engine = create_engine(url)
    unit_id, user_id, case_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with Session(engine) as s:  # the previous release writes, with no chain, and only its own columns
        s.execute(insert(Unit.__table__).values(id=unit_id, code="ZF9", name="稷下所"))
        s.execute(insert(User.__table__).values(id=user_id, name="张伟", cert_no="37030300001", unit_id=unit_id,
                                                webauthn_handle=b"h" * 32))
        s.execute(insert(Case.__table__).values(id=case_id, unit_id=unit_id, kind="penalty",
                                                party_name="临淄区齐都镇鲜果超市"))
        s.commit()
    engine.dispose()

    migrate.upgrade(url)
    app = make_app(url, tmp_path / "var")
    try:
        with app.app_context():
            baseline = db.session().execute(select(AuditEvent.tbl).where(AuditEvent.action == "baseline")).scalars().all()
            assert {"units", "users", "cases"} <= set(baseline), url
            service.checkpoint_now()
            report = verify(db.session(), trusted_public=service.public_key(), check_media_files=False)
            assert report.ok, (url, report.faults)
            db.session().execute(text("UPDATE cases SET party_name = '别人' WHERE kind = 'penalty'"))
            db.session().commit()
            report = verify(db.session(), trusted_public=service.public_key(), check_media_files=False)
            assert [(f.part, f.what.split(" ")[0]) for f in report.faults] == [("row", "cases")], url
    finally:
        app.extensions["fieldapp.engine"].dispose()
