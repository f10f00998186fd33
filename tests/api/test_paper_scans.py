"""A page per generated document, and the scan of the signed paper uploaded back and kept with it
(issue 18): what the document is, its code and whether it is still current, and its scans — each
an original in media storage under its SHA-256 (SM3 beside it), its type judged from its bytes.
Refused files (wrong type, empty, too large, a decompression bomb) leave nothing behind; the same
bytes twice are one scan; only the document's own unit sends scans. Both databases."""
from __future__ import annotations

import hashlib
import io
import re
import struct
import uuid
import zlib

import pytest
from sqlalchemy import select

from fieldapp.documents import codes, sheets
from fieldapp.footage.digests import STAGED_PREFIX
from fieldapp.media.service import media_storage
from fieldapp.models import AuditEvent, PaperDocument, PaperScan
from tests.api.test_latin_words import latin_words
from tests.support.flows import csrf_token, post_form, push_results, sync_push
from tests.support.records_world import build, detailed_jpeg, one, rows


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def english(client):
    post_form(client, "/lang", {"locale": "en", "next": "/"})
    return client


def a_pdf(pages: int = 2) -> bytes:
    from pypdf import PdfWriter
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)  # A4 in points
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` × ``height`` pixels: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def a_gif() -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "GIF")
    return out.getvalue()


def make_sheet(world, who: str = "李队长") -> str:
    made = post_form(world.client(who), f"/paper/records/{world.activity_id}/photo_sheet", {})
    assert made.status_code == 303
    location = made.headers["Location"]
    assert re.fullmatch(r"(https?://[^/]+)?/paper/[0-9a-f-]{36}", location), location
    return re.sub(r"^https?://[^/]+", "", location)


def make_case_form(world, kind: str = "file_index") -> str:
    """Another document than the photo sheet: the case's 卷内目录 (a second tap on the same print
    gives the same document)."""
    made = post_form(world.client("李队长"), f"/paper/cases/{world.case_id}/{kind}", {})
    assert made.status_code == 303
    return re.sub(r"^https?://[^/]+", "", made.headers["Location"])


def upload(client, page: str, data: bytes, name: str = "scan.pdf", **kwargs):
    return client.post(f"{page}/scans", data={"csrf_token": csrf_token(client), "scan": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", **kwargs)


def staged_leftovers(app) -> list:
    with app.app_context():
        return [p for p in media_storage().staging_dir().iterdir() if p.name.startswith(STAGED_PREFIX)]


def stored(app, data: bytes) -> bool:
    with app.app_context():
        return media_storage().exists("sha-256", hashlib.sha256(data).hexdigest())


def test_a_pdf_and_a_jpeg_scan_are_kept_listed_and_given_back_byte_for_byte(world):
    page = make_sheet(world)
    lead = world.client("李队长")
    shown = lead.get(page)
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    html = shown.get_data(as_text=True)
    document = one(world.app, select(PaperDocument))
    assert 'data-testid="paper-current"' in html and 'data-current="yes"' in html
    assert f'/paper/{document.id}.pdf' in html and 'data-testid="share-pdf"' in html
    assert "js/share-pdf.js" in html and 'data-testid="no-scans"' in html
    assert "鲜果超市" in html  # the case it is about
    pdf, jpeg = a_pdf(2), detailed_jpeg(seed=7)

    kept = upload(lead, page, pdf, "回证扫描.pdf")
    assert kept.status_code == 303 and kept.headers["Location"].endswith(page)
    kept = upload(lead, page, jpeg, "IMG_0001.JPG")
    assert kept.status_code == 303
    html = lead.get(page).get_data(as_text=True)
    scans = rows(world.app, select(PaperScan).order_by(PaperScan.uploaded_at))
    assert [(s.content_type, s.pages, s.size) for s in scans] == [("application/pdf", 2, len(pdf)),
                                                                  ("image/jpeg", 1, len(jpeg))]
    for scan, data in zip(scans, (pdf, jpeg), strict=True):
        assert scan.alg == "sha-256" and scan.hash == hashlib.sha256(data).hexdigest()
        assert scan.sm3 == hashlib.new("sm3", data).hexdigest()
        assert scan.uploaded_by == world.users["李队长"] and scan.document_id == document.id
        assert f'data-hash="{scan.hash}"' in html and f">{scan.hash}</code>" in html and scan.sm3 in html
        assert stored(world.app, data)
        got = lead.get(f"{page}/scans/{scan.id}")
        assert got.status_code == 200 and got.data == data
        assert got.mimetype == scan.content_type
        assert got.headers["Content-Disposition"].startswith("attachment")
        assert "no-store" in got.headers["Cache-Control"]
    assert 'data-testid="no-scans"' not in html
    # Each download is an access in the audit chain.
    opened = rows(world.app, select(AuditEvent.row_key).where(AuditEvent.action == "paper_scan"))
    assert sorted(opened) == sorted(f"paper-scan:{s.id}" for s in scans)
    # A records administrator of the unit reads them too; a scan of another document is not found here.
    assert world.client("孙管理").get(f"{page}/scans/{scans[0].id}").data == pdf
    other = make_case_form(world)
    assert other != page and lead.get(f"{other}/scans/{scans[0].id}").status_code == 404
    assert lead.get(f"{page}/scans/{uuid.uuid4()}").status_code == 404
    assert not staged_leftovers(world.app)


def test_scans_are_kept_in_s3_media_storage_too(sqlite_url, tmp_path, s3_server):
    from fieldapp.media.storage import S3Storage
    bucket, prefix = f"fieldapp-{uuid.uuid4().hex[:16]}", f"t{uuid.uuid4().hex[:8]}/media"
    S3Storage(bucket, endpoint_url=s3_server.endpoint_url, region=s3_server.region, access_key=s3_server.access_key,
              secret_key=s3_server.secret_key, prefix=prefix).ensure_bucket()
    world = build(sqlite_url, tmp_path / "var", media_backend="s3", s3_bucket=bucket, s3_endpoint=s3_server.endpoint_url,
                  s3_region=s3_server.region, s3_access_key=s3_server.access_key, s3_secret_key=s3_server.secret_key,
                  s3_prefix=prefix)
    try:
        page = make_sheet(world)
        lead = world.client("李队长")
        scans = {a_pdf(3): "application/pdf", detailed_jpeg(seed=11): "image/jpeg"}
        for data in scans:
            assert upload(lead, page, data).status_code == 303
        assert upload(lead, page, b"").status_code == 422
        for scan in rows(world.app, select(PaperScan)):
            data = next(d for d in scans if hashlib.sha256(d).hexdigest() == scan.hash)
            assert scan.content_type == scans[data] and stored(world.app, data)
            assert lead.get(f"{page}/scans/{scan.id}").data == data
        assert len(rows(world.app, select(PaperScan))) == 2
    finally:
        world.app.extensions["fieldapp.engine"].dispose()


def test_refused_files_leave_nothing_and_say_why(world):
    page = make_sheet(world)
    lead = english(world.client("李队长"))
    first = a_pdf(1)
    assert upload(lead, page, first).status_code == 303
    world.app.config["FIELDAPP_SCAN_MAX_BYTES"] = 4096
    cases = [
        ("junk named .pdf", b"\x00\x01not a scan at all" * 40, "scan.pdf", 415, "wrong_type",
         "Only a scan saved as PDF, JPEG or PNG is accepted"),
        ("a web page", b"<!doctype html><html><body>hello</body></html>", "scan.pdf", 415, "wrong_type",
         "Only a scan saved as PDF, JPEG or PNG is accepted"),
        ("a GIF", a_gif(), "scan.png", 415, "wrong_type", "Only a scan saved as PDF, JPEG or PNG is accepted"),
        ("empty", b"", "scan.pdf", 422, "empty", "The file is empty"),
        ("a bomb", png_claiming(20_000, 20_000), "scan.png", 422, "decompression_bomb",
         "more pixels than the safety limit"),
        ("a broken JPEG", b"\xff\xd8\xff\xe0" + b"\x00" * 300, "scan.jpg", 422, "unreadable", "cannot be read"),
        ("a JPEG cut off", detailed_jpeg(5, (64, 48))[:2000], "scan.jpg", 422, "unreadable", "cut off"),
        ("a PDF that is no PDF", b"%PDF-1.7\n" + b"0" * 1000, "scan.pdf", 422, "unreadable_pdf",
         "The PDF cannot be read"),
        ("over the cap while read", b"%PDF-1.7\n" + b"0" * 5000, "scan.pdf", 413, "too_large",
         "The scan is larger than 0.0039 MB"),
        ("over the cap by its length", b"%PDF-1.7\n" + b"0" * 200_000, "scan.pdf", 413, "too_large",
         "The scan is larger than 0.0039 MB"),
    ]
    for label, data, name, status, code, message in cases:
        refused = upload(lead, page, data, name)
        body = refused.get_data(as_text=True)
        assert refused.status_code == status, (label, refused.status_code)
        assert f'data-code="{code}"' in body, label
        assert message in body, (label, body[:2000])
        if data:
            assert not stored(world.app, data), label
    no_file = lead.post(f"{page}/scans", data={"csrf_token": csrf_token(lead)}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and 'data-code="missing"' in no_file.get_data(as_text=True)
    # Nothing of them was kept; the first scan is as it was.
    scans = rows(world.app, select(PaperScan))
    assert [s.hash for s in scans] == [hashlib.sha256(first).hexdigest()]
    assert lead.get(f"{page}/scans/{scans[0].id}").data == first
    assert not staged_leftovers(world.app)
    # Within the cap again, a scan is kept.
    world.app.config["FIELDAPP_SCAN_MAX_BYTES"] = 50 * 1024 * 1024
    assert upload(lead, page, a_pdf(3)).status_code == 303
    assert len(rows(world.app, select(PaperScan))) == 2


def test_the_same_bytes_twice_are_one_scan(world):
    page = make_sheet(world)
    lead = english(world.client("李队长"))
    jpeg = detailed_jpeg(seed=9)
    assert upload(lead, page, jpeg, "a.jpg").status_code == 303
    again = upload(lead, page, jpeg, "b.jpg", follow_redirects=True)
    assert again.status_code == 200
    assert "already kept with this document" in again.get_data(as_text=True)
    assert len(rows(world.app, select(PaperScan))) == 1
    # The same bytes for another document are that document's scan.
    other = make_case_form(world)
    assert other != page and make_sheet(world) == page  # printing again gives the same document
    assert upload(lead, other, jpeg).status_code == 303
    assert len(rows(world.app, select(PaperScan))) == 2


def test_only_the_documents_own_unit_sends_scans_and_other_units_see_nothing(world):
    page = make_sheet(world)
    pdf = a_pdf(1)
    # The unit's officer sends the signed paper back (the page itself is the reviewers'): scanning
    # the QR code on the paper opens /verify, which offers them the upload; nobody else gets it there.
    with world.app.app_context():
        document = one(world.app, select(PaperDocument))
        verify = f"/verify/{codes.make(document.id, document.digest)}"
    officer = english(world.client("张伟"))
    assert 'data-testid="scan-form"' in officer.get(verify).get_data(as_text=True)
    for name in ("他队员", None):
        other = world.client(name) if name else world.app.test_client()
        assert 'data-testid="scan-form"' not in other.get(verify).get_data(as_text=True), name
    sent = upload(officer, page, pdf)
    assert sent.status_code == 201 and 'data-testid="scan-kept"' in sent.get_data(as_text=True)
    assert officer.get(page).status_code == 403
    scan = one(world.app, select(PaperScan))
    assert scan.uploaded_by == world.users["张伟"]
    # Another unit's lead and officer: not found, whatever they try.
    for name in ("他队长", "他队员"):
        assert upload(world.client(name), page, detailed_jpeg(seed=3)).status_code == 404, name
    stranger = world.client("他队长")
    assert stranger.get(page).status_code == 404
    assert stranger.get(f"{page}/scans/{scan.id}").status_code == 404
    assert stranger.get(page + ".pdf").status_code == 404
    # The policy section reads every unit's papers but sends no scans.
    policy = world.client("法规科")
    assert policy.get(page).status_code == 200
    assert upload(policy, page, detailed_jpeg(seed=4)).status_code == 403
    assert len(rows(world.app, select(PaperScan))) == 1
    # A body this large from a stranger is refused at the app-wide limit, before any of it is read.
    assert upload(world.app.test_client(), page, b"%PDF-" + b"0" * (3 * 1024 * 1024)).status_code in (302, 401, 413)


def test_the_page_and_the_case_say_superseded_once_a_record_on_it_changes(world):
    page = make_sheet(world)
    lead = world.client("李队长")
    assert upload(lead, page, a_pdf(1)).status_code == 303
    case_page = lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    document = one(world.app, select(PaperDocument))
    listed = re.search(r'<li data-testid="case-paper" data-document="%s"[^>]*>.*?</li>' % document.id, case_page, re.S)
    assert listed and 'data-current="yes"' in listed[0] and f'href="/paper/{document.id}"' in listed[0]
    assert re.search(r'data-testid="case-paper-scans">[^<]*1', listed[0])
    # A step on the sheet gets a later revision: the page and the case list say superseded.
    step_id, revision = next((r, n) for r, n, _ in document.sources if r != world.activity_id)
    later = world.device.revision(step_id, revision=revision + 1, parent_id=world.activity_id, reason="补充说明",
                                  payload={"activity_id": world.activity_id, "case_id": world.case_id,
                                           "notes": "补拍", "step_type": "penalty_onsite_inspection"})
    push_results(sync_push(world.client("张伟"), world.device.batch(later)))
    html = lead.get(page).get_data(as_text=True)
    assert 'data-current="no"' in html and 'data-testid="paper-superseded"' in html
    assert 'data-testid="paper-current"' not in html
    case_page = lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert re.search(r'data-document="%s"[^>]*data-current="no"' % document.id, case_page)
    # The case's own archive form is listed too, and another unit's lead sees none of it.
    made = post_form(lead, f"/paper/cases/{world.case_id}/file_index", {})
    assert made.status_code == 303 and re.search(r"/paper/[0-9a-f-]{36}$", made.headers["Location"])
    case_page = lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert case_page.count('data-testid="case-paper"') == 2 and 'data-kind="file_index"' in case_page


def test_a_record_document_is_made_for_any_kind_the_sheets_know_and_no_other(world):
    lead = world.client("李队长")
    assert "photo_sheet" in sheets.RECORD_KINDS
    assert post_form(lead, f"/paper/records/{world.activity_id}/no_such_kind", {}).status_code == 404
    # A kind the sheets know, for a record of another type: not found either.
    other_kinds = [k for k, t in sheets.RECORD_KINDS.items() if t != "activity"]
    for kind in other_kinds:
        assert post_form(lead, f"/paper/records/{world.activity_id}/{kind}", {}).status_code == 404, kind
    assert rows(world.app, select(PaperDocument)) == []


def test_the_document_page_reads_in_chinese(world):
    """Needs the zh_CN catalogue with this page's strings (merged from the helper's list)."""
    page = make_sheet(world)
    lead = world.client("李队长")
    assert upload(lead, page, a_pdf(1)).status_code == 303
    assert upload(lead, page, detailed_jpeg(seed=2)).status_code == 303
    html = lead.get(page).get_data(as_text=True)
    assert "现场照片" in html and "分享或打印" in html
    assert not latin_words(html), sorted(latin_words(html))
    refused = upload(lead, page, b"\x00junk" * 50).get_data(as_text=True)
    assert not latin_words(refused), sorted(latin_words(refused))
    assert not latin_words(lead.get(f"/review/cases/{world.case_id}").get_data(as_text=True))
