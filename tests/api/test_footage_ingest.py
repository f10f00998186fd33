"""Body-camera footage from a station's export folder to the lead's screens, on both databases.

One visit of a continuous-recording case, two cameras' worth of awkward files: the export is
ingested twice (the second time changes nothing), the good files link to the visit by camera and
time with nobody typing, the bad ones are reported and skipped, an unregistered camera's file waits
in the queue until a lead links it in one tap, and the recording duties are judged from what the
camera actually recorded. Playing a segment registers the opening and answers byte ranges.
"""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance import engine
from fieldapp.models import (Camera, CameraHandout, FootageLink, FootageSegment, OriginalAccess, User)
from fieldapp.review import cases
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, post_json, push_results, run_cli, seed_user, sync_push
from tests.support.soft_device import SoftDevice
from tests.support.station_export import ExportRow, write_manifest
from tests.support.videos import make_video, truncate

# Two days ago, on a whole second (manifests carry seconds).
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
OFFICER_CERT = "37030300001"


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def scene(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True, footage_clock_tolerance_seconds=2,
                   continuous_gap_tolerance_seconds=1)
    officer = seed_user(app, "张伟", OFFICER_CERT, "ZF1")
    seed_user(app, "赵敏", "37030300002", "ZF1")
    lead = seed_user(app, "李队长", "37030300009", "ZF1", roles="lead")
    keeper = seed_user(app, "王管理", "37030300010", "ZF1", roles="records_admin")
    phone, lead_client, keeper_client = app.test_client(), app.test_client(), app.test_client()
    demo_sign_in(phone, officer.user_id)
    demo_sign_in(lead_client, lead.user_id)
    demo_sign_in(keeper_client, keeper.user_id)
    catalogue = phone.get("/api/v1/catalogue").get_json()
    device = SoftDevice(author=str(officer.user_id), catalogue_version=catalogue["version"])
    post_json(phone, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64})
    with app.app_context(), db.transaction():
        unit_id = db.session().get(User, officer.user_id).unit_id
        case = cases.create_case(unit_id, lead.user_id, kind="penalty", party_name="临淄区齐都镇鲜果超市",
                                 case_number="临市监罚〔2026〕9号", flags=("life_health",))
        case_id = str(case.id)
    # The records administrator registers the camera and hands it to the officer for the day.
    assert post_form(keeper_client, "/footage/cameras", {"serial": "DSJ001", "label": "一号"}).status_code == 303
    with app.app_context():
        camera_id = db.session().execute(select(Camera.id).where(Camera.serial == "DSJ001")).scalar_one()
    handed = post_form(keeper_client, "/footage/handouts", {
        "camera_id": str(camera_id), "user_id": str(officer.user_id), "taken_at": iso(at(-3600)),
        "returned_at": iso(at(3600))})
    assert handed.status_code == 303
    # The visit: 14 s on site (a short one, so that the test's videos are short), the camera named,
    # an inspection step at +3 s declared as recorded on it.
    activity_id = str(uuid.uuid4())
    visit = [device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(at(14)), "continuous_required": False,
        "officers": [{"name": "张伟", "cert_no": OFFICER_CERT, "cert_shown": True},
                     {"name": "赵敏", "cert_no": "37030300002", "cert_shown": True}],
        "cameras": [{"camera_id": "DSJ001", "started_at": iso(T0)}]}),
        device.revision(str(uuid.uuid4()), parent_id=activity_id, payload={
            "activity_id": activity_id, "case_id": case_id, "step_type": "penalty_onsite_inspection", "at": iso(at(3)),
            "av": "body_camera", "av_camera_id": "DSJ001", "documents": ["现场笔录"]})]
    assert {r["status"] for r in push_results(sync_push(phone, device.batch(*visit)))} == {"created"}
    yield app, phone, device, lead_client, keeper_client, case_id, activity_id
    app.extensions["fieldapp.engine"].dispose()


