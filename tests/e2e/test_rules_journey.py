"""Issue 12's journey, end to end: an officer's phone with no signal records a visit on an assigned
penalty case — two enrolled officers of the unit picked from the cached list, certificates shown; a
step that must be on audio/video declared on the activity's body camera, another not recorded
with the reason; a 留置送达 with the refusal facts and photos of the documents left, no witness — and
syncs back in signal. The team lead signs in with a passkey and sees on the case page exactly the
findings the law gives (decision record 010), then accepts the unrecorded step as an exception:
it stays on record with the lead's name and reason and no longer blocks archiving."""
from __future__ import annotations

import pytest

from tests.e2e.capture_support import answer_av, jpeg_with_exif
from tests.e2e.journeys import PARTY, SYNCED, lead_sign_in, officer_with_case, rules_of
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

def add_step(page, step_type: str, document: str, *av, **av_options) -> None:
    page.get_by_role("link", name="添加环节").click()
    offered = page.get_by_label("执法环节").evaluate("s => Array.from(s.options).map(o => o.value)")
    assert "coercion_seal_seize" in offered  # 查封/扣押 are taken inside a penalty case (art. 20 para. 2)
    page.get_by_label("执法环节").select_option(step_type)
    assert page.get_by_test_id("av-note").inner_text() == "须音像记录，依据第十九条"  # 现场检查/询问: art. 19
    page.locator(f"[data-testid=document-row][data-document='{document}'] input[name=documents]").check()
    answer_av(page, *av, **av_options)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()


