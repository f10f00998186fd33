"""A lead accepts a finding as an exception, on both databases: only a lead of the case's unit, only
with a reason, only for a finding whose rule allows it (catalogue ``exception_allowed``). The finding
stays visible with who accepted it, when and why; it no longer blocks archiving — until its facts
change, when it blocks again until a lead decides anew."""
from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance import exceptions
from fieldapp.models import Case, Finding, FindingException
from fieldapp.review import cases
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, post_json, push_results, seed_user, sync_push
from tests.support.soft_device import SoftDevice

T0 = datetime.now(UTC) - timedelta(hours=3)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def desk(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    officer = seed_user(app, "张伟", "37030300001", "ZF1")
    seed_user(app, "赵敏", "37030300002", "ZF1")
    lead_user = seed_user(app, "李队长", "37030300009", "ZF1", roles="lead")
    stranger = seed_user(app, "外单位负责人", "37030300099", "ZF2", roles="lead")
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    version = phone.get("/api/v1/catalogue").get_json()["version"]
    device = SoftDevice(author=str(officer.user_id), catalogue_version=version)
    assert post_json(phone, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64,
                                                "label": "测试手机"}).status_code == 201
    lead, other = app.test_client(), app.test_client()
    demo_sign_in(lead, lead_user.user_id)
    demo_sign_in(other, stranger.user_id)
    yield app, phone, device, lead, other
    app.extensions["fieldapp.engine"].dispose()


def not_recorded_visit(device: SoftDevice, reason: str = "当事人拒绝录像，现场无法录制", *, officers: int = 2):
    """A case and an on-site inspection (audio/video required, art. 19) the officer says was not
    recorded, with the reason: nothing else is wrong with it."""
    case_id, activity_id, step_id = (str(uuid.uuid4()) for _ in range(3))
    people = [{"name": "张伟", "cert_no": "37030300001", "cert_shown": True},
              {"name": "赵敏", "cert_no": "37030300002", "cert_shown": True}][:officers]
    case = device.revision(case_id, record_type="case", payload={"kind": "penalty", "party_name": "临淄区某超市",
                                                                 "flags": []})
    activity = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)),
        "officers": people, "continuous_required": False, "place": {"source": "typed", "text": "齐都镇"},
        "cameras": []})
    step = device.revision(step_id, parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "penalty_onsite_inspection",
        "at": iso(T0 + timedelta(minutes=5)), "av": "not_recorded", "av_recorded": False, "av_reason": reason,
        "documents": ["现场笔录"]})
    return case_id, activity_id, [case, activity, step]


def open_finding(app, case_id: str, rule_id: str) -> Finding:
    with app.app_context():
        return db.session().execute(select(Finding).where(Finding.case_id == uuid.UUID(case_id),
                                                          Finding.rule_id == rule_id,
                                                          Finding.resolved_at.is_(None))).scalar_one()


def blockers(app, case_id: str) -> set[str]:
    with app.test_request_context():
        return {h.rule_id for h in cases.archive_blockers(uuid.UUID(case_id))}


def exceptions_stored(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(e.key, e.reason) for e in db.session().execute(select(FindingException)).scalars()]


def english(client, url: str) -> str:
    return client.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)


def exception_url(case_id, finding_id) -> str:
    return f"/review/cases/{case_id}/findings/{finding_id}/exception"


