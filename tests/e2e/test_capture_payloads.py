"""What the phone writes, as the payload contract between the phone and the compliance rules says:
officers chosen from the unit's enrolled list (fetched while online, picked with no signal), an
audio/video answer nobody chose beforehand, the documents checklist of a version-2 catalogue, a
留置送达 with photos and no witness, the return to the unit, continuous recording once officers were
obstructed — and a synced item withdrawn with its reason."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.e2e.capture_support import (
    READ_STORE, add_step_with_photo, answer_av, draw_signature, jpeg_with_exif, sign_in_fresh_officer, start_visit,
)
from tests.e2e.conftest import wait_until
from tests.support.flows import seed_user

pytestmark = pytest.mark.e2e

FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"

# The shape catalogue version 2 gives a step type, put on the cached catalogue's first inspection
# step (the phone must draw it whether or not the server publishes it yet).
CATALOGUE_V2 = """async () => {
  const store = await import('/static/js/capture/store.js');
  const versions = await store.getMeta('catalogues', {});
  const catalogue = versions[await store.getMeta('catalogue_version')];
  const step = catalogue.step_types.find((s) => s.id === 'inspection_double_random');
  step.documents = ['现场笔录', '行政处罚决定书', '不予行政处罚决定书', '封条'];
  step.one_of = [['行政处罚决定书', '不予行政处罚决定书']];
  step.conditional = [{ document: '封条', when: 'measure_seal' }];
  catalogue.document_conditions = [{ id: 'measure_seal', label_zh: '实施查封的', label_en: 'When sealing up',
                                     article: '行政强制法 art. 24' }];
  await store.putMeta('catalogues', versions);
}"""


def records_of(page, kind: str) -> list[dict]:
    return [r for r in page.evaluate(READ_STORE, "records") if r["type"] == kind]


def refused(page, key: str) -> None:
    """The form said why it did not save: the capture string ``key``, in the page's language."""
    page.locator("[data-testid=save-message][data-state=error]").wait_for(state="attached")
    said = page.evaluate("(key) => JSON.parse(document.getElementById('i18n').textContent)[key]", key)
    assert said and page.get_by_test_id("save-message").inner_text() == said, key


# Sync until the record is on the server with its originals (已同步).
SYNCED = """async (id) => {
  await window.fieldappSync.syncNow('test');
  const store = await import('/static/js/capture/store.js');
  return (await store.get('records', id)).status === 'synced';
}"""


