"""Art. 26 end to end on both databases: each object's class follows the facts of every record that
refers to it, holds keep what would be due, and disposal needs the records administrator and the
division head, hides at once, is recoverable for seven days and then leaves a tombstone — with the
bytes gone and nothing else ever deleting them. On S3 the classes are object-lock holds."""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from fieldapp import db
from fieldapp.media.service import media_storage
from fieldapp.media.storage import S3Storage, original_key
from fieldapp.models import CaseStage, RetentionHold, Disposal, EvidenceUse, Media, RetentionState, SyncedRecord, utcnow
from fieldapp.records import retention
from fieldapp.records.verification import Report, check_media
from tests.support.flows import post_form, run_cli
from tests.support.records_world import T0, build, iso, one, rows, select


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def state(world, digest=None) -> RetentionState:
    return one(world.app, select(RetentionState).where(RetentionState.hash == (digest or world.digest)))


def review(world):
    result = run_cli(world.app, "retention-review")
    assert result.exit_code == 0, result.output
    return result.output


def age(world, months: int = 7, digest=None, case_id=None):
    """Move the capture back ``months``: the media row and the records referring to it (of one case
    only, when ``case_id`` is given)."""
    digest = digest or world.digest
    with world.app.app_context(), db.transaction() as s:
        back = utcnow() - timedelta(days=31 * months)
        media = s.get(Media, ("sha-256", digest))
        media.taken_at, media.created_at = back, back
        for record in s.execute(select(SyncedRecord)).scalars():
            if case_id is None or str(record.case_id) == case_id or str(record.id) == case_id:
                record.created_at = back


def test_a_photo_is_kept_six_months_from_capture_once_it_arrives(world):
    kept = state(world)
    assert kept.klass == "six_months"
    assert abs((kept.keep_until - kept.captured_at) - timedelta(days=182)) < timedelta(days=3)
    assert [r["rule"] for r in kept.reasons] == ["minimum"]


def test_the_class_follows_the_facts_both_ways(world):
    lead = world.client("李队长")
    post_form(lead, f"/records/cases/{world.case_id}/marks", {"significance": "major_complex"})
    assert state(world).klass == "permanent"
    assert "第二十六条第（四）项" in {r["article"] for r in state(world).reasons}
    post_form(lead, f"/records/cases/{world.case_id}/marks", {})
    assert state(world).klass == "six_months"  # the mark taken back: six months again
    post_form(lead, f"/review/cases/{world.case_id}/stage", {"stage": "decision"})
    assert one(world.app, select(CaseStage.stage).where(CaseStage.case_id == uuid.UUID(world.case_id))) == "decision"
    assert state(world).klass == "permanent" and {r["rule"] for r in state(world).reasons} >= {"evidence"}


def test_an_interruption_for_obstruction_keeps_the_visits_photos_for_ever(world):
    stop = world.device.revision(str(uuid.uuid4()), record_type="interruption", parent_id=world.activity_id, payload={
        "activity_id": world.activity_id, "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=10)),
        "reason": "obstruction", "resumed_at": iso(T0 + timedelta(minutes=20)), "explanation": "当事人阻挠",
        "cannot_continue": False})
    from tests.support.flows import push_results, sync_push
    push_results(sync_push(world.client("张伟"), world.device.batch(stop)))
    kept = state(world)
    assert kept.klass == "permanent"
    assert ("obstruction", "interruption:obstruction") in {(r["rule"], r["fact"]) for r in kept.reasons}


def test_an_object_shared_by_two_cases_is_kept_as_long_as_the_longer_needs(world):
    other_case, other_activity = world.new_case()
    world.push_photo(world.photo, case_id=other_case, activity_id=other_activity)  # the same bytes again
    post_form(world.client("李队长"), f"/records/cases/{other_case}/marks", {"significance": "major_emergency"})
    assert state(world).klass == "permanent"
    age(world)
    review(world)
    assert state(world).klass == "permanent"  # the first case's six months are over; the second keeps it
    assert 'data-testid="due-item"' not in world.client("孙管理").get(
        "/records/retention").get_data(as_text=True)


