"""Media sync seen by the people who use it: the officer's photos reach the server after the
records, previews before originals, so the lead reviews on a bad link; the phone shows bytes and
which items still wait for originals, and releases local bytes only once the server holds both."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from fieldapp import db
from fieldapp.models import Media
from fieldapp.review.labels import record_type_label  # noqa: F401 (the page must render its labels)
from tests.e2e.capture_support import (
    READ_STORE, answer_av, jpeg_with_exif, sign_in_fresh_officer, sign_in_with_new_passkey, start_visit,
)
from tests.e2e.conftest import PHONE, VirtualAuthenticators, wait_until

pytestmark = pytest.mark.e2e


class HeldUploads:
    """Holds the officer's original uploads (as a dead link would) until released."""

    def __init__(self, page):
        self.open = threading.Event()
        self.held = 0
        page.route("**/api/v1/media/uploads**", self._route)

    def _route(self, route):
        if self.open.is_set():
            route.continue_()
        else:
            self.held += 1
            route.abort("connectionreset")


def test_offline_photos_reach_the_lead_preview_first_then_original(live, browser, context, page, authenticators,
                                                                   tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # offline from here
    start_visit(page)
    photos = [tmp_path / f"p{i}.jpg" for i in range(2)]
    hashes = [jpeg_with_exif(p, seed=10 + i, size=(2400, 1800)) for i, p in enumerate(photos)]
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files("[data-testid=photo-input]", [str(p) for p in photos])
    wait_until(page, "document.querySelectorAll('[data-testid=photo-saved]').length === 2")
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()

    uploads = HeldUploads(page)
    context.set_offline(False)
    # Records and previews arrive; the originals are held back by the "link".
    wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 2", 30)
    with app.app_context():
        def previews_in():
            rows = [db.session().get(Media, ("sha-256", h)) for h in hashes]
            db.session().rollback()
            return all(r is not None and r.phone_preview_at is not None for r in rows)
        for _ in range(100):
            if previews_in():
                break
            page.wait_for_timeout(200)
        assert previews_in()
        assert all(db.session().get(Media, ("sha-256", h)).original_at is None for h in hashes)
    assert uploads.held > 0
    step = next(r for r in page.evaluate(READ_STORE, "records") if r["type"] == "step")
    assert step["status"] == "syncing" and sorted(step["pending_media"]) == sorted(hashes)
    page.reload()  # the officer sees the step still waits for its originals
    page.get_by_test_id("originals-pending").first.wait_for()

    # The lead, on their own phone, reviews the step from the phone's previews.
    lead_context = browser.new_context(**PHONE)
    try:
        lead = lead_context.new_page()
        VirtualAuthenticators(lead_context.new_cdp_session(lead))  # (the helper adds its own)
        sign_in_with_new_passkey(lead_context, lead, server, app, "37030300999", name="李队长", roles="lead",
                                 wait_offline_ready=False)
        lead.goto(server.url + f"/review/records/{step['id']}")
        items = lead.locator("[data-testid=review-media] li")
        assert items.count() == 2
        for i in range(2):
            assert items.nth(i).get_attribute("data-preview") == "phone-preview"
            assert items.nth(i).get_attribute("data-original") == "no"
        shown = lead.locator("[data-testid=review-media] img").first
        assert lead.evaluate("(img) => img.complete && img.naturalWidth > 0", shown.element_handle())
        assert lead.evaluate("(img) => Math.max(img.naturalWidth, img.naturalHeight)", shown.element_handle()) <= 1280

        # The link comes back: the originals go up, the server makes its own previews.
        uploads.open.set()
        page.evaluate("window.fieldappSync.syncNow('test')")
        wait_until(page, """window.fieldappSync.statusLog.some(e => e.status === 'synced'
                            && e.record_id === '%s')""" % step["id"], 60)
        lead.reload()
        for i in range(2):
            assert items.nth(i).get_attribute("data-original") == "yes"
            assert items.nth(i).get_attribute("data-preview") == "preview"
        # Opening an original is a deliberate, registered act: a page, then a POST, then the bytes.
        lead.locator("[data-testid=original-link]").first.click()
        with lead.expect_download() as download:
            lead.locator("[data-testid=open-original]").click()
        body = Path(download.value.path()).read_bytes()
        assert hashlib.sha256(body).hexdigest() in hashes
    finally:
        lead_context.close()
    # Hash and record confirmed: the phone has released the originals' bytes, kept the thumbnails.
    media = {m["hash"]: m for m in page.evaluate(READ_STORE, "media")}
    assert all(media[h].get("released_at") and media[h].get("confirmed_at") for h in hashes)
    assert page.evaluate("""async () => { const db = await new Promise(r => { const q = indexedDB.open('fieldapp'); q.onsuccess = () => r(q.result); });
        return new Promise(r => { const q = db.transaction('media').objectStore('media').getAll();
          q.onsuccess = () => r(q.result.filter(m => m.blob).length); }); }""") == 0


def test_the_progress_bar_counts_bytes_of_originals(live, context, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    photo = tmp_path / "big.jpg"
    jpeg_with_exif(photo, seed=3, size=(3000, 2000))
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files("[data-testid=photo-input]", str(photo))
    page.get_by_test_id("photo-saved").wait_for()
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()
    page.evaluate("""() => { window.__progress = [];
        window.addEventListener('fieldapp:sync', (e) => { if (e.detail.bytesTotal !== undefined) window.__progress.push(e.detail); }); }""")
    context.set_offline(False)
    wait_until(page, "window.__progress.some(p => p.mediaDone === 1 && p.bytesDone === p.bytesTotal)", 30)
    progress = page.evaluate("window.__progress")
    size = photo.stat().st_size
    assert progress[-1]["bytesTotal"] == size and progress[-1]["mediaTotal"] == 1
    assert [p["bytesDone"] for p in progress] == sorted(p["bytesDone"] for p in progress)


def test_a_file_the_server_refuses_stays_on_the_phone_with_the_reason(live, context, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    fake = tmp_path / "现场照片.jpg"
    fake.write_bytes(b"<!doctype html><html><script>alert(1)</script></html>" + b" " * 5000)
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files("[data-testid=photo-input]", str(fake))
    page.get_by_test_id("photo-saved").wait_for()
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()
    context.set_offline(False)
    wait_until(page, """async () => { const db = await new Promise(r => { const q = indexedDB.open('fieldapp'); q.onsuccess = () => r(q.result); });
        return new Promise(r => { const q = db.transaction('media').objectStore('media').getAll();
          q.onsuccess = () => r(q.result.some(m => m.refused && m.blob)); }); }""", 30)
    page.reload()
    refused = page.get_by_test_id("media-refused")
    refused.wait_for()
    assert "网页" in refused.inner_text() or "HTML" in refused.inner_text()
    step = next(r for r in page.evaluate(READ_STORE, "records") if r["type"] == "step")
    assert step["status"] != "synced"  # never shown 已同步 without its original
    with app.app_context():
        assert db.session().get(Media, ("sha-256", hashlib.sha256(fake.read_bytes()).hexdigest())) is None
