"""The lead's day, end to end in three browsers: an officer captures offline a visit whose recording
had to be continuous but stopped and was never explained, while a second officer's phone still
holds unsynced items → the lead's pending-syncs screen shows that second phone's queue → the first
officer syncs → the lead sees the findings with their article numbers → returns the activity →
the officer answers on the phone with new revisions → the lead approves and archives."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from axe_playwright_python.sync_playwright import Axe

from tests.e2e.capture_support import READ_STORE, sign_in_fresh_officer, sign_in_with_new_passkey
from tests.e2e.conftest import PHONE, wait_until

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


def assert_accessible(page, urls: list[str]) -> None:
    """The lead's pages have no serious or critical accessibility violations (axe)."""
    axe, back, failing = Axe(), page.url, {}
    for url in urls:
        page.goto(url)
        serious = [v for v in axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
        if serious:
            failing[url] = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in serious]
    page.goto(back)
    assert not failing, failing


def local(minutes_ago: int) -> str:
    return (datetime.now(SHANGHAI) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")


def capture_broken_visit(page) -> str:
    """A visit needing continuous recording (art. 9): the camera stops 40 minutes before the end
    and is never resumed, and nobody explains why."""
    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("inspection")
    page.get_by_label("当事人", exact=True).fill("临淄区齐都镇鲜果超市")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()
    page.get_by_test_id("add-other-officer").click()  # not on this phone's list of the unit yet
    page.locator("input[name=officer_cert]").fill("37030300402")
    page.locator("input[name=officer_name]").fill("赵敏")
    page.locator("input[name=arrived_at]").fill(local(90))
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.get_by_label("须全程不间断记录（第九条）").check()
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    activity_url = page.url
    page.get_by_role("link", name="记录中断").click()
    page.locator("input[name=stopped_at]").fill(local(50))
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("recording-log").wait_for()
    page.get_by_role("link", name="结束现场执法活动").click()
    page.locator("input[name=departed_at]").fill(local(10))
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("activity-items").wait_for()
    return activity_url.split("/activities/")[1]


def test_findings_return_answer_approve_archive(live, browser, context, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # officer A, offline
    activity_id = capture_broken_visit(page)

    # Officer B's phone: something captured, and a link that lets small requests through but not pushes.
    b_context = browser.new_context(**PHONE)
    lead_context = browser.new_context(**PHONE)
    try:
        b = b_context.new_page()
        sign_in_with_new_passkey(b_context, b, server, app, "37030300402", name="赵敏", wait_offline_ready=False)
        b.locator("body[data-capture-ready=true]").wait_for(state="attached")
        b.route("**/api/v1/sync/push", lambda route: route.abort("connectionreset"))
        b.get_by_role("link", name="现场新建案件").click()
        b.get_by_label("执法类别").select_option("inspection")
        b.get_by_label("当事人", exact=True).fill("淄博某药店")
        b.get_by_role("button", name="保存").click()
        b.evaluate("window.fieldappSync.syncNow('test')")

        lead = lead_context.new_page()
        sign_in_with_new_passkey(lead_context, lead, server, app, "37030300409", name="李队长", roles="lead",
                                 wait_offline_ready=False)
        for _ in range(50):  # B's heartbeat arrives with its next sync attempt
            lead.goto(server.url + "/review/")
            row = lead.locator("[data-testid=pending-row][data-user=赵敏]")
            if row.count() and "未同步项：0" not in row.inner_text() and "unsynced items: 0" not in row.inner_text():
                break
            lead.wait_for_timeout(300)
        assert row.count() == 1 and row.get_by_test_id("unsynced-items").inner_text().endswith("1")

        # Officer A comes back into signal; the records sync by themselves.
        context.set_offline(False)
        wait_until(page, "window.fieldappSync.statusLog.filter(e => e.status === 'synced').length >= 3", 30)
        lead.goto(server.url + "/review/queue")
        lead.get_by_role("link", name="临淄区齐都镇鲜果超市").click()
        findings = lead.get_by_test_id("finding")
        rules = {findings.nth(i).get_attribute("data-rule") for i in range(findings.count())}
        assert {"continuous_gap", "interruption_unexplained"} <= rules
        articles = lead.get_by_test_id("finding-article").all_inner_texts()
        assert articles and all(a.strip() for a in articles) and "第九条" in articles
        assert "未说明的间断（秒）" in lead.get_by_test_id("case-findings").inner_text()  # details in Chinese
        assert_accessible(lead, [server.url + path for path in ("/review/", "/review/queue", "/review/findings",
                                                                "/review/deadlines", "/review/reports")]
                          + [lead.url])

        lead.get_by_label("退回意见（需执法人员补正的内容）").fill("请说明记录中断的原因")
        lead.get_by_role("button", name="退回执法人员").click()
        lead.get_by_test_id("review-history").wait_for()

        # Officer A sees the return on the phone and answers with new revisions.
        page.evaluate("window.fieldappSync.syncNow('test')")
        wait_until(page, "window.fieldappSync.state.running === false", 20)
        page.goto(server.url + f"/#/activities/{activity_id}")
        page.get_by_test_id("review-returned").wait_for()
        assert "请说明记录中断的原因" in page.get_by_test_id("review-returned").inner_text()
        page.get_by_test_id("answer-review").click()
        page.get_by_test_id("answer-fix").first.fill("执法记录仪电量耗尽，备用电池未带")
        page.get_by_test_id("answer-text").fill("已补充中断原因")
        page.get_by_role("button", name="保存").click()
        page.get_by_test_id("recording-log").wait_for()
        page.evaluate("window.fieldappSync.syncNow('answer')")
        wait_until(page, """async () => { const db = await new Promise(r => { const q = indexedDB.open('fieldapp'); q.onsuccess = () => r(q.result); });
            return new Promise(r => { const q = db.transaction('outbox').objectStore('outbox').count(); q.onsuccess = () => r(q.result === 0); }); }""", 30)
        records = {r["type"]: r for r in page.evaluate(READ_STORE, "records") if r["type"] in ("activity", "interruption")}
        assert records["activity"]["revision"] >= 3 and records["interruption"]["revision"] == 2  # revisions, not overwrites

        # The lead sees the findings resolved, approves, records the act's end and archives.
        lead.reload()
        rules = {lead.get_by_test_id("finding").nth(i).get_attribute("data-rule")
                 for i in range(lead.get_by_test_id("finding").count())}
        assert not {"continuous_gap", "interruption_unexplained"} & rules
        assert "执法人员已答复退回意见" in lead.get_by_test_id("review-history").inner_text()
        # The answer beside what was there when the lead returned it.
        assert "已补充中断原因" in lead.get_by_test_id("officer-answer").inner_text()
        assert "执法记录仪电量耗尽，备用电池未带" in lead.get_by_test_id("review-answer").inner_text()
        # Approval is deliberate: the button does nothing until the lead confirms.
        lead.get_by_role("button", name="审核通过").click()
        assert lead.get_by_test_id("review-state").count() == 0
        lead.get_by_test_id("approve-confirm").check()
        lead.get_by_role("button", name="审核通过").click()
        lead.get_by_test_id("review-state").wait_for()
        lead.locator("input[name=ended_at]").fill(local(5))
        lead.get_by_label("手工填写的理由").fill("现场检查结束，无后续程序")  # no step recorded the end
        lead.get_by_role("button", name="保存").click()
        lead.get_by_test_id("archive-button").click()
        lead.get_by_test_id("archived").wait_for()
    finally:
        b_context.close()
        lead_context.close()
