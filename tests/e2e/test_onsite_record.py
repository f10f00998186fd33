"""A 现场笔录 made and signed on the phone with no signal (行政强制法 18; 行政处罚法 55): the party reads
the whole text and signs, the officers sign; a change after the text was shown clears the
signatures; each refusal to save says why. Synced, the server prints it as the signed 笔录 — the
phone's hash of what was signed is the server's, byte for byte."""
from __future__ import annotations

import subprocess
import uuid

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.documents import sheets
from fieldapp.models import SyncedRecord, User
from fieldapp.rules import onsite_records
from tests.e2e.capture_support import READ_STORE, draw_signature, sign_in_fresh_officer
from tests.e2e.conftest import wait_until
from tests.e2e.test_capture_payloads import SYNCED, refused
from tests.support.flows import seed_user

pytestmark = pytest.mark.e2e


def next_then_save(page, refusal: str | None = None) -> None:
    """On to the last step and save: the form refuses with the capture string ``refusal`` (and
    shows the step at fault), or the record is saved and the activity shown."""
    page.get_by_role("button", name="下一步").click()
    page.get_by_test_id("save-onsite-record").click()
    if refusal:
        refused(page, refusal)
    else:
        page.get_by_test_id("activity-items").wait_for()


def test_a_scene_record_is_read_signed_offline_and_prints_as_the_signed_record(live, page, authenticators):
    server, app = live
    seed_user(app, "李娜", "37030300302", "ZF1")
    sign_in_fresh_officer(page, authenticators, server, app)  # no signal from here on
    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("inspection")
    page.get_by_label("当事人", exact=True).fill("临淄区齐都镇鲜果超市")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()
    page.get_by_test_id("officer-choice").nth(1).locator("input[name=officer_pick]").check()
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()

    page.get_by_test_id("new-scene-record").click()
    assert page.locator("input[name=subject_name]").input_value() == "临淄区齐都镇鲜果超市"  # from the case
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name="下一步").click()
    next_then_save(page, refusal="recusal_needed")  # back on the notice, nothing typed lost
    page.get_by_test_id("recusal").get_by_label("不申请回避").check()
    page.get_by_role("button", name="下一步").click()
    page.locator("textarea[name=scene_content]").fill("冷柜内摆放过期酸奶12盒，标价出售。")
    page.locator("textarea[name=party_opinion]").fill("情况属实。")
    page.get_by_role("button", name="下一步").click()
    reading = page.get_by_test_id("reading-view")
    assert "冷柜内摆放过期酸奶12盒" in reading.inner_text() and "不申请回避" in reading.inner_text()
    page.get_by_test_id("party_outcome").get_by_label("阅读后签名").check()
    draw_signature(page, page.get_by_test_id("party-signs").locator("canvas"))

    # The officer goes back and changes the text: the party's signature is cleared.
    page.get_by_role("button", name="上一步").click()
    page.locator("textarea[name=scene_content]").fill("冷柜内摆放过期酸奶12盒、过期牛奶3盒，标价出售。")
    page.get_by_role("button", name="下一步").click()
    assert "过期牛奶3盒" in page.get_by_test_id("reading-view").inner_text()
    page.get_by_role("button", name="下一步").click()
    draw_signature(page, page.get_by_test_id("officer-signature").nth(0).locator("canvas"))
    page.get_by_test_id("save-onsite-record").click()
    refused(page, "party_signature_needed")
    draw_signature(page, page.get_by_test_id("party-signs").locator("canvas"))
    # The words signed under change after signing: that signature is cleared too.
    page.locator("input[name=confirmation]").fill("以上笔录我已看过，属实。")
    next_then_save(page, refusal="party_signature_needed")
    draw_signature(page, page.get_by_test_id("party-signs").locator("canvas"))
    next_then_save(page, refusal="officer_signature_needed")  # 李娜 has not signed
    assert page.get_by_test_id("officer-signature").nth(1).is_visible()
    draw_signature(page, page.get_by_test_id("officer-signature").nth(1).locator("canvas"))
    page.get_by_test_id("save-onsite-record").click()
    page.get_by_test_id("activity-items").wait_for()
    assert "现场笔录" in page.get_by_test_id("item-onsite_record").inner_text()

    [record] = [r for r in page.evaluate(READ_STORE, "records") if r["type"] == "onsite_record"]
    p = record["payload"]
    assert p["content"] == "冷柜内摆放过期酸奶12盒、过期牛奶3盒，标价出售。" and p["notice"]["recusal"] == "not_requested"
    assert p["signing"]["party"] == {"outcome": "signed", "signature": p["signing"]["party"]["signature"],
                                     "confirmation": "以上笔录我已看过，属实。"}
    assert len(record["media"]) == 3
    # the phone's hash of the signed text is the server's
    assert p["signing"]["content_sha256"] == onsite_records.content_sha256(p)
    assert onsite_records.assess(p).signed_original

    page.context.set_offline(False)
    wait_until(page, SYNCED, 60, arg=record["id"])
    lead = seed_user(app, "李队长", "37030300999", "ZF1", roles="lead")
    with app.test_request_context():  # the verification address on the paper is a URL of the app
        with db.write_transaction() as s:
            document = sheets.make("onsite_record", s.get(User, lead.user_id),
                                   record=s.get(SyncedRecord, uuid.UUID(record["id"])))
        pdf, name = sheets.render(document)
    assert name.startswith("现场笔录")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "过期牛奶3盒" in text and "以上笔录我已看过，属实。" in text and "副本" not in text
    with app.app_context():
        assert db.session().execute(select(SyncedRecord.record_type).where(
            SyncedRecord.id == uuid.UUID(record["id"]))).scalar_one() == "onsite_record"


