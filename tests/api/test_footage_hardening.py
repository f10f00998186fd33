"""What an attacker or a mistaken officer tries with footage, on both databases: a station claiming
another station's upload, an officer of another unit naming a unit's footage hash to open it, a
camera logged on the phone while somebody else carries it, a return entered late that must take
back the links it no longer supports."""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.models import Camera, CameraHandout, FootageLink, FootageSegment, Unit, User
from fieldapp.review import cases
from tests.api.test_openapi import api_app
from tests.support.flows import demo_sign_in, post_form, post_json, push_results, run_cli, seed_user, sync_push
from tests.support.soft_device import SoftDevice
from tests.support.station_export import ExportRow, write_manifest
from tests.support.videos import make_video

API = "/api/v1"
T0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def two_units(db_url, tmp_path):
    app = api_app(db_url, tmp_path / "var")
    people = {name: seed_user(app, name, cert, unit, roles=roles) for name, cert, unit, roles in (
        ("张伟", "37030300001", "ZF1", "officer"), ("赵敏", "37030300002", "ZF1", "officer"),
        ("李队长", "37030300009", "ZF1", "lead"), ("他人", "37030300099", "ZF2", "officer"),
        ("他队长", "37030300098", "ZF2", "lead"), ("管理员", "A-1", "ZF1", "admin"))}
    clients = {}
    for name, seeded in people.items():
        clients[name] = app.test_client()
        demo_sign_in(clients[name], seeded.user_id)
    with app.app_context():
        units = {u.code: u.id for u in db.session().execute(select(Unit)).scalars()}
    yield app, people, clients, units
    app.extensions["fieldapp.engine"].dispose()


def phone(app, client, seeded) -> SoftDevice:
    version = client.get(f"{API}/catalogue").get_json()["version"]
    device = SoftDevice(author=str(seeded.user_id), catalogue_version=version)
    assert post_json(client, f"{API}/devices", {"device_id": device.device_id,
                                                "public_key": device.public_key_b64}).status_code == 201
    return device


def station_token(admin, unit_id, name) -> str:
    page = post_form(admin, "/footage/stations", {"unit_id": str(unit_id), "name": name})
    return re.search(r"fst_[A-Za-z0-9_-]+", page.get_data(as_text=True)).group(0)


def upload(client, headers, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    began = client.post(f"{API}/station/uploads", json={"alg": "sha-256", "hash": digest, "size": len(data)},
                        headers=headers).get_json()
    if began["status"] == "uploading":
        client.put(f"{API}/station/uploads/{began['upload_id']}?offset=0", data=data,
                   content_type="application/octet-stream", headers=headers)
        assert client.post(f"{API}/station/uploads/{began['upload_id']}/complete", headers=headers).status_code == 200
    return digest


def row(name: str, serial: str, digest: str) -> dict:
    return {"file_name": name, "camera_serial": serial, "started_at": iso(T0), "ended_at": iso(at(2)),
            "sha256": digest}


def test_a_station_registers_only_what_it_uploaded_itself(two_units, tmp_path):
    app, people, clients, units = two_units
    admin = clients["管理员"]
    mine = {"Authorization": f"Bearer {station_token(admin, units['ZF1'], '一号站')}"}
    theirs = {"Authorization": f"Bearer {station_token(admin, units['ZF2'], '二号站')}"}
    station = app.test_client()
    their_clip = make_video(tmp_path / "b.mp4", 2, start=T0).read_bytes()
    digest = upload(station, theirs, their_clip)
    # Station ZF1 knows the hash of station ZF2's fresh upload and tries to register it first.
    grabbed = station.post(f"{API}/station/segments", json={"files": [row("b.mp4", "NOBODY", digest)]}, headers=mine)
    assert grabbed.get_json()["lines"][0]["code"] == "original_not_uploaded"
    registered = station.post(f"{API}/station/segments", json={"files": [row("b.mp4", "DSJ2", digest)]},
                              headers=theirs).get_json()
    assert registered["lines"][0]["outcome"] in ("stored", "flagged")
    with app.app_context():
        assert db.session().execute(select(FootageSegment.unit_id)).scalar_one() == units["ZF2"]


def test_naming_a_units_footage_in_a_record_of_another_unit_opens_nothing(two_units, tmp_path):
    app, people, clients, units = two_units
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 2, start=T0)
    write_manifest(export, [ExportRow("a.mp4", "DSJ001", T0, at(2), unit_code="ZF1")])
    assert run_cli(app, "footage-import", str(export)).exit_code == 0
    with app.app_context():
        segment = db.session().execute(select(FootageSegment)).scalar_one()
    # An officer of ZF2 pushes a step naming ZF1's footage hash as its own media.
    stranger, device = clients["他人"], phone(app, clients["他人"], people["他人"])
    step = device.revision(payload={"notes": "x", "at": iso(T0)},
                           media=[{"alg": "sha-256", "hash": segment.hash, "size": segment.size, "type": "video/mp4"}])
    push_results(sync_push(stranger, device.batch(step)))
    assert post_json(clients["他队长"], f"/review/media/sha-256/{segment.hash}/original",
                     {"reason": "想看"}).status_code == 404
    own = post_json(clients["李队长"], f"/footage/segments/{segment.id}/open", {})
    assert own.status_code == 200 and clients["李队长"].get(own.get_json()["url"]).status_code == 200


