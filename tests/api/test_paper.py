"""Paper that proves itself (arts. 3, 8, 17): the 现场照片 sheet of an activity is made from the exact
revisions it shows; its QR code, decoded from the rendered page, opens /verify, which tells anyone
that it matches a record of the bureau and whether that is current — and says "superseded" once a
record on the sheet has a later revision. Both databases."""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from fieldapp.models import PaperDocument
from tests.conftest import skip_or_fail
from tests.support.flows import post_form, push_results, sync_push
from tests.support.records_world import build, one, select


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def decoded_qr_codes(pdf: bytes, tmp_path: Path) -> list[str]:
    for tool in ("pdftoppm", "zbarimg", "pdftotext"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is not installed (scripts/test installs it)")
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(tmp_path / "sheet.pdf"), str(tmp_path / "page")], check=True)
    found = []
    for page in sorted(tmp_path.glob("page*.png")):
        out = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, text=True)
        found.append(out.stdout.strip())
    return found


def test_a_photo_sheet_carries_a_code_that_verify_accepts_until_a_record_changes(world, tmp_path):
    lead = world.client("李队长")
    made = post_form(lead, f"/paper/activities/{world.activity_id}/photo-sheet", {})
    assert made.status_code == 303
    sheet = lead.get(made.headers["Location"])
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=sheet.data, capture_output=True).stdout.decode()
    assert "张伟" in text and "鲜果超市" in text
    urls = decoded_qr_codes(sheet.data, tmp_path)
    assert urls and len(set(urls)) == 1 and all(urls), urls  # the same code on every page
    path = re.sub(r"^https?://[^/]+", "", urls[0])
    assert path.startswith("/verify/")
    public = world.app.test_client().get(path).get_data(as_text=True)
    assert 'data-matches="yes"' in public and 'data-current="yes"' in public
    assert "verify-record" not in public  # the public learns nothing more
    assert 'data-testid="verify-record"' in lead.get(path).get_data(as_text=True)
    # A record on the sheet changes: the paper is now superseded.
    document = one(world.app, select(PaperDocument))
    step_id, revision = next((r, n) for r, n, _ in document.sources if r != world.activity_id)
    later = world.device.revision(step_id, revision=revision + 1, parent_id=world.activity_id,
                                  reason="补充说明", payload={"activity_id": world.activity_id,
                                                          "case_id": world.case_id, "notes": "补拍",
                                                          "step_type": "penalty_onsite_inspection"})
    push_results(sync_push(world.client("张伟"), world.device.batch(later)))
    again = world.app.test_client().get(path).get_data(as_text=True)
    assert 'data-matches="yes"' in again and 'data-current="no"' in again and "superseded" in again
    # An altered code matches nothing.
    altered = path[:-1] + ("0" if path[-1] != "0" else "1")
    assert world.app.test_client().get(altered).status_code == 404
    assert world.app.test_client().get("/verify/not-a-code").status_code == 404


def test_another_units_lead_cannot_print_this_units_sheet(world):
    assert post_form(world.client("他队长"), f"/paper/activities/{world.activity_id}/photo-sheet", {}).status_code == 404
    assert post_form(world.client("李队长"), f"/paper/activities/{uuid.uuid4()}/photo-sheet", {}).status_code == 404
