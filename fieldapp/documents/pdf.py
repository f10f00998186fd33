"""The two PDFs of an evidence package (art. 27): 证据说明 and 电子数据证据提取笔录.

Both are written for a court and for the party, so they are in Chinese only, whatever the reader's
interface language, and say only what they are given: every fact arrives in the plain dataclasses
below (filled by the package builder from the database), is put into an HTML template under
``templates/documents/`` with Jinja2 and printed to A4 by WeasyPrint. Nothing here touches a
database, the storage or a Flask request, so a test, a command-line tool or a worker can render
the same documents.

What the documents must say:

- 证据说明: for each item what 行政诉讼证据规定 art. 12 asks of audio-visual material — the original
  carrier (file name, size, SHA-256 and SM3), how and when it was made and by whom, what it proves,
  and the words of recorded speech — then the facts 民事证据规定 art. 93 weighs for electronic data
  (how it was made, kept, moved and checked, what guards against error, who kept it and who saw it).
  A withdrawn record is listed and marked 已撤回, never left out: leaving it out would be the kind of
  silent selection the package exists to rule out.
- 电子数据证据提取笔录: what was extracted, when, where, how, the list of files with their hashes,
  and lines for the two officers, the witness and the party (or the note that the party refused).

Fonts: Debian's fonts-noto-cjk draws every character of the Basic Multilingual Plane a name or a
note is likely to hold; fonts-hanazono (花园明朝 B) adds CJK Extension B, which Noto CJK covers only in
part (𠮷 U+20BB7 yes, 𪛖 U+2A6D6 no) and which appears in people's and firms' names. Fontconfig picks,
for each character, the first family in :data:`FONT_FAMILIES` that has it; a family that is not
installed is logged once, since its characters would print as empty boxes.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from fieldapp.i18n import local_time, parse_when
from .weasy import weasyprint as _weasy

log = logging.getLogger(__name__)

BUREAU = "临淄区市场监督管理局"

FONT_FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC", "HanaMinB", "HanaMinA")
"""Family names as Debian's fonts-noto-cjk and fonts-hanazono register them with fontconfig."""
MONO_FAMILY = "Noto Sans Mono CJK SC"
"""Hashes and identifiers: equal-width digits are easier to compare by eye, character by character."""
FONT_PACKAGES = {"Noto Serif CJK SC": "fonts-noto-cjk", "Noto Sans CJK SC": "fonts-noto-cjk",
                 "Noto Sans Mono CJK SC": "fonts-noto-cjk", "HanaMinB": "fonts-hanazono",
                 "HanaMinA": "fonts-hanazono"}

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""Seconds matter here: a capture time is compared with the audit chain and the other records."""

KIND_LABELS = {"photo": "照片", "video": "视频", "audio": "录音", "footage": "执法记录仪视频", "file": "文件"}
RECORD_TYPE_LABELS = {"case": "案件", "activity": "现场执法活动", "step": "执法环节",
                      "interruption": "记录中断", "service": "留置送达"}
SM3_SOURCES = {"ingest": "入库时计算", "extraction": "提取时计算"}

LEGAL_BASIS = ("本局行政执法全过程记录规定第二十七条；《最高人民法院关于行政诉讼证据若干问题的规定》第十二条；"
               "《最高人民法院关于民事诉讼证据的若干规定》第九十三条、第九十四条")

ART_93_POINTS = (
    "电子数据的生成、存储、传输所依赖的计算机系统的硬件、软件环境是否完整、可靠",
    "电子数据的生成、存储、传输所依赖的计算机系统的硬件、软件环境是否处于正常运行状态，"
    "或者不处于正常运行状态时对电子数据的生成、存储、传输是否有影响",
    "电子数据的生成、存储、传输所依赖的计算机系统的硬件、软件环境是否具备有效的防止出错的监测、核查手段",
    "电子数据是否被完整地保存、传输、提取，保存、传输、提取的方法是否可靠",
    "电子数据是否在正常的往来活动中形成和存储",
    "保存、传输、提取电子数据的主体是否适当",
    "影响电子数据完整性和可靠性的其他因素",
)
"""民事证据规定 art. 93, items (一)–(七), printed with the explanation so each answer names its question."""


# --- what the documents say -----------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """An officer (name and 执法证号) or anyone else named on a document."""
    name: str
    cert_no: str = ""


@dataclass(frozen=True)
class Place:
    """Where an item was captured: the words the officer wrote, and the phone's or the photo's
    position in millionths of a degree when there was one."""
    text: str = ""
    lat_e6: int | None = None
    lon_e6: int | None = None


@dataclass(frozen=True)
class RecordRef:
    """The record and revision an item belongs to. ``type`` is the record's type code (case,
    activity, step, interruption, service; other text is printed as given)."""
    id: str
    revision: int
    type: str = ""
    withdrawn: bool = False


@dataclass(frozen=True)
class ExplanationItem:
    """One item of the explanation. Times are aware datetimes or ISO 8601 strings (naive means
    UTC) and print as Beijing time; ``captured_device`` is None when the file carries no capture
    time (a photo without EXIF, say)."""
    number: int
    file_name: str
    kind: str  # photo | video | audio | footage
    sha256: str
    sm3: str
    size: int
    maker: Person
    captured_server: datetime | str
    captured_device: datetime | str | None = None
    device_id: str | None = None
    camera_serial: str | None = None
    place: Place | None = None
    record: RecordRef | None = None  # None for body-camera footage
    proves: str = ""  # 证明对象, as the officer stated it
    transcript: str | None = None  # the words of recorded speech
    sm3_source: str = "extraction"  # ingest | extraction
    chain: Sequence[int] = ()  # seq of the audit-chain events about this item


@dataclass(frozen=True)
class AccessEntry:
    """One line of the access register (调阅登记) excerpt: who did what with the data, when, on
    whose approval and why."""
    at: datetime | str
    who: str
    action: str
    approver: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint of the audit chain: its sequence number, when it was signed, its head."""
    seq: int
    at: datetime | str
    head: str


