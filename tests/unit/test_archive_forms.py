"""卷内文件目录 and 卷内备考表 (fieldapp.documents.archive_forms): the case file's archiving forms as PDF.

An index of 120 entries (Chinese titles, some long enough to wrap, one with 𠮷 from CJK Extension B,
one withdrawn) is printed once and read back: with poppler's pdftotext, every title whole, the
withdrawn record on its own line with 已撤回, the column heads at the top of every page and
"第 N 页 共 M 页" at the foot; each page rendered with pdftoppm and its QR code decoded with zbar's
zbarimg, which must give the verification address on every page. The notes form must print each
count and a 5,000-character 本卷情况说明 in full.

The checks need poppler-utils and zbar-tools (scripts/test installs them); on a developer's machine
without them the tests skip, under CI=true they fail.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fieldapp.documents.archive_forms import (
    FileIndexDoc,
    FileNotesDoc,
    IndexEntry,
    _day,
    _long_day,
    file_index_pdf,
    file_notes_pdf,
)
from tests.conftest import skip_or_fail

CASE_NUMBER = "临市监罚〔2026〕0127号"
PARTY = "淄博齐都食品有限公司"
CODE = "7K3M-Q9XZ-2B4D"
INDEX_URL = f"https://zfjl.linzi.gov.cn/verify/{CODE}"
NOTES_CODE = "4HQ2-W8NP-6T3C"
NOTES_URL = f"https://zfjl.linzi.gov.cn/verify/{NOTES_CODE}"
ENTRIES = 120
WITHDRAWN = 57
RARE = 88  # the entry whose title holds 𠮷 (U+20BB7)
HEADS = "序号文号责任者题名日期页号备注"
KINDS = ("现场笔录", "询问笔录", "证据提取单", "抽样记录", "责令改正通知书", "行政处罚告知书", "送达回证")


def title(n: int) -> str:
    kind = KINDS[n % len(KINDS)]
    if n == RARE:
        return f"第{n:03d}件 当事人法定代表人𠮷祥询问笔录"
    if n == WITHDRAWN:
        return f"第{n:03d}件 现场检查照片记录"
    if n % 5 == 0:  # long enough to wrap in the title column
        return (f"第{n:03d}件 关于{PARTY}涉嫌经营超过保质期预包装食品一案的{kind}"
                "（含当事人陈述、现场检查情况及涉案物品清点核对结果的补充说明）")
    return f"第{n:03d}件 {kind}"


def index_doc(entries: int = ENTRIES) -> FileIndexDoc:
    rows = []
    for n in range(1, entries + 1):
        when: date | datetime | str
        if n % 3 == 0:
            when = date(2026, 3, 4)
        elif n % 3 == 1:
            when = datetime(2026, 3, 4, 17, 30, tzinfo=UTC)  # 2026-03-05 01:30 in Beijing
        else:
            when = "2026-03-06"
        rows.append(IndexEntry(number=n, doc_number=f"临市监〔2026〕{n}号" if n % 4 == 0 else "",
                               responsible="临淄区市场监督管理局" if n % 2 else "张伟、李秀英", title=title(n),
                               date=when, pages=f"{2 * n - 1}-{2 * n}" if n != 3 else "",
                               note="已撤回" if n == WITHDRAWN else ""))
    return FileIndexDoc(case_number=CASE_NUMBER, party=PARTY, case_kind="行政处罚", entries=rows,
                        verify_url=INDEX_URL, code=CODE)


COUNTS = {"文书": 12, "照片": 34, "音像资料": 3, "电子数据": 0}
NOTES_SENTENCE = "本卷文件材料按形成时间顺序排列，照片与音像资料已另行刻录光盘附卷，经核对完整无缺。"


def long_notes() -> str:
    text = "".join(f"{i:04d}{NOTES_SENTENCE}" for i in range(1, 200))
    return text[:5000]


def notes_doc() -> FileNotesDoc:
    return FileNotesDoc(case_number=CASE_NUMBER, party=PARTY, counts=COUNTS, notes=long_notes(),
                        filed_by="张伟", checked_by="李秀英", filed_at=date(2026, 4, 2),
                        verify_url=NOTES_URL, code=NOTES_CODE)


# --- rendering once, and the tools that read the result -------------------------------------------

@pytest.fixture(scope="module")
def tools():
    missing = [tool for tool in ("pdftotext", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (Debian: poppler-utils)")
    if shutil.which("zbarimg") is None:
        skip_or_fail("zbarimg not installed (Debian: zbar-tools)")


@pytest.fixture(scope="module")
def index_pdf(tools, tmp_path_factory) -> Path:
    started = time.perf_counter()
    data = file_index_pdf(index_doc())
    print(f"\n卷内文件目录 ({ENTRIES} entries): {time.perf_counter() - started:.2f} s")
    path = tmp_path_factory.mktemp("index") / "卷内文件目录.pdf"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def notes_pdf(tools, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("notes") / "卷内备考表.pdf"
    path.write_bytes(file_notes_pdf(notes_doc()))
    return path


def renders(pdf: Path) -> list[Path]:
    """Every page as a 150 dpi PNG, in page order."""
    prefix = pdf.with_name("page")
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(prefix)], check=True, capture_output=True)
    return sorted(pdf.parent.glob("page-*.png"), key=lambda p: int(re.search(r"-(\d+)\.png$", p.name)[1]))


def pages_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    return out.decode("utf-8").split("\f")[:-1]


def layout_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def body_text(path: Path) -> str:
    """The text of every page without its margins (head, QR code, page number): A4 is 595 × 842 pt,
    the margins 36 mm (102 pt) at the top and 20 mm (57 pt) at the bottom."""
    out = subprocess.run(["pdftotext", "-r", "72", "-x", "0", "-y", "103", "-W", "595", "-H", "680",
                          "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def title_column(path: Path) -> list[str]:
    """The text of the index's 题名 column, page by page: the column runs from 89 mm to 142 mm
    across the page (22 mm margin; 序号, 文号 and 责任者 take 11, 32 and 24 mm), 252 to 402 pt."""
    out = subprocess.run(["pdftotext", "-r", "72", "-x", "253", "-y", "103", "-W", "148", "-H", "680",
                          "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8").split("\f")[:-1]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_qr_on_every_page(pdf: Path, url: str, pages: int) -> None:
    images = renders(pdf)
    assert len(images) == pages
    for page in images:
        result = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, timeout=60)
        assert result.returncode == 0, (page.name, result.stderr.decode(errors="replace")[-500:])
        assert result.stdout.decode("utf-8").strip().splitlines() == [url], page.name


# --- 卷内文件目录 -------------------------------------------------------------------------------------

def test_the_index_runs_onto_several_pages_with_the_heads_on_each(index_pdf):
    pages = [squeeze(text) for text in pages_text(index_pdf)]
    assert len(pages) >= 3
    heads = [[squeeze(line) for line in page.splitlines()].count(HEADS) for page in layout_text(index_pdf).split("\f")]
    assert heads[:len(pages)] == [1] * len(pages)
    for number, page in enumerate(pages, start=1):
        assert f"第{number}页共{len(pages)}页" in page, number
        for fact in (CASE_NUMBER, PARTY, CODE, INDEX_URL, "卷内文件目录"):
            assert squeeze(fact) in page, (number, fact)


def test_every_title_is_printed_whole_and_in_order(index_pdf):
    text = squeeze("".join(title_column(index_pdf)))
    positions = []
    for n in range(1, ENTRIES + 1):
        assert text.count(squeeze(title(n))) == 1, n
        positions.append(text.index(squeeze(title(n))))
    assert positions == sorted(positions)
    assert "𠮷" in text
    assert "行政处罚" in squeeze("".join(pages_text(index_pdf)))


def test_no_row_is_split_across_pages(index_pdf):
    for page in title_column(index_pdf):
        page = squeeze(page)
        starts = [n for n in range(1, ENTRIES + 1) if f"第{n:03d}件" in page]
        for n in starts:
            assert squeeze(title(n)) in page, n


def test_the_withdrawn_record_is_listed_and_marked(index_pdf):
    lines = [squeeze(line) for line in layout_text(index_pdf).splitlines() if "已撤回" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"{WITHDRAWN}")
    assert squeeze(title(WITHDRAWN)) in lines[0]
    assert f"{2 * WITHDRAWN - 1}-{2 * WITHDRAWN}" in lines[0]


def test_the_columns_keep_the_national_forms_order(index_pdf):
    # Rows whose cells all fit on one line, as pdftotext -layout lays them out.
    lines = [squeeze(line) for line in layout_text(index_pdf).splitlines()]
    assert "4临市监〔2026〕4号张伟、李秀英第004件责令改正通知书2026-03-057-8" in lines
    assert "2张伟、李秀英第002件证据提取单2026-03-063-4" in lines
    assert "6张伟、李秀英第006件送达回证2026-03-04" not in lines  # 页号 of entry 3 only is blank
    assert "6张伟、李秀英第006件送达回证2026-03-0411-12" in lines


def test_every_index_page_carries_the_qr_code(index_pdf):
    assert_qr_on_every_page(index_pdf, INDEX_URL, len(pages_text(index_pdf)))


# --- 卷内备考表 -------------------------------------------------------------------------------------

def test_the_notes_form_prints_each_count_and_the_whole_note(notes_pdf):
    pages = pages_text(notes_pdf)
    assert len(pages) >= 2
    lines = [squeeze(line) for line in layout_text(notes_pdf).splitlines()]
    for label, count in COUNTS.items():
        assert any(re.fullmatch(rf"{label}{count}[件张页]?", line) for line in lines), label
    text = squeeze("".join(pages))
    assert squeeze(long_notes()) in squeeze(body_text(notes_pdf))
    for fact in ("本卷情况说明", "立卷人：张伟", "检查人：李秀英", "立卷时间：2026年4月2日"):
        assert fact in text, fact
    for number, page in enumerate(pages, start=1):
        page = squeeze(page)
        assert f"第{number}页共{len(pages)}页" in page
        for fact in (CASE_NUMBER, PARTY, NOTES_CODE, NOTES_URL, "卷内备考表"):
            assert squeeze(fact) in page, (number, fact)


def test_the_counts_keep_the_order_given(notes_pdf):
    text = squeeze("".join(pages_text(notes_pdf)))
    positions = [text.index(f"{label}{count}") for label, count in COUNTS.items()]
    assert positions == sorted(positions)


def test_every_notes_page_carries_the_qr_code(notes_pdf):
    assert_qr_on_every_page(notes_pdf, NOTES_URL, len(pages_text(notes_pdf)))


# --- parts ---------------------------------------------------------------------------------------

def test_dates_print_as_beijing_days():
    assert _day(date(2026, 3, 4)) == "2026-03-04"
    assert _day(datetime(2026, 3, 4, 17, 30, tzinfo=UTC)) == "2026-03-05"
    assert _day(datetime(2026, 3, 4, 17, 30)) == "2026-03-05"  # naive means UTC
    assert _day("2026-03-06") == "2026-03-06"
    assert _day("2026-03-06T16:00:00Z") == "2026-03-07"
    assert _day("2026年3月") == "2026年3月"
    assert _long_day(date(2026, 4, 2)) == "2026年4月2日"


def test_an_empty_index_says_so(tools, tmp_path):
    doc = index_doc(0)
    path = tmp_path / "empty.pdf"
    path.write_bytes(file_index_pdf(doc))
    pages = pages_text(path)
    assert len(pages) == 1
    assert HEADS in [squeeze(line) for line in layout_text(path).splitlines()]
    assert "本卷尚无文件" in squeeze(pages[0])
