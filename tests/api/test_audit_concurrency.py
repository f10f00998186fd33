"""On PostgreSQL, writers never wait on one another for the chain, and the sealer never links past
a transaction still running: its events are pending until it ends, then sealed in order."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import event, select, text

from fieldapp import db
from fieldapp.models import AuditEvent, Unit
from fieldapp.records import sealer
from tests.support.appfactory import make_app


@pytest.fixture
def pg_app(request, tmp_path):
    from tests.conftest import _fresh_database
    app = make_app(_fresh_database("postgresql", request, tmp_path), tmp_path / "var")
    yield app
    app.extensions["fieldapp.engine"].dispose()


def new_session(app, lock_timeout_ms=1000):
    s = app.extensions["fieldapp.sessionmaker"]()
    # A writer that had to wait for another's lock fails at once instead of waiting.
    s.execute(text(f"SET lock_timeout = '{lock_timeout_ms}ms'"))
    s.execute(text("SET statement_timeout = '5s'"))
    return s


def add_unit(s, code):
    s.add(Unit(id=uuid.uuid4(), code=code, name=f"单位{code}"))


def unit_events(app, code):
    with app.app_context():
        rows = db.session().execute(select(AuditEvent).where(AuditEvent.tbl == "units")).scalars().all()
        ids = {str(u.id) for u in db.session().execute(select(Unit).where(Unit.code == code)).scalars()}
        return [e for e in rows if any(str(row[0][0]) in ids for row in e.detail["rows"])]


def test_writers_do_not_wait_for_each_other_and_the_sealer_stops_at_a_running_transaction(pg_app):
    app = pg_app
    wrote, release, failed = threading.Event(), threading.Event(), []

    def slow_writer():
        with app.app_context():
            s = new_session(app)
            try:
                add_unit(s, "SLOW")

                @event.listens_for(s, "before_commit")
                def hold(_session):  # runs after the chain's hook has inserted this transaction's events
                    wrote.set()
                    release.wait(10)

                s.commit()
            except Exception as exc:  # noqa: BLE001
                failed.append(exc)
            finally:
                s.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert wrote.wait(10)
    try:
        with app.app_context():
            # Another writer commits its change and its events while the first still holds its own.
            s = new_session(app)
            started = time.monotonic()
            add_unit(s, "FAST")
            s.commit()
            assert time.monotonic() - started < 1.0
            s.close()
            # The sealer does not wait either, and stops below the running transaction.
            s = new_session(app)
            sealed_first = sealer.seal(s)
            s.commit()
            s.close()
        assert sealed_first == 0
        assert [e.seq for e in unit_events(app, "FAST")] == [None]
    finally:
        release.set()
        thread.join(10)
    assert not failed
    with app.app_context():
        s = new_session(app)
        assert sealer.seal(s) == 2
        s.commit()
    slow, fast = unit_events(app, "SLOW")[0], unit_events(app, "FAST")[0]
    assert slow.seq < fast.seq, "sealed in the order of the transactions that wrote them"
    assert fast.prev_hash == slow.hash


def test_a_second_sealer_skips_while_one_is_sealing_and_writers_go_on(pg_app):
    app = pg_app
    with app.app_context():
        s = new_session(app)
        add_unit(s, "A1")
        s.commit()
        first = new_session(app)
        assert sealer.seal(first) == 1  # holds the sealer's lock until it commits
        writer = new_session(app)
        started = time.monotonic()
        add_unit(writer, "A2")
        writer.commit()
        assert time.monotonic() - started < 1.0
        second = new_session(app)
        assert sealer.seal(second) == 0  # tried the lock, did not wait
        second.commit()
        first.commit()
        assert sealer.seal(second) == 1
        second.commit()
        for x in (s, first, writer, second):
            x.close()
