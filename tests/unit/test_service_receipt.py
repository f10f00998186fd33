"""送达回证 (fieldapp.documents.receipt): the proof of service as PDF, in the national form's layout.

A 留置送达 is printed and read back: the recipient refused, two witnesses (one signed on the phone, its
signature a thick black scribble drawn with Pillow; one refused, with the reason), two officers (one
signed on the phone). pdftotext must find every field of the form, in the form's order; pdftoppm
renders the pages, on which the signature must show (page 1 holds markedly more dark pixels than the
same receipt without the signature images) and zbarimg must decode the QR code of every page to the
verification address. A copy is marked 副本 on every page (a receipt long enough to run onto a second
page, too); the original is not. A recipient who is not the party signs as 代收人, the relation the
phone stores printed in words.

The checks need poppler-utils and zbar-tools (scripts/test installs them); on a developer's machine
without them the tests skip, under CI=true they fail.
"""
from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from fieldapp.documents.receipt import ServiceReceiptDoc, Signer, service_receipt_pdf
from tests.conftest import skip_or_fail

CASE_NUMBER = "临市监罚〔2026〕0127号"
PARTY = "淄博齐都食品有限公司"
CODE = "7K3M-Q9XZ-2B4D"
VERIFY_URL = f"https://zfjl.linzi.gov.cn/verify/{CODE}"
DOCUMENT = "行政处罚决定书（临市监罚〔2026〕0127号）"
PLACE = "临淄区齐都镇桓公路88号当事人经营场所"
REFUSAL = "受送达人王建国称不认可处罚决定，拒绝接收文书并拒绝在送达回证上签名，执法人员将文书留置于其经营场所收银台"
WITNESS_ORG = "齐都镇桓公路社区居民委员会工作人员"
REFUSING_ORG = "淄博齐都食品有限公司员工"
WITNESS_REFUSAL = "称与本人无关，拒绝签名"
CERTS = ("37030300001", "37030300002")
PHOTOS_NOTE = "已拍摄照片3张，附现场照片"
FIELDS = ("送达文书名称、文号", "受送达人", "送达时间", "送达地点", "送达方式", "收件人签名或盖章", "代收人及代收理由",
          "受送达人拒绝接收的事由和日期", "见证人签名", "送达人签名", "备注")
"""The national form's rows, in its order."""


def scribble() -> bytes:
    """A signature as a phone draws it: thick black strokes on white, 600 × 200 px."""
    im = Image.new("RGB", (600, 200), "white")
    draw = ImageDraw.Draw(im)
    draw.line([(15, 160), (90, 25), (150, 175), (230, 20), (300, 170), (380, 30), (450, 175), (585, 40)],
              fill="black", width=30, joint="curve")
    draw.line([(20, 100), (580, 95)], fill="black", width=24)
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def receipt_doc(signature: bytes | None) -> ServiceReceiptDoc:
    return ServiceReceiptDoc(
        case_number=CASE_NUMBER, party=PARTY, document_name=DOCUMENT,
        served_at=datetime(2026, 3, 4, 2, 5, tzinfo=UTC), place=PLACE, method="留置送达",
        recipient=Signer(name="王建国", role="self", refused=True, note="称不认可处罚，拒绝签收"),
        refusal=REFUSAL,
        witnesses=[Signer(name="刘芳", role=WITNESS_ORG, signed=True, signature_png=signature),
                   Signer(name="赵强", role=REFUSING_ORG, refused=True, note=WITNESS_REFUSAL)],
        officers=[Signer(name="张伟", role=f"执法证号 {CERTS[0]}", signed=True, signature_png=signature),
                  Signer(name="李秀英", role=CERTS[1])],
        photos_note=PHOTOS_NOTE, verify_url=VERIFY_URL, code=CODE)


# --- rendering, and the tools that read the result ------------------------------------------------