def done_but_for_findings(lead, case_id: str, activity_id: str) -> None:
    """The other conditions of archiving met: the activity approved, the end of the act entered."""
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "approved", "confirm": "yes"})
    ended = (T0 + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")
    post_form(lead, f"/review/cases/{case_id}/act-ended", {"ended_at": ended, "reason": "现场检查结束"})


def test_a_lead_of_the_unit_accepts_an_exception_with_a_reason_and_the_case_archives(desk):
    app, phone, device, lead, other = desk
    case_id, activity_id, items = not_recorded_visit(device)
    assert all(r["status"] == "created" for r in push_results(sync_push(phone, device.batch(*items))))
    done_but_for_findings(lead, case_id, activity_id)
    finding = open_finding(app, case_id, "av_missing")
    assert blockers(app, case_id) == {"av_missing"}
    page = english(lead, f"/review/cases/{case_id}")
    assert 'data-testid="exception-form"' in page and "Accept as an exception" in page
    assert 'data-testid="archive-blocker" data-rule="av_missing"' in page
    url = exception_url(case_id, finding.id)

    # Only a lead decides (the officer: 403), only for their own unit's case (another unit: 404),
    # only for a finding of that case (404), never without a reason.
    assert post_form(phone, url, {"reason": "x"}).status_code == 403
    assert post_form(other, url, {"reason": "x"}).status_code == 404
    assert post_form(lead, exception_url(uuid.uuid4(), finding.id), {"reason": "x"}).status_code == 404
    assert post_form(lead, exception_url(case_id, uuid.uuid4()), {"reason": "x"}).status_code == 404
    refused = post_form(lead, url, {"reason": "   "}, headers={"Accept-Language": "en"}, follow_redirects=True)
    assert "Give the reason for accepting the finding as an exception." in refused.get_data(as_text=True)
    assert lead.post(url, data={"reason": "x"}).status_code == 400  # no CSRF token
    assert exceptions_stored(app) == []

    done = post_form(lead, url, {"reason": "当事人拒绝录像，已在现场笔录中载明", "seen": exceptions.fingerprint(finding.detail)})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/review/cases/{case_id}#finding-{finding.id}")
    assert exceptions_stored(app) == [(finding.key, "当事人拒绝录像，已在现场笔录中载明")]

    # The finding stays, with who accepted it, when and why; it no longer blocks archiving.
    assert open_finding(app, case_id, "av_missing").id == finding.id
    assert blockers(app, case_id) == set()
    page = english(lead, f"/review/cases/{case_id}")
    assert 'data-exception="covers"' in page and 'data-testid="exception-form"' not in page
    assert '<span data-testid="exception-by">李队长</span>' in page
    assert '<span data-testid="exception-reason">当事人拒绝录像，已在现场笔录中载明</span>' in page
    assert "Exception accepted" in page and "no longer blocks archiving" in page
    assert 'data-testid="archive-blockers"' not in page
    # Read by others too, with the tag on the findings list.
    assert 'data-testid="exception-tag"' in english(lead, "/review/findings")
    assert 'data-testid="exception-by">李队长' in lead.get(f"/review/cases/{case_id}").get_data(as_text=True)

    post_form(lead, f"/review/cases/{case_id}/archive")
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case_id)).archived_at is not None
    # An archived case is frozen: no more decisions on it here.
    late = post_form(lead, url, {"reason": "补充"}, headers={"Accept-Language": "en"}, follow_redirects=True)
    assert "The case is archived" in late.get_data(as_text=True) and len(exceptions_stored(app)) == 1


def test_refused_for_a_rule_that_allows_no_exception_and_for_a_page_that_is_out_of_date(desk):
    app, phone, device, lead, _ = desk
    case_id, activity_id, items = not_recorded_visit(device, officers=1)
    push_results(sync_push(phone, device.batch(*items)))
    alone = open_finding(app, case_id, "officers_fewer_than_two")
    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert page.count('data-testid="exception-form"') == 1  # av_missing's only
    refused = post_form(lead, exception_url(case_id, alone.id), {"reason": "只有一人在场"},
                        headers={"Accept-Language": "en"}, follow_redirects=True)
    assert "This finding cannot be accepted as an exception" in refused.get_data(as_text=True)
    # A finding whose facts changed since the page showed it is not accepted blind.
    av = open_finding(app, case_id, "av_missing")
    stale = post_form(lead, exception_url(case_id, av.id), {"reason": "x", "seen": "0" * 64},
                      headers={"Accept-Language": "en"}, follow_redirects=True)
    assert "The finding changed since the page was opened" in stale.get_data(as_text=True)
    assert exceptions_stored(app) == []


def test_an_exception_covers_the_facts_it_was_accepted_for_only(desk):
    app, phone, device, lead, _ = desk
    case_id, activity_id, items = not_recorded_visit(device, reason="执法记录仪故障")
    push_results(sync_push(phone, device.batch(*items)))
    done_but_for_findings(lead, case_id, activity_id)
    finding = open_finding(app, case_id, "av_missing")
    post_form(lead, exception_url(case_id, finding.id), {"reason": "设备故障已报修，属实"})
    assert blockers(app, case_id) == set()

    # The officer changes the record: a different reason is a different fact.
    step = items[2]
    changed = device.revision(step["record_id"], 2, {**step["payload"], "av_reason": "忘记开启执法记录仪"},
                              parent_id=activity_id, reason="更正")
    assert push_results(sync_push(phone, device.batch(changed)))[0]["status"] == "created"
    with app.app_context():
        row = db.session().execute(select(FindingException)).scalar_one()
        now = db.session().get(Finding, finding.id)
        assert not exceptions.covers(row, now.detail) and exceptions.covers(row, finding.detail)
    # The finding blocks again; the change also re-opened the activity's review.
    assert blockers(app, case_id) == {"av_missing", "activity_not_approved"}
    page = english(lead, f"/review/cases/{case_id}")
    assert 'data-exception="stale"' in page and 'data-testid="exception-stale"' in page
    assert "The exception was accepted for earlier facts" in page
    assert 'data-testid="blocks-archiving"' in page and 'data-testid="exception-form"' in page  # decide anew
    post_form(lead, f"/review/cases/{case_id}/archive")
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case_id)).archived_at is None
