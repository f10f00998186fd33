"""An officer's offline work survives an upgrade of both the app and the server, end to end.

The previous recorded release (releases.toml) runs from its own commit, extracted from git: the
officer signs in, loses signal and captures a visit — a case, an activity, a step with a photo and
a clip, an interruption and its resumption, a 留置送达 — which stays in the phone's outbox. That
server stops; today's code migrates the same database (init-db) and serves the same origin. The
phone comes back online, takes the new service worker through the app's own update offer, and
syncs: every revision arrives exactly once, every original re-hashes to its hash, the old records
still display, and a record made after the update syncs too. SQLite here; FIELDAPP_UPGRADE_TEST_DB=
postgresql runs it on a throwaway PostgreSQL database instead.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fieldapp.version import APP_VERSION
from tests.conftest import skip_or_fail
from tests.e2e.capture_support import add_step_with_photo
from tests.e2e.conftest import PHONE, wait_until
from tests.support.app_process import AppProcess, app_env, free_port
from tests.support.releases import REPO_ROOT, ReleaseUnavailable, recorded

pytestmark = pytest.mark.e2e

SECRET = "upgrade-test-secret"
FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
READ_OUTBOX = """async () => { const db = await new Promise((r) => { const q = indexedDB.open('fieldapp');
    q.onsuccess = () => r(q.result); });
  return new Promise((r) => { const q = db.transaction('outbox').objectStore('outbox').getAll();
    q.onsuccess = () => { db.close(); r(q.result.map((o) => o.key)); }; }); }"""


def extract(release, target: Path) -> Path:
    """The release's tree, as it shipped (git archive of its commit)."""
    try:
        archive = subprocess.run(["git", "archive", release.commit], cwd=REPO_ROOT, check=True,
                                 capture_output=True).stdout
    except subprocess.CalledProcessError as exc:
        raise ReleaseUnavailable(exc.stderr.decode(errors="replace")) from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def flask(tree: Path, env: dict, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "fieldapp", *args], cwd=tree,
                         env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def release_helpers(tree: Path):
    """The release's own capture helpers: they drive the screens as that release drew them."""
    spec = importlib.util.spec_from_file_location("release_capture_support", tree / "tests/e2e/capture_support.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def database(request, tmp_path: Path) -> str:
    if os.environ.get("FIELDAPP_UPGRADE_TEST_DB", "sqlite") == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = "upgrade_test"
        cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cluster.execute(f"CREATE DATABASE {name}")
        request.addfinalizer(lambda: cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        return cluster.url(name)
    return f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}"


def test_an_offline_visit_on_the_previous_release_syncs_once_after_the_upgrade(request, browser, tmp_path):
    release = recorded()[-1]
    try:
        old_tree = extract(release, tmp_path / "release")
    except ReleaseUnavailable as exc:
        skip_or_fail(f"release {release.version} is not in this clone: {exc}")
    helpers = release_helpers(old_tree)
    url = database(request, tmp_path)
    port = free_port()
    env = app_env(database_url=url, var_dir=tmp_path / "var", secret_key=SECRET,
                  origin=f"http://localhost:{port}")

    # The previous release: its schema, its officer, its server.
    flask(old_tree, env, "init-db")
    flask(old_tree, env, "create-unit", "ZF1", "综合行政执法大队一中队")
    flask(old_tree, env, "create-user", "--name", "张伟", "--cert-no", "37030300501", "--unit", "ZF1",
          "--roles", "officer")
    old_server = AppProcess({**env, "PYTHONPATH": str(old_tree)}, tmp_path / "old.log", port=port,
                            cwd=old_tree).start()
    base = f"http://localhost:{port}"
    context = browser.new_context(**PHONE)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(base + "/auth/demo")
        page.get_by_role("button", name="张伟").first.click()
        page.wait_for_url("**/")
        page.locator("body[data-capture-ready=true]").wait_for(state="attached")
        wait_until(page, "navigator.serviceWorker.controller !== null")
        wait_until(page, "caches.open('pages-v1').then(c => c.match('/')).then(r => !!r)")

        # No signal: a whole visit stays on the phone.
        context.set_offline(True)
        photo = tmp_path / "photo.jpg"
        clip = tmp_path / "clip.mp4"
        originals = {helpers.jpeg_with_exif(photo, seed=5)}
        clip.write_bytes(FTYP + bytes(range(256)) * 400)
        originals.add(hashlib.sha256(clip.read_bytes()).hexdigest())
        helpers.start_visit(page, party="升级前的商户")
        page.get_by_role("link", name="添加环节").click()
        page.set_input_files("[data-testid=photo-input]", str(photo))
        page.set_input_files("[data-testid=clip-input]", str(clip))
        page.get_by_test_id("photo-saved").first.wait_for()
        page.get_by_role("button", name="保存环节").click()
        page.get_by_test_id("recording-log").wait_for()
        page.get_by_role("link", name="记录中断").click()
        page.get_by_label("原因").select_option("battery")
        page.get_by_role("button", name="保存").click()
        page.get_by_role("link", name="恢复记录").click()
        page.get_by_label("恢复记录时的说明").fill("更换电池后继续录制")
        page.get_by_role("button", name="保存").click()
        page.get_by_test_id("recording-log").wait_for()
        page.get_by_role("link", name="留置送达").click()
        page.locator("input[name=doc_name]").fill("行政处罚决定书")
        page.get_by_label("受送达人", exact=True).fill("王某")
        page.get_by_role("button", name="下一步").click()
        page.get_by_label("拒收的言语").fill("不签，拿走")
        page.get_by_role("button", name="下一步").click()
        witness = page.get_by_test_id("witness").nth(0)
        witness.locator("input[name=witness_name]").fill("孙某")
        witness.get_by_label("拒绝签名", exact=True).check()
        witness.locator("input[name=witness_refused_reason]").fill("怕得罪老板")
        page.get_by_role("button", name="下一步").click()
        page.get_by_role("button", name="下一步").click()
        helpers.draw_signature(page, page.get_by_test_id("officer-signature").nth(0).locator("canvas"))
        page.get_by_role("button", name="保存留置送达记录").click()
        page.get_by_test_id("activity-items").wait_for()
        activity_url = page.url
        queued = set(page.evaluate(READ_OUTBOX))
        assert len(queued) >= 6, queued  # case, activity, step, interruption ×2, service
    finally:
        old_server.stop()

    # Today's code migrates the same database and serves the same origin.
    flask(REPO_ROOT, env, "init-db")
    new_server = AppProcess(env, tmp_path / "new.log", port=port).start()
    try:
        context.set_offline(False)
        page.goto(base + "/")
        # The new service worker takes over only through the app's own offer (never mid-capture).
        update = page.get_by_role("button", name="更新")
        update.wait_for(timeout=30_000)
        with page.expect_navigation():  # the page reloads once the new worker has taken over
            update.click()
        page.locator("body[data-capture-ready=true]").wait_for(state="attached")
        wait_until(page, "navigator.serviceWorker.controller !== null")
        page.evaluate("window.fieldappSync.syncNow('test')")
        wait_until(page, "(async () => (await (" + READ_OUTBOX + ")()).length === 0)()", 60)

        # Every revision once; every original whole.
        assert page.evaluate("import('/static/js/capture/sync.js').then((m) => m.APP_VERSION)") == APP_VERSION
        engine = create_engine(url)
        with engine.connect() as db:
            reported = db.execute(text("SELECT app_version FROM devices")).scalars().all()
            stored = db.execute(text("SELECT record_id, revision FROM revisions")).all()
            media = dict(db.execute(text("SELECT hash, size FROM media WHERE original_at IS NOT NULL")).all())
        engine.dispose()
        assert len(stored) == len(set(stored)) == len(queued)
        assert reported == [APP_VERSION]  # the heartbeat says the phone now runs this release
        assert originals <= set(media), (originals, media)
        media_root = tmp_path / "var" / "media" / "originals" / "sha256"
        for digest in originals:
            held = media_root / digest[:2] / digest[2:4] / digest
            assert hashlib.sha256(held.read_bytes()).hexdigest() == digest

        # The old records still display; a record made after the update syncs too.
        page.goto(activity_url)
        items = page.get_by_test_id("activity-items")
        items.wait_for()
        assert items.get_by_test_id("item-interruption").count() == 1
        add_step_with_photo(page, photo)  # today's screens now: today's helper
        page.evaluate("window.fieldappSync.syncNow('test')")
        wait_until(page, "(async () => (await (" + READ_OUTBOX + ")()).length === 0)()", 60)
        engine = create_engine(url)
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM revisions")).scalar_one() == len(queued) + 1
        engine.dispose()
        for log in (tmp_path / "old.log", tmp_path / "new.log"):
            assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]
    finally:
        context.close()
        new_server.stop()