def station_export(folder):
    folder.mkdir()
    make_video(folder / "a.mp4", 6, start=at(-1))
    make_video(folder / "b.mp4", 6, start=at(8))
    make_video(folder / "c.mp4", 4, start=at(2))
    make_video(folder / "d.mp4", 2, start=at(20))
    make_video(folder / "d2.mp4", 2, start=at(24))
    (folder / "e.mp4").write_bytes(b"")
    truncate(make_video(folder / "f.mp4", 4, start=at(40)))
    make_video(folder / "h.mp4", 2, start=at(60))
    make_video(folder / "extra.mp4", 1)
    local = (at(60).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))).strftime("%Y-%m-%d %H:%M:%S")
    local_end = (at(62).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))).strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        ExportRow("a.mp4", "DSJ001", at(-1), at(5), officer_no=OFFICER_CERT, unit_code="ZF1", collected=at(600),
                  important=True),
        ExportRow("b.mp4", "DSJ001", at(8), at(14), officer_no=OFFICER_CERT, unit_code="ZF1", collected=at(600)),
        # A camera nobody registered, no officer number: ingested, flagged and queued.
        ExportRow("c.mp4", "UNREG9", at(2), at(6), unit_code="ZF1", collected=at(600)),
        ExportRow("d.mp4", "DSJ001", at(20), at(22), md5="0" * 32, sm3=None),  # the station's MD5 disagrees
        ExportRow("d2.mp4", "DSJ001", at(24), at(26), sm3="0" * 64),  # its SM3 disagrees
        ExportRow("e.mp4", "DSJ001", at(30), at(31)),  # 0 bytes
        ExportRow("f.mp4", "DSJ001", at(40), at(44)),  # cut short: still evidence
        ExportRow("g.mp4", "DSJ001", at(50), at(52)),  # named, not in the folder
        ExportRow("../etc/passwd", "DSJ001", at(50), at(52)),
        ExportRow("h.mp4", "DSJ001", local, local_end),  # local time without offset
        ExportRow("a.mp4", "DSJ001", at(-1), at(5), officer_no=OFFICER_CERT, unit_code="ZF1", collected=at(600),
                  important=True),  # a duplicate row
    ]
    # A Windows station: GBK, Chinese headers.
    write_manifest(folder, rows, encoding="gbk", chinese=True)
    return folder


