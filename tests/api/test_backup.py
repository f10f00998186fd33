"""Off-site backup and restore (issue 19; arts. 7, 25), on SQLite and PostgreSQL, media on disk and
S3, to a folder and to an S3 bucket: an incremental backup copies only new objects; a fresh instance
restored from a backup holds every revision and object of it, each hash checked, starts a new server
epoch, and passes `verify`; an encrypted backup needs its identity; a changed byte at the
destination is named and never restored."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.backup import run
from fieldapp.backup.destination import FolderDestination, open_destination
from fieldapp.media.service import media_storage
from fieldapp.models import BackupRun, Media, Revision, ServerEpoch
from tests.conftest import _fresh_database
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in
from tests.support.records_world import detailed_jpeg
from tests.support.records_world import build  # noqa: I001


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def counts(app) -> tuple[int, int]:
    with app.app_context():
        s = db.session()
        return (s.execute(select(func.count()).select_from(Revision)).scalar(),
                s.execute(select(func.count()).select_from(Media).where(Media.original_at.is_not(None))).scalar())


def take_backup(app, dest, **kw) -> run.BackupResult:
    with app.app_context():
        settings = app.config["FIELDAPP_SETTINGS"]
        return run.backup(dest, database_url=settings.database_url, store=media_storage(), **kw)


def fresh_instance(request, tmp_path: Path, source_app, kind: str, **overrides):
    """An empty instance (its own database and media folder) holding the source's checkpoint key,
    as an operator restores it on a new host."""
    (tmp_path / "restored-db").mkdir(parents=True, exist_ok=True)
    url = _fresh_database(kind, request, tmp_path / "restored-db")
    var = tmp_path / "restored-var"
    var.mkdir(parents=True, exist_ok=True)
    key = source_app.config["FIELDAPP_SETTINGS"].audit_key_file
    if key.exists():
        shutil.copy2(key, var / key.name)
    return make_app(url, var, **{"demo": True, **overrides})


def do_restore(app, dest, **kw) -> run.RestoreResult:
    from fieldapp.records import service
    with app.app_context():
        settings = app.config["FIELDAPP_SETTINGS"]
        return run.restore(dest, database_url=settings.database_url, store=media_storage(),
                           public_key=service.public_key(), **kw)


def chain_report(app):
    from fieldapp.records import service
    from fieldapp.records.verification import verify
    with app.app_context():
        return verify(db.session(), trusted_public=service.public_key(), store=media_storage(), media_sample=None)


def test_backup_then_incremental_then_restore_brings_back_everything_verified(world, request, tmp_path, db_url):
    dest = FolderDestination(tmp_path / "offsite")
    first = take_backup(world.app, dest)
    assert first.objects_copied == first.objects_total > 0
    assert (tmp_path / "offsite" / "LATEST").read_text() == first.id
    manifest = json.loads((tmp_path / "offsite" / "backups" / first.id / "manifest.json").read_text())
    assert manifest["database"]["kind"] == backend_of(db_url) and manifest["chain"]["seq"]
    assert (tmp_path / "offsite" / "backups" / first.id / "manifest.sig").exists()

    # Sync more: three photos. The next backup copies only their objects.
    before = counts(world.app)
    new = [world.push_photo(detailed_jpeg(seed)) for seed in (21, 22, 23)]
    second = take_backup(world.app, dest)
    assert 3 <= second.objects_copied < second.objects_total
    assert second.bytes_copied == second.new_bytes and second.new_bytes > 0
    with world.app.app_context():
        added = [o for o in media_storage().objects() if o.digest in new]
    assert second.objects_copied == len(added)
    with world.app.app_context():
        assert db.session().get(BackupRun, second.id).objects_copied == second.objects_copied

    # A fresh instance from the newest backup holds everything, each hash checked.
    target = fresh_instance(request, tmp_path, world.app, backend_of(db_url))
    restored = do_restore(target, dest, restored_by="办公室 王工")
    assert restored.signature == "valid" and restored.objects_restored == second.objects_total
    assert counts(target) == counts(world.app) and counts(target)[0] > before[0]
    with target.app_context():
        epoch = db.session().execute(select(ServerEpoch)).scalar_one()
        assert str(epoch.id) == restored.epoch and epoch.backup_id == second.id
        for digest in new:
            with media_storage().open("sha-256", digest) as fh:
                import hashlib
                assert hashlib.sha256(fh.read()).hexdigest() == digest
    report = chain_report(target)
    assert report.ok, [str(f) for f in report.faults][:5]
    # The records administrator's page: the restore, and the unit's phone — not heard from since,
    # so at risk whatever the restored rows say; before it, the source said it was never restored.
    assert 'data-testid="never-restored"' in world.client("孙管理").get("/records/backups").get_data(as_text=True)
    admin = target.test_client()
    demo_sign_in(admin, world.users["孙管理"])
    page = admin.get("/records/backups").get_data(as_text=True)
    assert 'data-testid="last-restore"' in page and "办公室 王工" in page and second.id in page
    assert 'data-state="not_heard"' in page and "not_needed" not in page
    # Restoring again over it is refused: restores go into a fresh instance only.
    with pytest.raises(run.BackupError, match="fresh instance"):
        do_restore(target, dest)
    target.extensions["fieldapp.engine"].dispose()


def test_a_restore_from_an_older_backup_restores_that_point(world, request, tmp_path, db_url):
    dest = FolderDestination(tmp_path / "offsite")
    first = take_backup(world.app, dest)
    at_first = counts(world.app)
    world.push_photo(detailed_jpeg(31))
    take_backup(world.app, dest)
    target = fresh_instance(request, tmp_path, world.app, backend_of(db_url))
    do_restore(target, dest, backup_id=first.id)
    assert counts(target) == at_first
    target.extensions["fieldapp.engine"].dispose()


def test_an_encrypted_backup_needs_its_identity_and_a_changed_byte_is_never_restored(world, request, tmp_path):
    import pyrage

    from fieldapp.backup import sealing, verify_backup
    identity = pyrage.x25519.Identity.generate()
    dest = FolderDestination(tmp_path / "offsite")
    done = take_backup(world.app, dest, recipients=[identity.to_public()])
    stored = sorted((tmp_path / "offsite" / "objects").rglob("*.age"))
    assert stored and all(p.read_bytes().startswith(b"age-encryption.org/v1") for p in stored)
    assert not any(world.photo[:64] in p.read_bytes() for p in stored)
    id_file = tmp_path / "identity.txt"
    id_file.write_text(str(identity) + "\n")
    ids = sealing.identities(id_file)
    assert verify_backup.check(dest, ids=ids).ok

    kind = "sqlite" if world.app.config["FIELDAPP_SETTINGS"].database_url.startswith("sqlite") else "postgresql"
    target = fresh_instance(request, tmp_path, world.app, kind)
    with pytest.raises(run.BackupError, match="--identity"):
        do_restore(target, dest)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    with pytest.raises(sealing.SealingError):
        do_restore(target, dest, ids=sealing.identities(wrong))

    # One byte of one stored original changes at the destination: named, and not restored.
    victim = next(p for p in stored if "/originals/" in p.as_posix())
    data = bytearray(victim.read_bytes())
    data[-20] ^= 1
    victim.write_bytes(bytes(data))
    report = verify_backup.check(dest, ids=ids)
    assert not report.ok and any(victim.name.removesuffix(".age") in p and "changed" in p for p in report.problems)
    with pytest.raises((run.BackupError, sealing.SealingError)):
        do_restore(target, dest, ids=ids)
    assert done.objects_copied > 0
    target.extensions["fieldapp.engine"].dispose()


def test_a_changed_manifest_or_object_is_named(world, tmp_path):
    from fieldapp.backup import verify_backup
    from fieldapp.records import service
    dest = FolderDestination(tmp_path / "offsite")
    done = take_backup(world.app, dest)
    with world.app.app_context():
        public = service.public_key()
    assert verify_backup.check(dest, public_key=public).ok
    original = next(p for p in (tmp_path / "offsite" / "objects" / "originals").rglob("*") if p.is_file())
    original.write_bytes(original.read_bytes()[:-1] + b"\x00")
    report = verify_backup.check(dest, public_key=public)
    assert not report.ok and any(original.name in p for p in report.problems)
    manifest = tmp_path / "offsite" / "backups" / done.id / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"v": 1', '"v": 1 '))
    with pytest.raises(run.BackupError, match="signature"):
        verify_backup.check(dest, public_key=public)


def test_media_on_s3_backed_up_to_an_s3_bucket_at_another_site(sqlite_url, request, tmp_path, s3_server):
    from fieldapp.media.storage import S3Storage
    media_bucket, offsite_bucket = f"m{uuid.uuid4().hex[:10]}", f"o{uuid.uuid4().hex[:10]}"
    s3 = dict(s3_endpoint=s3_server.endpoint_url, s3_region=s3_server.region, s3_access_key=s3_server.access_key,
              s3_secret_key=s3_server.secret_key)
    S3Storage(media_bucket, endpoint_url=s3_server.endpoint_url, region=s3_server.region,
              access_key=s3_server.access_key, secret_key=s3_server.secret_key).ensure_bucket()
    world = build(sqlite_url, tmp_path / "var", media_backend="s3", s3_bucket=media_bucket, **s3)
    offsite = S3Storage(offsite_bucket, endpoint_url=s3_server.endpoint_url, region=s3_server.region,
                        access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    offsite.ensure_bucket()

    class BackupSettings:
        backup_s3_endpoint, backup_s3_region = s3_server.endpoint_url, s3_server.region
        backup_s3_access_key, backup_s3_secret_key = s3_server.access_key, s3_server.secret_key

    dest = open_destination(f"s3://{offsite_bucket}/linzi", BackupSettings())
    first = take_backup(world.app, dest)
    assert first.objects_copied == first.objects_total > 0
    assert take_backup(world.app, dest).objects_copied == 0  # nothing new: nothing copied
    restored_bucket = f"r{uuid.uuid4().hex[:10]}"
    S3Storage(restored_bucket, endpoint_url=s3_server.endpoint_url, region=s3_server.region,
              access_key=s3_server.access_key, secret_key=s3_server.secret_key).ensure_bucket()
    target = fresh_instance(request, tmp_path, world.app, "sqlite", media_backend="s3", s3_bucket=restored_bucket, **s3)
    restored = do_restore(target, dest)
    assert restored.objects_restored == first.objects_total
    assert counts(target) == counts(world.app)
    target.extensions["fieldapp.engine"].dispose()
    world.app.extensions["fieldapp.engine"].dispose()


def test_the_commands_back_up_and_refuse_clearly(world, tmp_path):
    runner = world.app.test_cli_runner()
    out = runner.invoke(args=["backup", str(tmp_path / "offsite"), "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output.strip().splitlines()[-1])
    assert summary["objects_copied"] == summary["objects_total"] > 0
    bad = runner.invoke(args=["backup", "ftp://elsewhere/x"])
    assert bad.exit_code != 0 and "s3://bucket/prefix" in bad.output
    verified = runner.invoke(args=["backup-verify", str(tmp_path / "offsite")])
    assert verified.exit_code == 0 and "all present and matching" in verified.output
    missing = runner.invoke(args=["restore", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "no backup" in missing.output
    assert runner.invoke(args=["new-epoch", "--since", "2026-12-04T09:30:00"]).exit_code != 0  # no offset
    made = runner.invoke(args=["new-epoch", "--since", "2026-12-04T09:30:00+08:00", "--by", "办公室"])
    assert made.exit_code == 0, made.output
    with world.app.app_context():
        from fieldapp.backup import epoch
        now = epoch.current()
    assert now["id"] in made.output and now["restored_from"]["taken_at"].startswith("2026-12-04T01:30")


def test_a_corrupt_original_is_skipped_and_named_and_the_run_recorded(world, tmp_path):
    with world.app.app_context():
        store = media_storage()
        path = Path(world.app.config["FIELDAPP_SETTINGS"].media_dir) / "originals" / "sha256" / \
            world.digest[:2] / world.digest[2:4] / world.digest
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    done = take_backup(world.app, FolderDestination(tmp_path / "offsite"))
    key = f"originals/sha256/{world.digest[:2]}/{world.digest[2:4]}/{world.digest}"
    assert done.skipped == [key] and done.objects_copied == done.objects_total - 1
    assert not (tmp_path / "offsite" / "objects" / key).exists()
    assert done.manifest["skipped"] == [key]
    with world.app.app_context():
        run_row = db.session().get(BackupRun, done.id)
        assert run_row.finished_at and "1 objects skipped" in run_row.error
    assert store is not None
    # the records administrator is told which objects the backup left out
    page = world.client("孙管理").get("/records/backups").get_data(as_text=True)
    assert 'data-testid="backup-skipped"' in page and key in page and 'data-state="skipped"' in page


def test_a_restore_cut_off_in_the_media_resumes_and_phones_see_it_at_once(world, request, tmp_path, db_url):
    dest = FolderDestination(tmp_path / "offsite")
    take_backup(world.app, dest)
    victim = next(p for p in (tmp_path / "offsite" / "objects" / "originals").rglob("*") if p.is_file())
    kept = victim.read_bytes()
    victim.unlink()  # the other site loses one object (a disk error, say) while the restore runs
    target = fresh_instance(request, tmp_path, world.app, backend_of(db_url))
    with pytest.raises(FileNotFoundError):
        do_restore(target, dest)
    from fieldapp.backup import epoch
    with target.app_context():
        restoring = epoch.current()
    assert restoring["restored_from"] is not None  # phones already re-offer
    victim.write_bytes(kept)
    done = do_restore(target, dest)  # the same restore again: resumed, not refused
    assert done.epoch == restoring["id"] and counts(target) == counts(world.app)
    with target.app_context():
        assert not db.session().execute(select(ServerEpoch)).scalar_one().restored_by.endswith("(restoring)")
    target.extensions["fieldapp.engine"].dispose()


def test_an_unsigned_restore_needs_to_be_asked_for(world, request, tmp_path, db_url):
    take_backup(world.app, FolderDestination(tmp_path / "offsite"))
    (tmp_path / "restored-db").mkdir(parents=True, exist_ok=True)
    target = make_app(_fresh_database(backend_of(db_url), request, tmp_path / "restored-db"), tmp_path / "keyless")
    out = target.test_cli_runner().invoke(args=["restore", str(tmp_path / "offsite")])
    assert out.exit_code != 0 and "--allow-unsigned" in out.output
    target.extensions["fieldapp.engine"].dispose()
