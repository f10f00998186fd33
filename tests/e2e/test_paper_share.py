"""Printing on the road, in Chromium: "Share or print" on a generated document's page hands the PDF
to the phone's share sheet as one file (its targets include the printer); a browser that cannot
share files opens the PDF in a new tab instead; and with no connection the status line says so."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.journeys import lead_sign_in
from tests.e2e.test_lead_review import assert_accessible
from tests.support.flows import post_form

pytestmark = pytest.mark.e2e

# A phone's share sheet where the page asks for one (?share=phone), none elsewhere (a desk browser).
SHARE_OR_NOT = """
if (new URLSearchParams(location.search).get("share") === "phone") {
  Object.defineProperty(navigator, "canShare", {configurable: true,
    value: (data) => Array.isArray(data && data.files) && data.files.length > 0});
  Object.defineProperty(navigator, "share", {configurable: true, value: async (data) => {
    window.__shared = {files: data.files.length, type: data.files[0].type, size: data.files[0].size,
                       name: data.files[0].name, title: data.title};
  }});
} else {
  Object.defineProperty(navigator, "canShare", {configurable: true, value: undefined});
  Object.defineProperty(navigator, "share", {configurable: true, value: undefined});
}
// What each blob URL holds (the page's CSP keeps a test from fetching blob: URLs back).
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (blob) => {
  const url = createObjectURL(blob);
  (window.__blobs = window.__blobs || {})[url] = {size: blob.size, type: blob.type};
  return url;
};
"""

PDF = re.compile(r"/paper/[0-9a-f-]{36}\.pdf$")


def test_share_hands_the_pdf_to_the_share_sheet_or_opens_it_in_a_new_tab(browser, served_world):
    server, world = served_world
    made = post_form(world.client("李队长"), f"/paper/records/{world.activity_id}/photo_sheet", {})
    page_path = re.sub(r"^https?://[^/]+", "", made.headers["Location"])

    class Lead:
        user_id = world.users["李队长"]

    context, page = lead_sign_in(browser, server, world.app, Lead)
    sent: list[bytes] = []  # each PDF as the server sent it to the page

    def through(route):
        response = route.fetch()
        sent.append(response.body())
        route.fulfill(response=response)

    try:
        context.add_init_script(SHARE_OR_NOT)
        context.route(PDF, through)
        # (a) A phone: one File, the PDF, to the share sheet.
        page.goto(f"{server.url}{page_path}?share=phone")
        page.get_by_test_id("share-pdf").click()
        shared = wait_until(page, "() => window.__shared")
        assert len(sent) == 1
        pdf = sent[0]
        assert pdf.startswith(b"%PDF-")
        assert shared["files"] == 1 and shared["type"] == "application/pdf"
        assert shared["size"] == len(pdf) and shared["name"].endswith(".pdf")
        assert shared["title"] == page.get_by_test_id("share-pdf").get_attribute("data-title")

        # (b) No share sheet: the PDF opens in a new tab.
        page.goto(f"{server.url}{page_path}")
        with context.expect_page() as opened:
            page.get_by_test_id("share-pdf").click()
        tab = opened.value
        url = wait_until(tab, "() => location.href.startsWith('blob:') && location.href")
        assert len(sent) == 2
        pdf = sent[-1]
        assert page.evaluate("(u) => window.__blobs[u]", url) == {"size": len(pdf), "type": "application/pdf"}
        assert tab.evaluate("() => document.contentType") == "application/pdf"
        tab.close()

        # (c) No connection: the status line says so, and no tab is left open.
        context.unroute(PDF)
        context.route(PDF, lambda route: route.abort("internetdisconnected"))
        page.goto(f"{server.url}{page_path}")
        pages_before = len(context.pages)
        page.get_by_test_id("share-pdf").click()
        offline = page.get_by_test_id("share-pdf").get_attribute("data-offline")
        wait_until(page, "(text) => document.querySelector('[data-testid=share-status]').textContent === text",
                   arg=offline)
        assert page.get_by_test_id("share-status").is_visible()
        assert len(context.pages) == pages_before
        assert_accessible(page, [f"{server.url}{page_path}"])
    finally:
        context.close()
