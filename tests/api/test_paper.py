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

from fieldapp import db
from fieldapp.models import PaperDocument, SyncedRecord
from tests.conftest import skip_or_fail
from tests.support.flows import post_form, push_results, sync_push
from tests.support.records_world import build, one, select


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def pdf_of(client, made) -> str:
    """The PDF a generated document's page links to (making a document shows its page)."""
    page = client.get(made.headers["Location"])
    assert page.status_code == 200 and page.mimetype == "text/html", page.status_code
    found = re.search(r'href="(/paper/[0-9a-f-]{36}\.pdf)"', page.get_data(as_text=True))
    assert found, "the document page links to its PDF"
    return found[1]


def decoded_qr_codes(pdf: bytes, tmp_path: Path) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
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
    made = post_form(lead, f"/paper/records/{world.activity_id}/photo_sheet", {})
    assert made.status_code == 303
    sheet = lead.get(pdf_of(lead, made))
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
    assert post_form(world.client("他队长"), f"/paper/records/{world.activity_id}/photo_sheet", {}).status_code == 404
    assert post_form(world.client("李队长"), f"/paper/records/{uuid.uuid4()}/photo_sheet", {}).status_code == 404


def _signature_png(seed: int) -> bytes:
    import io

    from PIL import Image, ImageDraw
    picture = Image.new("RGB", (300, 120), "white")
    draw = ImageDraw.Draw(picture)
    for k in range(6):
        draw.line([(20 + 40 * k, 30 + (seed * 7 + k * 13) % 60), (60 + 40 * k, 90 - (seed + k * 11) % 50)],
                  fill="black", width=6)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_a_proof_of_service_prints_the_refusal_witnesses_and_signatures_and_the_archive_forms_list_the_case(world, tmp_path):
    import hashlib
    sig_witness, sig_officer = _signature_png(1), _signature_png(2)
    h_w, h_o = hashlib.sha256(sig_witness).hexdigest(), hashlib.sha256(sig_officer).hexdigest()
    service_id = str(uuid.uuid4())
    media = [{"alg": "sha-256", "hash": h, "size": len(b), "type": "image/png"} for h, b in ((h_w, sig_witness),
                                                                                             (h_o, sig_officer))]
    payload = {"activity_id": world.activity_id, "case_id": world.case_id,
               "documents": [{"name": "行政处罚决定书", "number": "临市监罚〔2026〕88号"}],
               "recipient": {"name": "王某", "relation": "法定代表人", "id_no": None}, "place": "齐都镇鲜果超市店内",
               "refusal": {"words": "当事人称不认可处罚，拒绝签收", "acts": "将文书推回"},
               "at": "2026-12-01T02:30:00Z",
               "witnesses": [{"name": "刘见证", "org": "齐都镇居委会", "org_kind": "grassroots", "role": "工作人员",
                              "id_no": None, "confirmation": "signed", "confirmed_how": None, "signature": h_w,
                              "refused_reason": None},
                             {"name": "赵邻居", "org": "隔壁商户", "org_kind": "other", "role": "", "id_no": None,
                              "confirmation": "refused", "confirmed_how": None, "signature": None,
                              "refused_reason": "不愿卷入"}],
               "officers": [{"name": "张伟", "cert_no": "37030300001", "signature": h_o}], "media": []}
    service = world.device.revision(service_id, record_type="service", parent_id=world.activity_id,
                                    payload=payload, media=media)
    push_results(sync_push(world.client("张伟"), world.device.batch(service)))
    world.upload(sig_witness)
    world.upload(sig_officer)
    lead = world.client("李队长")
    made = post_form(lead, f"/paper/records/{service_id}/service_receipt", {})
    assert made.status_code == 303
    receipt = lead.get(pdf_of(lead, made))
    text = subprocess.run(["pdftotext", "-", "-"], input=receipt.data, capture_output=True).stdout.decode()
    for fact in ("送达回证", "行政处罚决定书", "临市监罚〔2026〕88号", "留置送达", "拒绝签收", "刘见证", "齐都镇居委会",
                 "赵邻居", "不愿卷入", "张伟", "37030300001"):
        assert fact in text, fact
    assert "副本" not in text  # every officer signed on the phone: the receipt itself, not a copy
    urls = decoded_qr_codes(receipt.data, tmp_path / "receipt")
    assert urls and all(u.endswith(urls[0].rsplit("/", 1)[1]) for u in urls)
    # The case file's forms
    for kind, facts in (("file_index", ("卷内", "鲜果超市", "送达")), ("file_notes", ("备考表", "照片"))):
        made = post_form(lead, f"/paper/cases/{world.case_id}/{kind}", {})
        assert made.status_code == 303, kind
        pdf = lead.get(pdf_of(lead, made))
        text = subprocess.run(["pdftotext", "-", "-"], input=pdf.data, capture_output=True).stdout.decode()
        assert all(f in text for f in facts), (kind, text[:500])
    # Only the unit's own lead or records administrator makes them
    assert post_form(world.client("法规科"), f"/paper/cases/{world.case_id}/file_index", {}).status_code == 403


def test_verify_tells_the_public_only_match_and_current_or_superseded(world, tmp_path):
    """The issue's public answer: "this code matches revision N of a record of 临淄区市场监督管理局,
    current / superseded", nothing more — a withdrawal reads as superseded to the public; a case file
    document names no revision it does not have."""
    lead = world.client("李队长")
    sheet = lead.get(pdf_of(lead, post_form(lead, f"/paper/records/{world.activity_id}/photo_sheet", {})))
    path = re.sub(r"^https?://[^/]+", "", decoded_qr_codes(sheet.data, tmp_path / "sheet")[0])
    public = world.app.test_client().get(path).get_data(as_text=True)
    assert "第 1 次修订" in public  # the activity's own revision, as printed
    with world.app.app_context(), db.transaction() as s:
        s.get(SyncedRecord, uuid.UUID(world.activity_id)).withdrawn = True
    public = world.app.test_client().get(path).get_data(as_text=True)
    assert 'data-current="no"' in public and 'data-testid="superseded"' in public and "撤回" not in public
    assert "撤回" in lead.get(path).get_data(as_text=True)  # staff are told why
    index = lead.get(pdf_of(lead, post_form(lead, f"/paper/cases/{world.case_id}/file_index", {})))
    path = re.sub(r"^https?://[^/]+", "", decoded_qr_codes(index.data, tmp_path / "index")[0])
    public = world.app.test_client().get(path).get_data(as_text=True)
    assert "案卷文书" in public and "次修订" not in public
    assert "verify-record" not in public
    assert f"/review/cases/{world.case_id}" in lead.get(path).get_data(as_text=True)
