"""现场照片 (fieldapp.documents.paper): the on-site photo sheet as PDF.

Five photos (solid colours with a stripe pattern; the fifth a PNG) are printed once and read back:
every caption fact with poppler's pdftotext, page by page (two photos a page, so three pages); each
page rendered with pdftoppm and its QR code decoded with zbar's zbarimg, which must give the
verification address on every page; each photo's colour found as a large region on its own page
and on no other; a photo without a capture time says 未记录; a JPEG goes into the PDF byte for byte.

The checks need poppler-utils and zbar-tools (scripts/test installs them); on a developer's machine
without them the tests skip, under CI=true they fail.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from fieldapp.documents import page_frame
from fieldapp.documents.paper import PhotoSheetDoc, SheetPhoto, photo_sheet_pdf, qr_svg
from tests.conftest import skip_or_fail

CASE_NUMBER = "临市监罚〔2026〕0127号"
PARTY = "淄博齐都食品有限公司"
CASE_ID = "0b7c1f1e-4a8e-4d5e-9a51-2f7f3c0e9a01"
CODE = "7K3M-Q9XZ-2B4D"
VERIFY_URL = f"https://zfjl.linzi.gov.cn/verify/{CODE}"
COLOURS = [(210, 30, 35), (30, 150, 50), (35, 60, 200), (230, 190, 20), (150, 40, 170)]
PHOTOS = [
    # (taken_at, printed as, place, officer, description)
    (datetime(2026, 3, 4, 1, 2, 3, tzinfo=UTC), "2026-03-04 09:02:03", "临淄区齐都镇 36.812345, 118.305678 ±8 m",
     "张伟（执法证号 37030300001）", "当事人经营场所门头及营业执照悬挂情况"),
    ("2026-03-04T01:05:41Z", "2026-03-04 09:05:41", "临淄区齐都镇 36.812401, 118.305702 ±6 m",
     "张伟（执法证号 37030300001）", "货架上摆放的超过保质期的预包装食品，标签上的生产日期为二〇二五年八月一日，保质期六个月"),
    (datetime(2026, 3, 4, 1, 9, 0, tzinfo=UTC), "2026-03-04 09:09:00", "临淄区齐都镇仓库",
     "李秀英（执法证号 37030300002）", "仓库内堆放的涉案产品共十二箱"),
    (None, None, "", "李秀英（执法证号 37030300002）", "冷藏柜内未标明生产日期的散装熟食"),
    (datetime(2026, 3, 4, 1, 20, 15, tzinfo=UTC), "2026-03-04 09:20:15", "临淄区齐都镇 36.812377, 118.305690 ±11 m",
     "张伟（执法证号 37030300001）", "当事人在现场检查笔录上签字"),
]


def photo_bytes(number: int, fmt: str = "JPEG") -> bytes:
    """A 1280×960 picture of one solid colour with white diagonal stripes across its top edge."""
    colour = COLOURS[number - 1]
    im = Image.new("RGB", (1280, 960), colour)
    draw = ImageDraw.Draw(im)
    for x in range(-200, 1280, 90):
        draw.line((x, 0, x + 180 + number * 10, 180 + number * 10), fill=(255, 255, 255), width=7)
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def sheet_doc() -> PhotoSheetDoc:
    photos = [SheetPhoto(image=photo_bytes(n, "PNG" if n == 5 else "JPEG"), number=n, taken_at=taken_at,
                         place=place, officer=officer, description=description)
              for n, (taken_at, _, place, officer, description) in enumerate(PHOTOS, start=1)]
    return PhotoSheetDoc(case_number=CASE_NUMBER, party=PARTY, case_id=CASE_ID, photos=photos,
                         verify_url=VERIFY_URL, code=CODE)


# --- rendering once, and the tools that read the result -------------------------------------------

@pytest.fixture(scope="module")
def tools():
    missing = [tool for tool in ("pdftotext", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (Debian: poppler-utils)")
    if shutil.which("zbarimg") is None:
        skip_or_fail("zbarimg not installed (Debian: zbar-tools)")


@pytest.fixture(scope="module")
def doc() -> PhotoSheetDoc:
    return sheet_doc()


@pytest.fixture(scope="module")
def sheet(tools, doc, tmp_path_factory) -> Path:
    started = time.perf_counter()
    data = photo_sheet_pdf(doc)
    print(f"\nphoto sheet (5 photos): {time.perf_counter() - started:.2f} s")
    path = tmp_path_factory.mktemp("sheet") / "现场照片.pdf"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def renders(sheet) -> list[Path]:
    """Every page as a 150 dpi PNG, in page order."""
    prefix = sheet.with_name("page")
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(sheet), str(prefix)], check=True, capture_output=True)
    return sorted(sheet.parent.glob("page-*.png"), key=lambda p: int(re.search(r"-(\d+)\.png$", p.name)[1]))


def pages_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    return out.decode("utf-8").split("\f")[:-1]


def layout_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def colour_pixels(path: Path, colour: tuple[int, int, int], tolerance: int = 14) -> int:
    with Image.open(path) as im:
        counts = im.convert("RGB").getcolors(maxcolors=1 << 24)
    return sum(count for count, rgb in counts if all(abs(a - b) <= tolerance for a, b in zip(rgb, colour, strict=True)))


# --- what the sheet says --------------------------------------------------------------------------

def test_two_photos_a_page(sheet):
    assert len(pages_text(sheet)) == 3


def test_every_caption_fact_is_printed_on_its_photos_page(sheet):
    pages = [squeeze(text) for text in pages_text(sheet)]
    for n, (_, when, place, officer, description) in enumerate(PHOTOS, start=1):
        page = pages[(n - 1) // 2]
        assert f"照片{n}" in page
        for fact in (when, place, officer, description):
            if fact:
                assert squeeze(fact) in page, (n, fact)
    for page in pages:
        for fact in (CASE_NUMBER, PARTY, CODE, VERIFY_URL, "当事人签名", "执法人员签名", "日期"):
            assert squeeze(fact) in page, fact
    assert CASE_ID in pages[0]
    assert "共5张" in pages[0]


def test_a_photo_without_capture_time_says_not_recorded(sheet):
    # Label and value share a line of the caption table as pdftotext -layout lays it out.
    pages = layout_text(sheet).split("\f")
    times = [squeeze(line) for line in pages[1].splitlines() if "拍摄时间" in line]
    places = [squeeze(line) for line in pages[1].splitlines() if "拍摄地点" in line]
    assert times == ["拍摄时间2026-03-0409:09:00", "拍摄时间未记录"]  # photos 3 and 4
    assert places == ["拍摄地点临淄区齐都镇仓库", "拍摄地点未记录"]
    assert "未记录" not in pages[0] + pages[2]


def test_every_page_is_numbered_of_the_total(sheet):
    for number, text in enumerate(pages_text(sheet), start=1):
        assert f"第{number}页共3页" in squeeze(text)


# --- what the pages show --------------------------------------------------------------------------

def test_every_page_carries_the_qr_code_of_the_verification_address(renders):
    assert len(renders) == 3
    for page in renders:
        result = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, timeout=60)
        assert result.returncode == 0, (page.name, result.stderr.decode(errors="replace")[-500:])
        assert result.stdout.decode("utf-8").strip().splitlines() == [VERIFY_URL], page.name


def test_each_photo_is_drawn_on_its_page_and_no_other(renders):
    # A photo's box is 104 × 78 mm: about 614 × 461 px at 150 dpi, most of it the photo's colour.
    large = 150_000
    for page_number, page in enumerate(renders, start=1):
        for n, colour in enumerate(COLOURS, start=1):
            pixels = colour_pixels(page, colour)
            if (n - 1) // 2 + 1 == page_number:
                assert pixels > large, (page.name, n, pixels)
            else:
                assert pixels < 2_000, (page.name, n, pixels)


def test_jpegs_go_into_the_pdf_unchanged(sheet, doc):
    data = sheet.read_bytes()
    for photo in doc.photos:
        if photo.image[:3] == b"\xff\xd8\xff":
            assert photo.image in data, photo.number


def test_a_long_description_runs_under_the_photo_onto_the_next_pages_whole(tools, doc, tmp_path):
    sentences = [f"第{i:03d}句：货架上摆放超过保质期的预包装食品，标签生产日期清晰可见。" for i in range(1, 121)]
    photos = list(doc.photos)
    photos[0] = replace(photos[0], description="".join(sentences))
    path = tmp_path / "long.pdf"
    path.write_bytes(photo_sheet_pdf(replace(doc, photos=photos)))
    # The body of every page, without the margins (head, QR code, signatures): A4 is 595 × 842 pt,
    # the margins 36 mm (102 pt) at the top and 24 mm (68 pt) at the bottom.
    out = subprocess.run(["pdftotext", "-r", "72", "-x", "0", "-y", "103", "-W", "595", "-H", "670",
                          "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout.decode("utf-8")
    body = squeeze(out)
    assert squeeze("".join(sentences)) in body
    pages = pages_text(path)
    assert len(pages) > 3
    assert "照片1" in squeeze(pages[0])  # the box starts where it is, under the header, and runs on
    for number, text in enumerate(pages, start=1):
        assert f"第{number}页共{len(pages)}页" in squeeze(text)


# --- parts ---------------------------------------------------------------------------------------

def test_qr_svg_is_an_inline_svg_sized_by_css():
    svg = qr_svg(VERIFY_URL)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "viewBox" in svg and "width=" not in svg.split(">", 1)[0]


def test_the_fetcher_answers_only_the_sheets_photos():
    image = photo_bytes(1)
    fetcher = page_frame.fetcher({"photo:0": (image, "image/jpeg")})
    response = fetcher("photo:0")
    assert (response.read() if hasattr(response, "read") else response["string"]) == image
    for url in ("file:///etc/passwd", "http://127.0.0.1/", "photo:1", "data:image/png;base64,AAAA"):
        with pytest.raises(ValueError):
            fetcher(url)