def test_offline_visit_findings_and_a_leads_exception(live, browser, context, page, authenticators, tmp_path):
    server, app = live
    lead, case_id = officer_with_case(page, authenticators, server, app, "临市监罚〔2026〕12号")

    # 1. On site with no signal.
    context.set_offline(True)
    row = page.get_by_test_id("case-link").filter(has_text=PARTY)
    assert page.locator("li", has=row).get_by_test_id("assigned-to-me").is_visible()
    row.click()
    page.get_by_role("link", name="开始现场执法活动").click()
    choices = page.get_by_test_id("officer-choice")
    choices.nth(1).wait_for()  # the form draws once the cached officers and cameras are read
    assert choices.evaluate_all("rows => rows.map(r => r.dataset.certNo)") == ["37030300401", "37030300302"]
    assert "不得少于两人" in page.get_by_test_id("officer-warning").inner_text()
    choices.nth(1).locator("input[name=officer_pick]").check()
    assert page.get_by_test_id("officer-warning").inner_text() == ""  # two, certificates shown
    assert all(choices.nth(i).locator("input[name=cert_shown]").is_checked() for i in range(2))
    page.locator("input[name=camera_id]").fill("DSJ-07")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()

    add_step(page, "penalty_onsite_inspection", "现场笔录", "body_camera", camera="DSJ-07")
    add_step(page, "penalty_onsite_questioning", "询问笔录", "not_recorded", reason="执法记录仪电量耗尽")

    photos = [tmp_path / "left-1.jpg", tmp_path / "left-2.jpg"]
    for seed, photo in enumerate(photos):
        jpeg_with_exif(photo, seed=seed + 5)
    page.get_by_role("link", name="留置送达").click()
    page.locator("input[name=doc_name]").fill("行政处罚决定书")
    page.get_by_label("受送达人", exact=True).fill("王某")
    page.get_by_label("受送达人身份").select_option("self")
    page.locator("input[name=service_place]").fill("店内收银台")
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("拒收的言语").fill("不签，拿走")
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name="下一步").click()  # no witness
    assert page.get_by_test_id("service-path-warning").inner_text()
    page.set_input_files("[data-testid=photo-input]", [str(p) for p in photos])
    page.get_by_test_id("photo-saved").nth(1).wait_for()
    assert page.get_by_test_id("service-path-warning").inner_text() == ""  # photos of the documents left
    assert page.get_by_test_id("av-note").inner_text() == "须音像记录，依据第十九条"
    answer_av(page, "body_camera")
    page.get_by_role("button", name="下一步").click()
    page.get_by_test_id("save-service").click()
    page.get_by_test_id("activity-items").wait_for()
    assert page.get_by_test_id("item-step").count() == 2 and page.get_by_test_id("item-service").count() == 1

    page.get_by_role("link", name="结束现场执法活动").click()
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("return-to-unit").wait_for()

    # 2. Back in signal: everything syncs.
    context.set_offline(False)
    wait_until(page, SYNCED, 30)

    # 3. The lead signs in with a passkey and opens the case.
    lead_context, desk = lead_sign_in(browser, server, app, lead)
    try:
        desk.goto(f"{server.url}/review/queue")
        desk.get_by_role("link", name=PARTY).click()
        desk.get_by_test_id("case-findings").wait_for()
        assert desk.url.split("#")[0] == f"{server.url}/review/cases/{case_id}"

        listed = desk.get_by_test_id("case-findings").get_by_test_id("finding")
        assert rules_of(listed) == ["av_footage_pending", "av_footage_pending", "av_missing"]
        everywhere = set(rules_of(desk.get_by_test_id("finding")))
        assert not everywhere & {"service_by_leaving_unproven", "service_by_leaving_incomplete",
                                 "officers_fewer_than_two", "certificates_not_shown"}

        missing = listed.and_(desk.locator("[data-rule=av_missing]"))
        text = missing.inner_text()
        assert "违规" in text and "现场询问" in text and "未记录" in text and "执法记录仪电量耗尽" in text
        assert missing.get_by_test_id("blocks-archiving").inner_text() == "阻止归档"
        pending = listed.and_(desk.locator("[data-rule=av_footage_pending]"))
        assert all("提示" in t and "DSJ-07" in t for t in pending.all_inner_texts())
        assert pending.get_by_test_id("blocks-archiving").count() == 0
        assert any("现场检查" in t for t in pending.all_inner_texts())
        # On the timeline, each finding sits with its record.
        questioning = desk.get_by_test_id("timeline-step").filter(has_text="现场询问")
        assert rules_of(questioning.get_by_test_id("finding")) == ["av_missing"]
        service = desk.get_by_test_id("timeline-service")
        assert rules_of(service.get_by_test_id("finding")) == ["av_footage_pending"]
        # ...and each record says how it was recorded, whatever its findings become.
        assert questioning.get_by_test_id("av-answer").inner_text() == "未音像记录：执法记录仪电量耗尽"
        assert service.get_by_test_id("av-answer").inner_text() == "音像记录：执法记录仪 DSJ-07"
        inspection = desk.get_by_test_id("timeline-step").filter(has_text="现场检查")
        assert inspection.get_by_test_id("av-answer").inner_text() == "音像记录：执法记录仪 DSJ-07"
        blockers = desk.get_by_test_id("archive-blocker")
        # Besides the unrecorded step: archiving means done — the visit is not yet approved, and
        # nothing yet says when the act ended.
        assert rules_of(blockers) == ["act_end_unknown", "activity_not_approved", "av_missing"]

        # 4. The lead accepts the unrecorded step as an exception, with the reason.
        reason = "记录仪电池故障已核实，当事人对询问笔录无异议"
        missing.locator("summary", has_text="接受为例外").click()  # opens the form
        missing.get_by_label("接受为例外的理由").fill(reason)
        missing.get_by_role("button", name="接受为例外").click()
        assert "已接受为例外" in desk.locator(".flash-ok").inner_text()

        missing = desk.get_by_test_id("case-findings").locator("[data-testid=finding][data-rule=av_missing]")
        assert missing.get_attribute("data-exception") == "covers"  # still listed, with the decision
        exception = missing.get_by_test_id("finding-exception")
        assert exception.get_by_test_id("exception-tag").inner_text() == "例外已接受"
        assert exception.get_by_test_id("exception-by").inner_text() == "李队长"
        assert exception.get_by_test_id("exception-reason").inner_text() == reason
        assert missing.get_by_test_id("no-longer-blocks").inner_text() == "不再阻止归档"
        assert missing.get_by_test_id("blocks-archiving").count() == 0
        assert missing.get_by_test_id("exception-accept").count() == 0  # decided: no second form
        # The accepted finding left the list of what blocks archiving; the rest of the work remains.
        assert rules_of(desk.get_by_test_id("archive-blocker")) == ["act_end_unknown", "activity_not_approved"]
    finally:
        lead_context.close()