def test_disposal_needs_both_approvals_is_recoverable_for_7_days_then_leaves_a_tombstone(world):
    age(world)
    review(world)
    page = world.client("孙管理").get("/records/retention").get_data(as_text=True)
    assert f'data-hash="{world.digest}"' in page
    key = {"alg": "sha-256", "hash": world.digest}
    assert post_form(world.client("分管局长"), "/records/retention/propose", key).status_code == 403
    assert post_form(world.client("孙管理"), "/records/retention/propose", key).status_code == 303
    disposal = one(world.app, select(Disposal))
    assert disposal.state == "proposed" and disposal.records_admin_id == world.users["孙管理"]
    thumb = f"/review/media/sha-256/{world.digest}/preview"
    assert world.client("李队长").get(thumb).status_code == 200  # still offered: only one approval
    assert post_form(world.client("李队长"), f"/records/disposals/{disposal.id}/approve", {}).status_code == 403
    assert post_form(world.client("别的分管"), f"/records/disposals/{disposal.id}/approve", {}).status_code == 404
    assert one(world.app, select(Disposal)).state == "proposed"
    assert post_form(world.client("分管局长"), f"/records/disposals/{disposal.id}/approve", {}).status_code == 303
    disposal = one(world.app, select(Disposal))
    assert disposal.state == "disposed" and disposal.division_head_id == world.users["分管局长"]
    assert disposal.recoverable_until - disposal.disposed_at == timedelta(days=7)
    assert world.client("李队长").get(thumb).status_code == 410
    assert post_form(world.client("李队长"), f"/review/media/sha-256/{world.digest}/original", {}).status_code == 410
    with world.app.app_context():
        assert media_storage().exists("sha-256", world.digest)  # hidden, not gone: recoverable
    assert post_form(world.client("孙管理"), f"/records/disposals/{disposal.id}/recover", {}).status_code == 303
    assert one(world.app, select(Disposal)).state == "recovered"
    assert world.client("李队长").get(thumb).status_code == 200
    # again, and this time the seven days pass
    post_form(world.client("孙管理"), "/records/retention/propose", key)
    second = one(world.app, select(Disposal).where(Disposal.state == "proposed"))
    post_form(world.client("分管局长"), f"/records/disposals/{second.id}/approve", {})
    review(world)
    with world.app.app_context():
        assert media_storage().exists("sha-256", world.digest)  # within the 7 days nothing is purged
    with world.app.app_context(), db.transaction() as s:
        s.get(Disposal, second.id).recoverable_until = utcnow() - timedelta(seconds=1)
    review(world)
    tomb = one(world.app, select(Disposal).where(Disposal.id == second.id))
    assert tomb.state == "purged" and tomb.purged_at is not None
    assert (tomb.hash, tomb.klass, tomb.records_admin_id, tomb.division_head_id) == (
        world.digest, "six_months", world.users["孙管理"], world.users["分管局长"])
    with world.app.app_context():
        assert not media_storage().exists("sha-256", world.digest)
        report = Report()
        check_media(db.session(), report, media_storage())
        assert report.faults == [] and report.media_checked == 0  # the tombstone stands in for the bytes
        with db.transaction() as s:  # but a file gone without an approved disposal is a fault
            s.get(Disposal, second.id).state = "disposed"
        report = Report()
        check_media(db.session(), report, media_storage())
        assert [f.part for f in report.faults] == ["media"]
        with db.transaction() as s:
            s.get(Disposal, second.id).state = "purged"
    assert post_form(world.client("孙管理"), f"/records/disposals/{second.id}/recover", {}).status_code == 303
    assert one(world.app, select(Disposal).where(Disposal.id == second.id)).state == "purged"


def test_a_hold_stops_disposal_and_a_fact_found_during_the_7_days_stops_the_purge(world):
    age(world)
    review(world)
    post_form(world.client("孙管理"), "/records/holds", {"kind": "case", "case_id": world.case_id, "reason": "行政复议中"})
    assert state(world).klass == "held"
    post_form(world.client("孙管理"), "/records/retention/propose", {"alg": "sha-256", "hash": world.digest})
    assert rows(world.app, select(Disposal)) == []
    hold_id = one(world.app, select(RetentionHold.id))
    post_form(world.client("孙管理"), f"/records/holds/{hold_id}/release", {})
    assert state(world).klass == "six_months"
    post_form(world.client("孙管理"), "/records/retention/propose", {"alg": "sha-256", "hash": world.digest})
    disposal = one(world.app, select(Disposal))
    post_form(world.client("分管局长"), f"/records/disposals/{disposal.id}/approve", {})
    with world.app.app_context(), db.transaction() as s:
        s.add(EvidenceUse(alg="sha-256", hash=world.digest, source="export", ref="证据包 1"))
        s.get(Disposal, disposal.id).recoverable_until = utcnow() - timedelta(seconds=1)
    review(world)
    assert one(world.app, select(Disposal)).state == "recovered"
    assert state(world).klass == "permanent"
    with world.app.app_context():
        assert media_storage().exists("sha-256", world.digest)


