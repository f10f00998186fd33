"""The media audit (issue 19 point 3), on both databases and both media backends: a bureau with a
photo (and its previews), a scan of signed paper and a footage segment (with its poster and
preview) audits clean; a byte flipped, an object deleted or truncated, an object nobody claims and a
derivative gone are each named with the row that claims it; an upload in flight and a purged
disposal's tombstone are not mistaken for trouble; and nothing is ever deleted by the audit."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from fieldapp import db
from fieldapp.backup.audit_cli import register
from fieldapp.backup.media_audit import AuditReport, audit
from fieldapp.media.service import media_storage
from fieldapp.media.storage import LocalStorage, derivative_key, original_key
from fieldapp.models import Disposal, FootageSegment, Media, PaperScan, SyncedRecord, utcnow
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, post_form, post_json, run_cli
from tests.api import test_sweep_uploads
from tests.support.records_world import T0, build, detailed_jpeg, one
from tests.support.station_export import ExportRow, write_manifest
from tests.support.videos import make_video

ALG = "sha-256"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


storage_settings = test_sweep_uploads.storage_settings  # the media store on disk or S3 (moto), per test


@pytest.fixture
def world(db_url, tmp_path, storage_settings):
    w = build(db_url, tmp_path / "var", **storage_settings)
    register(w.app)
    w.scan = detailed_jpeg(seed=7, size=(120, 90))
    page = _make_sheet(w)
    lead = w.client("李队长")
    kept = lead.post(f"{page}/scans", data={"csrf_token": csrf_token(lead), "scan": (io.BytesIO(w.scan), "scan.jpg")},
                     content_type="multipart/form-data")
    assert kept.status_code == 303, kept.status_code
    w.footage = _import_footage(w, tmp_path / "export")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def _make_sheet(world) -> str:
    made = post_form(world.client("李队长"), f"/paper/records/{world.activity_id}/photo_sheet", {})
    assert made.status_code == 303
    location = made.headers["Location"]
    return location[location.index("/paper/"):]


def _import_footage(world, folder: Path) -> bytes:
    folder.mkdir()
    make_video(folder / "a.mp4", seconds=1.0, start=T0)
    write_manifest(folder, [ExportRow("a.mp4", "DSJ001", T0, T0 + timedelta(seconds=1), unit_code="ZF1",
                                      collected=T0 + timedelta(minutes=10))])
    result = run_cli(world.app, "footage-import", str(folder), "--unit", "ZF1")
    assert result.exit_code == 0, result.output
    segment = one(world.app, select(FootageSegment))
    assert set(segment.previews) == {"poster", "preview"}, segment.previews
    return (folder / "a.mp4").read_bytes()


# --------------------------------------------------------------------------------------- helpers


def store_of(world):
    with world.app.app_context():
        return media_storage()


def run_audit(world_or_app, **kwargs) -> AuditReport:
    app = getattr(world_or_app, "app", world_or_app)
    with app.app_context(), db.reading() as s:
        return audit(media_storage(), s, **kwargs)


def cli(world, *args: str):
    return world.app.test_cli_runner().invoke(args=["media-audit", *args])


def write_raw(store, key: str, data: bytes) -> None:
    """Bytes put straight into the store under ``key``, past every check (damage, or a stray)."""
    if isinstance(store, LocalStorage):
        path = store.root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
        path.write_bytes(data)
        return
    store.client.put_object(Bucket=store.bucket, Key=store._k(key), Body=data,
                            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())


def read_raw(store, key: str) -> bytes | None:
    if isinstance(store, LocalStorage):
        path = store.root.joinpath(*key.split("/"))
        return path.read_bytes() if path.exists() else None
    try:
        return store.client.get_object(Bucket=store.bucket, Key=store._k(key))["Body"].read()
    except store.client.exceptions.NoSuchKey:
        return None


def delete_raw(store, key: str) -> None:
    """An object gone without a disposal (a delete marker on S3, as a careless admin's delete is)."""
    if isinstance(store, LocalStorage):
        store.root.joinpath(*key.split("/")).unlink()
    else:
        store.client.delete_object(Bucket=store.bucket, Key=store._k(key))


def no_problems(report: AuditReport) -> bool:
    return not any(len(f) for f in (report.missing, report.corrupt, report.missing_derivatives, report.orphans,
                                    report.tombstoned_present))


def scan_row(world) -> PaperScan:
    return one(world.app, select(PaperScan))


def photo_media(world) -> Media:
    return one(world.app, select(Media).where(Media.hash == world.digest))


# ----------------------------------------------------------------------------------------- tests


def test_a_clean_bureau_audits_ok_on_every_table(world):
    report = run_audit(world)
    assert report.ok and no_problems(report), report.to_json()
    assert report.originals_listed == 3  # the photo, the scan, the footage
    assert report.derivatives_listed >= 3  # the photo's previews, the footage's poster and preview
    assert report.rows_checked["paper_scans"] == 1 and report.rows_checked["footage_segments"] == 1
    assert report.rows_checked["media"] >= 2  # the photo's row, the footage's
    assert report.originals_hashed == 3
    assert report.bytes_read == len(world.photo) + len(world.scan) + len(world.footage)

    quick = run_audit(world, rehash=False)
    assert quick.ok and no_problems(quick) and quick.bytes_read == 0 and quick.originals_hashed == 0

    shown = cli(world)
    assert shown.exit_code == 0, shown.output
    assert "OK: nothing missing or corrupt" in shown.output
    as_json = cli(world, "--json", "--no-rehash")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ok"] is True and data["rehash"] is False and data["objects"]["originals"] == 3
    assert data["missing"] == {"total": 0, "truncated": False, "items": []}


def test_damage_is_named_with_its_row_and_nothing_is_deleted(world):
    store = store_of(world)
    scan, footage = scan_row(world), one(world.app, select(FootageSegment))
    # A byte flipped in the photo (same size: only the re-hash sees it).
    flipped = bytearray(world.photo)
    flipped[len(flipped) // 2] ^= 0x01
    write_raw(store, original_key(ALG, world.digest), bytes(flipped))
    # The scan deleted without a disposal.
    delete_raw(store, original_key(ALG, scan.hash))
    # The footage cut short: its size is not its rows'.
    write_raw(store, original_key(ALG, footage.hash), world.footage[:1000])
    # Bytes nobody claims: an original, and previews of a hash no row has.
    stray = random.Random(5).randbytes(3000)
    stranger = sha(b"nobody's")
    write_raw(store, original_key(ALG, sha(stray)), stray)
    write_raw(store, derivative_key(ALG, stranger, "thumb"), b"thumb bytes")

    report = run_audit(world)
    assert not report.ok
    assert [(f.table, f.row, f.found) for f in report.missing] == [("paper_scans", str(scan.id), "absent")]
    assert report.missing.items[0].expected == f"stored ({len(world.scan)} bytes)"
    corrupt = {(f.table, f.row, f.digest): f for f in report.corrupt}
    photo = corrupt[("media", f"{ALG}:{world.digest}", world.digest)]
    assert photo.expected == f"{ALG} {world.digest}" and photo.found.startswith(f"{ALG} {sha(bytes(flipped))}")
    sized = {(f.table, f.row): (f.expected, f.found) for f in report.corrupt if f.found.endswith(" bytes")}
    assert sized == {("footage_segments", str(footage.id)): (f"{len(world.footage)} bytes", "1000 bytes"),
                     ("media", f"{ALG}:{footage.hash}"): (f"{len(world.footage)} bytes", "1000 bytes")}
    assert {(f.digest, f.name, f.table) for f in report.orphans} == {(sha(stray), None, None),
                                                                     (stranger, "thumb", None)}
    assert report.corrupt.total == 4  # the flip; the truncation's size (two rows) and its hash

    # Existence and sizes only: the flipped byte goes unseen, the rest does not.
    quick = run_audit(world, rehash=False)
    assert {(f.table, f.row) for f in quick.corrupt} == set(sized)
    assert quick.missing.total == 1 and quick.orphans.total == 2

    shown = cli(world)
    assert shown.exit_code == 1, shown.output
    assert f"paper_scans {scan.id}: {ALG}:{scan.hash}: expected stored ({len(world.scan)} bytes), found absent" \
        in shown.output
    assert "FAILED: 1 missing, 4 corrupt" in shown.output
    as_json = cli(world, "--json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.output)
    assert data["ok"] is False and data["orphans"]["total"] == 2 and data["corrupt"]["total"] == 4
    assert data["missing"]["items"][0]["table"] == "paper_scans"

    # Listed, never deleted: every object is still as the damage left it.
    assert read_raw(store, original_key(ALG, sha(stray))) == stray
    assert read_raw(store, derivative_key(ALG, stranger, "thumb")) == b"thumb bytes"
    assert read_raw(store, original_key(ALG, world.digest)) == bytes(flipped)


def test_a_listed_derivative_that_is_absent_is_a_warning_not_a_failure(world):
    store = store_of(world)
    media, footage = photo_media(world), one(world.app, select(FootageSegment))
    assert media.previews, "the pipeline made previews of the photo"
    gone = sorted(media.previews)[0]
    delete_raw(store, derivative_key(ALG, world.digest, gone))
    delete_raw(store, derivative_key(ALG, footage.hash, "poster"))

    report = run_audit(world)
    assert report.ok
    assert {(f.table, f.row, f.name) for f in report.missing_derivatives} == {
        ("media", f"{ALG}:{world.digest}", gone), ("footage_segments", str(footage.id), "poster")}
    assert report.missing.total == report.corrupt.total == report.orphans.total == 0
    shown = cli(world)
    assert shown.exit_code == 0 and "missing derivatives: 2" in shown.output, shown.output


def test_an_upload_in_flight_is_not_an_orphan_until_it_is_abandoned(world):
    data = detailed_jpeg(seed=11, size=(80, 60))
    phone = world.client("张伟")
    begun = post_json(phone, "/api/v1/media/uploads", {"alg": ALG, "hash": sha(data), "size": len(data),
                                                       "type": "image/jpeg"}).get_json()
    upload_id = begun["upload_id"]
    sent = phone.put(f"/api/v1/media/uploads/{upload_id}?offset=0", data=data,
                     headers={"X-CSRFToken": csrf_token(phone), "Content-Type": "application/octet-stream"})
    assert sent.status_code == 200, sent.get_json()
    store = store_of(world)
    store.complete(upload_id)  # the host stored the original, then died before recording it

    report = run_audit(world)
    assert report.ok and no_problems(report), report.to_json()
    assert report.uploads_in_flight == 1 and report.originals_listed == 4

    store.abort(upload_id)  # swept: nobody will finish it now
    report = run_audit(world)
    assert report.uploads_in_flight == 0
    assert [(f.digest, f.name) for f in report.orphans] == [(sha(data), None)]
    assert report.ok and store.exists(ALG, sha(data))


def _age(world, months: int = 7) -> None:
    with world.app.app_context(), db.transaction() as s:
        back = utcnow() - timedelta(days=31 * months)
        media = s.get(Media, (ALG, world.digest))
        media.taken_at, media.created_at = back, back
        for record in s.execute(select(SyncedRecord)).scalars():
            if str(record.case_id) == world.case_id or str(record.id) == world.case_id:
                record.created_at = back


def test_a_purged_disposal_is_a_tombstone_and_bytes_back_under_it_are_named(world):
    _age(world)
    assert run_cli(world.app, "retention-review").exit_code == 0
    key = {"alg": ALG, "hash": world.digest}
    assert post_form(world.client("孙管理"), "/records/retention/propose", key).status_code == 303
    disposal = one(world.app, select(Disposal))
    assert post_form(world.client("分管局长"), f"/records/disposals/{disposal.id}/approve", {}).status_code == 303
    with world.app.app_context(), db.transaction() as s:
        s.get(Disposal, disposal.id).recoverable_until = utcnow() - timedelta(seconds=1)
    assert run_cli(world.app, "retention-review").exit_code == 0
    assert one(world.app, select(Disposal)).state == "purged"
    store = store_of(world)
    assert not store.exists(ALG, world.digest)

    report = run_audit(world)  # the media row still says stored, and lists previews: the tombstone answers
    assert report.ok and no_problems(report), report.to_json()
    assert report.tombstones == 1 and report.originals_listed == 2

    with tempfile.NamedTemporaryFile() as tmp:  # the same bytes back under the purged hash
        tmp.write(world.photo)
        tmp.flush()
        store.put_original_file(ALG, world.digest, tmp.name)
    report = run_audit(world)
    assert report.ok
    assert [(f.table, f.row, f.name) for f in report.tombstoned_present] == [("disposals", str(disposal.id), None)]

    with world.app.app_context(), db.transaction() as s:  # a purge under way: present or not, nothing to say
        s.get(Disposal, disposal.id).state = "purging"
    report = run_audit(world)
    assert report.ok and no_problems(report), report.to_json()


@pytest.mark.parametrize("backend", ["local"])
def test_the_audit_reads_each_table_once_however_many_rows(sqlite_url, tmp_path, storage_settings):
    app = make_app(sqlite_url, tmp_path / "var", **storage_settings)
    try:
        with app.app_context():
            store = media_storage()

        def add(n: int, seed: int) -> None:
            rng = random.Random(seed)
            with app.app_context(), db.transaction() as s:
                for _ in range(n):
                    data = rng.randbytes(200)
                    with tempfile.NamedTemporaryFile() as tmp:
                        tmp.write(data)
                        tmp.flush()
                        store.put_original_file(ALG, sha(data), tmp.name)
                    s.add(Media(alg=ALG, hash=sha(data), size=len(data), original_at=utcnow(), previews=[], flags=[]))

        def statements() -> tuple[int, AuditReport]:
            seen = []
            engine = app.extensions["fieldapp.engine"]
            listener = lambda *args: seen.append(args[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            try:
                report = run_audit(app)
            finally:
                event.remove(engine, "before_cursor_execute", listener)
            return len([q for q in seen if q.lstrip().upper().startswith("SELECT")]), report

        add(5, 1)
        few, report = statements()
        assert report.ok and report.originals_hashed == 5
        add(120, 2)
        many, report = statements()
        assert report.ok and report.originals_hashed == 125 and report.rows_checked["media"] == 125
        assert many == few, (few, many)
    finally:
        app.extensions["fieldapp.engine"].dispose()
