"""A package the app itself built, taken out of its ZIP and checked in Chromium from file:// with
the network off — the page says 通过 for each item, as verify.py does — and after one byte of an
original is changed, 不通过 for that item."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest

from fieldapp.models import EvidencePackage
from tests.e2e.conftest import wait_until
from tests.support.flows import post_form
from tests.support.records_world import build, one, select

pytestmark = pytest.mark.e2e


@pytest.fixture
def package_folder(sqlite_url, tmp_path):
    world = build(sqlite_url, tmp_path / "var")
    made = post_form(world.client("孙管理"), "/records/access", {
        "subject_kind": "case", "subject_id": world.case_id, "mode": "copy", "purpose": "reconsideration_litigation",
        "requester_id": str(world.users["法规科"]), "days": "7"})
    grant_id = made.headers["Location"].rsplit("/", 1)[1]
    post_form(world.client("分管局长"), f"/records/access/{grant_id}/decide", {"decision": "approve"})
    post_form(world.client("孙管理"), f"/records/access/{grant_id}/package", {
        "item": f"sha-256:{world.digest}", f"proves-{world.digest}": "证明现场存放过期食品 𠮷"})
    package = one(world.app, select(EvidencePackage))
    assert package.state == "ready", package.error
    data = world.client("孙管理").get(f"/records/packages/{package.id}/files/{package.zip_name}").data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp_path / "disc")
    (root,) = list((tmp_path / "disc").iterdir())
    yield root
    world.app.extensions["fieldapp.engine"].dispose()


def run_page(browser, root):
    context = browser.new_context(locale="zh-CN")
    context.set_offline(True)
    tried: list[str] = []
    context.route(lambda url: not url.startswith("file:"), lambda route: (tried.append(route.request.url), route.abort()))
    try:
        page = context.new_page()
        page.goto((root / "verify.html").as_uri())
        before = int(page.evaluate("document.body.dataset.run"))
        page.get_by_test_id("folder-input").set_input_files(str(root))
        wait_until(page, f"document.body.dataset.state === 'done' && Number(document.body.dataset.run) > {before}")
        overall = page.get_by_test_id("verdict-overall")
        item = page.get_by_test_id("verdict-item-1")
        card = page.get_by_test_id("item-1")  # the verdict with every reason
        return overall.get_attribute("data-verdict"), item.get_attribute("data-verdict"), card.inner_text(), tried
    finally:
        context.close()


def test_the_apps_own_package_passes_in_the_browser_offline_and_a_changed_byte_fails(browser, package_folder):
    overall, item, text, tried = run_page(browser, package_folder)
    assert (overall, item) == ("pass", "pass") and "通过" in text and "不通过" not in text
    assert not tried
    assert subprocess.run([sys.executable, "verify.py", "."], cwd=package_folder, capture_output=True).returncode == 0
    (original,) = (package_folder / "originals").iterdir()
    data = bytearray(original.read_bytes())
    data[100] ^= 0xFF
    original.write_bytes(bytes(data))
    overall, item, text, _ = run_page(browser, package_folder)
    assert (overall, item) == ("fail", "fail") and "不通过" in text and original.name in text
