"""Body cameras on the phone, end to end: the unit's registered cameras are cached while online; with
no signal the officer takes one (a signed camera_use record, queued like any other) and sees it as
theirs, while taking one the register gives to a colleague asks first. Back online, the sync makes
it the unit's hand-out register. A visit started then names the camera by its serial already; once
synced it waits for footage, and when the footage is linked on the server the visit says so with
its segments and length. Returning the camera is the record's next revision, and closes the
hand-out on the server."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance.facts import parse_time
from fieldapp.models import Camera, CameraHandout, FootageLink, FootageSegment, Revision, SyncedRecord, User
from tests.e2e.capture_support import READ_STORE, sign_in_fresh_officer
from tests.e2e.conftest import wait_until
from tests.e2e.journeys import CACHED, OFFICER_CERT, SYNCED, assigned_penalty_case
from tests.support.flows import seed_user

pytestmark = pytest.mark.e2e

MINE, THEIRS = "DSJ001", "DSJ002"
COLLEAGUE = "李娜"

# The unit's cameras are on the phone (fetched after the officers, on the same pull).
CAMERAS_CACHED = """async (n) => {
  const store = await import('/static/js/capture/store.js');
  return (await store.getMeta('cameras', [])).length === n;
}"""

CARRIED_BY = """async (serial) => {
  const answer = await (await fetch('/api/v1/cameras', { credentials: 'same-origin' })).json();
  const camera = answer.cameras.find((c) => c.serial === serial);
  return camera.carried_by ? camera.carried_by.name : null;
}"""


def seed_cameras(app) -> None:
    """Two cameras of the unit; the colleague carries the second (written at the desk)."""
    with app.app_context(), db.transaction() as s:
        colleague = s.execute(select(User).where(User.name == COLLEAGUE)).scalar_one()
        s.add(Camera(serial=MINE, unit_id=colleague.unit_id, label="一号记录仪"))
        theirs = Camera(serial=THEIRS, unit_id=colleague.unit_id, label="二号记录仪")
        s.add(theirs)
        s.flush()
        s.add(CameraHandout(camera_id=theirs.id, user_id=colleague.id, source="register",
                            taken_at=datetime.now(UTC) - timedelta(hours=1)))


def handouts(app, serial: str) -> list[CameraHandout]:
    with app.app_context():
        return list(db.session().execute(select(CameraHandout).join(Camera, Camera.id == CameraHandout.camera_id)
                                         .where(Camera.serial == serial)).scalars())


def link_footage(app, activity_id: str, seconds: int) -> None:
    """What a collection station's import does once the visit's footage arrives: one segment of the
    camera during the visit, linked to it."""
    with app.app_context(), db.transaction() as s:
        record = s.get(SyncedRecord, uuid.UUID(activity_id))
        payload = s.execute(select(Revision.payload).where(Revision.record_id == record.id,
                                                           Revision.revision == record.head_revision)).scalar_one()
        camera = s.execute(select(Camera).where(Camera.serial == MINE)).scalar_one()
        start = parse_time(payload["arrived_at"]) + timedelta(seconds=5)
        segment = FootageSegment(alg="sha256", hash=uuid.uuid4().hex * 2, sm3=uuid.uuid4().hex * 2, size=1,
                                 unit_id=camera.unit_id, camera_serial=MINE, camera_id=camera.id,
                                 officer_no=OFFICER_CERT, file_name=f"{MINE}_0001.MP4", started_at=start,
                                 ended_at=start + timedelta(seconds=seconds), source="import")
        s.add(segment)
        s.flush()
        s.add(FootageLink(segment_id=segment.id, activity_id=record.id, case_id=record.case_id, basis="camera_declared"))


def serious_violations(page) -> list:
    found = Axe().run(page).response["violations"]
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found if v["impact"] in ("serious", "critical")]


def test_take_a_camera_offline_name_it_on_a_visit_see_its_footage_and_return_it(live, context, page, authenticators):
    server, app = live
    seed_user(app, COLLEAGUE, "37030300302", "ZF1")
    lead = seed_user(app, "李队长", "37030300409", "ZF1", roles="lead")
    seed_cameras(app)
    sign_in_fresh_officer(page, authenticators, server, app, offline=False)
    case_id = assigned_penalty_case(app, lead.user_id, OFFICER_CERT, "临市监罚〔2026〕21号")
    page.evaluate("window.fieldappSync.pullNow('test')")
    wait_until(page, CACHED, arg=case_id)
    wait_until(page, CAMERAS_CACHED, arg=2)

    # 1. The cameras screen, from the start screen's menu; then no signal.
    page.get_by_test_id("cameras-link").click()
    cameras = page.get_by_test_id("camera")
    cameras.first.wait_for()
    context.set_offline(True)
    assert cameras.evaluate_all("rows => rows.map(r => [r.dataset.serial, r.dataset.state])") == [
        [MINE, "available"], [THEIRS, "other"]]
    assert "一号记录仪" in cameras.nth(0).inner_text()
    assert COLLEAGUE in cameras.nth(1).get_by_test_id("camera-state").inner_text()

    # The colleague's camera: asked first, and nothing is saved when the officer thinks again.
    cameras.nth(1).get_by_test_id("take-camera").click()
    confirm = page.get_by_test_id("take-confirm")
    assert COLLEAGUE in confirm.inner_text() and "记录管理员" in confirm.inner_text()
    assert serious_violations(page) == []
    page.get_by_test_id("cancel-take").click()
    assert confirm.count() == 0

    # 领用, offline: a signed record in the outbox, and the camera is the officer's.
    cameras.nth(0).get_by_test_id("take-camera").click()
    page.locator(f"[data-testid=camera][data-serial={MINE}][data-state=mine]").wait_for()
    assert f"已领用 {MINE}" in page.get_by_test_id("save-message").inner_text()
    assert MINE in page.get_by_test_id("cameras-held").inner_text()
    assert page.get_by_test_id("camera-state").first.get_attribute("data-state") == "mine"
    uses = [r for r in page.evaluate(READ_STORE, "records") if r["type"] == "camera_use"]
    assert len(uses) == 1 and uses[0]["status"] == "unsynced"
    assert uses[0]["payload"]["camera_serial"] == MINE and uses[0]["payload"]["returned_at"] is None
    assert len(page.evaluate(READ_STORE, "outbox")) == 1
    assert serious_violations(page) == []
    # The outbox names it, and leads back here.
    page.evaluate("() => { location.hash = '#/outbox'; }")
    waiting = page.get_by_test_id("outbox-item")
    assert f"执法记录仪领用：{MINE}" in waiting.inner_text()
    waiting.get_by_role("link").click()
    page.get_by_test_id("return-camera").wait_for()

    # 2. Online again: the hand-out is the unit's register.
    context.set_offline(False)
    wait_until(page, SYNCED, 30)
    [handout] = handouts(app, MINE)
    with app.app_context():
        officer = db.session().execute(select(User).where(User.cert_no == OFFICER_CERT)).scalar_one()
    assert (handout.user_id, handout.source, handout.returned_at) == (officer.id, "phone", None)
    assert handout.taken_at == parse_time(uses[0]["payload"]["taken_at"])
    assert page.evaluate(CARRIED_BY, MINE) == "张伟"

    # 3. A visit: the camera the officer holds is named already, the unit's cameras offered.
    page.evaluate("(id) => { location.hash = `#/cases/${id}`; }", case_id)
    page.get_by_role("link", name="开始现场执法活动").click()
    camera_field = page.locator("input[name=camera_id]")
    assert camera_field.input_value() == MINE
    options = page.locator("datalist#unit-camera-options option")
    assert options.evaluate_all("os => os.map(o => o.value)") == [MINE, THEIRS]
    assert serious_violations(page) == []
    page.get_by_test_id("officer-choice").nth(1).locator("input[name=officer_pick]").check()
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    activity_id = page.url.split("/activities/")[1]
    wait_until(page, SYNCED, 30)

    # Synced, the visit waits for its footage (on the case's list of visits and on the visit).
    page.evaluate("(id) => { location.hash = `#/cases/${id}`; }", case_id)
    page.locator("[data-testid=footage-badge][data-state=waiting]").wait_for()
    assert page.get_by_test_id("footage-badge").inner_text() == "等待执法记录仪录像"

    # 4. The footage arrives on the server; the next sync brings the news.
    link_footage(app, activity_id, seconds=90)
    wait_until(page, SYNCED, 30)
    linked = page.locator("[data-testid=footage-badge][data-state=linked]")
    linked.wait_for()
    assert linked.get_attribute("data-segments") == "1"
    assert linked.inner_text() == "已关联录像 1 段 · 01:30"
    page.get_by_test_id("activity-link").click()
    page.locator("[data-testid=footage-badge][data-state=linked]").wait_for()

    # Offline, the state last fetched shows, with no error.
    context.set_offline(True)
    page.evaluate("(id) => { location.hash = `#/cases/${id}`; }", case_id)
    page.get_by_test_id("activity-link").wait_for()
    assert page.get_by_test_id("footage-badge").inner_text() == "已关联录像 1 段 · 01:30"

    # 5. 归还: the record's next revision, and the hand-out closes on the server.
    page.evaluate("() => { location.hash = '#/cameras'; }")
    page.get_by_test_id("return-camera").click()
    page.locator(f"[data-testid=camera][data-serial={MINE}][data-state=available]").wait_for()
    assert f"已归还 {MINE}" in page.get_by_test_id("save-message").inner_text()
    assert page.get_by_test_id("cameras-held").count() == 0
    context.set_offline(False)
    wait_until(page, SYNCED, 30)
    [handout] = handouts(app, MINE)
    assert handout.returned_at is not None and handout.returned_at >= handout.taken_at
    assert page.evaluate(CARRIED_BY, MINE) is None
    # The linker, run again by the return, keeps the visit's footage.
    with app.app_context():
        assert db.session().execute(select(FootageLink).where(
            FootageLink.activity_id == uuid.UUID(activity_id))).scalars().all()
