"""The two PDFs of an evidence package (art. 27): 证据说明 and 电子数据证据提取笔录.

What a court reads must be what was captured: the facts are read back from the PDFs with poppler's
pdftotext (case number, hashes, names, 证明对象, 已撤回, every character of a 10,000-character note);
every character is drawn by a font embedded in the PDF that has a glyph for it (the embedded font
programs are read back with pypdf and their cmaps checked with fontTools, so a box drawn for a
missing glyph fails); pages are numbered; nothing runs off the page; and page 1 renders to a
picture that is not blank.

The checks need poppler-utils, fonts-noto-cjk and fonts-hanazono (scripts/test installs them); on a
developer's machine without them the tests skip, under CI=true they fail.
"""
from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from PIL import Image
from pypdf import PdfReader

from fieldapp.documents import pdf
from fieldapp.documents.pdf import (
    AccessEntry,
    Checkpoint,
    ExplanationDoc,
    ExplanationItem,
    ExtractionDoc,
    ExtractionItem,
    Person,
    Place,
    RecordRef,
    ReliabilityFacts,
    explanation_pdf,
    extraction_record_pdf,
)
from tests.conftest import skip_or_fail

EXT_B = "\U00020BB7"  # 𠮷: CJK Extension B, in Noto CJK
EXT_B_RARE = "\U0002A6D6"  # 𪛖: CJK Extension B, not in Noto CJK, only in HanaMinB
PARTY = f"淄博{EXT_B}{EXT_B_RARE}食品有限公司"
CASE_NUMBER = "临市监罚〔2026〕0127号"
CASE_ID = "0b7c1f1e-4a8e-4d5e-9a51-2f7f3c0e9a01"
PACKAGE_ID = "5d2f0c3a-93b6-4f0e-8a3e-6c1d2b9e7f10"
GRANT = "FZ-2026-0001"
DEVICE = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
ZHANG = Person("张建国", "37030500123")
LI = Person("李秀英", "37030500456")
T0 = datetime(2026, 12, 3, 1, 15, 42, tzinfo=UTC)  # 09:15:42 in Beijing
PROVES = f"证明{PARTY}于二〇二六年十二月三日在经营场所存放超过保质期的食品"
LONG_TOKEN = "https://example.org/" + "x" * 300  # no break opportunity but the one overflow-wrap makes
WIDE_NAME = "现场检查_" + "0123456789" * 12 + ".jpg"

A4_WIDTH_PT = 595.28
RIGHT_MARGIN_PT = 18 / 25.4 * 72
NAME_COLUMN_PT = ((22 + 11) / 25.4 * 72, (22 + 11 + 45) / 25.4 * 72)
"""The extraction record's file-name column: after the left margin (22 mm) and the number column."""
CONFIGURED_FONTS = ("Noto-Serif-CJK-SC", "Noto-Sans-CJK-SC", "Noto-Sans-Mono-CJK-SC", "HanaMinB", "HanaMinA")
"""PostScript names of the configured families as they appear in the PDF (after the subset tag)."""


def _note(length: int, tag: str) -> str:
    """``length`` characters of varied text (Chinese, digits, Latin, punctuation, line breaks, both
    rare characters), starting with 【tag起】 and ending with 【tag止】 so a cut is seen."""
    phrases = ["当事人称该批食品系十一月二十日购入，", f"负责人{EXT_B}某在场，", "货架第3层共12箱，",
               "标签标注保质期至2026-11-30；", f"库房东侧另有{EXT_B_RARE}字样包装，", "执法人员出示证件后开始检查。\n",
               "Lot No. A-2026-11 ", "（温度 4.5℃）", "见证人确认上述情况属实。"]
    head, tail = f"【{tag}起】", f"【{tag}止】"
    body, i = [], 0
    while sum(map(len, body)) < length - len(head) - len(tail):
        body.append(phrases[i % len(phrases)])
        i += 1
    text = "".join(body)[: length - len(head) - len(tail)]
    return head + text + tail


NOTE_10K = _note(10_000, "说明")
PROCESS_10K = _note(10_000, "过程")


def _digests(seed: str) -> tuple[str, str]:
    data = seed.encode()
    return hashlib.sha256(data).hexdigest(), hashlib.new("sm3", data).hexdigest()


