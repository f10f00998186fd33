"""Issue 19, nothing acknowledged is lost silently: the server is restored to a point before a step
the phone had synced (已同步). The phone sees the new server epoch, offers again what the server had
acknowledged, and the server ends up holding each revision exactly once; originals the phone still
holds are uploaded again, hash verified; originals it had already released are reported, to the
server and to the officer, instead of vanishing. A second sync in the same epoch offers nothing."""
from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from fieldapp import db
from fieldapp.media.service import media_storage
from fieldapp.models import (
    Device, Media, MediaRef, MediaUpload, MediaUploadChunk, Revision, ServerEpoch, SyncedRecord,
)
from tests.e2e.capture_support import READ_STORE, add_step_with_photo, answer_av, jpeg_with_exif, sign_in_fresh_officer, start_visit
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

ALG = "sha-256"

# The media rows as the phone holds them: whether the original's bytes are still there.
MEDIA_STATE = """async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return new Promise((resolve, reject) => {
    const r = db.transaction("media").objectStore("media").getAll();
    r.onsuccess = () => resolve(Object.fromEntries(r.result.map((m) => [m.hash, {
      blob: Boolean(m.blob), confirmed_at: m.confirmed_at || null, released_at: m.released_at || null }])));
    r.onerror = () => reject(r.error);
  });
}"""

META = """async (key) => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return new Promise((resolve, reject) => {
    const r = db.transaction("meta").objectStore("meta").get(key);
    r.onsuccess = () => resolve(r.result ? r.result.value : null); r.onerror = () => reject(r.error);
  });
}"""


def records_by_type(page) -> dict:
    return {r["type"]: r for r in page.evaluate(READ_STORE, "records")}


def revision_rows(app) -> list[tuple[str, int, str]]:
    with app.app_context():
        rows = db.session().execute(select(Revision.record_id, Revision.revision, Revision.content_hash)
                                    .order_by(Revision.record_id, Revision.revision)).all()
        db.session().rollback()
    return [(str(r), n, h) for r, n, h in rows]


def device_reoffer(app):
    with app.app_context():
        found = db.session().execute(select(Device.reoffer)).scalar_one()
        db.session().rollback()
    return found


def original_digest(app, digest: str) -> str | None:
    """SHA-256 of the original the server stores for ``digest`` (None when it holds none)."""
    with app.app_context():
        row = db.session().get(Media, (ALG, digest))
        held = row is not None and row.original_at is not None
        db.session().rollback()
        if not held:
            return None
        with media_storage().open(ALG, digest) as stream:
            return hashlib.sha256(stream.read()).hexdigest()