def test_no_code_path_but_the_approved_purge_deletes_an_original():
    root = Path(__file__).resolve().parents[2] / "fieldapp"
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "dispose_original(" in p.read_text(encoding="utf-8"))
    assert callers == ["media/storage/base.py", "media/storage/local.py", "media/storage/s3.py", "records/retention.py"]


def test_on_s3_permanent_and_held_objects_carry_a_legal_hold(sqlite_url, tmp_path, s3_server):
    bucket = f"fieldapp-{uuid.uuid4().hex[:16]}"
    settings = {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint": s3_server.endpoint_url,
                "s3_region": s3_server.region, "s3_access_key": s3_server.access_key,
                "s3_secret_key": s3_server.secret_key, "s3_prefix": "media"}
    store = S3Storage(bucket, endpoint_url=s3_server.endpoint_url, region=s3_server.region,
                      access_key=s3_server.access_key, secret_key=s3_server.secret_key, prefix="media")
    store.ensure_bucket()
    w = build(sqlite_url, tmp_path / "var", **settings)
    try:
        review(w)
        rules = store.client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert {r["ID"] for r in rules} >= {"fieldapp:media/expire-uploads", "fieldapp:media/noncurrent-derivatives"}
        key = store._k(original_key("sha-256", w.digest))
        head = store.client.head_object(Bucket=bucket, Key=key)
        assert head.get("ObjectLockMode") == "COMPLIANCE"  # six months: compliance retention only
        assert head.get("ObjectLockLegalHoldStatus") in (None, "OFF")
        post_form(w.client("李队长"), f"/records/cases/{w.case_id}/marks", {"significance": "major_complex"})
        head = store.client.head_object(Bucket=bucket, Key=key)
        assert head.get("ObjectLockLegalHoldStatus") == "ON"
    finally:
        w.app.extensions["fieldapp.engine"].dispose()


def test_a_record_made_today_with_old_bytes_keeps_them_six_months_from_today(world):
    age(world, case_id=world.case_id)  # the first case's record is seven months old
    review(world)
    assert state(world).keep_until < utcnow()  # on its own it would be due
    other_case, other_activity = world.new_case()
    world.push_photo(world.photo, case_id=other_case, activity_id=other_activity)  # the same bytes, today
    kept = state(world)
    assert kept.keep_until > utcnow() + timedelta(days=170)
    assert 'data-testid="due-item"' not in world.client("孙管理").get("/records/retention").get_data(as_text=True)


def test_one_disposal_per_object_and_the_purge_decides_again_under_its_lock(world):
    age(world)
    review(world)
    key = {"alg": "sha-256", "hash": world.digest}
    post_form(world.client("孙管理"), "/records/retention/propose", key)
    post_form(world.client("孙管理"), "/records/retention/propose", key)
    assert len(rows(world.app, select(Disposal))) == 1
    with pytest.raises(IntegrityError), world.app.app_context(), db.transaction() as s:  # the index, not only the check
        s.add(Disposal(alg="sha-256", hash=world.digest, klass="six_months", keep_until=utcnow(), state="proposed"))
    disposal = one(world.app, select(Disposal))
    post_form(world.client("分管局长"), f"/records/disposals/{disposal.id}/approve", {})
    with world.app.app_context(), db.transaction() as s:  # a purge that stopped after its mark is finished
        row = s.get(Disposal, disposal.id)
        row.state, row.recoverable_until = "purging", utcnow() - timedelta(seconds=1)
    assert post_form(world.client("孙管理"), f"/records/disposals/{disposal.id}/recover", {}).status_code == 303
    assert one(world.app, select(Disposal)).state == "purging"  # too late to recover once purging
    review(world)
    assert one(world.app, select(Disposal)).state == "purged"
    with world.app.app_context():
        assert not media_storage().exists("sha-256", world.digest)


def test_a_disposal_whose_object_is_not_due_is_never_purged_whatever_its_row_says(world):
    with world.app.app_context(), db.transaction() as s:
        s.delete(s.get(RetentionState, ("sha-256", world.digest)))
        s.add(Disposal(alg="sha-256", hash=world.digest, klass="six_months", keep_until=utcnow(), state="disposed",
                       recoverable_until=utcnow() - timedelta(seconds=1)))
    with world.app.app_context():
        retention.purge_due()
        assert media_storage().exists("sha-256", world.digest)
    assert one(world.app, select(Disposal)).state == "recovered"
