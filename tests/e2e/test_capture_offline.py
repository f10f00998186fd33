"""The whole on-site capture, offline from right after sign-in, and everything still there after the
browser is closed and reopened on the same profile."""
from __future__ import annotations

import pytest

from tests.e2e.capture_support import (
    READ_STORE, STORED_MEDIA_HASHES, answer_av, draw_signature, jpeg_with_exif, sign_in_with_new_passkey,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE

pytestmark = pytest.mark.e2e


def open_profile(playwright_instance, profile_dir):
    context = playwright_instance.chromium.launch_persistent_context(
        str(profile_dir), executable_path=CHROMIUM, args=CHROMIUM_ARGS, **PHONE)
    context.set_default_timeout(15_000)
    return context, (context.pages[0] if context.pages else context.new_page())


def saved(page):
    page.locator("[data-testid=save-message][data-state=saved]").wait_for(state="attached")


def add_step(page, index: int, notes: str, photos: list) -> None:
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("执法环节").select_option(index=index)
    page.get_by_label("情况记录").fill(notes)
    if photos:
        page.set_input_files("[data-testid=photo-input]", [str(p) for p in photos])
        page.locator("[data-testid=photo-saved]").nth(len(photos) - 1).wait_for()
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()


def test_capture_a_whole_visit_offline_and_find_it_after_reopening(playwright_instance, live, tmp_path):
    server, app = live
    photos = [tmp_path / f"photo{i}.jpg" for i in range(4)]
    photo_hashes = {jpeg_with_exif(p, seed=i) for i, p in enumerate(photos)}
    profile = tmp_path / "profile"

    context, page = open_profile(playwright_instance, profile)
    sign_in_with_new_passkey(context, page, server, app)
    context.set_offline(True)  # no signal from here on

    # Open a case on site.
    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("inspection")
    page.get_by_label("当事人", exact=True).fill("临淄区齐都镇鲜果超市")
    page.get_by_label("统一社会信用代码").fill("91110000600001760P")
    assert "校验通过" in page.get_by_test_id("credit-code-note").inner_text()
    page.get_by_label("地址").fill("临淄区齐都镇桓公路 18 号")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()

    # An activity with two officers (the signed-in one, ticked already, and one of another unit,
    # typed in) and one body camera.
    assert "不得少于两人" in page.get_by_test_id("officer-warning").inner_text()
    page.get_by_test_id("add-other-officer").click()
    second = page.get_by_test_id("officer-row").nth(0)
    second.locator("input[name=officer_cert]").fill("37030300302")
    second.locator("input[name=officer_name]").fill("李娜")
    assert page.get_by_test_id("officer-warning").inner_text() == ""
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.locator("input[name=place_text]").fill("桓公路 18 号店内")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()

    # Three steps of different types, four photos with EXIF.
    add_step(page, 0, "现场检查，货架商品标签齐全", photos[:2])
    add_step(page, 1, "抽取样品两份", photos[2:3])
    add_step(page, 2, "制作现场笔录", photos[3:])

    # A recording interruption and its resumption.
    page.get_by_role("link", name="记录中断").click()
    page.get_by_label("原因").select_option("battery")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="恢复记录").click()
    page.get_by_label("恢复记录时的说明").fill("更换电池后继续录制")
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("recording-log").wait_for()

    # Service by leaving with two witnesses: one of the residents' committee signs on the screen, one
    # refuses.
    page.get_by_role("link", name="留置送达").click()
    page.locator("input[name=doc_name]").fill("行政处罚决定书")
    page.locator("input[name=doc_number]").fill("临市监罚〔2026〕18号")
    page.get_by_label("受送达人", exact=True).fill("王某")
    page.get_by_role("button", name="下一步").click()  # 留置送达 goes one step per screen
    page.get_by_label("拒收的言语").fill("不签，拿走")
    page.get_by_role("button", name="下一步").click()
    witness = page.get_by_test_id("witness")
    witness.nth(0).locator("input[name=witness_name]").fill("赵大妈")
    witness.nth(0).locator("input[name=witness_org]").fill("齐都镇某社区居委会")
    witness.nth(0).locator("select[name=witness_org_kind]").select_option("grassroots")
    witness.nth(0).locator("input[value=signed]").check()
    draw_signature(page, witness.nth(0).locator("canvas"))
    page.get_by_role("button", name="添加见证人").click()
    witness.nth(1).locator("input[name=witness_name]").fill("孙某")
    witness.nth(1).locator("input[name=witness_org]").fill("当事人雇员")
    witness.nth(1).locator("select[name=witness_org_kind]").select_option("other")
    witness.nth(1).locator("input[value=refused]").check()
    witness.nth(1).locator("input[name=witness_refused_reason]").fill("怕得罪老板")
    page.get_by_role("button", name="下一步").click()
    answer_av(page)
    page.get_by_role("button", name="下一步").click()
    draw_signature(page, page.get_by_test_id("officer-signature").nth(0).locator("canvas"))
    page.get_by_role("button", name="保存留置送达记录").click()
    page.get_by_test_id("activity-items").wait_for()

    # End the activity.
    page.get_by_role("link", name="结束现场执法活动").click()
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    activity_url = page.url
    context.close()

    # Reopen the app on the same profile, still without signal.
    context, page = open_profile(playwright_instance, profile)
    context.set_offline(True)
    page.goto(activity_url)
    page.get_by_test_id("activity-items").wait_for()
    items = page.get_by_test_id("activity-items")
    assert items.get_by_test_id("item-step").count() == 3
    assert items.get_by_test_id("item-interruption").count() == 1
    assert items.get_by_test_id("item-service").count() == 1
    statuses = page.get_by_test_id("record-status").evaluate_all("els => els.map(e => e.dataset.status)")
    assert statuses and set(statuses) == {"unsynced"}

    records = page.evaluate(READ_STORE, "records")
    assert {r["type"] for r in records} == {"case", "activity", "step", "interruption", "service"}
    assert all(r["status"] == "unsynced" for r in records)
    activity = next(r for r in records if r["type"] == "activity")
    assert activity["payload"]["departed_at"] and len(activity["payload"]["officers"]) == 2
    interruption = next(r for r in records if r["type"] == "interruption")
    assert interruption["payload"]["resumed_at"] and interruption["payload"]["explanation"]
    service = next(r for r in records if r["type"] == "service")
    signed, refused = service["payload"]["witnesses"]
    assert signed["signature"] and (signed["confirmation"], signed["org_kind"]) == ("signed", "grassroots")
    assert refused["confirmation"] == "refused" and refused["signature"] is None
    assert refused["refused_reason"] == "怕得罪老板" and "refused_to_sign" not in refused
    assert (service["payload"]["av"], service["payload"]["av_camera_id"]) == ("body_camera", "DSJ-01")
    assert activity["payload"]["officers"][1] == {"user_id": None, "name": "李娜", "cert_no": "37030300302",
                                                  "unit_name": None, "cert_shown": True}
    assert all(r["payload"]["av"] == "body_camera" and "av_recorded" not in r["payload"]
               for r in records if r["type"] == "step")
    step_photos = [p for r in records if r["type"] == "step" for p in r["payload"]["photos"]]
    assert {p["hash"] for p in step_photos} == photo_hashes
    assert all(p["exif_taken_at"] == "2026-11-20T09:15:00" and p["exif_lat_e6"] for p in step_photos)

    stored = page.evaluate(STORED_MEDIA_HASHES)
    assert all(m["key"] == m["actual"] for m in stored), "a stored blob differs from its hash"
    assert photo_hashes <= {m["actual"] for m in stored}  # the originals, byte for byte

    outbox = page.evaluate(READ_STORE, "outbox")
    assert len(outbox) == 9  # case, activity ×2, steps ×3, interruption ×2, service
    count = page.get_by_test_id("unsynced-count")
    count.wait_for()
    assert count.get_attribute("data-count") == str(len(outbox))
    context.close()
