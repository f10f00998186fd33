"""Pushing signed revisions: idempotent, conflict-detecting, every refusal explained, on both databases."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from fieldapp import db
from fieldapp.models import Case, Device, Revision, SyncedRecord, User, utcnow
from tests.support.flows import csrf_token, demo_sign_in, post_json, seed_user
from tests.support.flows import push_results as results
from tests.support.flows import sync_push as push
from tests.support.soft_device import SoftDevice
from tests.support.pulling import pull_all


def revision_count(app) -> int:
    with app.app_context():
        return db.session().execute(select(func.count()).select_from(Revision)).scalar_one()


def test_registering_a_device_is_idempotent_and_bound_to_its_user_and_key(sync_app):
    app, client, device, _ = sync_app
    again = post_json(client, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64})
    assert again.status_code == 200
    other_key = SoftDevice(author=device.author, device_id=device.device_id)
    clash = post_json(client, "/api/v1/devices", {"device_id": device.device_id, "public_key": other_key.public_key_b64})
    assert clash.status_code == 409 and clash.get_json()["error"] == "device_conflict"
    garbage = post_json(client, "/api/v1/devices", {"device_id": str(uuid.uuid4()), "public_key": "bm90IGEga2V5"})
    assert garbage.status_code == 400 and garbage.get_json()["error"] == "bad_device"


def test_the_same_revision_twice_is_accepted_quietly(sync_app):
    app, client, device, _ = sync_app
    item = device.revision()
    assert results(push(client, device.batch(item)))[0]["status"] == "created"
    again = results(push(client, device.batch(item)))[0]
    assert again["status"] == "duplicate"
    assert revision_count(app) == 1


def test_the_same_id_and_revision_with_other_content_is_a_conflict_and_nothing_is_overwritten(sync_app):
    app, client, device, _ = sync_app
    first = device.revision(payload={"notes": "原始记录"})
    push(client, device.batch(first))
    other = device.revision(record_id=first["record_id"], payload={"notes": "改过的记录"})
    answer = results(push(client, device.batch(other)))[0]
    assert answer["status"] == "conflict" and answer["error"] == "revision_exists"
    assert answer["head"]["payload"] == {"notes": "原始记录"} and answer["head"]["revision"] == 1
    with app.app_context():
        stored = db.session().execute(select(Revision)).scalar_one()
        assert stored.payload == {"notes": "原始记录"}


def _phone_of(app, name: str, cert_no: str, unit_code: str, roles: str = "officer"):
    seeded = seed_user(app, name, cert_no, unit_code, roles)
    client = app.test_client()
    demo_sign_in(client, seeded.user_id)
    phone = SoftDevice(author=str(seeded.user_id), catalogue_version=1)
    registered = post_json(client, "/api/v1/devices", {"device_id": phone.device_id,
                                                       "public_key": phone.public_key_b64, "label": "手机"})
    assert registered.status_code == 201
    return client, phone


def test_a_conflict_shows_the_servers_head_only_to_someone_who_may_read_the_record(sync_app):
    """Hardening item 2: pushing revision 1 of a taken record id must not reveal another author's
    record (places, officers, notes) to another unit, nor to an officer of the same unit."""
    app, client, device, _ = sync_app
    secret = {"notes": "当事人住址：临淄区某路 12 号", "officers": ["C-1"]}
    first = device.revision(payload=secret)
    assert results(push(client, device.batch(first)))[0]["status"] == "created"
    for who, unit, roles in (("外单位", "QX", "officer"), ("同事", "ZF1", "officer"), ("外单位负责人", "QX", "lead")):
        other_client, other_phone = _phone_of(app, who, f"X-{who}", unit, roles)
        probe = other_phone.revision(record_id=first["record_id"], payload={"notes": "探测"})
        response = push(other_client, other_phone.batch(probe))
        answer = results(response)[0]
        assert answer == {"record_id": first["record_id"], "revision": 1, "status": "rejected",
                          "error": "id_taken", "message": "this record id is taken"}, who
        assert "临淄区某路" not in response.get_data(as_text=True)
    # The author and the unit's lead may read it: they get the head to resolve against.
    own = results(push(client, device.batch(device.revision(record_id=first["record_id"], payload={"notes": "改"}))))[0]
    assert own["status"] == "conflict" and own["head"]["payload"] == secret
    lead_client, lead_phone = _phone_of(app, "负责人", "L-1", "ZF1", "lead")
    lead_answer = results(push(lead_client, lead_phone.batch(
        lead_phone.revision(record_id=first["record_id"], payload={"notes": "x"}))))[0]
    assert lead_answer["status"] == "conflict" and lead_answer["head"]["payload"] == secret
    with app.app_context():
        assert db.session().execute(select(Revision.payload)).scalar_one() == secret


def test_each_answer_in_a_batch_is_true_of_what_is_stored(sync_app):
    """Hardening item 3: two contents for one new (record, 1) in one batch are created then
    conflict; the very same revision twice is created then duplicate."""
    app, client, device, _ = sync_app
    first = device.revision(payload={"notes": "第一份"})
    rival = device.revision(record_id=first["record_id"], payload={"notes": "第二份"})
    again = dict(first)
    answers = results(push(client, device.batch(first, rival, again)))
    assert [(a["status"], a.get("error")) for a in answers] == [
        ("created", None), ("conflict", "revision_exists"), ("duplicate", None)]
    assert answers[1]["head"]["payload"] == {"notes": "第一份"}
    # The same through the one-by-one path (a record's later revisions): revision 2 twice, differing.
    second = device.revision(record_id=first["record_id"], revision=2, payload={"notes": "二"})
    second_rival = device.revision(record_id=first["record_id"], revision=2, payload={"notes": "二b"})
    answers = results(push(client, device.batch(second, second_rival, dict(second))))
    assert [(a["status"], a.get("error")) for a in answers] == [
        ("created", None), ("conflict", "revision_exists"), ("duplicate", None)]
    # Someone else's item for the same new id in the batch is never answered "created".
    fresh = device.revision(payload={"notes": "新"})
    forged = device.revision(record_id=fresh["record_id"], payload={"notes": "新"}, author=str(uuid.uuid4()))
    answers = results(push(client, device.batch(fresh, forged)))
    assert [a["status"] for a in answers] == ["created", "rejected"]
    with app.app_context():
        stored = db.session().execute(select(Revision).where(
            Revision.record_id == uuid.UUID(first["record_id"]))).scalars()
        assert {r.revision: r.payload["notes"] for r in stored} == {1: "第一份", 2: "二"}


def test_a_stale_parent_is_a_conflict_with_the_servers_head(sync_app):
    app, client, device, _ = sync_app
    first = device.revision(payload={"v": 1})
    second = device.revision(record_id=first["record_id"], revision=2, payload={"v": 2})
    assert [r["status"] for r in results(push(client, device.batch(first, second)))] == ["created", "created"]
    # Another revision 2 made from revision 1 (say in a second tab) now builds on a stale parent.
    rival = device.revision(record_id=first["record_id"], revision=2, payload={"v": "2b"})
    answer = results(push(client, device.batch(rival)))[0]
    assert answer["status"] == "conflict" and answer["head"]["payload"] == {"v": 2}
    # Revision 4 without revision 3: the server does not have its parent.
    gap = device.revision(record_id=first["record_id"], revision=4, payload={"v": 4})
    answer = results(push(client, device.batch(gap)))[0]
    assert answer["status"] == "conflict" and answer["error"] == "stale_parent"
    # The officer resolves on top of the server's head.
    resolved = device.revision(record_id=first["record_id"], revision=3, payload={"v": 3}, reason="合并")
    assert results(push(client, device.batch(resolved)))[0]["status"] == "created"
    assert revision_count(app) == 3


def test_withdrawing_a_record_the_server_holds_needs_a_reason(sync_app):
    """Art. 30: nothing synced is deleted; withdrawing it is a revision that says why, and the
    record stays, marked withdrawn."""
    app, client, device, _ = sync_app
    first = device.revision(payload={"notes": "误录"})
    assert results(push(client, device.batch(first)))[0]["status"] == "created"
    silent = device.revision(record_id=first["record_id"], revision=2, payload={"notes": "误录", "withdrawn": True})
    answer = results(push(client, device.batch(silent)))[0]
    assert answer["status"] == "rejected" and answer["error"] == "withdrawal_needs_reason"
    explained = device.revision(record_id=first["record_id"], revision=2, reason="重复录入",
                                payload={"notes": "误录", "withdrawn": True, "withdrawn_reason": "重复录入"})
    assert results(push(client, device.batch(explained)))[0]["status"] == "created"
    assert results(push(client, device.batch(explained)))[0]["status"] == "duplicate"
    with app.app_context():
        assert revision_count(app) == 2
        assert db.session().get(SyncedRecord, uuid.UUID(first["record_id"])).withdrawn
    # Withdrawn before it ever reached the server (both revisions in one push): nothing was synced.
    fresh = device.revision(payload={"notes": "草稿"})
    gone = device.revision(record_id=fresh["record_id"], revision=2, payload={"notes": "草稿", "withdrawn": True})
    assert [r["status"] for r in results(push(client, device.batch(fresh, gone)))] == ["created", "created"]


def test_twenty_concurrent_pushes_of_one_revision_store_exactly_one_row(sync_app):
    app, client, device, seeded = sync_app
    item = device.revision()
    cookie = client.get_cookie("fieldapp_session").value
    statuses, errors = [], []

    def one():
        c = app.test_client()
        c.set_cookie("fieldapp_session", cookie, domain="localhost")
        try:
            r = c.post("/api/v1/sync/push", json=device.batch(item), headers={"X-CSRFToken": csrf_token(c)})
            statuses.append((r.status_code, r.get_json()["results"][0]["status"]))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(statuses) == sorted([(200, "created")] + [(200, "duplicate")] * 19)
    assert revision_count(app) == 1


def test_bad_input_gets_a_clear_code_and_stores_nothing_half(sync_app):
    app, client, device, _ = sync_app
    kept = device.revision(payload={"notes": "先前已同步"})
    push(client, device.batch(kept))

    malformed = client.post("/api/v1/sync/push", data="{not json", content_type="application/json",
                            headers={"X-CSRFToken": csrf_token(client)})
    assert malformed.status_code == 400 and malformed.get_json()["error"] == "bad_request"
    assert push(client, {"device_id": device.device_id, "items": "x"}).status_code == 400

    wrong_types = device.revision()
    wrong_types["revision"] = "one"
    unsigned = device.revision()
    del unsigned["signature"]
    tampered = device.revision(payload={"notes": "签名后被改"})
    tampered["payload"] = {"notes": "被篡改"}
    unknown_catalogue = device.revision(catalogue_version=999)
    floats = device.revision(payload={"lat_e6": 36825100})
    floats["payload"] = {"lat": 36.8251}  # what a phone must never send: floats cannot be signed canonically
    someone_else = device.revision(author=str(uuid.uuid4()))
    answers = results(push(client, device.batch(wrong_types, unsigned, tampered, unknown_catalogue, floats,
                                                someone_else, "not an object")))
    assert [a["status"] for a in answers] == ["rejected"] * 7
    assert [a["error"] for a in answers] == ["bad_field", "unsigned", "bad_signature", "unknown_catalogue_version",
                                             "float_not_allowed", "not_author", "bad_item"]
    assert all(a["message"] for a in answers)
    assert revision_count(app) == 1
    assert results(push(client, device.batch(kept)))[0]["status"] == "duplicate"  # earlier data intact


def test_a_revoked_device_is_refused_and_its_earlier_revisions_stay(sync_app):
    app, client, device, _ = sync_app
    push(client, device.batch(device.revision()))
    with app.app_context(), db.transaction():
        db.session().execute(update(Device).values(revoked_at=utcnow()))
    refused = push(client, device.batch(device.revision()))
    assert refused.status_code == 403 and refused.get_json()["error"] == "device_revoked"
    assert revision_count(app) == 1
    unknown = push(client, SoftDevice(author=device.author).batch())
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "unknown_device"


def test_a_phone_clock_reset_to_1970_is_flagged_never_refused(sync_app):
    app, client, device, _ = sync_app
    item = device.revision(device_time="1970-01-01T00:03:00Z")
    answer = results(push(client, device.batch(item, sent_at="1970-01-01T00:05:00+00:00")))[0]
    assert answer["status"] == "created"
    with app.app_context():
        stored = db.session().execute(select(Revision)).scalar_one()
        assert stored.clock_skew_flag and stored.clock_skew_seconds > 50 * 365 * 86400
        assert stored.device_time == "1970-01-01T00:03:00Z" and stored.received_at.year >= 2026


def test_heartbeat_and_push_report_what_is_still_on_the_phone(sync_app):
    app, client, device, _ = sync_app
    beat = post_json(client, f"/api/v1/devices/{device.device_id}/heartbeat", {
        "app_version": "0.1.0", "catalogue_version": 1, "unsynced_items": 7, "bytes_pending": 12_345_678,
        "oldest_unsynced_at": "2026-11-27T01:00:00Z", "sent_at": datetime.now(UTC).isoformat()})
    assert beat.status_code == 200
    with app.app_context():
        stored = db.session().get(Device, uuid.UUID(device.device_id))
        assert (stored.unsynced_items, stored.bytes_pending) == (7, 12_345_678)
        assert stored.oldest_unsynced_at.isoformat().startswith("2026-11-27T01:00")
    push(client, device.batch(device.revision(), heartbeat={"unsynced_items": 0, "bytes_pending": 0}))
    with app.app_context():
        assert db.session().get(Device, uuid.UUID(device.device_id)).unsynced_items == 0


def test_a_case_opened_on_a_phone_reaches_the_other_phones_of_the_unit_by_pull(sync_app):
    app, client, device, seeded = sync_app
    colleague = seed_user(app, "李娜", "C-2", "ZF1")
    other_phone = app.test_client()
    demo_sign_in(other_phone, colleague.user_id)
    first = pull_all(other_phone)
    assert first["cases"] == [] and first["full"] is True

    case = device.revision(record_type="case", payload={"kind": "inspection", "party_name": "现场新建超市",
                                                          "credit_code": None, "address": None,
                                                          "case_number": None, "flags": []})
    assert results(push(client, device.batch(case)))[0]["status"] == "created"
    pulled = pull_all(other_phone, first["cursor"])
    assert [c["party_name"] for c in pulled["cases"]] == ["现场新建超市"]
    assert pulled["cases"][0]["origin"] == "phone" and pulled["cursor"] != first["cursor"]
    assert pull_all(other_phone, pulled["cursor"])["cases"] == []
    outsider = seed_user(app, "外单位", "C-3", "QX")
    stranger = app.test_client()
    demo_sign_in(stranger, outsider.user_id)
    assert pull_all(stranger, first["cursor"])["cases"] == []
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case["record_id"])).unit_id == db.session().get(User, seeded.user_id).unit_id
    for bad in ("-1", "f.1", "r.0.0.c.not-a-uuid", "f.99999999999999999999.1", "x"):
        assert other_phone.get("/api/v1/sync/pull", query_string={"cursor": bad}).status_code == 400, bad


def test_verify_signatures_reports_a_revision_edited_in_the_database(sync_app):
    from tests.support.flows import run_cli

    app, client, device, _ = sync_app
    items = [device.revision(payload={"notes": f"记录{i}"}) for i in range(3)]
    assert [r["status"] for r in results(push(client, device.batch(*items)))] == ["created"] * 3
    clean = run_cli(app, "verify-signatures")
    assert clean.exit_code == 0 and "3 revisions checked, 0 bad" in clean.output

    with app.app_context(), db.transaction():
        db.session().execute(update(Revision).where(Revision.record_id == uuid.UUID(items[1]["record_id"]))
                             .values(payload={"notes": "事后改动"}))
    caught = run_cli(app, "verify-signatures")
    assert caught.exit_code == 1
    assert f"BAD {items[1]['record_id']} revision 1" in caught.output and "1 bad" in caught.output


def test_revoking_a_device_from_the_command_line(sync_app):
    from tests.support.flows import run_cli

    app, client, device, _ = sync_app
    assert run_cli(app, "revoke-device", device.device_id).exit_code == 0
    assert push(client, device.batch(device.revision())).status_code == 403
    assert run_cli(app, "revoke-device", str(uuid.uuid4())).exit_code != 0
