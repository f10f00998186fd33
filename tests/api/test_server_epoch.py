"""The server's epoch (issue 19): every push, pull and session answer names the history the database
continues, a restore (a new ``server_epochs`` row) changes it, and what a phone reports of its
re-offer after such a change is kept on its device row — checked strictly, never failing the
heartbeat it rides on."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.config import Settings
from fieldapp.models import INSTALL_EPOCH, Device, Revision, ServerEpoch
from tests.support.flows import post_json
from tests.support.flows import push_results as results
from tests.support.flows import sync_push as push

HASH_A = "a" * 64
HASH_B = "0123456789abcdef" * 4


def answers(client, device) -> dict:
    """The epoch as the session, a push and a pull each tell it."""
    session = client.get("/api/v1/session").get_json()
    pushed = push(client, device.batch())
    assert pushed.status_code == 200, pushed.get_json()
    pulled = client.get("/api/v1/sync/pull", query_string={"cursor": "0"})
    assert pulled.status_code == 200, pulled.get_json()
    return {"session": session["server_epoch"], "push": pushed.get_json()["server_epoch"],
            "pull": pulled.get_json()["server_epoch"]}


def restore(app, backup_id: str = "20261201T020000Z-site-b") -> str:
    """What a restore leaves behind: a new epoch row (written as the restore writes it)."""
    with app.app_context(), db.write_transaction() as s:
        row = ServerEpoch(backup_id=backup_id, backup_taken_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
                          restored_by="test")
        s.add(row)
        s.flush()
        return str(row.id)


def heartbeat(client, device, reoffer) -> dict:
    body = {"app_version": "0.3.0", "unsynced_items": 2, "sent_at": datetime.now(UTC).isoformat()}
    if reoffer is not ...:
        body["reoffer"] = reoffer
    answer = post_json(client, f"/api/v1/devices/{device.device_id}/heartbeat", body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def stored_reoffer(app, device):
    with app.app_context():
        return db.session().get(Device, uuid.UUID(device.device_id)).reoffer


def good_reoffer(**changes) -> dict:
    return {"epoch": str(uuid.uuid4()), "at": "2026-12-05T08:30:00.000Z", "revisions": 12, "records": 5,
            "beyond_window": 3, "lost_originals": [HASH_A, HASH_B], "lost_originals_total": 2, **changes}


def test_push_pull_and_session_name_the_install_epoch_until_a_restore_starts_another(sync_app):
    app, client, device, _ = sync_app
    before = answers(client, device)
    assert before["session"] == before["push"] == before["pull"] == {
        "id": INSTALL_EPOCH, "since": None, "restored_from": None}
    session = client.get("/api/v1/session").get_json()
    assert session["resend_window_days"] == 30

    new_id = restore(app)
    after = answers(client, device)
    assert after["session"] == after["push"] == after["pull"]
    assert after["session"]["id"] == new_id != INSTALL_EPOCH
    assert after["session"]["restored_from"] == {"backup_id": "20261201T020000Z-site-b",
                                                 "taken_at": "2026-12-01T02:00:00+00:00"}
    assert after["session"]["since"] is not None

    # The latest restore is the epoch: a second one changes it again.
    newer = restore(app, "20261203T020000Z-site-b")
    assert answers(client, device)["push"]["id"] == newer != new_id


def test_a_signed_out_session_answer_tells_no_epoch(sync_app):
    app, _client, _device, _ = sync_app
    answer = app.test_client().get("/api/v1/session").get_json()
    assert answer["authenticated"] is False and "server_epoch" not in answer


def test_the_resend_window_is_a_setting(sync_app, monkeypatch):
    app, client, _device, _ = sync_app
    app.config["FIELDAPP_SETTINGS"].resend_window_days = 7
    assert client.get("/api/v1/session").get_json()["resend_window_days"] == 7
    monkeypatch.setenv("FIELDAPP_RESEND_WINDOW_DAYS", "45")
    assert Settings().resend_window_days == 45


def test_a_revision_offered_again_after_a_restore_is_answered_duplicate_and_stored_once(sync_app):
    app, client, device, _ = sync_app
    item = device.revision()
    assert results(push(client, device.batch(item)))[0]["status"] == "created"
    restore(app)
    again = push(client, device.batch(item))
    assert results(again)[0]["status"] == "duplicate" and again.get_json()["server_epoch"]["id"] != INSTALL_EPOCH
    with app.app_context():
        assert db.session().execute(select(func.count()).select_from(Revision)).scalar_one() == 1


def test_a_heartbeat_with_a_reoffer_keeps_it_on_the_device(sync_app):
    app, client, device, _ = sync_app
    assert stored_reoffer(app, device) is None
    report = good_reoffer()
    heartbeat(client, device, report)
    stored = stored_reoffer(app, device)
    assert stored == {**report, "at": "2026-12-05T08:30:00+00:00"}
    # A heartbeat without one leaves the last report as it was.
    heartbeat(client, device, ...)
    assert stored_reoffer(app, device) == stored
    # So does the push's heartbeat, which carries it too.
    newer = good_reoffer(revisions=0, beyond_window=0, lost_originals=[], records=0, lost_originals_total=0)
    push(client, device.batch(device.revision(), heartbeat={"reoffer": newer}))
    assert stored_reoffer(app, device)["epoch"] == newer["epoch"]
    assert stored_reoffer(app, device)["lost_originals"] == []


@pytest.mark.parametrize("bad", [
    "not an object",
    ["a", "list"],
    {},
    good_reoffer(epoch=""),
    good_reoffer(epoch="x" * 41),
    good_reoffer(epoch=12),
    good_reoffer(at="yesterday"),
    good_reoffer(at="2026-12-05T08:30:00"),  # no time zone
    good_reoffer(revisions=-1),
    good_reoffer(revisions=1.5),
    good_reoffer(revisions=True),
    good_reoffer(revisions="3"),
    good_reoffer(beyond_window=None),
    good_reoffer(beyond_window=2**40),
    good_reoffer(records=-2),
    good_reoffer(lost_originals="a" * 64),
    good_reoffer(lost_originals=[HASH_A.upper()]),
    good_reoffer(lost_originals=[HASH_A[:-1]]),
    good_reoffer(lost_originals=[HASH_A + "0"]),
    good_reoffer(lost_originals=[7]),
    good_reoffer(lost_originals=[f"{i:064x}" for i in range(501)]),
    {k: v for k, v in good_reoffer().items() if k != "revisions"},
    {k: v for k, v in good_reoffer().items() if k != "lost_originals"},
])
def test_a_malformed_reoffer_is_ignored_and_the_heartbeat_still_succeeds(sync_app, bad):
    app, client, device, _ = sync_app
    earlier = good_reoffer()
    heartbeat(client, device, earlier)
    answer = heartbeat(client, device, bad)
    assert answer["ok"] is True
    with app.app_context():
        stored = db.session().get(Device, uuid.UUID(device.device_id))
        assert stored.reoffer["epoch"] == earlier["epoch"]  # kept, not replaced by the malformed one
        assert stored.unsynced_items == 2  # the rest of the heartbeat was taken


def test_five_hundred_lost_originals_are_accepted(sync_app):
    app, client, device, _ = sync_app
    hashes = [f"{i:064x}" for i in range(500)]
    heartbeat(client, device, good_reoffer(lost_originals=hashes, lost_originals_total=620))
    stored = stored_reoffer(app, device)
    assert stored["lost_originals"] == hashes and stored["lost_originals_total"] == 620


def test_a_device_unknown_after_a_restore_registers_again_with_the_same_id_and_key(sync_app):
    """A phone registered after the backup was taken: the restored server does not know it. The
    phone registers again with the same id and key, and is answered as a new registration."""
    app, client, device, _ = sync_app
    with app.app_context(), db.write_transaction() as s:
        s.delete(s.get(Device, uuid.UUID(device.device_id)))
    restore(app)
    refused = push(client, device.batch(device.revision()))
    assert refused.status_code == 404 and refused.get_json()["error"] == "unknown_device"
    again = post_json(client, "/api/v1/devices", {"device_id": device.device_id,
                                                  "public_key": device.public_key_b64, "label": "测试手机"})
    assert again.status_code == 201
    assert results(push(client, device.batch(device.revision())))[0]["status"] == "created"
