"""现场笔录 and 询问笔录 signed on the phone, synced, and printed (issue 18; 行政强制法 18, 行政处罚法 55):
the PDF reproduces what was signed with the signatures drawn; a record changed after it was signed
prints as a copy saying why, the case page says so, and the earlier paper reads "superseded". Both
databases."""
from __future__ import annotations

import hashlib
import subprocess
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import desc

from fieldapp.models import PaperDocument
from fieldapp.rules import onsite_records
from tests.api.test_paper import _signature_png, decoded_qr_codes
from tests.support.flows import post_form, push_results, sync_push
from tests.support.records_world import build, one, select


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


PARTY_SIG, OFFICER_A, OFFICER_B, STRANGER = (_signature_png(n) for n in (3, 4, 5, 6))


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scene_payload(world, content: str = "货架上摆放过期酸奶12盒，标价出售。") -> dict:
    payload = {"activity_id": world.activity_id, "case_id": world.case_id, "form": "scene",
               "started_at": "2026-12-01T02:00:00Z", "ended_at": "2026-12-01T02:40:00Z", "place": "齐都镇鲜果超市店内",
               "subject": {"name": "鲜果超市", "id_no": "91370305MA3C5XKX1Q", "representative": "王某"},
               "officers": [{"name": "张伟", "cert_no": "37030300001"}, {"name": "王强", "cert_no": "37030300002"}],
               "recorder": "王强", "notice": {"credentials_shown": True, "recusal": "not_requested"},
               "content": content, "opinion": "无异议。"}
    payload["signing"] = {"party": {"outcome": "signed", "signature": _h(PARTY_SIG),
                                    "confirmation": "以上笔录我已看过，与现场情况相符。"},
                          "witness": None,
                          "officers": [{"name": "张伟", "cert_no": "37030300001", "signature": _h(OFFICER_A)},
                                       {"name": "王强", "cert_no": "37030300002", "signature": _h(OFFICER_B)}]}
    payload["signing"]["content_sha256"] = onsite_records.content_sha256(payload)
    return payload


def media_of(*pictures: bytes) -> list[dict]:
    return [{"alg": "sha-256", "hash": _h(b), "size": len(b), "type": "image/png"} for b in pictures]


def push_record(world, payload, *, revision=1, record_id=None, pictures=(PARTY_SIG, OFFICER_A, OFFICER_B), reason=None):
    record_id = record_id or str(uuid.uuid4())
    item = world.device.revision(record_id, revision=revision, record_type="onsite_record",
                                 parent_id=world.activity_id, payload=payload, media=media_of(*pictures),
                                 reason=reason)
    results = push_results(sync_push(world.client("张伟"), world.device.batch(item)))
    assert results[0]["status"] == "created", results
    return record_id