def test_an_offline_visit_writes_what_the_rules_read(live, page, authenticators, tmp_path):
    server, app = live
    colleague = seed_user(app, "李娜", "37030300302", "ZF1")
    seed_user(app, "孙涛", "37030300901", "ZF2")  # another unit's officer: never on this phone
    sign_in_fresh_officer(page, authenticators, server, app)  # 张伟; no signal from here on
    me = page.evaluate("JSON.parse(document.getElementById('capture-context').textContent).user")
    page.evaluate(CATALOGUE_V2)

    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("inspection")
    page.get_by_label("当事人", exact=True).fill("临淄区齐都镇鲜果超市")
    page.locator("input[name=party_id_number]").fill("110105194912310021")  # wrong check digit: a warning
    assert "校验" in page.get_by_test_id("id-note").inner_text()
    page.locator("input[name=party_id_number]").fill("11010519491231002x")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()

    # The unit's officers, cached while online, are picked offline; the signed-in one is ticked.
    choices = page.get_by_test_id("officer-choice")
    choices.nth(1).wait_for()  # the form renders after the cached list is read
    assert choices.evaluate_all("rows => rows.map(r => r.dataset.certNo)") == ["37030300401", "37030300302"]
    assert choices.nth(0).locator("input[name=officer_pick]").is_checked()
    assert not choices.nth(1).locator("input[name=officer_pick]").is_checked()
    assert "不得少于两人" in page.get_by_test_id("officer-warning").inner_text()
    choices.nth(1).locator("input[name=officer_pick]").check()
    assert page.get_by_test_id("officer-warning").inner_text() == ""
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.get_by_role("button", name="添加执法记录仪").click()
    page.locator("input[name=camera_id]").nth(1).fill("DSJ-02")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    activity_url = page.url
    assert page.get_by_test_id("continuous-required").count() == 0

    # A step whose audio/video is required: no answer is no step, and nothing typed is lost.
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("情况记录").fill("现场检查，货架商品标签齐全")
    assert "行政处罚决定书 / 不予行政处罚决定书" in page.get_by_test_id("document-one-of").inner_text()
    assert "实施查封的" in page.get_by_test_id("document-condition").inner_text()
    rows = {name: page.locator(f"[data-testid=document-row][data-document='{name}']")
            for name in ("现场笔录", "行政处罚决定书", "封条")}
    rows["行政处罚决定书"].locator("input[name=documents]").check()
    rows["封条"].locator("input[name=document_na]").check()
    assert rows["封条"].get_by_test_id("document-na-lead").count() == 0  # conditional: no lead needed
    rows["现场笔录"].locator("input[name=document_na]").check()
    assert rows["现场笔录"].get_by_test_id("document-na-lead").is_visible()  # required: a lead must accept
    rows["现场笔录"].locator("input[name=document_na]").uncheck()
    page.get_by_role("button", name="保存环节").click()
    refused(page, "av_answer_needed")
    assert page.get_by_label("情况记录").input_value() == "现场检查，货架商品标签齐全"
    answer_av(page, "body_camera", camera="DSJ-02")
    page.get_by_role("button", name="保存环节").click()  # 封条 is marked not applicable without a reason
    refused(page, "document_na_reason_needed")
    rows["封条"].locator("input[name=document_na_reason]").fill("未实施查封")
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()
    assert not records_of(page, "step")[0]["payload"].get("measure")

    # Obstructed: recording must now be continuous.
    page.get_by_role("link", name="记录中断").first.click()
    page.get_by_label("原因").select_option("obstruction")
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("continuous-required").wait_for()

    # 留置送达 with photos and a clip, no witness, the recipient's identity number mistyped.
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(FTYP + bytes(range(256)) * 40)
    photo = tmp_path / "left.jpg"
    jpeg_with_exif(photo, seed=4)
    page.get_by_role("link", name="留置送达").click()
    page.locator("input[name=doc_name]").fill("行政处罚决定书")
    page.get_by_label("受送达人", exact=True).fill("王某")
    page.locator("input[name=recipient_id_no]").fill("110105 19491231 0021")
    note = page.locator("input[name=recipient_id_no] ~ [data-testid=id-note]")
    assert "warning" in note.get_attribute("class") and note.inner_text()
    page.locator("input[name=recipient_id_no]").fill("11010519491231002x")
    assert "warning" not in note.get_attribute("class")
    page.locator("input[name=service_place]").fill("店内收银台")
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("拒收的言语").fill("不签，拿走")
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name="下一步").click()  # no witness
    warning = page.get_by_test_id("service-path-warning")
    assert warning.inner_text(), "neither a witness who confirmed nor a photo: warned"
    page.set_input_files("[data-testid=photo-input]", str(photo))
    page.get_by_test_id("photo-saved").wait_for()
    assert warning.inner_text() == ""
    answer_av(page, "clip")
    page.get_by_role("button", name="下一步").click()
    draw_signature(page, page.get_by_test_id("officer-signature").nth(0).locator("canvas"))
    page.get_by_test_id("save-service").click()  # "clip" with no clip attached: back to that step
    refused(page, "av_clip_needed")
    assert page.get_by_test_id("av-question").is_visible()
    page.set_input_files("[data-testid=clip-input]", str(clip))
    page.get_by_test_id("photo-saved").nth(1).wait_for()
    page.get_by_role("button", name="下一步").click()
    page.get_by_test_id("save-service").click()
    page.get_by_test_id("activity-items").wait_for()

    # Ended on site, then back at the unit.
    page.get_by_role("link", name="结束现场执法活动").click()
    page.get_by_role("button", name="结束现场执法活动").click()
    page.get_by_test_id("return-to-unit").click()
    page.locator("input[name=returned_at]").wait_for()
    page.get_by_test_id("save-return").click()
    page.get_by_test_id("returned-at").wait_for()
    assert page.url == activity_url and page.get_by_test_id("return-to-unit").count() == 0

    activity = records_of(page, "activity")[0]
    p = activity["payload"]
    assert activity["revision"] == 3 and p["departed_at"] <= p["returned_at"]
    assert p["officers"] == [
        {"user_id": me["id"], "name": "张伟", "cert_no": "37030300401", "unit_name": "单位 ZF1", "cert_shown": True},
        {"user_id": str(colleague.user_id), "name": "李娜", "cert_no": "37030300302", "unit_name": "单位 ZF1",
         "cert_shown": True}]
    assert [c["camera_id"] for c in p["cameras"]] == ["DSJ-01", "DSJ-02"]
    step = records_of(page, "step")[0]["payload"]
    assert (step["av"], step["av_camera_id"], step["av_reason"]) == ("body_camera", "DSJ-02", None)
    assert "av_recorded" not in step
    assert step["documents"] == ["行政处罚决定书"]
    assert step["documents_na"] == [{"name": "封条", "reason": "未实施查封"}]
    service = records_of(page, "service")[0]["payload"]
    assert service["witnesses"] == [] and len(service["media"]) == 2
    assert (service["av"], service["av_camera_id"], service["av_reason"]) == ("clip", None, None)
    assert service["recipient"] == {"name": "王某", "relation": "self", "id_no": "11010519491231002X"}
    assert service["place"] == "店内收银台" and service["refusal"] == {"words": "不签，拿走", "acts": None}
    assert [o["cert_no"] for o in service["officers"]] == ["37030300401", "37030300302"]
    assert service["officers"][0]["signature"] and service["officers"][1]["signature"] is None

    # Still offline: the inspection turns into a penalty case on the spot, the party carried over
    # and the inspection named, so 先行登记保存 can be taken there.
    inspection = records_of(page, "case")[0]
    assert inspection["payload"]["party_id_number"] == "11010519491231002X"  # normalised, as the card reads
    page.goto(f"{server.url}/#/cases/{inspection['id']}")
    page.get_by_test_id("open-penalty-case").click()
    assert page.get_by_label("执法类别").input_value() == "penalty"
    assert page.get_by_label("当事人", exact=True).input_value() == "临淄区齐都镇鲜果超市"
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("desk-step-link").wait_for()
    [opened] = [c for c in records_of(page, "case") if c["payload"]["kind"] == "penalty"]
    assert opened["payload"]["linked_case_id"] == inspection["id"]
    assert opened["payload"]["party_name"] == "临淄区齐都镇鲜果超市"


