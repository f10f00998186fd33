"""Durability of what the officer saved: a full disk, two tabs, withdrawal, export, accessibility."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.capture_support import READ_STORE, add_step_with_photo, answer_av, jpeg_with_exif, sign_in_fresh_officer, start_visit

pytestmark = pytest.mark.e2e


def outbox_size(page) -> int:
    return len(page.evaluate(READ_STORE, "outbox"))


# Chromium's Storage.overrideQuotaForOrigin does not always take hold before the origin's first
# write (seen: a 4 MB photo stored under a 2.5 MB quota in about one run of four), so the test
# fills the disk the way Chromium reports it instead: while __diskFull is set, a write that stores
# a file aborts its transaction with QuotaExceededError, as IndexedDB does when the quota is hit.
FULL_DISK = """
(() => {
  const holdsFile = (value) => value instanceof Blob ||
    (value && typeof value === "object" && Object.values(value).some((v) => v instanceof Blob));
  for (const method of ["put", "add"]) {
    const original = IDBObjectStore.prototype[method];
    IDBObjectStore.prototype[method] = function (value, ...rest) {
      const request = original.call(this, value, ...rest);
      if (self.__diskFull && holdsFile(value)) {
        const tx = this.transaction;
        Object.defineProperty(tx, "error", {
          value: new DOMException("The quota has been exceeded.", "QuotaExceededError") });
        tx.abort();
      }
      return request;
    };
  }
})();
"""


def test_a_full_disk_says_so_and_keeps_every_earlier_record(live, context, page, authenticators, tmp_path):
    server, app = live
    page.add_init_script(FULL_DISK)
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    before = page.evaluate(READ_STORE, "records")
    queued = outbox_size(page)

    photo = tmp_path / "photo.jpg"
    jpeg_with_exif(photo, seed=7)
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("情况记录").wait_for()  # the step form is open before the disk fills
    page.evaluate("self.__diskFull = true")
    page.set_input_files("[data-testid=photo-input]", str(photo))
    page.get_by_text("手机存储空间已满").wait_for()
    page.get_by_label("情况记录").fill("照片未能保存时也不能丢失已保存的记录")

    after = page.evaluate(READ_STORE, "records")
    assert {r["id"]: r["revision"] for r in after} == {r["id"]: r["revision"] for r in before}
    assert outbox_size(page) == queued
    assert page.get_by_test_id("photo-saved").count() == 0  # the refused photo is not shown as kept
    page.evaluate("self.__diskFull = false")  # space freed
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()
    assert outbox_size(page) == queued + 1
    saved = {r["id"]: r for r in page.evaluate(READ_STORE, "records")}
    assert len(saved) == len(before) + 1  # the step the officer went on to save is kept


def test_the_same_record_cannot_be_edited_in_two_tabs(live, context, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    activity_url = start_visit(page)
    page.get_by_role("link", name="记录中断").click()
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="恢复记录").click()
    page.get_by_label("恢复记录时的说明").wait_for()
    resume_url = page.url

    second = context.new_page()
    second.goto(resume_url)
    second.get_by_text("该记录正在另一个标签页中编辑").wait_for()
    assert second.get_by_label("恢复记录时的说明").count() == 0

    page.goto(activity_url)  # the first tab leaves the form: the record is free again
    page.get_by_test_id("recording-log").wait_for()
    second.reload()
    second.get_by_label("恢复记录时的说明").wait_for()


def test_withdrawing_an_unsynced_step_keeps_it_as_a_revision_and_drops_its_photo_from_upload(
        live, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    photo = tmp_path / "wrong.jpg"
    photo_hash = jpeg_with_exif(photo, seed=3)
    add_step_with_photo(page, photo)
    page.get_by_test_id("item-step").get_by_role("link", name="撤回").click()
    page.get_by_role("button", name="撤回").click()
    assert "请填写原因" in page.get_by_test_id("save-message").inner_text()
    page.get_by_label("原因").fill("拍错了商户")
    page.get_by_role("button", name="撤回").click()
    page.get_by_test_id("activity-items").wait_for()
    assert page.get_by_test_id("item-step").count() == 0

    revisions = [r for r in page.evaluate(READ_STORE, "revisions") if r["record_type"] == "step"]
    assert [r["revision"] for r in sorted(revisions, key=lambda r: r["revision"])] == [1, 2]
    withdrawal = max(revisions, key=lambda r: r["revision"])
    assert withdrawal["reason"] == "拍错了商户" and withdrawal["parent"] == 1
    assert withdrawal["media"] == [] and [m["hash"] for m in withdrawal["withdrawn_media"]] == [photo_hash]


def test_export_unsynced_records_downloads_every_revision_and_its_media(live, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    photo = tmp_path / "p.jpg"
    photo_hash = jpeg_with_exif(photo, seed=5)
    add_step_with_photo(page, photo)
    page.get_by_test_id("activity-items").wait_for()

    page.goto(server.url + "/#/outbox")
    with page.expect_download() as download:
        page.get_by_test_id("export-button").click()
    data = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert data["format"] == "fieldapp-unsynced-export"
    assert len(data["revisions"]) == outbox_size(page) == 3
    exported = {m["hash"]: base64.b64decode(m["data_base64"]) for m in data["media"]}
    assert hashlib.sha256(exported[photo_hash]).hexdigest() == photo_hash


def test_capture_screens_have_no_serious_accessibility_violations(live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    axe = Axe()
    screens = {"cases": None}
    activity_url = start_visit(page)
    for name, hash_ in [("cases", "#/"), ("new case", "#/cases/new"), ("activity", None),
                        ("step", "/step/new"), ("service", "/service/new"), ("outbox", "#/outbox")]:
        if hash_ is None:
            page.goto(activity_url)
        elif hash_.startswith("/"):
            page.goto(activity_url + hash_)
        else:
            page.goto(server.url + "/" + hash_)
        page.get_by_test_id("screen").first.wait_for()
        results = axe.run(page)
        serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        screens[name] = serious
    failing = {name: [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in found]
               for name, found in screens.items() if found}
    assert not failing, failing


def test_recording_that_cannot_continue_is_reported_and_its_written_explanation_follows(
        live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    page.get_by_role("link", name="记录中断").click()
    page.get_by_label("原因").select_option("equipment_fault")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="恢复记录").click()
    page.get_by_label("确实无法继续记录").check()
    page.get_by_label("已报告（单位负责人）").fill("王强")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="待补书面说明").click()
    page.get_by_role("button", name="保存").click()
    assert "请说明" in page.get_by_test_id("save-message").inner_text()
    page.get_by_label("书面说明").fill("记录仪进水损坏，无法继续录制，已当场报告王强。")
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("activity-items").wait_for()
    assert page.get_by_role("link", name="待补书面说明").count() == 0
    interruption = next(r for r in page.evaluate(READ_STORE, "records") if r["type"] == "interruption")
    p = interruption["payload"]
    assert p["cannot_continue"] and p["reported_to"] == "王强" and p["written_explanation"].startswith("记录仪")
    assert interruption["revision"] == 3


IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")


def test_iphone_users_are_asked_to_add_the_app_to_the_home_screen(live, browser):
    server, _ = live
    for user_agent, shown in ((IPHONE_SAFARI, True), (None, False)):
        context = browser.new_context(user_agent=user_agent, locale="zh-CN") if user_agent else \
            browser.new_context(locale="zh-CN")
        page = context.new_page()
        page.goto(server.url + "/help")
        banner = page.locator("#ios-banner")
        if shown:
            banner.wait_for()
            assert "添加到主屏幕" in banner.inner_text()
        else:
            page.wait_for_load_state("networkidle")
            assert banner.is_hidden()
        context.close()