def test_a_camera_taken_on_the_phone_while_another_officer_carries_it_is_not_registered(two_units):
    app, people, clients, units = two_units
    keeper = clients["管理员"]
    assert post_form(keeper, "/footage/cameras", {"serial": "DSJ001", "unit_id": str(units["ZF1"])}).status_code == 303
    with app.app_context():
        camera_id = db.session().execute(select(Camera.id)).scalar_one()
    assert post_form(keeper, "/footage/handouts", {"camera_id": str(camera_id), "user_id": str(people["赵敏"].user_id),
                                                   "taken_at": iso(at(0)), "returned_at": iso(at(3600))}).status_code == 303
    device = phone(app, clients["张伟"], people["张伟"])
    took = device.revision(str(uuid.uuid4()), record_type="camera_use",
                           payload={"camera_serial": "DSJ001", "taken_at": iso(at(600)), "returned_at": None})
    assert push_results(sync_push(clients["张伟"], device.batch(took)))[0]["status"] == "created"
    with app.app_context():
        carriers = db.session().execute(select(User.name).join(CameraHandout, CameraHandout.user_id == User.id)).scalars()
        assert list(carriers) == ["赵敏"]
    # The records administrator sees the officer's log that the register did not take, to settle it.
    page = keeper.get("/footage/cameras").get_data(as_text=True)
    assert 'data-testid="unregistered-handout"' in page and "张伟" in page.split('data-testid="unregistered-handouts"')[1]


def test_a_return_entered_late_takes_back_the_links_it_no_longer_supports(two_units, tmp_path):
    app, people, clients, units = two_units
    keeper, lead = clients["管理员"], people["李队长"]
    assert post_form(keeper, "/footage/cameras", {"serial": "DSJ001", "unit_id": str(units["ZF1"])}).status_code == 303
    with app.app_context(), db.transaction():
        camera_id = db.session().execute(select(Camera.id)).scalar_one()
        case_id = str(cases.create_case(units["ZF1"], lead.user_id, kind="inspection", party_name="某超市").id)
    # Handed to 张伟 with no end; his visit three days later, no camera named on it.
    assert post_form(keeper, "/footage/handouts", {"camera_id": str(camera_id), "user_id": str(people["张伟"].user_id),
                                                   "taken_at": iso(at(0))}).status_code == 303
    device = phone(app, clients["张伟"], people["张伟"])
    activity_id = str(uuid.uuid4())
    visit = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(at(3 * 86400 - 600)), "departed_at": iso(at(3 * 86400 + 600)),
        "officers": [{"name": "张伟", "cert_no": "37030300001"}], "cameras": []})
    assert push_results(sync_push(clients["张伟"], device.batch(visit)))[0]["status"] == "created"
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "late.mp4", 2, start=at(3 * 86400))
    write_manifest(export, [ExportRow("late.mp4", "DSJ001", at(3 * 86400), at(3 * 86400 + 2), unit_code="ZF1")])
    assert run_cli(app, "footage-import", str(export)).exit_code == 0
    with app.app_context():
        assert db.session().execute(select(FootageLink.basis)).scalars().all() == ["handout"]
        handout_id = db.session().execute(select(CameraHandout.id)).scalar_one()
    # The return, entered days later: he gave the camera back an hour after taking it.
    assert post_form(keeper, f"/footage/handouts/{handout_id}/return", {"returned_at": iso(at(3600))}).status_code == 303
    with app.app_context():
        assert db.session().execute(select(FootageLink)).scalars().all() == []


