"""The capture screens on a 360 px phone: a one-row header, saved items that open read-only with
their photos, forms that show only what applies, 留置送达 in steps with full-width signature pads,
an outbox that names what it holds, and citations written as a Chinese reader expects."""
from __future__ import annotations

import re

import pytest

from tests.e2e.capture_support import (
    answer_av, draw_signature, jpeg_with_exif, sign_in_fresh_officer, start_visit,
)

pytestmark = pytest.mark.e2e

LATIN_CITATION = re.compile(r"\barts?\.")


def test_header_is_one_row_and_the_step_form_shows_only_what_applies(live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    header = page.locator("header.topbar")
    assert header.bounding_box()["height"] <= 64, "the header must stay one row at 360 px"

    start_visit(page)
    assert header.bounding_box()["height"] <= 64
    page.get_by_role("link", name="添加环节").click()
    reason = page.locator("input[name=av_reason]")
    camera = page.locator("select[name=av_camera_id]")
    assert page.locator("input[name=av]:checked").count() == 0, "no audio/video answer is given for the officer"
    assert reason.is_hidden() and camera.is_hidden(), "未录制的原因 is asked only when 未录制 is chosen"
    page.locator("input[name=av][value=not_recorded]").check()
    assert reason.is_visible() and page.get_by_test_id("av-not-recorded-note").is_visible()
    page.locator("input[name=av][value=body_camera]").check()
    assert reason.is_hidden() and camera.is_visible()
    assert camera.evaluate("s => Array.from(s.options).map(o => o.value)") == ["DSJ-01", ""]
    assert page.locator("input[name=av_camera_other]").is_hidden()
    assert page.get_by_test_id("step-type-fields").count() == 0, "no question of another step type"

    note = page.get_by_test_id("av-note").inner_text()
    assert "条" in note and not LATIN_CITATION.search(note), note  # 依据第二十四条, never "art. 24"


def test_a_saved_step_opens_read_only_with_its_photo_and_the_outbox_names_it(
        live, page, authenticators, tmp_path):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    photo = tmp_path / "shelf.jpg"
    jpeg_with_exif(photo, seed=2)
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("情况记录").fill("货架标签齐全")
    page.set_input_files("[data-testid=photo-input]", str(photo))
    page.get_by_test_id("photo-saved").wait_for()
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()

    item = page.get_by_test_id("item-step")
    item.get_by_test_id("open-item").click()
    view = item.get_by_test_id("saved-item-view")
    view.wait_for()
    assert "货架标签齐全" in view.inner_text()
    image = view.locator("img").first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert view.locator("input, textarea, select").count() == 0, "a saved item is shown, not edited"

    page.goto(server.url + "/#/outbox")
    rows = page.get_by_test_id("outbox-item")
    rows.first.wait_for()
    text = " ".join(rows.all_inner_texts())
    assert "环节" in text and "现场执法活动" in text and "案件" in text, text
    assert not re.search(r"[0-9a-f]{8}…", text), "no id fragments"


def test_service_by_leaving_goes_in_steps_with_full_width_pads_and_none_for_a_refusal(
        live, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)
    start_visit(page)
    page.get_by_role("link", name="留置送达").click()
    progress = page.get_by_test_id("service-progress")
    assert progress.inner_text().startswith("第 1 步")
    assert page.get_by_label("拒收的言语").is_hidden(), "one step at a time"
    page.locator("input[name=doc_name]").fill("行政处罚决定书")
    page.get_by_label("受送达人", exact=True).fill("王某")
    page.locator("input[name=service_place]").fill("店内收银台")
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("拒收的言语").fill("不签，拿走")
    page.get_by_role("button", name="下一步").click()

    witness = page.get_by_test_id("witness").first
    witness.locator("input[name=witness_name]").fill("孙某")
    witness.locator("select[name=witness_org_kind]").select_option("employer")
    pad = witness.locator("canvas")
    assert pad.is_hidden(), "no pad before the witness is to sign"
    witness.locator("input[value=signed]").check()
    assert pad.bounding_box()["width"] >= 330, "a signature gets the width of the phone"
    assert pad.bounding_box()["height"] >= 160
    witness.locator("input[value=refused]").check()
    assert pad.is_hidden(), "a witness who refused gets no signature pad"
    assert witness.locator("input[name=witness_refused_reason]").is_visible()
    witness.locator("input[name=witness_refused_reason]").fill("怕得罪老板")
    page.get_by_role("button", name="下一步").click()  # photos of the document left, and the audio/video answer
    assert page.get_by_test_id("service-path-warning").inner_text(), "no witness who confirmed, no photo"
    answer_av(page, "not_recorded", reason="记录仪没电")
    page.get_by_role("button", name="下一步").click()  # officers sign

    officer_pad = page.get_by_test_id("officer-signature").first.locator("canvas")
    assert officer_pad.bounding_box()["width"] >= 330
    draw_signature(page, officer_pad)
    page.get_by_role("button", name="保存留置送达记录").click()
    page.get_by_test_id("activity-items").wait_for()
    assert page.get_by_test_id("item-service").count() == 1


def test_the_phone_writes_every_catalogue_citation_as_the_server_does(live, page):
    from fieldapp.rules.catalogue import format_citation, load_builtin

    server, _app = live
    page.goto(server.url + "/help")
    stored = sorted(load_builtin().citations()) + [
        "arts. 23–24", "arts. 12, 19", "行政处罚法 art. 42, 55; 行政强制法 art. 18", "民诉解释 art. 130"]
    phone = page.evaluate("""async (list) => {
        const m = await import('/static/js/i18n.js');
        return list.map((c) => [m.formatCitation(c, true), m.formatCitation(c, false)]);
    }""", stored)
    assert phone == [[format_citation(c, zh=True), c] for c in stored]
