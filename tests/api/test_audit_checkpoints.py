"""Checkpoints vouch only for what they re-checked, name the one before them, and a chain left
unsigned past the cadence is a fault (art. 30)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fieldapp import db
from fieldapp.models import AuditCheckpoint, AuditEvent, Unit
from fieldapp.records import checkpoints, service
from fieldapp.records.verification import verify
from tests.support.appfactory import make_app


@pytest.fixture
def app(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var")
    yield app
    app.extensions["fieldapp.engine"].dispose()


def change(app, code: str) -> None:
    import uuid
    with app.app_context(), db.transaction() as s:
        s.add(Unit(id=uuid.uuid4(), code=code, name=f"单位{code}"))


def report(app, every=None):
    with app.app_context():
        return verify(db.session(), trusted_public=service.public_key(), check_media_files=False,
                      revisions=False, checkpoint_every=every)


@pytest.mark.tampers
def test_a_checkpoint_refuses_to_sign_a_chain_that_no_longer_holds(app):
    change(app, "A")
    with app.app_context():
        service.checkpoint_now()
    change(app, "B")
    with app.app_context():
        service.seal_now()
        s = db.session()
        last = s.execute(select(func.max(AuditEvent.seq))).scalar_one()
        s.execute(update(AuditEvent).where(AuditEvent.seq == last).values(actor="user:someone-else"))
        s.commit()
        with pytest.raises(checkpoints.ChainBroken):
            service.checkpoint_now()
        assert s.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one() == 1


@pytest.mark.tampers
def test_a_checkpoint_removed_from_between_two_others_is_seen(app):
    for code in ("A", "B", "C"):
        change(app, code)
        with app.app_context():
            service.checkpoint_now()
    assert report(app).ok
    with app.app_context():
        s = db.session()
        middle = s.execute(select(AuditCheckpoint.id).order_by(AuditCheckpoint.id)).scalars().all()[1]
        s.execute(AuditCheckpoint.__table__.delete().where(AuditCheckpoint.id == middle))
        s.commit()
    faults = [f.problem for f in report(app).faults if f.part == "checkpoint"]
    assert len(faults) == 1 and "checkpoints were removed" in faults[0]


def test_events_left_unsigned_past_the_cadence_are_a_fault_and_recent_ones_a_note(app, monkeypatch):
    change(app, "A")
    with app.app_context():
        service.checkpoint_now()
    change(app, "B")
    with app.app_context():
        service.seal_now()
    recent = report(app, every=timedelta(minutes=15))
    assert recent.ok and any("not signed yet" in n for n in recent.notes)
    # Two hours on, nothing has signed them (checkpointing stopped, or the newest checkpoints went).
    from fieldapp.records import verification
    later = verification.utcnow() + timedelta(hours=2)
    monkeypatch.setattr(verification, "utcnow", lambda: later)
    stale = report(app, every=timedelta(minutes=15))
    assert [f.part for f in stale.faults] == ["checkpoint"]
    assert "covered by no checkpoint" in stale.faults[0].problem
    with app.app_context():
        service.checkpoint_now()
    assert report(app, every=timedelta(minutes=15)).ok
