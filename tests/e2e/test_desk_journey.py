"""Steps made at the desk, end to end in the browser (the API-level story is
tests/api/test_desk_steps.py): an officer's phone records a visit on an assigned penalty case with a
扣押 taken on site; back at the unit the same app, in a desktop-width window, records from the case
screen the extension, the testing period, the decision handed over on the spot, the payment and
结案 — signed revisions of the case, synced like the phone's. The lead signs in with a passkey and
sees on the case page the desk steps with their author, the deadlines the law gives (decision
record 010) and what still blocks archiving; the case archives only once the visit is approved.
And an emergency measure whose report is missing: the finding is on the case page after 24 hours,
and the report, recorded in time, clears it."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.capture_support import answer_av
from tests.e2e.journeys import PARTY, SYNCED, lead_sign_in, officer_with_case, rules_of
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

DESK = {"width": 1280, "height": 900}
SHANGHAI = ZoneInfo("Asia/Shanghai")

# A datetime-local value for the browser's own clock and zone, ``hours`` ago.
LOCAL_INPUT = """async (hours) => {
  const { toLocalInput } = await import('/static/js/capture/dom.js');
  return toLocalInput(new Date(Date.now() - hours * 3600e3).toISOString());
}"""


def start_visit(page, arrived: str | None = None) -> str:
    """From the list: the assigned case, a visit with both enrolled officers and one body camera.
    Returns the activity's id."""
    page.get_by_test_id("case-link").filter(has_text=PARTY).click()
    page.get_by_role("link", name="开始现场执法活动").click()
    choices = page.get_by_test_id("officer-choice")
    choices.nth(1).locator("input[name=officer_pick]").check()
    assert page.get_by_test_id("officer-warning").inner_text() == ""  # two, certificates shown
    if arrived:
        page.locator("input[name=arrived_at]").fill(arrived)
    page.locator("input[name=camera_id]").fill("DSJ-07")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    return page.url.split("/activities/")[1]


def seize_on_site(page, *, emergency: bool = False, at: str | None = None) -> None:
    """实施查封、扣押 with the measure 扣押, declared recorded on the activity's body camera."""
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("执法环节").select_option("coercion_seal_seize")  # offered in a penalty case
    assert page.get_by_test_id("av-note").inner_text() == "须音像记录，依据第二十二条"
    fields = page.get_by_test_id("step-type-fields")
    fields.locator("input[name=measure][value=seize]").check()
    if emergency:
        fields.locator("input[name=emergency]").check()
    if at:
        page.locator("input[name=at]").fill(at)
    for document in ("实施行政强制措施决定书", "场所/设施/财物清单", "现场笔录"):  # 封条 only for 查封
        page.locator(f"[data-testid=document-row][data-document='{document}'] input[name=documents]").check()
    answer_av(page, "body_camera", camera="DSJ-07")
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()


def desk_step(page, case_id: str, step_type: str, documents: tuple[str, ...], *, checks=(), times=None) -> None:
    """A step recorded at the desk from the case screen: its documents ticked, its own fields
    (checkboxes by name, times by input name → datetime-local value) filled."""
    page.get_by_test_id("desk-step-link").click()
    page.wait_for_url(f"**/#/cases/{case_id}/desk-step/new")
    offered = page.get_by_label("执法环节").evaluate("s => Array.from(s.options).map(o => o.value)")
    assert step_type in offered and "coercion_seal_seize" not in offered  # field work is not desk work
    page.get_by_label("执法环节").select_option(step_type)
    for document in documents:
        page.locator(f"[data-testid=document-row][data-document='{document}'] input[name=documents]").check()
    fields = page.get_by_test_id("step-type-fields")
    for name in checks:
        fields.locator(f"input[name={name}]").check()
    for name, value in (times or {}).items():
        fields.locator(f"input[name={name}]").fill(value)
    page.get_by_role("button", name="保存环节").click()
    page.wait_for_url(f"**/#/cases/{case_id}")
    page.get_by_test_id("desk-step-link").wait_for()


def due_day(row) -> date:
    """The day a deadline row of the case page says it is due (its due time, in Asia/Shanghai)."""
    return datetime.strptime(re.search(r" · (\d{4}-\d{2}-\d{2}) \d{2}:\d{2}", row.inner_text())[1], "%Y-%m-%d").date()