def test_an_inquiry_the_person_refuses_to_sign_is_witnessed_and_kept(live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # one officer only: the record says so on paper
    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("penalty")
    page.get_by_label("当事人", exact=True).fill("临淄区齐都镇鲜果超市")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()

    page.get_by_test_id("new-inquiry-record").click()
    page.locator("input[name=subject_name]").fill("王某")
    page.locator("select[name=subject_sex]").select_option("male")
    page.get_by_role("button", name="下一步").click()
    page.get_by_test_id("recusal").get_by_label("不申请回避").check()
    page.get_by_role("button", name="下一步").click()
    page.locator("textarea[name=question]").fill("过期酸奶从哪里进货？")
    page.locator("textarea[name=answer]").fill("批发市场。")
    page.get_by_role("button", name="增加一问").click()
    page.locator("textarea[name=question]").nth(1).fill("卖出多少？")
    page.locator("textarea[name=answer]").nth(1).fill("3盒。")
    page.get_by_role("button", name="下一步").click()
    assert "卖出多少？" in page.get_by_test_id("reading-view").inner_text()
    assert page.get_by_test_id("party_outcome").get_by_label("不到场（由见证人签名）").count() == 0  # not for an inquiry
    page.get_by_test_id("party_outcome").get_by_label("拒绝签名").check()
    page.get_by_role("button", name="下一步").click()
    draw_signature(page, page.get_by_test_id("officer-signature").nth(0).locator("canvas"))
    page.get_by_test_id("save-onsite-record").click()
    refused(page, "refusal_note_needed")
    page.locator("textarea[name=refused_reason]").fill("称不认可，拒绝签名")
    # No witness is asked for a refusal (行政强制法第十八条第（八）项), but one who is named signs.
    assert page.get_by_test_id("witness-optional").is_visible()
    page.locator("input[name=witness_org]").fill("齐都镇居委会")  # a witness begun is a witness: named
    next_then_save(page, refusal="witness_name_needed")
    page.locator("input[name=witness_name]").fill("刘见证")
    next_then_save(page, refusal="witness_signature_needed")
    draw_signature(page, page.get_by_test_id("witness").locator("canvas"))
    next_then_save(page)

    [record] = [r for r in page.evaluate(READ_STORE, "records") if r["type"] == "onsite_record"]
    p = record["payload"]
    assert p["qa"] == [{"q": "过期酸奶从哪里进货？", "a": "批发市场。"}, {"q": "卖出多少？", "a": "3盒。"}]
    assert p["subject"] == {"name": "王某", "sex": "male"}
    assert p["signing"]["party"] == {"outcome": "refused", "signature": None, "refused_reason": "称不认可，拒绝签名"}
    assert p["signing"]["witness"]["name"] == "刘见证" and p["signing"]["witness"]["signature"]
    assert p["signing"]["content_sha256"] == onsite_records.content_sha256(p)
    # one officer: kept, and the paper will say it is a copy and why (行政处罚法第四十二条)
    assert {r.id for r in onsite_records.assess(p).problems} == {"two_officers"}
