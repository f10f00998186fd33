"""Revisions arriving are a domain event: the protocol publishes it, review and compliance
subscribe, and a failing handler neither undoes the push nor stops the others."""
from __future__ import annotations

import ast
from pathlib import Path

from blinker import Namespace
from sqlalchemy import func, select

from fieldapp import db, events
from fieldapp.models import Unit

ROOT = Path(__file__).resolve().parents[2] / "fieldapp"


def test_a_failing_handler_is_logged_and_the_others_still_run(db_url, tmp_path, caplog):
    from tests.support.appfactory import make_app

    app = make_app(db_url, tmp_path / "var")
    happened = Namespace().signal("test-happened")
    ran = []

    def broken(_sender, value):
        db.session().add(Unit(code="BROKEN", name="写入后失败"))
        db.session().flush()
        raise RuntimeError("handler failed")

    def works(_sender, value):
        ran.append(value)
        db.session().add(Unit(code="KEPT", name="照常写入"))

    happened.connect(broken)
    happened.connect(works)
    with app.app_context():
        events.publish(happened, value=7)
        codes = set(db.session().execute(select(Unit.code)).scalars())
        assert db.session().execute(select(func.count()).select_from(Unit).where(Unit.code == "BROKEN")).scalar() == 0
    assert ran == [7] and "KEPT" in codes and "BROKEN" not in codes
    assert "handler failed" in caplog.text
    app.extensions["fieldapp.engine"].dispose()


def test_the_sync_protocol_imports_neither_review_nor_compliance():
    """DESIGN §6: the protocol publishes; it calls into neither the review workflow nor the engine
    (it may read what they stored, such as a case's running deadlines)."""
    for path in (ROOT / "sync").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        calls_in = {m for m in imported if m.lstrip(".") in ("review.workflow", "compliance.engine", "compliance.checks")}
        assert not calls_in, (path.name, calls_in)
    assert {r.__name__ for r in events.revisions_arrived.receivers_for(None)} >= {"queue_after_push", "recheck_after_push"}
