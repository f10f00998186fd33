"""Deadlines warn on the phone with no signal, from the cases of the last pull: the start screen lists
those due soon (overdue first), each linking to its case, and a case's screen shows all its running
deadlines with the same tags. A case from an older server, with no deadlines, shows none."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.e2e.capture_support import sign_in_fresh_officer

pytestmark = pytest.mark.e2e

SHANGHAI = timezone(timedelta(hours=8))

# What the cases of the last pull leave in the phone's cache (server.js, sync.js).
PUT_SERVER_CASES = """async (cases) => {
  const store = await import('/static/js/capture/store.js');
  await store.putMeta('server_cases', cases);
}"""

# Let whatever sync or pull the start began finish (offline, it fails): none can overwrite the cache then.
SETTLE = "async () => { await window.fieldappSync.syncNow('test'); await window.fieldappSync.pullNow('test'); }"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def deadline(key: str, label_zh: str, due: datetime, warn: datetime) -> dict:
    return {"key": key, "rule_id": key, "label_zh": label_zh, "label_en": key.replace("_", " "),
            "due_at": iso(due), "warn_from": iso(warn)}


def server_case(case_id: str, party: str, deadlines: list | None) -> dict:
    c = {"id": case_id, "unit_id": "u", "kind": "penalty", "case_number": None, "party_name": party,
         "flags": [], "status": "open", "origin": "server", "updated_at": iso(datetime.now(UTC)), "assigned_to_me": True}
    if deadlines is not None:
        c["deadlines"] = deadlines
    return c


def end_of_today_in_shanghai() -> datetime:
    """24:00 of today in Shanghai; a test started in the last minute of the day waits for the next one."""
    local = datetime.now(SHANGHAI)
    end = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
    if end - local < timedelta(minutes=1):
        time.sleep((end - local).total_seconds() + 1)
        return end_of_today_in_shanghai()
    return end


def test_deadlines_due_soon_warn_offline_from_the_last_pull(live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # no signal from here on
    page.evaluate(SETTLE)

    now, end_of_today = datetime.now(UTC), end_of_today_in_shanghai()
    page.evaluate(PUT_SERVER_CASES, [
        {**server_case("c-a", "临淄区齐都镇鲜果超市", [
            deadline("decision_due", "作出处罚决定期限", end_of_today + timedelta(days=20), end_of_today + timedelta(days=17)),
            deadline("correction_due", "责令改正期限", end_of_today + timedelta(days=2), now - timedelta(hours=1))]),
         # A step the lead made at the desk, on another device: it reaches this phone with the case.
         "desk_steps": [{"id": "d-1", "step_type": "penalty_case_filing", "at": iso(now - timedelta(days=3)),
                         "author": "李队长"}]},
        server_case("c-b", "张店区华光路便利店", [
            deadline("statement_due", "陈述申辩期限", end_of_today, now - timedelta(days=1)),
            deadline("hearing_request_due", "听证申请期限", now - timedelta(hours=2), now - timedelta(days=3))]),
        server_case("c-old", "淄川区般阳路五金店", None),  # an older server sent no deadlines
        server_case("c-none", "周村区丝绸路茶庄", []),
    ])
    strings = page.evaluate("() => JSON.parse(document.getElementById('i18n').textContent)")
    shown = page.evaluate("""async (times) => {
        const dom = await import('/static/js/capture/dom.js');
        return times.map((t) => dom.showTime(t));
    }""", [iso(now - timedelta(hours=2)), iso(end_of_today), iso(end_of_today + timedelta(days=2))])

    # The start screen, drawn again from the cache: overdue first, then by due time.
    page.evaluate("() => { location.hash = '#/outbox'; }")
    page.get_by_test_id("outbox-count").wait_for()
    page.get_by_role("link", name=strings["back"]).click()
    items = page.get_by_test_id("due-soon-item")
    items.first.wait_for()
    assert page.get_by_role("heading", name=strings["deadlines_due_soon"]).is_visible()
    assert page.get_by_test_id("due-soon").count() == 1
    assert [items.nth(i).get_attribute("data-status") for i in range(items.count())] == \
        ["overdue", "due_today", "due_soon"]
    want = [("张店区华光路便利店", "听证申请期限", shown[0], "c-b", "tag danger", "deadline_overdue"),
            ("张店区华光路便利店", "陈述申辩期限", shown[1], "c-b", "tag warn", "deadline_due_today"),
            ("临淄区齐都镇鲜果超市", "责令改正期限", shown[2], "c-a", "tag warn", "deadline_due_soon")]
    for i, (party, label, due, case_id, tag_class, tag_key) in enumerate(want):
        row = items.nth(i)
        text = row.inner_text()
        assert party in text and label in text and due in text, text
        assert row.get_by_role("link").get_attribute("href") == f"#/cases/{case_id}"
        tag = row.get_by_test_id("deadline-tag")
        assert tag.get_attribute("class") == tag_class and tag.inner_text() == strings[tag_key]
    assert "淄川区般阳路五金店" not in page.get_by_test_id("due-soon").inner_text()

    # The case's screen, through its row: all its running deadlines, the one not due soon untagged.
    items.nth(2).get_by_role("link").click()
    rows = page.get_by_test_id("case-deadline")
    rows.first.wait_for()
    assert [(rows.nth(i).get_attribute("data-status"), rows.nth(i).get_by_test_id("deadline-tag").count())
            for i in range(rows.count())] == [("due_soon", 1), ("later", 0)]
    assert rows.nth(0).get_by_test_id("deadline-tag").inner_text() == strings["deadline_due_soon"]
    assert "责令改正期限" in rows.nth(0).inner_text() and "作出处罚决定期限" in rows.nth(1).inner_text()
    desk = page.get_by_test_id("desk-step")
    assert desk.count() == 1 and "立案审批" in desk.inner_text() and "李队长" in desk.inner_text()

    # Nothing warns: no list and no heading on the start screen; a case without deadlines shows none.
    page.evaluate(PUT_SERVER_CASES, [server_case("c-a", "临淄区齐都镇鲜果超市", [
        deadline("decision_due", "作出处罚决定期限", end_of_today + timedelta(days=20), end_of_today + timedelta(days=17))]),
        server_case("c-old", "淄川区般阳路五金店", None)])
    page.get_by_role("link", name=strings["back"]).click()
    page.get_by_test_id("case-link").first.wait_for()
    assert page.get_by_test_id("due-soon").count() == 0
    assert page.get_by_role("heading", name=strings["deadlines_due_soon"]).count() == 0
    page.evaluate("() => { location.hash = '#/cases/c-old'; }")
    page.get_by_role("heading", name="淄川区般阳路五金店").wait_for()
    assert page.get_by_test_id("case-deadline").count() == 0
    assert page.get_by_role("heading", name=strings["deadlines"]).count() == 0
