"""What the chain records in normal work: a push, a review, a finding the system opened, a preview
viewed, an original opened and played — each as an event by whoever did it, and `verify` passes
afterwards (no false alarm), including every revision's device signature."""
from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import select, text

from fieldapp import db
from fieldapp.models import AuditEvent, User
from fieldapp.records import service
from tests.api.test_review import unit, visit  # noqa: F401 — the fixture and the visit it pushes
from tests.support.flows import post_form, post_json, push_results, run_cli, sync_push


def events(app, **where):
    with app.app_context():
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, name) == value)
        return db.session().execute(stmt).scalars().all()


def upload_photo(phone, device, activity_id, case_id):
    data = b"\xff\xd8\xff\xe0" + b"JFIF" + bytes(2000) + b"\xff\xd9"
    digest = hashlib.sha256(data).hexdigest()
    step = device.revision(parent_id=activity_id, payload={"activity_id": activity_id, "case_id": case_id,
                                                          "step_type": "penalty_onsite_inspection"},
                           media=[{"alg": "sha-256", "hash": digest, "size": len(data), "type": "image/jpeg"}])
    push_results(sync_push(phone, device.batch(step)))
    begun = post_json(phone, "/api/v1/media/uploads", {"alg": "sha-256", "hash": digest, "size": len(data),
                                                       "type": "image/jpeg"}).get_json()
    phone.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
              headers={"X-CSRFToken": phone.get("/api/v1/session").get_json()["csrf_token"],
                       "Content-Type": "application/octet-stream"})
    assert post_json(phone, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
    return digest, data


def test_a_visit_its_review_and_every_access_are_in_the_chain_and_verify_passes(unit):  # noqa: F811
    app, phone, device, lead, _other, officer, _ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    push_results(sync_push(phone, device.batch(*items)))
    step = items[2]
    corrected = device.revision(step["record_id"], 2, {**step["payload"], "notes": "更正"}, parent_id=activity_id,
                                reason="笔误")
    assert [r["status"] for r in push_results(sync_push(phone, device.batch(corrected)))] == ["created"]
    digest, data = upload_photo(phone, device, activity_id, case_id)
    with app.app_context():
        lead_id = db.session().execute(select(User.id).where(User.name == "李队长")).scalar_one()

    # Signing in is the user's own event; the officer's revisions are events by the officer; the
    # findings the system opened are the system's.
    assert f"user:{officer.user_id}" in {e.actor for e in events(app, tbl="user_sessions")}
    revision_events = events(app, tbl="revisions")
    assert revision_events and {e.actor for e in revision_events} == {f"user:{officer.user_id}"}
    assert {e.actor for e in events(app, tbl="findings")} == {"system:revisions-arrived"}
    assert events(app, tbl="media") and events(app, tbl="media_refs")

    # A preview viewed and an original opened and played: each an event by the lead.
    assert lead.get(f"/review/media/sha-256/{digest}/thumb").status_code in (200, 404)
    lead.get(f"/review/media/sha-256/{digest}/phone-preview")
    opened = post_form(lead, f"/review/media/sha-256/{digest}/original", {})
    assert lead.get(opened.headers["Location"]).data == data
    lead.get(opened.headers["Location"], headers={"Range": "bytes=4-11"})
    seen = [(e.action, e.row_key, (e.detail or {}).get("range")) for e in events(app, actor=f"user:{lead_id}")
            if e.action in ("original", "preview")]
    assert ("original", f"sha-256:{digest}", "whole") in seen
    assert ("original", f"sha-256:{digest}", "bytes=4-11") in seen
    assert [e.tbl for e in events(app, actor=f"user:{lead_id}") if e.tbl == "original_access"] == ["original_access"]

    # The lead returns the visit: the review rows' changes are the lead's events.
    from fieldapp.review import workflow
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": workflow.RETURNED, "comment": "请补充"})
    assert f"user:{lead_id}" in {e.actor for e in events(app, tbl="record_reviews")}

    with app.app_context():
        service.checkpoint_now("on demand")
    result = run_cli(app, "verify", "--media", "all")
    assert result.exit_code == 0, result.output
    assert "通过" in result.output and "PASSED" in result.output
    assert "0 个待封存" in result.output


@pytest.mark.tampers
def test_verify_names_an_edited_review_and_exits_1(unit):  # noqa: F811
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    push_results(sync_push(phone, device.batch(*items)))
    with app.app_context():
        service.checkpoint_now()
        db.session().execute(text("UPDATE findings SET severity = 'info'"))  # behind the app's back
        db.session().commit()
    result = run_cli(app, "verify", "--media", "none")
    assert result.exit_code == 1
    assert "不通过" in result.output and "FAILED" in result.output
    assert "findings [" in result.output and "edited" in result.output


def test_the_sealer_runs_by_itself_within_seconds(db_url, tmp_path):
    from tests.support.appfactory import make_app
    from tests.support.flows import seed_user

    app = make_app(db_url, tmp_path / "var", audit_seal_seconds=0.2)
    try:
        seed_user(app, "张伟", "37030300001", "ZF1")
        client = app.test_client()
        client.get("/healthz")  # the first request starts this process's sealer
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with app.app_context():
                if events(app) and all(e.seq is not None for e in events(app)):
                    break
            time.sleep(0.1)
        assert events(app) and all(e.seq is not None for e in events(app))
    finally:
        app.extensions["fieldapp.audit_ticker"].stop.set()
        app.extensions["fieldapp.engine"].dispose()


def test_the_admin_page_shows_the_public_key_and_signs_a_checkpoint_on_demand(unit):  # noqa: F811
    app, phone, device, *_ = unit
    from tests.support.flows import demo_sign_in, seed_user
    from fieldapp.records import keys
    admin = seed_user(app, "系统管理员", "37030300100", "ZF1", roles="admin")
    client = app.test_client()
    demo_sign_in(client, admin.user_id)
    page = client.get("/admin/audit").get_data(as_text=True)
    with app.app_context():
        pem = keys.public_pem(service.public_key())
        kid = keys.key_id(service.public_key())
    assert pem.strip().splitlines()[1] in page and kid in page
    assert "还没有检查点" in page or "No checkpoint yet" in page
    signed = post_form(client, "/admin/audit/checkpoint", {}, follow_redirects=True).get_data(as_text=True)
    assert 'data-testid="checkpoint"' in signed
    assert phone.get("/admin/audit").status_code in (302, 403)


def test_a_checkpoint_is_timestamped_by_the_configured_authority_and_verify_checks_the_token(unit, tmp_path):  # noqa: F811
    from tests.support.tsa_server import start_tsa
    app, phone, device, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    push_results(sync_push(phone, device.batch(*items)))
    tsa = start_tsa(tmp_path)
    settings = app.config["FIELDAPP_SETTINGS"]
    settings.tsa_url, settings.tsa_cert_file = tsa.url, tsa.root_pem_path
    try:
        with app.app_context():
            stamped = service.checkpoint_now()
            assert stamped.tsa_token is not None
            tsa.mode = "rejection"  # an authority that refuses: the checkpoint is still signed, untimestamped
            plain = service.checkpoint_now()
            assert plain is not None and plain.tsa_token is None
        assert run_cli(app, "verify", "--media", "none").exit_code == 0
        with app.app_context():  # a token from another checkpoint's statement does not fit this one
            db.session().execute(text("UPDATE audit_checkpoints SET tsa_token = :t WHERE id = :i"),
                                 {"t": stamped.tsa_token[:-1] + bytes([stamped.tsa_token[-1] ^ 1]), "i": stamped.id})
            db.session().commit()
        result = run_cli(app, "verify", "--media", "none")
        assert result.exit_code == 1 and "timestamp token" in result.output
    finally:
        tsa.stop()


def test_a_role_taken_away_is_in_the_chain(db_url, tmp_path):
    """Roles and overseen units are rows the unit of work deletes as orphans: they never appear as
    deleted objects of the session, and taking away an admin role must still leave its event."""
    from fieldapp.accounts import update_user
    from fieldapp.models import Role, Unit
    from tests.support.appfactory import make_app
    from tests.support.flows import seed_user

    app = make_app(db_url, tmp_path / "var")
    try:
        chief = seed_user(app, "王局", "37030300200", "ZF1", roles="admin,division_head")
        with app.app_context():
            s = db.session()
            user, unit = s.get(User, chief.user_id), s.execute(select(Unit)).scalars().first()
            update_user(user, overseen_units=[unit])
            s.commit()
            update_user(user, roles={Role.DIVISION_HEAD}, overseen_units=[])
            s.commit()
        removed = [row for e in events(app, tbl="user_roles") for row in e.detail["rows"] if row[2] == "delete"]
        assert [row[0][1] for row in removed] == ["admin"]
        assert [row[2] for e in events(app, tbl="division_oversight") for row in e.detail["rows"]] == ["insert", "delete"]
    finally:
        app.extensions["fieldapp.engine"].dispose()