def import_json(app, folder) -> dict:
    result = run_cli(app, "footage-import", str(folder), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def outcomes(report: dict) -> dict[str, tuple[str, str]]:
    return {(ln.get("file_name") or "") + (f"#{ln['line']}" if ln["code"] == "duplicate_row" else ""):
            (ln["outcome"], ln["code"]) for ln in report["lines"]}


def open_findings(app, case_id: str) -> dict[str, dict]:
    with app.app_context():
        return {h.rule_id: h.detail for h in engine.findings_for(uuid.UUID(case_id))}


def test_a_station_export_is_ingested_once_linked_without_typing_and_judged_by_its_footage(scene, tmp_path):
    app, phone, device, lead, keeper, case_id, activity_id = scene
    before = open_findings(app, case_id)
    assert "av_footage_pending" in before  # declared on the camera, nothing in yet
    folder = station_export(tmp_path / "export")

    report = import_json(app, folder)
    seen = outcomes(report)
    assert seen["a.mp4"] == ("stored", "stored") or seen["a.mp4"][0] == "stored"
    assert seen["b.mp4"][0] == "stored"
    assert seen["c.mp4"] == ("flagged", "unregistered_camera")
    assert seen["d.mp4"] == ("skipped", "hash_mismatch") and seen["d2.mp4"] == ("skipped", "hash_mismatch")
    assert seen["e.mp4"] == ("skipped", "empty_file")
    assert seen["f.mp4"][0] == "flagged" and "truncated" in seen["f.mp4"][1]
    assert seen["g.mp4"] == ("skipped", "file_missing")
    assert seen["../etc/passwd"] == ("skipped", "path_in_name")
    assert ("warning", "zone_assumed") in {(ln["outcome"], ln["code"]) for ln in report["lines"]
                                          if ln.get("file_name") == "h.mp4"}
    assert seen["extra.mp4"] == ("unlisted", "no_manifest_row")
    assert any(ln["code"] == "duplicate_row" for ln in report["lines"])
    assert report["stored"] == 5 and report["encoding"] in ("gb18030", "gbk")
    assert report["previews"]["made"] >= 4  # the cut file has none

    with app.app_context():
        segments = {s.file_name: s for s in db.session().execute(select(FootageSegment)).scalars()}
        links = db.session().execute(select(FootageLink)).scalars().all()
    assert set(segments) == {"a.mp4", "b.mp4", "c.mp4", "f.mp4", "h.mp4"}
    a = segments["a.mp4"]
    assert a.important and "important" in a.keep_reasons and "case" in a.keep_reasons
    assert len(a.sm3) == 64 and a.container_duration_s == pytest.approx(6, abs=0.5)
    assert set(a.previews) == {"poster", "preview"}
    assert "zone_assumed" in segments["h.mp4"].flags
    assert {"truncated", "no_preview"} <= set(segments["f.mp4"].flags)
    # Linked by camera and time: a and b to the visit; the unregistered camera's file to nothing.
    linked = {(str(link.segment_id), str(link.activity_id), link.case_id is not None) for link in links}
    assert (str(a.id), activity_id, True) in linked and (str(segments["b.mp4"].id), activity_id, True) in linked
    assert not any(str(segments["c.mp4"].id) == s for s, _, _ in linked)

    # Judged by the footage: the step at +3 s is on a.mp4; the 3-s hole 5..8 s is an art. 9 gap.
    found = open_findings(app, case_id)
    assert "av_footage_pending" not in found and "av_missing" not in found
    assert found["continuous_gap"]["source"] == "footage" and found["continuous_gap"]["camera_id"] == "DSJ001"
    # The lead's timeline draws the camera's two segments and the red hole between them.
    case_page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert case_page.count('data-testid="footage-bar"') == 2 and case_page.count('data-testid="footage-gap"') == 1

    # The same export again: nothing changes.
    again = import_json(app, folder)
    assert again["stored"] == 0 and again["unchanged"] == 5
    with app.app_context():
        assert db.session().execute(select(FootageSegment)).scalars().all().__len__() == 5

    # The officer explains the hole (a declared interruption 5..8 s): the gap is explained.
    stop = device.revision(str(uuid.uuid4()), record_type="interruption", parent_id=activity_id, payload={
        "activity_id": activity_id, "camera_id": "DSJ001", "stopped_at": iso(at(5)), "resumed_at": iso(at(8)),
        "reason": "battery", "explanation": "更换电池", "cannot_continue": False})
    assert push_results(sync_push(phone, device.batch(stop)))[0]["status"] == "created"
    assert "continuous_gap" not in open_findings(app, case_id)
    case_page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert 'data-testid="footage-gap"' not in case_page and 'data-testid="footage-gap-explained"' in case_page

    # The lead's queue: the unregistered camera's file, linked in one tap from a suggestion.
    page = lead.get("/footage/queue")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "c.mp4" in html and activity_id[:8] in html
    linked_now = post_form(lead, f"/footage/segments/{segments['c.mp4'].id}/link", {"activity_id": activity_id})
    assert linked_now.status_code == 303
    assert "c.mp4" not in lead.get("/footage/queue").get_data(as_text=True).split("Visits that should")[0].split(
        "data-testid=\"unlinked\"")[1]

    # The officer's phone sees the visit's footage.
    visits = phone.get("/api/v1/footage/visits").get_json()["visits"]
    assert [(v["activity_id"], v["state"], v["segments"]) for v in visits] == [(activity_id, "linked", 3)]

    # Playing a segment: the opening is registered first, then byte ranges are answered.
    opened = post_json(lead, f"/footage/segments/{a.id}/open", {})
    assert opened.status_code == 200
    ranged = lead.get(opened.get_json()["url"], headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100
    with app.app_context():
        access = db.session().execute(select(OriginalAccess).where(OriginalAccess.hash == a.hash)).scalars().all()
    assert len(access) == 1 and access[0].reason == "own_unit_review"
    assert lead.get(f"/footage/segments/{a.id}/poster").headers["Content-Type"] == "image/jpeg"


def test_the_phone_logs_taking_and_returning_a_camera_and_footage_follows_the_officer(scene, tmp_path):
    """No camera on the visit: the footage links through who carried the camera, which the officer
    logged on the phone (a signed camera_use record); the register follows each revision."""
    app, phone, device, lead, keeper, case_id, _ = scene
    assert post_form(keeper, "/footage/cameras", {"serial": "DSJ002"}).status_code == 303
    use_id = str(uuid.uuid4())
    took = device.revision(use_id, record_type="camera_use", payload={"camera_serial": "DSJ002",
                                                                      "taken_at": iso(at(100)), "returned_at": None})
    assert push_results(sync_push(phone, device.batch(took)))[0]["status"] == "created"
    cams = phone.get("/api/v1/cameras").get_json()["cameras"]
    # Not yet returned: the unit's phones see who carries it.
    assert {c["serial"]: (c["carried_by"] or {}).get("cert_no") for c in cams}["DSJ002"] == OFFICER_CERT
    with app.app_context():
        [handout] = db.session().execute(select(CameraHandout).where(CameraHandout.source == "phone")).scalars().all()
        assert handout.returned_at is None and handout.taken_at == at(100)
    back = device.revision(use_id, 2, {"camera_serial": "DSJ002", "taken_at": iso(at(100)),
                                       "returned_at": iso(at(400))}, record_type="camera_use")
    assert push_results(sync_push(phone, device.batch(back)))[0]["status"] == "created"
    with app.app_context():
        [handout] = db.session().execute(select(CameraHandout).where(CameraHandout.source == "phone")).scalars().all()
        assert handout.returned_at == at(400)

    # A visit without a camera named, in that time; footage of DSJ002 with no officer number.
    activity_id = str(uuid.uuid4())
    visit = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(at(200)), "departed_at": iso(at(210)), "cameras": [],
        "officers": [{"name": "张伟", "cert_no": OFFICER_CERT, "cert_shown": True}]})
    assert push_results(sync_push(phone, device.batch(visit)))[0]["status"] == "created"
    folder = tmp_path / "export2"
    folder.mkdir()
    make_video(folder / "x.mp4", 4, start=at(202))
    write_manifest(folder, [ExportRow("x.mp4", "DSJ002", at(202), at(206), unit_code="ZF1")], fmt="json")
    report = import_json(app, folder)
    assert report["stored"] == 1 and report["linked_share"] == 1.0
    with app.app_context():
        [link] = db.session().execute(select(FootageLink).where(FootageLink.activity_id == uuid.UUID(activity_id))
                                      ).scalars().all()
    assert link.basis == "handout"

    bad = device.revision(str(uuid.uuid4()), record_type="camera_use", payload={"camera_serial": "",
                                                                                "taken_at": iso(at(1))})
    [answer] = push_results(sync_push(phone, device.batch(bad)))
    assert answer["status"] == "rejected" and "camera_serial" in answer["message"]


def test_an_import_that_cannot_start_says_why_and_stores_nothing(scene, tmp_path):
    app = scene[0]
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = run_cli(app, "footage-import", str(empty))
    assert result.exit_code == 1 and "no manifest" in result.output
    folder = tmp_path / "broken"
    folder.mkdir()
    make_video(folder / "a.mp4", 1, start=at(0))
    (folder / "manifest.csv").write_text("file_name,started_at\na.mp4,2026-11-01T08:00:00+08:00\n", encoding="utf-8")
    result = run_cli(app, "footage-import", str(folder))
    assert result.exit_code == 1 and "missing_column" in result.output
    with app.app_context():
        assert db.session().execute(select(FootageSegment)).scalars().all() == []
