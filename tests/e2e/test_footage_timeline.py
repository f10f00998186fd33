"""The lead sees a visit's body-camera footage on the case timeline and plays it, in Chromium.

A visit of a continuous-recording case (pushed by the officer's phone), a station export of two
segments with a hole between them: the case page draws the camera's two bars and the red gap, at
desktop and at phone width; clicking the second bar registers the opening, then the browser plays
the original from that moment through byte ranges."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.footage import register
from fieldapp.models import OriginalAccess, User
from fieldapp.review import cases
from tests.e2e.conftest import wait_until
from tests.e2e.journeys import lead_sign_in
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_json, push_results, run_cli, seed_user, sync_push
from tests.support.live_server import serve
from tests.support.soft_device import SoftDevice
from tests.support.station_export import ExportRow, write_manifest
from tests.support.videos import make_video

pytestmark = pytest.mark.e2e

DESK = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def footage_case(sqlite_url, tmp_path):
    server, app = serve(lambda origin: make_app(sqlite_url, tmp_path / "var", origin=origin, demo=True,
                                                      footage_clock_tolerance_seconds=2))
    officer = seed_user(app, "张伟", "37030300401", "ZF1")
    lead = seed_user(app, "李队长", "37030300409", "ZF1", roles="lead")
    with app.app_context(), db.transaction():
        unit_id = db.session().get(User, officer.user_id).unit_id
        case_id = str(cases.create_case(unit_id, lead.user_id, kind="inspection", party_name="临淄区齐都镇鲜果超市",
                                        flags=("life_health",)).id)
        register.add_camera(unit_id, "DSJ001", "一号", None)
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    device = SoftDevice(author=str(officer.user_id), catalogue_version=phone.get("/api/v1/catalogue").get_json()["version"])
    post_json(phone, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64})
    activity_id = str(uuid.uuid4())
    visit = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(at(12)),
        "officers": [{"name": "张伟", "cert_no": "37030300401", "cert_shown": True}],
        "cameras": [{"camera_id": "DSJ001", "started_at": iso(T0)}]})
    assert push_results(sync_push(phone, device.batch(visit)))[0]["status"] == "created"
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 5, start=at(-1), size=(160, 120), fps=10)
    make_video(export / "b.mp4", 5, start=at(8), size=(160, 120), fps=10)
    write_manifest(export, [ExportRow("a.mp4", "DSJ001", at(-1), at(4), unit_code="ZF1"),
                            ExportRow("b.mp4", "DSJ001", at(8), at(13), unit_code="ZF1")])
    result = run_cli(app, "footage-import", str(export))
    assert result.exit_code == 0 and "linked automatically 100.0%" in result.output, result.output
    yield server, app, lead, case_id
    server.stop()
    app.extensions["fieldapp.engine"].dispose()


def test_the_lead_sees_the_cameras_bars_and_gaps_and_plays_a_segment(browser, footage_case):
    server, app, lead, case_id = footage_case
    lead_context, desk = lead_sign_in(browser, server, app, lead, **DESK)
    try:
        desk.goto(f"{server.url}/review/cases/{case_id}")
        track = desk.get_by_test_id("footage-track")
        track.wait_for()
        row = track.get_by_test_id("footage-row")
        assert row.get_attribute("data-serial") == "DSJ001"
        assert row.get_by_test_id("footage-bar").count() == 2
        assert row.get_by_test_id("footage-gap").count() == 1  # 4 s to 8 s: nothing explains it
        gap, second = row.get_by_test_id("footage-gap").bounding_box(), row.get_by_test_id("footage-bar").nth(1).bounding_box()
        assert gap["width"] > 0 and gap["x"] < second["x"]

        second_bar = row.get_by_test_id("footage-bar").nth(1)
        second_bar.click(position={"x": second["width"] * 0.5, "y": second["height"] / 2})
        player = track.get_by_test_id("footage-player")
        player.wait_for(state="visible")
        assert "/original/" in player.get_attribute("src") and "#t=" in player.get_attribute("src")
        # The browser fetched the original by ranges and decoded it: metadata and a frame are there.
        wait_until(desk, "() => { const v = document.querySelector('[data-testid=footage-player]');"
                         " return v.readyState >= 2 && v.duration > 4; }")
        assert desk.evaluate("() => document.querySelector('[data-testid=footage-player]').currentTime") >= 1.0
        with app.app_context():
            opened = db.session().execute(select(OriginalAccess)).scalars().all()
        assert len(opened) == 1 and opened[0].reason == "own_unit_review"

        # Phone width: the axis fits the screen, nothing scrolls sideways.
        desk.set_viewport_size({"width": 360, "height": 740})
        assert desk.evaluate("() => { const f = document.querySelector('[data-testid=footage-track]');"
                             " return f.getBoundingClientRect().right <= window.innerWidth + 1; }")
    finally:
        lead_context.close()