@pytest.fixture(scope="module")
def tools():
    missing = [tool for tool in ("pdftotext", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (Debian: poppler-utils)")
    if shutil.which("zbarimg") is None:
        skip_or_fail("zbarimg not installed (Debian: zbar-tools)")


@pytest.fixture(scope="module")
def doc() -> ServiceReceiptDoc:
    return receipt_doc(scribble())


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("receipt")


def write(folder: Path, name: str, doc: ServiceReceiptDoc) -> Path:
    path = folder / f"{name}.pdf"
    path.write_bytes(service_receipt_pdf(doc))
    return path


@pytest.fixture(scope="module")
def receipt(tools, doc, out) -> Path:
    return write(out, "original", doc)


@pytest.fixture(scope="module")
def long_copy(tools, doc, out) -> Path:
    """A copy with twelve witnesses, long enough to run onto a second page."""
    witnesses = [Signer(name=f"见证人{n:02d}", role=f"齐都镇第{n}社区居民委员会工作人员", refused=n % 2 == 0,
                        note="称不便作证，拒绝签名" if n % 2 == 0 else "") for n in range(1, 13)]
    return write(out, "long-copy", replace(doc, witnesses=witnesses, copy=True))


MM = 72 / 25.4
TABLE_LEFT = 22 * MM
"""The form's table starts at the page's left margin (22 mm); its label column ends before 180 pt."""
LABEL_COLUMN_END = 180
BODY_TOP = 36 * MM
"""Below the top margin, which holds the head and the QR code."""


def form_rows(path: Path) -> dict[str, str]:
    """The rows of page 1's form: label → content, each with its whitespace squeezed out. The rows'
    edges are the table's horizontal rules, found in a 100 dpi rendering just right of its left rule;
    each word pdftotext places between two of them belongs to that row (to its label when it lies in
    the label column), in reading order."""
    page = render(path, 100)[0]
    with Image.open(page) as im:
        grey = im.convert("L")
        x = round((TABLE_LEFT + 1.5 * MM) * 100 / 72)
        dark = [y * 72 / 100 for y in range(grey.height) if grey.getpixel((x, y)) < 128]
    rules = [y for i, y in enumerate(dark) if y > BODY_TOP and (i == 0 or y - dark[i - 1] > 2)]
    out = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    words = [(float(y0), float(x0), float(x1), html.unescape(text)) for x0, y0, x1, text in
             re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>', out)]
    rows = {}
    for top, bottom in zip(rules, rules[1:], strict=False):
        inside = sorted(w for w in words if top < w[0] < bottom)
        label = "".join(w[3] for w in inside if w[2] < LABEL_COLUMN_END)
        if label:
            rows[label] = squeeze("".join(w[3] for w in inside if w[1] >= LABEL_COLUMN_END))
    return rows


def pages_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    return out.decode("utf-8").split("\f")[:-1]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def render(path: Path, dpi: int) -> list[Path]:
    """Every page as a PNG, in page order."""
    prefix = path.with_name(f"{path.stem}-{dpi}")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(path), str(prefix)], check=True, capture_output=True)
    pages = path.parent.glob(f"{prefix.name}-*.png")
    return sorted(pages, key=lambda p: int(re.search(r"-(\d+)\.png$", p.name)[1]))


def dark_pixels(path: Path) -> int:
    with Image.open(path) as im:
        return sum(im.convert("L").point(lambda v: 255 if v < 96 else 0).histogram()[255:])


def qr_codes(page: Path) -> list[str]:
    result = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, timeout=60)
    assert result.returncode == 0, (page.name, result.stderr.decode(errors="replace")[-500:])
    return result.stdout.decode("utf-8").strip().splitlines()


# --- what the receipt says ------------------------------------------------------------------------

