"""Steps made at the desk: signed revisions of the case (no visit), on its page, in its clocks.

A penalty case with a 扣押 taken on site: the extension approved in time and notified, a testing
period told to the party, the decision handed over on the spot, payment, 结案. At every stage the
deadlines and findings are what the law says, and the case archives only at the end. And an
emergency measure whose report is missing: the finding appears at 24 hours.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance import engine
from fieldapp.models import Case, CaseDeadline, Finding, RecordReview, SyncedRecord, User
from fieldapp.review import cases
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, post_json, push_results, run_cli, seed_user, sync_push
from tests.support.pulling import pull_all
from tests.support.soft_device import SoftDevice

# Ten weeks ago, 09:00 in Linzi: every step of the story below is in the past when the case archives.
T0 = (datetime.now(UTC) - timedelta(days=70)).replace(hour=1, minute=0, second=0, microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def desk(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    officer = seed_user(app, "张伟", "37030300001", "ZF1")
    seed_user(app, "赵敏", "37030300002", "ZF1")
    lead = seed_user(app, "李队长", "37030300009", "ZF1", roles="lead,officer")
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    catalogue = phone.get("/api/v1/catalogue").get_json()
    device = SoftDevice(author=str(officer.user_id), catalogue_version=catalogue["version"])
    post_json(phone, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64})
    # The lead's desk browser registers its own key, as phones do, and signs what it saves.
    desk_client = app.test_client()
    demo_sign_in(desk_client, lead.user_id)
    desk_key = SoftDevice(author=str(lead.user_id), catalogue_version=catalogue["version"])
    assert post_json(desk_client, "/api/v1/devices", {"device_id": desk_key.device_id,
                                                      "public_key": desk_key.public_key_b64,
                                                      "label": "办公室电脑"}).status_code == 201
    with app.app_context(), db.transaction():
        unit_id = db.session().get(User, officer.user_id).unit_id
        case = cases.create_case(unit_id, lead.user_id, kind="penalty", party_name="临淄区齐都镇鲜果超市",
                                 case_number="临市监罚〔2026〕8号")
        case_id = str(case.id)
    yield app, phone, device, desk_client, desk_key, case_id
    app.extensions["fieldapp.engine"].dispose()


def on_site(device, case_id: str, *, emergency: bool = False) -> tuple[str, list]:
    activity_id = str(uuid.uuid4())
    activity = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)),
        "returned_at": iso(T0 + timedelta(hours=2)), "continuous_required": False,
        "officers": [{"name": "张伟", "cert_no": "37030300001", "cert_shown": True},
                     {"name": "赵敏", "cert_no": "37030300002", "cert_shown": True}],
        "cameras": [{"camera_id": "DSJ-01", "started_at": iso(T0)}]})
    seize = device.revision(str(uuid.uuid4()), parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "coercion_seal_seize", "measure": "seize",
        "emergency": emergency, "at": iso(T0 + timedelta(minutes=20)), "av": "body_camera", "av_camera_id": "DSJ-01",
        "documents": ["实施行政强制措施决定书", "场所/设施/财物清单", "现场笔录"]})
    return activity_id, [activity, seize]


def desk_step(key: SoftDevice, case_id: str, step_type: str, at: datetime, documents=(), **payload) -> dict:
    """A step recorded at the desk: it belongs to the case (payload case_id), under no visit."""
    return key.revision(str(uuid.uuid4()), payload={"case_id": case_id, "step_type": step_type, "at": iso(at),
                                                    "documents": list(documents), **payload})


def state(app, case_id: str, now: datetime) -> tuple[dict, set, set]:
    """(running deadlines by rule, open findings, what blocks archiving) as at ``now``."""
    with app.app_context():
        with db.transaction():
            engine.refresh_case(uuid.UUID(case_id), now)
        rows = db.session().execute(select(CaseDeadline).where(CaseDeadline.case_id == uuid.UUID(case_id))).scalars()
        running = {d.rule_id: d for d in rows if d.met_at is None}
        findings = {h.rule_id for h in engine.findings_for(uuid.UUID(case_id), now=now)}
        blocking = {h.rule_id for h in cases.archive_blockers(uuid.UUID(case_id))}
    return running, findings, blocking


def test_a_penalty_case_with_a_seizure_from_the_visit_to_closing(desk):
    app, phone, device, desk_client, desk_key, case_id = desk
    activity_id, visit = on_site(device, case_id)
    assert {r["status"] for r in push_results(sync_push(phone, device.batch(*visit)))} == {"created"}

    # Day 0: the seizure's 30 days run; nothing is late.
    running, findings, _ = state(app, case_id, T0 + timedelta(hours=3))
    assert set(running) == {"seizure_term"} and not findings & {"seizure_term_exceeded", "filing_late"}

    steps = [
        desk_step(desk_key, case_id, "penalty_case_filing", T0 + timedelta(days=1), ["立案/不予立案审批表"]),
        desk_step(desk_key, case_id, "coercion_matter_approval", T0 + timedelta(hours=20), ["行政处罚案件有关事项审批表"]),
        # 行政强制法 art. 25: a testing period told to the party in writing does not count...
        desk_step(desk_key, case_id, "coercion_testing_period", T0 + timedelta(days=5),
                  ["检测/检验/检疫/鉴定委托书", "检测/检验/检疫/鉴定期间告知书"], period_from=iso(T0 + timedelta(days=5)),
                  period_to=iso(T0 + timedelta(days=14)), party_told_at=iso(T0 + timedelta(days=5))),
        # ...and the extension counts: approved on day 25, before the term ran out, notified in writing.
        desk_step(desk_key, case_id, "coercion_extension", T0 + timedelta(days=25), ["延长行政强制措施期限决定书"],
                  notified_at=iso(T0 + timedelta(days=25, hours=2))),
    ]
    assert {r["status"] for r in push_results(sync_push(desk_client, desk_key.batch(*steps)))} == {"created"}
    running, findings, blocking = state(app, case_id, T0 + timedelta(days=45))
    # 30 days + 10 days of testing + the 30-day extension: day 45 is in time; the 90 days of art. 60 run.
    assert set(running) == {"seizure_term", "penalty_decision_term"}
    assert running["seizure_term"].due_at.astimezone(UTC) > T0 + timedelta(days=69)
    assert "seizure_term_exceeded" not in findings
    assert {"act_end_unknown", "activity_not_approved"} <= blocking

    # The decision, handed over when announced: no 7-working-day service clock (行政处罚法 art. 61).
    decided = [
        desk_step(desk_key, case_id, "penalty_decision", T0 + timedelta(days=50), ["行政处罚决定书"],
                  handed_over_on_spot=True),
        desk_step(desk_key, case_id, "coercion_disposal", T0 + timedelta(days=50, hours=1), ["行政处理决定审批表"]),
    ]
    push_results(sync_push(desk_client, desk_key.batch(*decided)))
    running, findings, _ = state(app, case_id, T0 + timedelta(days=60))
    assert not running and not findings & {"decision_service_late", "seizure_term_exceeded", "penalty_decision_late"}

    # Payment and 结案: the act ended with the closing, the 30 days to file run from it.
    closing = [
        desk_step(desk_key, case_id, "penalty_payment", T0 + timedelta(days=55), ["行政罚款收据"]),
        desk_step(desk_key, case_id, "penalty_case_closing", T0 + timedelta(days=56), ["结案审批表"]),
    ]
    push_results(sync_push(desk_client, desk_key.batch(*closing)))
    running, findings, blocking = state(app, case_id, T0 + timedelta(days=57))
    assert set(running) == {"record_filing"} and "act_end_unknown" not in blocking
    # The visit still awaits its review, and the footage declared for the seizure never arrived.
    assert blocking == {"activity_not_approved", "av_footage_overdue"}

    # Desk steps join no review queue; they show on the case page with who made them.
    with app.app_context():
        desk_ids = [uuid.UUID(s["record_id"]) for s in steps + decided + closing]
        assert not db.session().execute(select(RecordReview).where(RecordReview.record_id.in_(desk_ids))).all()
        stored = db.session().execute(select(SyncedRecord).where(SyncedRecord.id.in_(desk_ids))).scalars().all()
        assert {r.case_id for r in stored} == {uuid.UUID(case_id)} and {r.parent_id for r in stored} == {None}
    page = desk_client.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert page.count('data-testid="timeline-desk-step"') == len(desk_ids) and "李队长" in page
    # They reach the officer's phone on the case, though the lead made them on another device.
    [pulled] = [c for c in pull_all(phone)["cases"] if c["id"] == case_id]
    assert [s["id"] for s in pulled["desk_steps"]] == [s["record_id"] for s in sorted(
        steps + decided + closing, key=lambda s: s["payload"]["at"])]
    assert {s["author"] for s in pulled["desk_steps"]} == {"李队长"}
    cursor = pull_all(phone)["cursor"]
    notice = desk_step(desk_key, case_id, "penalty_result_notice", T0 + timedelta(days=56, hours=2), ["行政处理结果告知书"])
    push_results(sync_push(desk_client, desk_key.batch(notice)))
    [again] = [c for c in pull_all(phone, cursor)["cases"] if c["id"] == case_id]  # back in the feed
    assert again["desk_steps"][-1]["id"] == notice["record_id"]
    desk_ids.append(uuid.UUID(notice["record_id"]))

    # The lead checked the footage on the camera station and accepts it, approves the visit; now,
    # and only now, the case archives.
    with app.app_context():
        footage = db.session().execute(select(Finding).where(Finding.case_id == uuid.UUID(case_id),
                                                             Finding.rule_id == "av_footage_overdue")).scalar_one()
    post_form(desk_client, f"/review/cases/{case_id}/findings/{footage.id}/exception",
              {"reason": "已在执法记录仪工作站核对，视频完整"})
    post_form(desk_client, f"/review/cases/{case_id}/archive")
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case_id)).archived_at is None  # not yet: the visit is unreviewed
    post_form(desk_client, f"/review/activities/{activity_id}/decision", {"action": "approved", "confirm": "yes"})
    post_form(desk_client, f"/review/cases/{case_id}/archive")
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case_id)).archived_at is not None

    # Every revision, the desk's included, verifies against the key that signed it.
    checked = run_cli(app, "verify-signatures")
    assert checked.exit_code == 0 and f"{2 + len(desk_ids)} revisions checked, 0 bad" in checked.output


def test_an_emergency_measure_whose_report_is_missing_is_a_finding_at_24_hours(desk):
    app, phone, device, desk_client, desk_key, case_id = desk
    _, visit = on_site(device, case_id, emergency=True)
    push_results(sync_push(phone, device.batch(*visit)))
    measure_at = T0 + timedelta(minutes=20)
    _, findings, _ = state(app, case_id, measure_at + timedelta(hours=23, minutes=50))
    assert "emergency_report_missing" not in findings
    _, findings, _ = state(app, case_id, measure_at + timedelta(hours=24, minutes=10))
    assert "emergency_report_missing" in findings
    # The report made in time (行政强制法 art. 19) clears it; the later approval has no term.
    report = desk_step(desk_key, case_id, "coercion_emergency_report", measure_at + timedelta(hours=6))
    push_results(sync_push(desk_client, desk_key.batch(report)))
    _, findings, _ = state(app, case_id, measure_at + timedelta(days=20))
    assert "emergency_report_missing" not in findings


def test_service_by_public_notice_is_the_last_resort_and_counts_30_days_on(desk):
    """民事诉讼法 art. 95: only when the party cannot be found or other ways failed; served 30 days
    after publication."""
    app, phone, device, desk_client, desk_key, case_id = desk
    decision = desk_step(desk_key, case_id, "penalty_decision", T0, ["行政处罚决定书"], handed_over_on_spot=False)
    hasty = desk_step(desk_key, case_id, "penalty_service_by_notice", T0 + timedelta(days=2),
                      ["行政处罚文书送达公告", "网页截屏"], notice_reason="other_methods_failed")
    push_results(sync_push(desk_client, desk_key.batch(decision, hasty)))
    _, findings, _ = state(app, case_id, T0 + timedelta(days=3))
    assert "service_by_notice_unjustified" in findings  # nothing else was tried first
    post = desk_step(desk_key, case_id, "penalty_service_by_post", T0 + timedelta(days=1), ["邮寄凭证", "邮寄回执"])
    push_results(sync_push(desk_client, desk_key.batch(post)))
    _, findings, _ = state(app, case_id, T0 + timedelta(days=3))
    assert "service_by_notice_unjustified" not in findings  # the post came back first
    page = desk_client.get(f"/review/cases/{case_id}").get_data(as_text=True)
    deemed = (T0 + timedelta(days=32)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    assert 'data-testid="deemed-served"' in page and deemed in page


def test_every_desk_step_of_the_catalogue_is_accepted_signed_and_listed(desk):
    """Each step the catalogue marks as desk work, for a penalty case and the measures in it, goes in
    as a signed revision of the case, shows on the case page, and verifies."""
    from fieldapp.rules.catalogue import load_builtin

    app, phone, device, desk_client, desk_key, case_id = desk
    catalogue = load_builtin()
    kinds = ("penalty", *catalogue.kind("penalty").measures)
    desk_types = [s for s in catalogue.step_types if s.kind in kinds and not s.field]
    assert {"penalty_case_filing", "coercion_emergency_report", "coercion_extension", "coercion_testing_period",
            "penalty_decision", "penalty_service_by_post", "penalty_service_by_notice", "penalty_result_notice",
            "penalty_payment", "penalty_case_closing"} <= {s.id for s in desk_types}
    items = [desk_step(desk_key, case_id, s.id, T0 + timedelta(days=i), s.documents)
             for i, s in enumerate(desk_types)]
    assert [r["status"] for r in push_results(sync_push(desk_client, desk_key.batch(*items)))] == ["created"] * len(items)
    page = desk_client.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert page.count('data-testid="timeline-desk-step"') == len(items)
    for s in desk_types:
        assert f'data-step-type="{s.id}"' in page
    checked = run_cli(app, "verify-signatures")
    assert checked.exit_code == 0 and f"{len(items)} revisions checked, 0 bad" in checked.output