def _item(number: int, name: str, **changes) -> ExplanationItem:
    sha, sm3 = _digests(name)
    item = ExplanationItem(
        number=number, file_name=name, kind="photo", sha256=sha, sm3=sm3, size=2_345_678 + number,
        maker=ZHANG, captured_server=T0 + timedelta(minutes=number, seconds=3),
        captured_device=T0 + timedelta(minutes=number), device_id=DEVICE,
        place=Place("临淄区桓公路 88 号东侧仓库", 36_812_345, 118_309_876),
        record=RecordRef("1c0e9b7a-2d4f-4a6b-9c8d-7e6f5a4b3c2d", 2, "step"),
        proves=PROVES, chain=(1041, 1042 + number), sm3_source="extraction")
    return replace(item, **changes)


def explanation_doc() -> ExplanationDoc:
    items = [
        _item(1, "IMG_20261203_091542.jpg"),
        _item(2, "IMG_20261203_091803.jpg", captured_device=None, proves="证明库房东侧货架的陈列情况（照片无拍摄时间信息）"),
        _item(3, "IMG_20261203_092010.jpg", record=RecordRef("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", 1, "step", True),
              proves="证明撤回前所拍货架照片"),
        _item(4, "录音_询问当事人.m4a", kind="audio", proves="证明当事人陈述的进货来源", transcript=NOTE_10K),
        _item(5, "DSJ_0007_20261203091200.mp4", kind="footage", device_id=None, camera_serial="DSJ-LZ-0007",
              record=None, place=None, sm3_source="ingest", proves=f"证明检查全过程；{LONG_TOKEN}"),
        _item(6, WIDE_NAME, proves="证明文件名很长时仍完整打印"),
    ]
    facts = ReliabilityFacts(
        made="照片、视频和录音由执法人员在本局配发的手机上用执法记录系统拍摄或录制；每一版记录连同所附文件的 SHA-256 "
             "由手机以其设备密钥（ECDSA P-256）签名后上传。执法记录仪视频由采集工作站导入，导入时计算 SM3。",
        kept="原始文件按哈希值存放于本局服务器的对象存储，开启版本保留与对象锁定，原件不作任何修改；预览图另行生成并标注。",
        moved="手机与服务器之间经 HTTPS 传输；服务器收到文件后重新计算 SHA-256，与签名记录中的值一致方予接收。",
        checked="提取时从存储中逐个原样复制，重新计算 SHA-256 与 SM3，并与入库登记值核对一致。",
        monitoring="设备签名：每一版记录均由采集设备签名；审计链：服务器上每项变更与调阅均记入哈希链；"
                   "签名检查点：审计链定期由服务器密钥（Ed25519）签署检查点并申请可信时间戳。",
        archive="音像记录由本局音像记录管理员统一管理，调阅、复制须经批准并登记。",
        access=[AccessEntry(T0 + timedelta(days=1), "王海燕（法制审核）", "查看", "赵立新", "案件审核"),
                AccessEntry(T0 + timedelta(days=2), f"刘{EXT_B}（办案人员）", "复制", "赵立新", "复议诉讼")],
        access_note="摘录自本局调阅登记簿中与本案证据有关的全部条目。",
        checkpoints=[Checkpoint(1000, T0 - timedelta(hours=1), hashlib.sha256(b"A").hexdigest()),
                     Checkpoint(1200, T0 + timedelta(days=3), hashlib.sha256(b"B").hexdigest())],
        other=NOTE_10K)
    return ExplanationDoc(case_id=CASE_ID, case_number=CASE_NUMBER, party=PARTY, package_id=PACKAGE_ID,
                          grant_number=GRANT, items=items, facts=facts, extracted_by=[ZHANG, LI],
                          extracted_at=T0 + timedelta(days=3, hours=2))


def extraction_items(count: int) -> list[ExtractionItem]:
    out = []
    for n in range(1, count + 1):
        name = f"IMG_20261203_{n:06d}.jpg" if n != 7 else WIDE_NAME
        sha, sm3 = _digests(name)
        out.append(ExtractionItem(n, name, 1_000_000 + 7919 * n, sha, sm3))
    return out


def extraction_doc(count: int = 300, **changes) -> ExtractionDoc:
    doc = ExtractionDoc(
        case_id=CASE_ID, case_number=CASE_NUMBER, party=PARTY,
        target="临淄区市场监督管理局执法记录系统服务器存储中本案的照片、视频、录音及执法记录仪视频",
        started_at=T0 + timedelta(days=3, hours=1), finished_at=T0 + timedelta(days=3, hours=2), place="局机关三楼电子数据室",
        method="从执法记录系统存储中按哈希原样复制，逐个计算 SHA-256 与 SM3 并与登记值核对",
        process=PROCESS_10K, items=extraction_items(count), officers=[ZHANG, LI], witness=f"孙{EXT_B}明",
        party_signer=f"周{EXT_B_RARE}（委托代理人）", refusal=None, package_id=PACKAGE_ID)
    return replace(doc, **changes)