@dataclass(frozen=True)
class ReliabilityFacts:
    """The facts that answer 民事证据规定 art. 93, each in the bureau's own words: how the data was
    made (``made``), kept (``kept``), moved (``moved``) and checked on extraction (``checked``);
    the means that catch an error or a change (``monitoring``: device signatures, the audit chain,
    signed checkpoints, listed in ``checkpoints``); archive management (``archive``); and who had
    access (``access``, an excerpt of the register). ``other`` is anything else that bears on the
    data's integrity (art. 93 (七)); left empty it is not printed."""
    made: str
    kept: str
    moved: str
    checked: str
    monitoring: str
    archive: str
    access: Sequence[AccessEntry] = ()
    access_note: str = ""  # where the excerpt comes from and what it leaves out
    checkpoints: Sequence[Checkpoint] = ()
    other: str = ""


@dataclass(frozen=True)
class ExplanationDoc:
    """证据说明 of one package."""
    case_id: str
    case_number: str | None
    party: str
    package_id: str
    grant_number: str
    items: Sequence[ExplanationItem]
    facts: ReliabilityFacts
    extracted_by: Sequence[Person]
    extracted_at: datetime | str
    bureau: str = BUREAU


@dataclass(frozen=True)
class ExtractionItem:
    """One file in the extraction record's list."""
    number: int
    file_name: str
    size: int
    sha256: str
    sm3: str


@dataclass(frozen=True)
class ExtractionDoc:
    """电子数据证据提取笔录 of one package. ``target`` is the 提取对象 (what the data was extracted
    from); ``officers`` are the 提取人 (two; a missing one leaves a blank line to fill in by hand).
    ``witness`` and ``party_signer`` name who signs below; ``refusal``, when given, is printed in
    place of the party's signature line (拒绝签名: who refused, and who saw it)."""
    case_id: str
    case_number: str | None
    party: str
    target: str
    started_at: datetime | str
    place: str
    method: str
    process: str
    items: Sequence[ExtractionItem]
    officers: Sequence[Person]
    finished_at: datetime | str | None = None
    witness: str | None = None
    party_signer: str | None = None
    refusal: str | None = None
    package_id: str = ""
    bureau: str = BUREAU


# --- rendering ------------------------------------------------------------------------------------

def explanation_pdf(doc: ExplanationDoc) -> bytes:
    """证据说明 as PDF bytes."""
    sections = [
        ("生成", doc.facts.made, (1, 2, 5)),
        ("存储", doc.facts.kept, (1, 4)),
        ("传输", doc.facts.moved, (4,)),
        ("提取与核对", doc.facts.checked, (4,)),
        ("防止出错的监测、核查手段", doc.facts.monitoring, (3,)),
        ("档案管理", doc.facts.archive, (6,)),
    ]
    return _render("documents/explanation.html", doc=doc, sections=sections, points=ART_93_POINTS,
                   basis=LEGAL_BASIS, title="证据说明", created=doc.extracted_at,
                   total_size=sum(item.size for item in doc.items))


def extraction_record_pdf(doc: ExtractionDoc) -> bytes:
    """电子数据证据提取笔录 as PDF bytes."""
    officers = list(doc.officers) + [None] * max(0, 2 - len(doc.officers))
    return _render("documents/extraction_record.html", doc=doc, officers=officers, title="电子数据证据提取笔录",
                   created=doc.started_at, total_size=sum(item.size for item in doc.items))


def _render(template: str, **context) -> bytes:
    weasyprint = _weasy()  # loads Pango (and puts back what its import changes): only when a document is made

    _warn_missing_fonts()
    html = _environment().get_template(template).render(**context)
    return weasyprint.HTML(string=html, url_fetcher=url_fetcher()).write_pdf(
        stylesheets=[weasyprint.CSS(string=_stylesheet())])