def test_a_synced_step_is_withdrawn_with_its_reason(live, page, authenticators, tmp_path):
    from fieldapp import db
    from fieldapp.models import Revision

    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app, offline=False)
    activity_url = start_visit(page)
    photo = tmp_path / "wrong.jpg"
    jpeg_with_exif(photo, seed=8)
    add_step_with_photo(page, photo)
    page.get_by_test_id("activity-items").wait_for()
    step_id = records_of(page, "step")[0]["id"]
    wait_until(page, SYNCED, 30, arg=step_id)

    page.goto(activity_url)
    page.get_by_test_id("item-step").get_by_role("link", name="撤回").click()
    page.get_by_test_id("withdraw-explained").wait_for()
    page.get_by_role("button", name="撤回").click()
    assert "请填写原因" in page.get_by_test_id("save-message").inner_text()
    page.locator("textarea[name=reason]").fill("误选了环节类型")
    page.get_by_role("button", name="撤回").click()
    page.get_by_test_id("activity-items").wait_for()
    assert page.get_by_test_id("item-step").count() == 0
    wait_until(page, SYNCED, 30, arg=step_id)

    with app.app_context():
        held = db.session().execute(select(Revision).where(Revision.record_id == uuid.UUID(step_id))
                                    .order_by(Revision.revision)).scalars().all()
        assert [(r.revision, r.parent) for r in held] == [(1, None), (2, 1)]
        assert held[1].reason == "误选了环节类型" and held[1].payload["withdrawn"] is True
        assert held[1].payload["withdrawn_reason"] == "误选了环节类型" and held[1].media == []