def test_a_seizure_on_site_then_the_desk_to_archiving(live, browser, context, page, authenticators):
    server, app = live
    lead, case_id = officer_with_case(page, authenticators, server, app, "临市监罚〔2026〕8号")
    today = datetime.now(SHANGHAI).date()

    # 1. On site, with no signal: the 扣押, recorded on the body camera; the visit ends.
    context.set_offline(True)
    start_visit(page)
    seize_on_site(page)
    assert page.get_by_test_id("item-step").count() == 1
    page.get_by_role("link", name="结束现场执法活动").click()
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("return-to-unit").wait_for()
    context.set_offline(False)
    wait_until(page, SYNCED, 30)

    # 2. At the desk: the same app in a desktop-width window, from the case screen.
    page.set_viewport_size(DESK)
    page.goto(f"{server.url}/#/cases/{case_id}")
    now = page.evaluate(LOCAL_INPUT, 0)
    in_9_days = page.evaluate(LOCAL_INPUT, -9 * 24)
    desk_step(page, case_id, "coercion_extension", ("延长行政强制措施期限决定书",), times={"notified_at": now})
    desk_step(page, case_id, "coercion_testing_period", ("检测/检验/检疫/鉴定委托书", "检测/检验/检疫/鉴定期间告知书"),
              times={"period_from": now, "period_to": in_9_days, "party_told_at": now})
    desk_step(page, case_id, "penalty_decision", ("行政处罚决定书",), checks=("handed_over_on_spot",))
    desk_step(page, case_id, "penalty_payment", ("行政罚款收据",))
    desk_step(page, case_id, "penalty_case_closing", ("结案审批表",))
    listed = page.get_by_test_id("desk-steps").get_by_test_id("desk-step")
    assert listed.count() == 5
    texts = " ".join(listed.all_inner_texts())
    assert all(name in texts for name in ("延长查封、扣押期限", "检测、检验、鉴定期间告知", "作出行政处罚决定",
                                          "罚没款物收缴", "结案"))
    wait_until(page, SYNCED, 30)

    # 3. The lead opens the case page.
    lead_context, desk = lead_sign_in(browser, server, app, lead, viewport=DESK, is_mobile=False, has_touch=False)
    try:
        desk.goto(f"{server.url}/review/cases/{case_id}")
        steps = desk.get_by_test_id("desk-steps").get_by_test_id("timeline-desk-step")
        assert steps.evaluate_all("items => items.map(i => i.dataset.stepType)") == [
            "coercion_extension", "coercion_testing_period", "penalty_decision", "penalty_payment",
            "penalty_case_closing"]
        assert all("张伟" in t for t in steps.all_inner_texts())  # each with who recorded it
        decision = steps.and_(desk.locator("[data-step-type=penalty_decision]")).inner_text()
        assert "当场交付" in decision and "行政处罚决定书" in decision
        assert "书面告知" in steps.and_(desk.locator("[data-step-type=coercion_extension]")).inner_text()

        # The deadlines: no lifting or disposal was recorded, so the seizure's term still runs —
        # 30 days, the testing period told to the party not counted, extended by 30 (行政强制法
        # art. 25): not overdue. 结案 ended the act: art. 25's 30 days to file run. The decision
        # was handed over on the spot: no service clock (行政处罚法 art. 61).
        deadlines = desk.get_by_test_id("case-deadline")
        assert deadlines.count() == 3  # the footage's storage, the filing, the seizure's term
        footage = deadlines.filter(has_text="音像记录储存至专用存储服务器")
        assert "已完成" in footage.inner_text()  # nothing attached to upload: met when the visit ended
        seizure = deadlines.filter(has_text="查封、扣押期限")
        assert seizure.count() == 1 and seizure.get_by_test_id("deadline-status").count() == 0
        # 30 days, + the 9 days of testing, + the 30 of the extension, not rolled past a holiday
        # (day 0 is today in Shanghai; shown as 00:00 of the day after the last).
        assert today + timedelta(days=69) <= due_day(seizure) <= today + timedelta(days=71)
        filing = deadlines.filter(has_text="文字和音像记录立卷归档")
        assert filing.count() == 1 and filing.get_by_test_id("deadline-status").count() == 0
        # 30 days from 结案; a last day on a weekend or holiday moves on (民法典 art. 203).
        assert today + timedelta(days=30) <= due_day(filing) <= today + timedelta(days=40)
        assert deadlines.filter(has_text="送达行政处罚决定书").count() == 0

        # The one finding: the footage declared for the 扣押 is not yet in storage, still in time.
        assert rules_of(desk.get_by_test_id("case-findings").get_by_test_id("finding")) == ["av_footage_pending"]
        findings = set(rules_of(desk.get_by_test_id("finding")))
        assert not findings & {"seizure_term_exceeded", "decision_service_late", "act_end_unknown"}
        pending = desk.get_by_test_id("case-findings").locator("[data-testid=finding][data-rule=av_footage_pending]")
        assert pending.get_by_test_id("blocks-archiving").count() == 0  # a warning
        blockers = rules_of(desk.get_by_test_id("archive-blocker"))
        assert blockers == ["activity_not_approved"]

        # Archiving before the visit is approved is refused, with what blocks it.
        desk.get_by_test_id("archive-button").click()
        desk.wait_for_url("**#archive-blockers")
        assert desk.locator(".flash-error").count() == 1
        assert rules_of(desk.get_by_test_id("archive-blocker")) == ["activity_not_approved"]
        assert desk.get_by_test_id("archived").count() == 0

        # The lead approves the visit (deliberately: the confirmation first), then archives.
        desk.get_by_test_id("approve-confirm").check()
        desk.get_by_role("button", name="审核通过").click()
        desk.get_by_test_id("review-state").wait_for()
        assert desk.get_by_test_id("archive-blocker").count() == 0
        desk.get_by_test_id("archive-button").click()
        desk.get_by_test_id("archived").wait_for()
        assert desk.get_by_test_id("archive-button").count() == 0
    finally:
        lead_context.close()