def test_every_field_of_the_form_is_printed_in_its_row(receipt):
    rows = form_rows(receipt)
    assert list(rows) == list(FIELDS)  # the national form's rows, wording and order
    assert rows["送达文书名称、文号"] == DOCUMENT
    assert rows["受送达人"] == PARTY
    assert rows["送达时间"] == "2026年3月4日10时05分"  # Beijing time
    assert rows["送达地点"] == PLACE
    assert rows["送达方式"] == "留置送达"
    for fact in ("王建国", "与受送达人的关系：受送达人本人", "拒绝签名", "称不认可处罚，拒绝签收"):
        assert fact in rows["收件人签名或盖章"], fact
    assert rows["代收人及代收理由"] == "无"
    assert rows["受送达人拒绝接收的事由和日期"] == f"{REFUSAL}拒收日期：2026年3月4日10时05分"
    for fact in ("刘芳", "赵强", "拒绝签名", WITNESS_REFUSAL):
        assert fact in rows["见证人签名"], fact
    for fact in ("张伟", "李秀英", *(f"执法证号：{cert}" for cert in CERTS)):
        assert fact in rows["送达人签名"], fact
    assert rows["备注"] == PHOTOS_NOTE


def test_every_fact_is_on_the_page(receipt):
    pages = pages_text(receipt)
    assert len(pages) == 1
    text = squeeze(pages[0])
    for fact in (CASE_NUMBER, PARTY, DOCUMENT, PLACE, "留置送达", REFUSAL, f"单位及身份：{WITNESS_ORG}",
                 f"单位及身份：{REFUSING_ORG}", WITNESS_REFUSAL, *CERTS, PHOTOS_NOTE, CODE, VERIFY_URL, "第1页共1页"):
        assert squeeze(fact) in text, fact
    assert text.count("拒绝签名") == 3  # the recipient's and a witness's marks, and the witness's own words
    assert "self" not in text


def test_an_original_is_not_marked_as_a_copy(receipt):
    for text in pages_text(receipt):
        assert "副本" not in text


def test_a_copy_is_marked_on_every_page(tools, doc, out, long_copy):
    copy = write(out, "copy", replace(doc, copy=True))
    assert "副本（未经签名）" in squeeze(pages_text(copy)[0])
    pages = pages_text(long_copy)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert "副本（未经签名）" in squeeze(text), number
        assert f"第{number}页共{len(pages)}页" in squeeze(text)
    text = squeeze("".join(pages))
    for n in range(1, 13):
        assert f"见证人{n:02d}" in text


def test_a_recipient_who_is_not_the_party_signs_as_proxy(tools, doc, out):
    family = Signer(name="王秀兰", role="adult_family_member", signed=True)
    rows = form_rows(write(out, "proxy", replace(doc, method="直接送达", refusal=None, recipient=family)))
    assert rows["收件人签名或盖章"] == "由代收人签收，见代收人栏"
    proxy = rows["代收人及代收理由"]
    assert "王秀兰" in proxy and "代收理由：同住成年家属" in proxy  # the phone's relation id, in words
    assert "已签名，本件未附签名图像" in proxy  # she signed on paper: the receipt carries no image of it
    assert rows["受送达人拒绝接收的事由和日期"] == "无"
    assert not re.search(r"[A-Za-z]", "".join(rows.values()))


# --- what the pages show --------------------------------------------------------------------------

def test_the_signature_images_are_drawn(tools, doc, out, receipt):
    unsigned = write(out, "without-images", receipt_doc(None))
    (with_images,) = render(receipt, 100)
    (without_images,) = render(unsigned, 100)
    # Two signature boxes of 40 × 14 mm (157 × 55 px at 100 dpi), the scribble filling over a quarter of each.
    assert dark_pixels(with_images) - dark_pixels(without_images) > 3_000


def test_every_page_carries_the_qr_code_of_the_verification_address(receipt, long_copy):
    pages = render(receipt, 150) + render(long_copy, 150)
    assert len(pages) >= 3
    for page in pages:
        assert qr_codes(page) == [VERIFY_URL], page.name
