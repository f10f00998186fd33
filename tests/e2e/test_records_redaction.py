"""The records administrator draws the area to blur on a copy for a body outside the bureau, in
Chromium: a drag over the picture becomes a rectangle in fractions of the picture, and the copy
downloaded is marked with the grant and blurred there, while the stored original stays as it was."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image, ImageStat

from fieldapp.media.service import media_storage
from fieldapp.models import AccessGrant
from fieldapp.records import marking
from tests.e2e.journeys import lead_sign_in
from tests.e2e.test_lead_review import assert_accessible
from tests.support.flows import post_form
from tests.support.records_world import one, select

pytestmark = pytest.mark.e2e
DESK = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


def test_the_records_administrator_draws_what_to_blur_and_hands_out_a_marked_copy(browser, served_world):
    server, world = served_world
    registered = post_form(world.client("孙管理"), "/records/access", {
        "subject_kind": "case", "subject_id": world.case_id, "mode": "copy", "purpose": "enforcement_handover",
        "outside_name": "王警官", "outside_org": "临淄公安分局", "days": "7"})
    grant_url = registered.headers["Location"]
    grant_id = grant_url.rsplit("/", 1)[1]
    post_form(world.client("局长"), f"/records/access/{grant_id}/decide", {"decision": "approve"})

    class Admin:  # what lead_sign_in needs of a seeded user
        user_id = world.users["孙管理"]

    context, page = lead_sign_in(browser, server, world.app, Admin, **DESK)
    try:
        page.goto(f"{server.url}{grant_url}")
        editor = page.get_by_test_id("redaction-editor")
        picture = editor.locator("img")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        box = picture.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=4)
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=4)
        page.mouse.up()
        assert editor.get_by_test_id("redaction-box").count() == 1
        drawn = json.loads(page.get_by_test_id("redactions").input_value())
        assert len(drawn) == 1
        assert [round(drawn[0][k], 2) for k in ("x", "y", "w", "h")] == [0.5, 0.5, 0.25, 0.25]
        page.get_by_label("遮盖理由").fill("无关人员面部")
        with page.expect_download() as download:
            page.get_by_role("button", name="制作带水印的复制件").click()
        copy = open(download.value.path(), "rb").read()
        assert_accessible(page, [f"{server.url}/records/access", f"{server.url}{grant_url}",
                                 f"{server.url}/records/retention"])
    finally:
        context.close()
    number = one(world.app, select(AccessGrant.number))
    assert number in marking.read_mark(copy) and "孙管理" in marking.read_mark(copy)
    original = Image.open(io.BytesIO(world.photo)).convert("L").crop((170, 130, 230, 170))
    blurred = Image.open(io.BytesIO(copy)).convert("L").crop((170, 130, 230, 170))
    assert ImageStat.Stat(blurred).stddev[0] < 0.35 * ImageStat.Stat(original).stddev[0]
    with world.app.app_context():
        assert hashlib.sha256(media_storage().open("sha-256", world.digest).read()).hexdigest() == world.digest