def printed(world, client, record_id) -> tuple[PaperDocument, bytes]:
    made = post_form(client, f"/paper/records/{record_id}/onsite_record", {})
    assert made.status_code == 303
    document = one(world.app, select(PaperDocument).where(PaperDocument.record_id == uuid.UUID(record_id))
                   .order_by(desc(PaperDocument.made_at)).limit(1))
    pdf = client.get(f"/paper/{document.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    return document, pdf.data


def text_of(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def images_in(pdf: bytes, tmp_path) -> int:
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    return len(listing.splitlines()) - 2


def test_a_signed_scene_record_prints_as_the_record_with_its_signatures(world, tmp_path):
    record_id = push_record(world, scene_payload(world))
    for picture in (PARTY_SIG, OFFICER_A, OFFICER_B):
        world.upload(picture)
    lead = world.client("李队长")
    document, pdf = printed(world, lead, record_id)
    text = text_of(pdf)
    for fact in ("现场笔录", "鲜果超市", "91370305MA3C5XKX1Q", "货架上摆放过期酸奶12盒", "张伟", "37030300002",
                 "以上笔录我已看过，与现场情况相符", "已向你出示执法证件"):
        assert fact in text, fact
    assert "副本" not in text
    # the party's signature in the body and at each page's foot, and the two officers'
    assert images_in(pdf, tmp_path) >= 4
    urls = decoded_qr_codes(pdf, tmp_path / "qr")
    assert urls and all(urls) and len(set(urls)) == 1
    page = lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert 'data-testid="onsite-signed"' in page and 'data-testid="onsite-unsigned"' not in page
    disposition = lead.get(f"/paper/{document.id}.pdf").headers["Content-Disposition"]
    assert quote("现场笔录-") in disposition


def test_a_record_changed_after_signing_prints_as_a_copy_and_the_signed_paper_is_superseded(world, tmp_path):
    payload = scene_payload(world)
    record_id = push_record(world, payload)
    lead = world.client("李队长")
    first, _ = printed(world, lead, record_id)
    changed = dict(payload, content=payload["content"] + "另查见过期牛奶3盒。")  # the signing block is left as it was
    push_record(world, changed, revision=2, record_id=record_id, reason="补充")
    _, copy_pdf = printed(world, lead, record_id)
    text = text_of(copy_pdf)
    assert "副本" in text and "签名后笔录内容（含确认语、见证人）有改动" in text and "另查见过期牛奶3盒" in text
    page = lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert 'data-testid="onsite-unsigned"' in page
    from fieldapp.documents.codes import make as make_code
    old = world.app.test_client().get(f"/verify/{make_code(first.id, first.digest)}").get_data(as_text=True)
    assert 'data-matches="yes"' in old and 'data-current="no"' in old


def test_a_signature_the_revision_does_not_carry_is_not_drawn(world, tmp_path):
    payload = scene_payload(world)
    payload["signing"]["party"]["signature"] = _h(STRANGER)  # someone else's picture, named but not carried
    payload["signing"]["content_sha256"] = onsite_records.content_sha256(payload)
    stranger_record = push_record(world, scene_payload(world), pictures=(STRANGER,))
    assert stranger_record
    world.upload(STRANGER)
    record_id = push_record(world, payload, pictures=(OFFICER_A, OFFICER_B))
    for picture in (OFFICER_A, OFFICER_B):
        world.upload(picture)
    _, pdf = printed(world, world.client("李队长"), record_id)
    assert images_in(pdf, tmp_path) == 2  # the two officers; the stranger's picture is not printed as the party's
    assert "已签名，本件未附签名图像" in text_of(pdf)


def test_only_the_records_unit_prints_it_and_other_kinds_are_refused(world):
    record_id = push_record(world, scene_payload(world))
    assert post_form(world.client("他队长"), f"/paper/records/{record_id}/onsite_record", {}).status_code == 404
    assert post_form(world.client("李队长"), f"/paper/records/{record_id}/service_receipt", {}).status_code == 404
    assert post_form(world.client("李队长"), f"/paper/records/{world.activity_id}/onsite_record", {}).status_code == 404


def test_a_record_whose_signature_images_have_not_arrived_prints_as_a_copy(world):
    record_id = push_record(world, scene_payload(world))  # synced, its PNGs still on the phone
    lead = world.client("李队长")
    _, pdf = printed(world, lead, record_id)
    assert "副本" in text_of(pdf) and "签名缺失" in text_of(pdf)
    assert 'data-testid="onsite-unsigned"' in lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    for picture in (PARTY_SIG, OFFICER_A, OFFICER_B):
        world.upload(picture)
    _, again = printed(world, lead, record_id)
    assert "副本" not in text_of(again)


def test_a_malformed_record_never_breaks_the_case_page_or_the_paper(world):
    payload = scene_payload(world)
    payload.update(form=["scene"], officers=7, qa=3, subject="鲜果超市", notice={"recusal": ["x"]})
    payload["signing"]["officers"] = [1, {"cert_no": ["x"], "signature": {"a": 1}}]
    record_id = push_record(world, payload)
    lead = world.client("李队长")
    page = lead.get(f"/review/cases/{world.case_id}")
    assert page.status_code == 200 and 'data-testid="onsite-unsigned"' in page.get_data(as_text=True)
    _, pdf = printed(world, lead, record_id)
    assert "副本" in text_of(pdf) and "笔录格式不完整或有误" in text_of(pdf)


def test_printing_twice_gives_the_same_document_until_the_record_changes(world):
    record_id = push_record(world, scene_payload(world))
    lead = world.client("李队长")
    first = post_form(lead, f"/paper/records/{record_id}/onsite_record", {}).headers["Location"]
    assert post_form(lead, f"/paper/records/{record_id}/onsite_record", {}).headers["Location"] == first
    changed = dict(scene_payload(world), content="改动后的内容。")
    push_record(world, changed, revision=2, record_id=record_id, reason="补充")
    assert post_form(lead, f"/paper/records/{record_id}/onsite_record", {}).headers["Location"] != first