def test_a_visit_moved_later_by_the_officer_loses_the_footage_of_its_old_time(two_units, tmp_path):
    app, people, clients, units = two_units
    lead = people["李队长"]
    with app.app_context(), db.transaction():
        case_id = str(cases.create_case(units["ZF1"], lead.user_id, kind="inspection", party_name="某超市").id)
    device = phone(app, clients["张伟"], people["张伟"])
    activity_id = str(uuid.uuid4())
    payload = {"case_id": case_id, "arrived_at": iso(at(0)), "departed_at": iso(at(600)),
               "officers": [{"name": "张伟", "cert_no": "37030300001"}], "cameras": [{"camera_id": "DSJ001"}]}
    visit = device.revision(activity_id, record_type="activity", parent_id=case_id, payload=payload)
    assert push_results(sync_push(clients["张伟"], device.batch(visit)))[0]["status"] == "created"
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 2, start=at(100))
    write_manifest(export, [ExportRow("a.mp4", "DSJ001", at(100), at(102), unit_code="ZF1")])
    assert run_cli(app, "footage-import", str(export)).exit_code == 0
    with app.app_context():
        assert len(db.session().execute(select(FootageLink)).scalars().all()) == 1
    # The officer corrects the visit: it was two days later.
    moved = {**payload, "arrived_at": iso(at(2 * 86400)), "departed_at": iso(at(2 * 86400 + 600))}
    fix = device.revision(activity_id, 2, moved, record_type="activity", parent_id=case_id, reason="时间录错")
    assert push_results(sync_push(clients["张伟"], device.batch(fix)))[0]["status"] == "created"
    with app.app_context():
        assert db.session().execute(select(FootageLink)).scalars().all() == []


def test_an_unknown_unit_is_refused_before_a_byte_is_copied(two_units, tmp_path):
    app = two_units[0]
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 1, start=T0)
    write_manifest(export, [ExportRow("a.mp4", "NOBODY", T0, at(1))])
    result = run_cli(app, "footage-import", str(export), "--unit", "ZZ9")
    assert result.exit_code == 1 and "unknown_unit" in result.output
    staging = tmp_path / "var" / "media" / "tmp"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_previews_skipped_at_import_are_made_later_by_the_catch_up_command(two_units, tmp_path):
    app = two_units[0]
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 2, start=T0)
    write_manifest(export, [ExportRow("a.mp4", "DSJ001", T0, at(2), unit_code="ZF1")])
    assert run_cli(app, "footage-import", str(export), "--no-previews").exit_code == 0
    with app.app_context():
        assert db.session().execute(select(FootageSegment.previews)).scalar_one() == []
    result = run_cli(app, "footage-previews")
    assert result.exit_code == 0 and "previews 1 made, 0 could not" in result.output
    with app.app_context():
        assert set(db.session().execute(select(FootageSegment.previews)).scalar_one()) == {"poster", "preview"}
    assert "previews 0 made" in run_cli(app, "footage-previews").output  # nothing left to do
