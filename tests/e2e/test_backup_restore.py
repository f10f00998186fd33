"""Issue 19 end to end, with a real backup and a real restore: the phone syncs, the server is backed
up, the phone syncs more, the server is restored from the backup into a fresh instance at the same
address — and the phone's next sync brings the server back to holding every revision the phone
has, exactly once, while the original the phone had already released is listed for the records
administrator as lost. On SQLite with media on disk, and on PostgreSQL with media on S3."""
from __future__ import annotations

import shutil
import threading
import uuid

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from fieldapp import db
from fieldapp.backup import run
from fieldapp.backup.destination import FolderDestination
from fieldapp.media.service import media_storage
from fieldapp.models import Revision
from fieldapp.records import service
from tests.conftest import _fresh_database
from tests.e2e.capture_support import add_step_with_photo, jpeg_with_exif, sign_in_fresh_officer, start_visit
from tests.e2e.conftest import wait_until
from tests.e2e.test_epoch_reoffer import META
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, seed_user

pytestmark = pytest.mark.e2e


class SwappableServer:
    """One address whose application can be replaced: the phone keeps its origin (its service worker,
    its store, its session cookie) while the server behind it is restored."""

    def __init__(self) -> None:
        self.app = None
        self.server = make_server("127.0.0.1", 0, lambda env, start: self.app(env, start), threaded=True)
        self.url = f"http://localhost:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def media_settings(request, kind: str) -> dict:
    if kind == "local":
        return {}
    from fieldapp.media.storage import S3Storage
    s3 = request.getfixturevalue("s3_server")
    bucket = f"e{uuid.uuid4().hex[:12]}"
    S3Storage(bucket, endpoint_url=s3.endpoint_url, region=s3.region, access_key=s3.access_key,
              secret_key=s3.secret_key).ensure_bucket()
    return dict(media_backend="s3", s3_bucket=bucket, s3_endpoint=s3.endpoint_url, s3_region=s3.region,
                s3_access_key=s3.access_key, s3_secret_key=s3.secret_key)


def revisions(app) -> list[tuple[str, int, str]]:
    with app.app_context():
        rows = db.session().execute(select(Revision.record_id, Revision.revision, Revision.content_hash)
                                    .order_by(Revision.record_id, Revision.revision)).all()
        db.session().rollback()
    return [(str(r), n, h) for r, n, h in rows]


@pytest.mark.parametrize("database,media", [("sqlite", "local"), ("postgresql", "s3")])
def test_sync_back_up_sync_more_restore_and_the_phone_brings_back_what_it_has(
        database, media, request, context, page, authenticators, tmp_path):
    site = SwappableServer()
    request.addfinalizer(site.stop)
    (tmp_path / "a").mkdir()
    source = make_app(_fresh_database(database, request, tmp_path / "a"), tmp_path / "a" / "var",
                      origin=site.url, **media_settings(request, media))
    site.app = source
    sign_in_fresh_officer(page, authenticators, site, source, offline=False)
    start_visit(page)
    first, second = tmp_path / "1.jpg", tmp_path / "2.jpg"
    jpeg_with_exif(first, seed=11)
    second_hash = jpeg_with_exif(second, seed=12)
    add_step_with_photo(page, first)
    page.get_by_test_id("activity-items").wait_for()
    wait_until(page, "async () => { await window.fieldappSync.syncNow('t'); return (await (await import("
                     "'/static/js/capture/store.js')).getAll('outbox')).length === 0 }", 60)

    offsite = FolderDestination(tmp_path / "offsite")
    with source.app_context():
        taken = run.backup(offsite, database_url=source.config["FIELDAPP_SETTINGS"].database_url,
                           store=media_storage())
    at_backup = revisions(source)

    # Sync more after the backup: a second step and its photo, 已同步 — the photo's bytes released.
    page.goto(page.url)
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    add_step_with_photo(page, second)
    page.get_by_test_id("activity-items").wait_for()
    wait_until(page, "async () => { await window.fieldappSync.syncNow('t'); const s = await import("
                     "'/static/js/capture/store.js'); const m = await s.get('media', '%s');"
                     " return (await s.getAll('outbox')).length === 0 && m && m.released_at }" % second_hash, 60)
    before_restore = revisions(source)
    assert len(before_restore) == len(at_backup) + 1

    # The server is lost; a fresh instance at the same address is restored from the backup.
    wait_until(page, "!window.fieldappSync.state.running", 30)
    context.set_offline(True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "var").mkdir()
    key = source.config["FIELDAPP_SETTINGS"].audit_key_file
    shutil.copy2(key, tmp_path / "b" / "var" / key.name)  # the checkpoint key is kept apart, and restored with it
    restored = make_app(_fresh_database(database, request, tmp_path / "b"), tmp_path / "b" / "var",
                        origin=site.url, demo=True, **media_settings(request, media))
    with restored.app_context():
        result = run.restore(offsite, database_url=restored.config["FIELDAPP_SETTINGS"].database_url,
                             store=media_storage(), public_key=service.public_key(), restored_by="办公室")
    assert result.backup_id == taken.id and revisions(restored) == at_backup
    site.app = restored

    # The phone comes back: it offers again what the server had acknowledged; the server ends up
    # with every revision the phone has, each exactly once, as signed.
    context.set_offline(False)
    for _ in range(300):
        page.evaluate("window.fieldappSync.syncNow('after-restore')")
        if revisions(restored) == before_restore:
            break
        page.wait_for_timeout(200)
    assert revisions(restored) == before_restore
    reoffer = page.evaluate(META, "reoffer")
    assert reoffer["epoch"] == result.epoch and second_hash in reoffer["lost_originals"]
    page.evaluate("window.fieldappSync.syncNow('again')")
    with restored.app_context():
        assert db.session().execute(select(func.count()).select_from(Revision)).scalar_one() == len(before_restore)

    # The records administrator sees what no phone can bring back.
    seed_user(restored, "周敏", "37030300777", "ZF1", roles="records_admin")
    admin = restored.test_client()
    from fieldapp.models import User
    with restored.app_context():
        admin_id = db.session().execute(select(User.id).where(User.name == "周敏")).scalar_one()
    demo_sign_in(admin, admin_id)
    for _ in range(100):
        listing = admin.get("/records/backups").get_data(as_text=True)
        if f'data-hash="{second_hash}"' in listing:
            break
        page.wait_for_timeout(100)
    assert f'data-hash="{second_hash}" data-recovered="no"' in listing
    assert 'data-state="reoffered"' in listing and 'data-testid="last-restore"' in listing
    for app in (source, restored):
        app.extensions["fieldapp.engine"].dispose()