def test_an_emergency_measure_whose_report_is_missing(live, browser, context, page, authenticators):
    server, app = live
    lead, case_id = officer_with_case(page, authenticators, server, app, "临市监罚〔2026〕8号")

    # Taken on the spot in an emergency 25 hours ago, and nobody reported it (行政强制法 art. 19).
    start_visit(page, arrived=page.evaluate(LOCAL_INPUT, 26))
    seize_on_site(page, emergency=True, at=page.evaluate(LOCAL_INPUT, 25))
    wait_until(page, SYNCED, 30)

    lead_context, desk = lead_sign_in(browser, server, app, lead, viewport=DESK, is_mobile=False, has_touch=False)
    try:
        desk.goto(f"{server.url}/review/cases/{case_id}")
        missing = desk.get_by_test_id("case-findings").locator("[data-testid=finding][data-rule=emergency_report_missing]")
        assert missing.count() == 1 and "违规" in missing.inner_text()
        report = desk.get_by_test_id("case-deadline").filter(has_text="向机关负责人报告")
        assert report.get_by_test_id("deadline-status").get_attribute("data-status") == "overdue"

        # The report (made after the visit, often by telephone) is recorded at the desk, with its time.
        page.goto(f"{server.url}/#/cases/{case_id}")
        page.get_by_test_id("desk-step-link").click()
        page.get_by_label("执法环节").select_option("coercion_emergency_report")
        page.locator("input[name=at]").fill(page.evaluate(LOCAL_INPUT, 19))  # 6 hours after the measure
        page.get_by_role("button", name="保存环节").click()
        page.wait_for_url(f"**/#/cases/{case_id}")
        page.get_by_test_id("desk-step").wait_for()  # the case screen renders after its reads
        assert page.get_by_test_id("desk-step").count() == 1
        wait_until(page, SYNCED, 30)

        desk.reload()
        assert "emergency_report_missing" not in rules_of(desk.get_by_test_id("finding"))
        report = desk.get_by_test_id("case-deadline").filter(has_text="向机关负责人报告")
        assert report.get_by_test_id("deadline-status").count() == 0 and "已完成" in report.inner_text()
    finally:
        lead_context.close()
