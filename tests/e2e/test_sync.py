"""The page's own sync engine: what was captured offline reaches the server when the signal returns,
across an expired session, and a conflict is shown and resolved, never overwritten."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.auth.session import end_all_sessions
from fieldapp.models import Media, Revision, SyncedRecord, User
from tests.e2e.capture_support import (
    READ_STORE, add_step_with_photo, jpeg_with_exif, sign_in_fresh_officer, start_visit,
)
from tests.e2e.conftest import wait_until
from tests.support.flows import csrf_token, demo_sign_in
from tests.support.soft_device import SoftDevice

pytestmark = pytest.mark.e2e


def server_revisions(app) -> int:
    with app.app_context():
        return db.session().execute(select(func.count()).select_from(Revision)).scalar_one()


def outbox_empty(page) -> bool:
    return len(page.evaluate(READ_STORE, "outbox")) == 0


def test_offline_capture_syncs_without_a_tap_when_the_network_returns(live, context, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # offline from here
    start_visit(page)
    photo = tmp_path / "p.jpg"
    photo_hash = jpeg_with_exif(photo, seed=1)
    add_step_with_photo(page, photo)
    page.get_by_test_id("activity-items").wait_for()
    assert server_revisions(app) == 0 and len(page.evaluate(READ_STORE, "outbox")) == 3

    context.set_offline(False)  # the browser's 'online' event starts the sync by itself
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 20)
    assert wait_until(page, """async () => { const db = await new Promise(r => { const q = indexedDB.open('fieldapp'); q.onsuccess = () => r(q.result); });
        return new Promise(r => { const q = db.transaction('outbox').objectStore('outbox').count(); q.onsuccess = () => r(q.result === 0); }); }""", 20)
    assert server_revisions(app) == 3
    # Every 已同步 the page showed was for a revision the server has.
    shown_synced = page.evaluate("window.fieldappSync.statusLog.filter(e => e.status === 'synced')")
    with app.app_context():
        for entry in shown_synced:
            assert db.session().execute(select(Revision).where(
                Revision.record_id == uuid.UUID(entry["record_id"]), Revision.revision == entry["revision"])).scalar_one()
    records = {r["type"]: r for r in page.evaluate(READ_STORE, "records")}
    assert records["case"]["status"] == "synced" and records["activity"]["status"] == "synced"
    # The step becomes 已同步 only once its photo's original is on the server, hash verified.
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 3", 20)
    records = {r["type"]: r for r in page.evaluate(READ_STORE, "records")}
    assert records["step"]["status"] == "synced" and records["step"]["pending_media"] == []
    with app.app_context():
        media = db.session().get(Media, ("sha-256", photo_hash))
        assert media.original_at is not None and media.mime == "image/jpeg"
    with app.app_context():
        stored = {str(r.id): r.head_revision for r in db.session().execute(select(SyncedRecord)).scalars()}
    assert stored == {r["id"]: r["revision"] for r in records.values()}


def test_an_expired_session_pauses_sync_and_one_sign_in_completes_it(live, context, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    with app.app_context(), db.transaction():
        user = db.session().execute(select(User)).scalar_one()
        end_all_sessions(user)  # the session expires while the officer is out of signal
    context.set_offline(False)
    page.get_by_test_id("signin-again").wait_for()
    assert server_revisions(app) == 0 and len(page.evaluate(READ_STORE, "outbox")) == 2
    page.get_by_test_id("signin-again-button").click()
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 20)
    assert server_revisions(app) == 2 and outbox_empty(page)


def test_a_conflict_is_shown_with_both_versions_and_resolved_by_a_new_revision(live, context, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # capture offline, then sync it all
    activity_url = start_visit(page)
    context.set_offline(False)
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 20)
    activity = next(r for r in page.evaluate(READ_STORE, "records") if r["type"] == "activity")

    # The same officer's second phone ends the activity first, with other content.
    with app.app_context():
        user_id = db.session().execute(select(User.id)).scalar_one()
        version = db.session().execute(select(Revision.catalogue_version)).scalars().first()
    other_phone = app.test_client()
    demo_app_client_sign_in(app, other_phone, user_id)
    second = SoftDevice(author=str(user_id), catalogue_version=version)
    other_phone.post("/api/v1/devices", json={"device_id": second.device_id, "public_key": second.public_key_b64},
                     headers={"X-CSRFToken": csrf_token(other_phone)})
    theirs = second.revision(record_id=activity["id"], revision=2, record_type="activity",
                             parent_id=activity["parent_id"],
                             payload={**activity["payload"], "departed_at": "2026-11-27T03:00:00.000Z"})
    pushed = other_phone.post("/api/v1/sync/push", json=second.batch(theirs), headers={"X-CSRFToken": csrf_token(other_phone)})
    assert pushed.get_json()["results"][0]["status"] == "created"

    # This phone ends it too, offline, then syncs: a conflict, nothing overwritten.
    context.set_offline(True)
    page.goto(activity_url)
    page.get_by_role("link", name="结束现场执法活动").click()
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    context.set_offline(False)
    wait_until(page, "window.fieldappSync.statusLog.some(e => e.status === 'problem')", 20)
    page.goto(activity_url)
    page.get_by_role("link", name="查看问题").first.click()
    assert "03:00" in page.get_by_test_id("theirs").inner_text()
    page.get_by_role("button", name="保留我的版本（另存为新版本）").click()
    page.get_by_test_id("recording-log").wait_for()
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 3", 20)
    with app.app_context():
        record = db.session().get(SyncedRecord, uuid.UUID(activity["id"]))
        head = db.session().execute(select(Revision).where(Revision.record_id == record.id,
                                                           Revision.revision == 3)).scalar_one()
    assert record.head_revision == 3 and head.reason == "conflict_resolved_keep_mine" and head.parent == 2


def demo_app_client_sign_in(app, client, user_id):
    app.config["FIELDAPP_SETTINGS"].demo = True
    try:
        demo_sign_in(client, user_id)
    finally:
        app.config["FIELDAPP_SETTINGS"].demo = False