def restore_to_before(app, record_id: str, hashes: list[str]) -> str:
    """What a restore to a backup taken before the step leaves on the server: no step (its record,
    revisions, media references), none of its media (rows, uploads, the stored originals), and a new
    epoch. Written in one transaction, as the restore's own row is."""
    rid = uuid.UUID(record_id)
    with app.app_context():
        with db.write_transaction() as s:
            for ref in s.execute(select(MediaRef).where(MediaRef.record_id == rid)).scalars().all():
                s.delete(ref)
            for revision in s.execute(select(Revision).where(Revision.record_id == rid)).scalars().all():
                s.delete(revision)
            s.flush()
            s.delete(s.get(SyncedRecord, rid))
            for digest in hashes:
                for upload in s.execute(select(MediaUpload).where(MediaUpload.hash == digest)).scalars().all():
                    s.execute(delete(MediaUploadChunk).where(MediaUploadChunk.upload_id == upload.id))
                    s.delete(upload)
                media = s.get(Media, (ALG, digest))
                if media is not None:
                    s.delete(media)
            epoch = ServerEpoch(backup_id="20261204T020000Z-offsite", restored_by="test",
                                backup_taken_at=datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
            s.add(epoch)
            s.flush()
            epoch_id = str(epoch.id)
        for digest in hashes:
            media_storage().dispose_original(ALG, digest)
    assert all(original_digest(app, h) is None for h in hashes)
    return epoch_id


def restore_while_down(context, page, app, record_id: str, hashes: list[str]) -> str:
    """A restore stops the server: no sync attempt runs across it (the phone is cut off meanwhile)."""
    wait_until(page, "!window.fieldappSync.state.running", 30)
    context.set_offline(True)
    wait_until(page, "!window.fieldappSync.state.running", 30)
    return restore_to_before(app, record_id, hashes)


def sync_once_more_offers_nothing(page, app) -> None:
    """A sync in the same epoch: nothing pushed, nothing queued, no revision row added or changed."""
    rows = revision_rows(app)
    reoffer = page.evaluate(META, "reoffer")
    pushes = []
    page.on("request", lambda r: pushes.append(r.url) if "/api/v1/sync/push" in r.url else None)
    assert page.evaluate("window.fieldappSync.syncNow('again')") is True
    assert pushes == []
    assert page.evaluate(READ_STORE, "outbox") == []
    assert revision_rows(app) == rows
    assert page.evaluate(META, "reoffer") == reoffer


def test_a_restore_to_before_a_synced_step_gets_it_again_once_and_reports_the_released_original(
        live, context, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # offline from here
    start_visit(page)
    photo = tmp_path / "p.jpg"
    photo_hash = jpeg_with_exif(photo, seed=3)
    add_step_with_photo(page, photo)
    page.get_by_test_id("activity-items").wait_for()

    context.set_offline(False)
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 3", 30)
    step = records_by_type(page)["step"]
    wait_until(page, "async () => (await (%s)())['%s'].released_at !== null" % (MEDIA_STATE, photo_hash), 20)
    assert all(r["status"] == "synced" for r in records_by_type(page).values())
    assert all(r.get("acked_at") for r in page.evaluate(READ_STORE, "revisions"))  # when the server said so
    assert page.evaluate(META, "server_epoch") == "00000000-0000-0000-0000-000000000000"
    before = revision_rows(app)
    assert len(before) == 3 and original_digest(app, photo_hash) == photo_hash

    epoch = restore_while_down(context, page, app, step["id"], [photo_hash])
    assert len(revision_rows(app)) == 2
    pulls = []
    page.on("request", lambda r: pulls.append(r.url) if "/api/v1/sync/pull" in r.url else None)
    context.set_offline(False)  # back up: the 'online' event starts a sync
    page.evaluate("window.fieldappSync.syncNow('test')")
    # The step is back, exactly once, exactly as signed; the case and activity were answered duplicate.
    for _ in range(300):
        if len(revision_rows(app)) == 3 and not page.evaluate(READ_STORE, "outbox"):
            break
        page.wait_for_timeout(100)
    assert revision_rows(app) == before
    with app.app_context():
        assert db.session().execute(select(func.count()).select_from(Revision)).scalar_one() == 3
    reoffer = page.evaluate(META, "reoffer")
    assert reoffer["epoch"] == epoch and reoffer["revisions"] == 3 and reoffer["records"] == 3
    assert reoffer["beyond_window"] == 0
    # The photo's bytes were released once the server had confirmed them: the phone cannot send them
    # again, and says so, to the server and to the officer. The step waits for it, honestly.
    assert reoffer["lost_originals"] == [photo_hash]
    for _ in range(100):  # the heartbeat reports it
        stored = device_reoffer(app)
        if stored and stored.get("epoch") == epoch:
            break
        page.wait_for_timeout(100)
    assert stored["epoch"] == epoch and stored["revisions"] >= 1 and stored["lost_originals"] == [photo_hash]
    assert original_digest(app, photo_hash) is None
    wait_until(page, "async () => (await (%s)('pull_cursor')) !== '0'" % META, 20)
    assert any("cursor=0" in url for url in pulls)  # the restored server's state, pulled from the start
    records = records_by_type(page)
    assert records["case"]["status"] == records["activity"]["status"] == "synced"
    assert records["step"]["status"] == "syncing" and records["step"]["pending_media"] == [photo_hash]
    notice = page.get_by_test_id("reoffer-notice")
    notice.wait_for()
    assert "3" in notice.inner_text() and "1" in notice.inner_text()

    sync_once_more_offers_nothing(page, app)
    notice.get_by_role("button").click()
    notice.wait_for(state="hidden")
    wait_until(page, "async () => (await (%s)('reoffer_seen')) === '%s'" % (META, reoffer["at"]))
    page.reload()  # read, it stays away
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    assert page.get_by_test_id("reoffer-notice").is_hidden()


class HeldUploads:
    """Holds back the uploads of one original (its link drops), the others go through."""

    def __init__(self, page, digest: str):
        self.digest = digest
        self.open = threading.Event()
        self.held = 0
        page.route("**/api/v1/media/uploads", self._route)

    def _route(self, route):
        if not self.open.is_set() and self.digest in (route.request.post_data or ""):
            self.held += 1
            route.abort("connectionreset")
        else:
            route.continue_()


def test_originals_still_on_the_phone_are_uploaded_again_after_a_restore(
        live, context, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    small, large = tmp_path / "small.jpg", tmp_path / "large.jpg"
    small_hash = jpeg_with_exif(small, seed=4, size=(800, 600))
    large_hash = jpeg_with_exif(large, seed=5, size=(2400, 1800))
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files("[data-testid=photo-input]", [str(small), str(large)])
    wait_until(page, "document.querySelectorAll('[data-testid=photo-saved]').length === 2")
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()

    # The step is pushed and the small photo is confirmed, but the link drops on the large one: the
    # small photo's bytes stay on the phone (its record is not 已同步 yet).
    held = HeldUploads(page, large_hash)
    context.set_offline(False)
    wait_until(page, "async () => (await (%s)())['%s'].confirmed_at !== null" % (MEDIA_STATE, small_hash), 30)
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 30)
    for _ in range(100):
        if held.held:
            break
        page.wait_for_timeout(100)
    assert held.held > 0
    media = page.evaluate(MEDIA_STATE)
    assert media[small_hash]["blob"] and media[large_hash]["blob"] and not media[large_hash]["confirmed_at"]
    assert original_digest(app, small_hash) == small_hash
    step = records_by_type(page)["step"]
    before = revision_rows(app)
    assert len(before) == 3

    # Restored to before the step; the link comes back.
    epoch = restore_while_down(context, page, app, step["id"], [small_hash, large_hash])
    held.open.set()
    context.set_offline(False)
    page.evaluate("window.fieldappSync.syncNow('test')")
    wait_until(page, "window.fieldappSync.statusLog.some(e => e.status === 'synced' && e.record_id === '%s')"
               % step["id"], 60)
    assert revision_rows(app) == before
    assert original_digest(app, small_hash) == small_hash  # sent again, hash verified by the server
    assert original_digest(app, large_hash) == large_hash
    reoffer = page.evaluate(META, "reoffer")
    assert reoffer["epoch"] == epoch and reoffer["revisions"] == 3 and reoffer["lost_originals"] == []
    for _ in range(100):
        stored = device_reoffer(app)
        if stored and stored.get("epoch") == epoch:
            break
        page.wait_for_timeout(100)
    assert stored["epoch"] == epoch and stored["revisions"] == 3 and stored["lost_originals"] == []
    # Both confirmed by the server of this epoch, so released again.
    wait_until(page, "async () => Object.values(await (%s)()).every(m => m.released_at && !m.blob)" % MEDIA_STATE, 20)
    assert all(r["status"] == "synced" for r in records_by_type(page).values())

    sync_once_more_offers_nothing(page, app)


def test_acknowledgements_are_noted_in_the_servers_time_whatever_the_phone_clock_says(
        live, context, page, authenticators):
    """The phone's clock is three hours slow: what the server acknowledged is still noted at the
    server's time, the time a backup is taken in — else a revision acknowledged after a backup would
    look older than it and not be offered again after a restore."""
    server, app = live
    page.clock.set_system_time(datetime.now(UTC) - timedelta(hours=3))
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    assert abs(page.evaluate("Date.now()") / 1000 - (datetime.now(UTC) - timedelta(hours=3)).timestamp()) < 600
    context.set_offline(False)
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 30)
    acked = [r.get("acked_at") for r in page.evaluate(READ_STORE, "revisions")]
    assert acked and all(acked)
    for at in acked:
        assert abs((datetime.fromisoformat(at.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()) < 600