def url_fetcher():
    """A fetcher that refuses every URL: the documents load nothing, so no text in them can make the
    renderer open a file or reach the network. WeasyPrint 70 takes a ``URLFetcher`` (here one that
    allows no protocol at all); earlier releases take a plain function."""
    weasyprint = _weasy()

    try:
        return weasyprint.urls.URLFetcher(allowed_protocols=())
    except (AttributeError, TypeError):
        return _no_fetch


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError(f"evidence documents load no resources ({url[:80]})")


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("fieldapp", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(iso=_iso, when=_when, size=_size, coords=_coords, kind=_kind, record_type=_record_type,
                       sm3_source=lambda v: SM3_SOURCES.get(v, v), numeral=_numeral)
    return env


def _when(value) -> str:
    return local_time(value, TIME_FORMAT)


def _iso(value) -> str:
    when = parse_when(value)
    return when.isoformat(timespec="seconds") if when else ""


def _size(value: int) -> str:
    text = f"{value:,} 字节"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{text}（{value / scale:.1f} {unit}）"
    return text


def _coords(place: Place) -> str:
    if place.lat_e6 is None or place.lon_e6 is None:
        return ""
    lat, lon = place.lat_e6 / 1e6, place.lon_e6 / 1e6
    return f"{'北纬' if lat >= 0 else '南纬'} {abs(lat):.6f}°，{'东经' if lon >= 0 else '西经'} {abs(lon):.6f}°"


def _kind(value: str) -> str:
    return KIND_LABELS.get(value, value)


def _record_type(value: str) -> str:
    return RECORD_TYPE_LABELS.get(value, value)


def _numeral(value: int) -> str:
    """一, 二, … 十九: section numbers as Chinese documents write them."""
    digits = "零一二三四五六七八九"
    if value < 10:
        return digits[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def _families(*first: str) -> str:
    return ", ".join([f'"{name}"' for name in (*first, *FONT_FAMILIES)] + ["serif"])


@cache
def _stylesheet() -> str:
    return STYLESHEET.replace("FAMILIES", _families()).replace("MONO", _families(MONO_FAMILY))


@cache
def _warn_missing_fonts() -> None:
    missing = missing_fonts()
    if missing:
        packages = sorted({FONT_PACKAGES.get(name, name) for name in missing})
        log.warning("fonts %s are not installed (Debian: %s); characters only they cover print as boxes",
                    ", ".join(missing), " ".join(packages))


def missing_fonts() -> list[str]:
    """The configured families fontconfig does not know; [] when it cannot be asked (no fc-list)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        listed = subprocess.run([fc_list, ":", "family"], capture_output=True, text=True, timeout=30,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    known = {name.strip() for line in listed.splitlines() for name in line.split(",")}
    return [name for name in (*FONT_FAMILIES, MONO_FAMILY) if name not in known]


STYLESHEET = """
@page {
  size: A4 portrait;
  margin: 20mm 18mm 22mm 22mm;
  @top-right { content: string(title) "　案号：" string(running); font-size: 8pt; color: #444; }
  @bottom-center { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; font-size: 9pt; }
}
html { font-family: FAMILIES; font-size: 10.5pt; line-height: 1.55; color: #000; }
body { margin: 0; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.3em; margin: 0 0 2mm; string-set: title content(); }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm; break-after: avoid; }
h3 { font-size: 11pt; margin: 5mm 0 1.5mm; break-after: avoid; }
h4 { font-size: 10.5pt; margin: 2.5mm 0 1mm; break-after: avoid; }
p { margin: 1mm 0; }
.bureau { text-align: center; font-size: 12pt; margin: 0 0 1mm; }
.basis { text-align: center; font-size: 8.5pt; color: #333; margin: 0 0 4mm; }
.running { string-set: running content(); }
table { width: 100%; border-collapse: collapse; margin: 1mm 0 2mm; table-layout: fixed; }
th, td { border: 0.5pt solid #000; padding: 1mm 1.5mm; vertical-align: top; text-align: left;
         overflow-wrap: anywhere; }
th { font-weight: bold; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
table.facts th { width: 24mm; white-space: nowrap; }
th.time { width: 36mm; }
th.seq { width: 22mm; }
th.short { width: 22mm; }
.hash, .code { font-family: MONO; font-size: 8pt; word-break: break-all; overflow-wrap: anywhere; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; text-align: justify; margin: 0 0 2mm; }
.empty { color: #444; }
.withdrawn { font-weight: bold; border: 1.2pt solid #000; padding: 0 1.5mm; }
.withdrawn-note { font-weight: bold; border: 1.2pt solid #000; padding: 1mm 2mm; margin: 1mm 0 2mm; }
.point { font-size: 9pt; color: #333; margin: 0 0 1mm; }
.signatures { break-inside: avoid; margin-top: 6mm; }
.sign { margin: 4mm 0 0; line-height: 2.2; break-inside: avoid; }
.line { display: inline-block; min-width: 38mm; border-bottom: 0.5pt solid #000; }
.blank { display: inline-block; min-width: 24mm; border-bottom: 0.5pt solid #000; }
.date { display: inline-block; min-width: 12mm; border-bottom: 0.5pt solid #000; }
.num { text-align: right; white-space: nowrap; }
table.files { table-layout: fixed; font-size: 9pt; }
table.files th.n { width: 8mm; }
table.files th.name { width: 42mm; }
table.files .hash { font-size: 8pt; }
table.files .label { display: inline-block; width: 10mm; font-size: 6.5pt; }
"""