# --- rendering once, and the tools that read the result ---------------------------------------------

@pytest.fixture(scope="module")
def tools():
    missing = [tool for tool in ("pdftotext", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (Debian: poppler-utils)")
    if shutil.which("fc-list") is None:
        skip_or_fail("fc-list not installed (Debian: fontconfig)")
    absent = pdf.missing_fonts()
    if absent:
        packages = sorted({pdf.FONT_PACKAGES[name] for name in absent})
        skip_or_fail(f"fonts {', '.join(absent)} not installed (Debian: {' '.join(packages)})")


@pytest.fixture(scope="module")
def explanation(tools, tmp_path_factory) -> Path:
    started = time.perf_counter()
    data = explanation_pdf(explanation_doc())
    print(f"\nexplanation (6 items, two 10,000-character notes): {time.perf_counter() - started:.2f} s")
    path = tmp_path_factory.mktemp("pdf") / "证据说明.pdf"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def extraction(tools, tmp_path_factory) -> Path:
    started = time.perf_counter()
    data = extraction_record_pdf(extraction_doc(300))
    elapsed = time.perf_counter() - started
    print(f"\nextraction record (300 items, a 10,000-character process): {elapsed:.2f} s")
    assert elapsed < 20, f"300 items took {elapsed:.1f} s to render"
    path = tmp_path_factory.mktemp("pdf") / "电子数据证据提取笔录.pdf"
    path.write_bytes(data)
    return path


def pages_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    return out.decode("utf-8").split("\f")[:-1]


def layout_text(path: Path) -> str:
    """The text as laid out on the page, line by line across table columns (pdftotext -layout)."""
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def column_text(path: Path, span: tuple[float, float]) -> str:
    """The text between two x positions (pt) of every page: one table column, read top to bottom."""
    left, right = span
    out = subprocess.run(["pdftotext", "-r", "72", "-x", str(int(left)), "-y", "0", "-W", str(int(right - left)),
                          "-H", "842", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def body_text(path: Path, title: str) -> str:
    """All pages' text without whitespace, running headers and page numbers: what flows across a
    page break reads as one piece again."""
    text = squeeze("".join(pages_text(path)))
    text = re.sub(rf"{title}案号：{re.escape(CASE_NUMBER)}", "", text)
    return re.sub(r"第\d+页共\d+页", "", text)


# --- (a) the captured facts read back --------------------------------------------------------------

def test_explanation_states_every_item_and_the_facts(explanation):
    doc = explanation_doc()
    text = body_text(explanation, "证据说明")
    for fact in (pdf.BUREAU, CASE_NUMBER, CASE_ID, PARTY, PACKAGE_ID, GRANT, ZHANG.name, ZHANG.cert_no, LI.name,
                 DEVICE, "DSJ-LZ-0007", "2026-12-0309:16:42", "北纬36.812345°，东经118.309876°"):
        assert squeeze(fact) in text, fact
    for item in doc.items:
        assert f"第{item.number}项" in text
        for fact in (item.file_name, item.sha256, item.sm3, f"{item.size:,}字节", squeeze(item.proves)):
            assert squeeze(fact) in text, (item.number, fact)
    assert squeeze(NOTE_10K) in text, "the 10,000-character transcript is cut or out of order"
    assert text.count(squeeze(NOTE_10K)) == 2  # the transcript, and the facts' "other" (art. 93 (七))
    for entry in doc.facts.access:
        assert squeeze(f"{entry.who}{entry.action}{entry.approver}{entry.purpose}") in text
    for checkpoint in doc.facts.checkpoints:
        assert checkpoint.head in text
    for point in pdf.ART_93_POINTS:
        assert squeeze(point) in text
    assert "提取时间：2026-12-0611:15:42" in text


def test_a_withdrawn_record_is_listed_and_marked(explanation):
    text = body_text(explanation, "证据说明")
    withdrawn = explanation_doc().items[2]
    assert f"第3项{withdrawn.file_name}已撤回" in text
    assert "本项所属记录已撤回" in text
    assert squeeze(withdrawn.proves) in text
    assert f"第1项{explanation_doc().items[0].file_name}已撤回" not in text
    assert text.count("本项所属记录已撤回") == 1


def test_an_item_without_a_capture_time_in_the_file_says_so(explanation):
    text = body_text(explanation, "证据说明")
    second = text[text.index("第2项"):text.index("第3项")]
    assert "设备记录：无（文件未记录拍摄时间）" in second
    assert "服务器接收：2026-12-0309:17:45" in second
    footage = text[text.index("第5项"):text.index("第6项")]
    assert "执法记录仪视频" in footage and "不属于移动端记录" in footage and "入库时计算" in footage


def test_extraction_record_lists_all_files_and_the_signature_lines(extraction):
    doc = extraction_doc(300)
    text = body_text(extraction, "电子数据证据提取笔录")
    for fact in (pdf.BUREAU, CASE_NUMBER, PARTY, doc.target, doc.place, doc.method, ZHANG.name, ZHANG.cert_no,
                 LI.name, LI.cert_no, doc.witness, doc.party_signer, "2026-12-0610:15:42至2026-12-0611:15:42"):
        assert squeeze(fact) in text, fact
    assert squeeze(PROCESS_10K) in text, "the 10,000-character process is cut or out of order"
    rows = squeeze(layout_text(extraction))
    names = squeeze(column_text(extraction, NAME_COLUMN_PT))
    row_at = name_at = 0
    for item in doc.items:  # every file in order: its name and size in one column, both hashes beside them
        name_at = names.find(squeeze(f"{item.file_name}{item.size:,}字节"), name_at)
        assert name_at >= 0, item.number
        if item.file_name == WIDE_NAME:  # its name wraps over lines of its own, between the hashes
            row_at = rows.find(f"{item.number}现场检查", row_at)
            row_at = rows.find(f"SHA-256{item.sha256}", row_at)
            row_at = rows.find(f"SM3{item.sm3}", row_at)
        else:
            row_at = rows.find(f"{item.number}{item.file_name}SHA-256{item.sha256}{item.size:,}字节SM3{item.sm3}",
                               row_at)
        assert row_at >= 0, item.number
    assert f"共300个文件，合计{sum(i.size for i in doc.items):,}字节" in text
    signatures = text[text.index("四、签名"):]
    assert signatures.count("提取人：") == 2 and signatures.count("见证人：") == 1
    assert "签名（盖章）：" in signatures and "拒绝签名" not in signatures


def test_a_refusal_replaces_the_partys_signature_line_and_one_officer_leaves_a_blank_line(tools, tmp_path):
    note = "当事人周某拒绝签名，由见证人孙某在场见证，全程录像（执法记录仪 DSJ-LZ-0007）。"
    path = tmp_path / "refused.pdf"
    path.write_bytes(extraction_record_pdf(extraction_doc(3, refusal=note, officers=[ZHANG], process="")))
    text = body_text(path, "电子数据证据提取笔录")
    signatures = text[text.index("四、签名"):]
    assert "拒绝签名" in signatures and squeeze(note) in signatures
    assert "签名（盖章）" not in signatures
    assert signatures.count("提取人：") == 2  # the second officer's line is left to fill in by hand


# --- (b) every character is drawn by an embedded font that has it ---------------------------------

def _tounicode(font) -> set[str]:
    data = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    chars: set[str] = set()
    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for _cid, target in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            chars.update(bytes.fromhex(target).decode("utf-16-be"))
    for block in re.findall(r"beginbfrange(.*?)endbfrange", data, re.S):
        for low, high, target in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            first = bytes.fromhex(target).decode("utf-16-be")
            chars.update(chr(ord(first[-1]) + i) for i in range(int(high, 16) - int(low, 16) + 1))
    return chars


def embedded_fonts(path: Path) -> dict[str, tuple[set[int], set[str]]]:
    """Each embedded font: PostScript name -> (code points its own cmap maps, characters the PDF
    says it draws)."""
    fonts: dict[str, tuple[set[int], set[str]]] = {}
    seen: set[int] = set()

    def walk(resources) -> None:
        resources = resources.get_object() if resources is not None else {}
        for ref in (resources.get("/Font") or {}).values():
            if ref.idnum in seen:
                continue
            seen.add(ref.idnum)
            font = ref.get_object()
            assert font["/Subtype"] == "/Type0", font["/BaseFont"]
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            program = next(descriptor[key] for key in ("/FontFile2", "/FontFile3", "/FontFile") if key in descriptor)
            cmap = TTFont(io.BytesIO(program.get_object().get_data())).getBestCmap() or {}
            name = str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1]
            covered, drawn = fonts.get(name, (set(), set()))
            fonts[name] = (covered | set(cmap), drawn | _tounicode(font))
        for xobject in (resources.get("/XObject") or {}).values():
            xobject = xobject.get_object()
            if xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
                walk(xobject["/Resources"])

    for page in PdfReader(path).pages:
        walk(page.get("/Resources"))
    return fonts


@pytest.mark.parametrize("which", ["explanation", "extraction"])
def test_every_character_is_drawn_by_an_embedded_font_that_has_it(which, request):
    path = request.getfixturevalue(which)
    fonts = embedded_fonts(path)
    assert fonts, "no embedded fonts"
    for name, (covered, drawn) in fonts.items():
        assert name.startswith(CONFIGURED_FONTS), f"{name}: a fallback font, not one of {pdf.FONT_FAMILIES}"
        boxes = sorted(c for c in drawn if ord(c) not in covered)
        assert not boxes, f"{name} draws {[f'U+{ord(c):04X} {c}' for c in boxes]} without a glyph for them"
    covered_anywhere = set().union(*(covered for covered, _ in fonts.values()))
    text = squeeze("".join(pages_text(path)))
    uncovered = sorted({c for c in text if ord(c) not in covered_anywhere})
    assert not uncovered, [f"U+{ord(c):04X} {c}" for c in uncovered]
    for rare in (EXT_B, EXT_B_RARE):
        assert rare in text, f"U+{ord(rare):04X} did not survive the round trip"
    drawn_by = {name for name, (_, drawn) in fonts.items() if EXT_B_RARE in drawn}
    assert drawn_by and all(name.startswith("HanaMinB") for name in drawn_by), drawn_by


# --- (c) page numbers, and nothing runs off the page ------------------------------------------------

@pytest.mark.parametrize("which", ["explanation", "extraction"])
def test_every_page_is_numbered_of_the_total(which, request):
    path = request.getfixturevalue(which)
    pages = pages_text(path)
    assert len(pages) == len(PdfReader(path).pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"第{number}页共{len(pages)}页" in squeeze(page), number


@pytest.mark.parametrize("which", ["explanation", "extraction"])
def test_long_hashes_names_and_tokens_wrap_inside_the_page(which, request, tmp_path):
    path = request.getfixturevalue(which)
    boxes = tmp_path / "bbox.html"
    subprocess.run(["pdftotext", "-bbox", str(path), str(boxes)], check=True, capture_output=True)
    right = [float(x) for x in re.findall(r'xMax="([\d.]+)"', boxes.read_text(encoding="utf-8"))]
    assert right
    limit = A4_WIDTH_PT - RIGHT_MARGIN_PT + 1
    assert max(right) <= limit, f"text runs to x={max(right):.1f} pt, past the right margin at {limit:.1f} pt"


# --- (d) it prints --------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["explanation", "extraction"])
def test_page_one_renders_and_is_not_blank(which, request, tmp_path):
    path = request.getfixturevalue(which)
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", "-singlefile", str(path),
                    str(tmp_path / "page")], check=True, capture_output=True)
    with Image.open(tmp_path / "page.png") as image:
        gray = image.convert("L")
        assert abs(gray.width / gray.height - 210 / 297) < 0.01  # A4 portrait
        dark = sum(gray.histogram()[:128])
    assert dark > 0.01 * gray.width * gray.height, f"page 1 is (nearly) blank: {dark} dark pixels"


# --- what else the documents promise --------------------------------------------------------------

def test_text_is_printed_as_text_and_nothing_is_fetched(tools, tmp_path):
    hostile = '<img src="file:///etc/passwd"><b>粗体</b>{{ 7 * 7 }}'
    doc = explanation_doc()
    doc = replace(doc, party=hostile, items=[replace(doc.items[0], proves=hostile)], facts=replace(doc.facts, other=""))
    path = tmp_path / "hostile.pdf"
    path.write_bytes(explanation_pdf(doc))
    text = body_text(path, "证据说明")
    assert text.count(squeeze(hostile)) == 2
    assert "（八）其他" not in text  # an empty art. 93 (七) answer is left out, not printed blank
    secret = tmp_path / "secret.txt"
    secret.write_text("x", encoding="utf-8")
    for url in (secret.as_uri(), "https://example.org/a.png", "data:text/plain,x"):
        with pytest.raises(ValueError):
            pdf.url_fetcher()(url)  # and were markup ever to get through, it could load nothing


def test_the_same_facts_give_the_same_bytes(tools, extraction):
    """Building a package again from the same facts gives the same PDF, so the same hashes."""
    again = extraction_record_pdf(extraction_doc(300))
    assert again == extraction.read_bytes()
    info = PdfReader(io.BytesIO(again)).metadata
    assert info.title == f"电子数据证据提取笔录（{CASE_NUMBER}）"
    assert info.author == pdf.BUREAU
