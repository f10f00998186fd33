"""卷内文件目录 and 卷内备考表: the archiving forms of a case file (art. 25), printed to A4 with a
verification QR code on every page.

Art. 25 has the text and audio-visual records of an enforcement act filed and archived (立卷、归档)
within 30 days of its end. A case file (案卷) opens with its 卷内文件目录 (national form 55) and closes
with its 卷内备考表 (national form 56):

- 卷内文件目录 lists the file's documents in order, in the national form's columns 序号、文号、责任者、
  题名、日期、页号、备注. The column heads are the table's header group, so they are printed again at
  the top of every page the list runs onto, and no row is split across two pages. A withdrawn record
  is listed with its note (已撤回), never left out. A document without a 文号 leaves that cell blank,
  as the form is filled by hand; so does an unknown 页号, to be written in once the pages are numbered.
- 卷内备考表 states 本卷情况说明 (how many documents, pages, photos, audio-visual items and pieces of
  electronic data the file holds, in the order given, and the filer's notes, printed in full however
  long), then 立卷人, 检查人 and 立卷时间.

As on every generated form (:mod:`fieldapp.documents.page_frame`), every page carries in its top margin the
form's name, the case number and the party, and the QR code of the form's verification address with
the address and the verification code beside it, and "第 N 页 共 M 页" at its foot, so a single page
taken out of the file still says what it belongs to and where to check it.

Nothing here touches a database, the storage or a request: the facts arrive in the dataclasses
below. The forms load no resources (the QR code is inline SVG), and the renderer is given a fetcher
that refuses every URL.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from fieldapp.documents.pdf import BUREAU
from fieldapp.i18n import SHANGHAI, parse_when
from .page_frame import render_pdf

COUNT_UNITS = {"件数": "件", "文书": "件", "文件": "件", "页数": "页", "照片": "张", "音像资料": "件",
               "电子数据": "件", "光盘": "张"}
"""The unit printed after a count whose label is known; any other label's count is printed bare."""


@dataclass(frozen=True)
class IndexEntry:
    """One line of the 卷内文件目录. ``date`` is a date, an aware datetime or an ISO 8601 string (a
    naive datetime means UTC, printed as its Beijing date); other text is printed as given.
    ``pages`` is the 页号 ("1-3"), "" when not yet known; ``note`` the 备注 (已撤回 for a withdrawn
    record)."""
    number: int
    doc_number: str
    responsible: str
    title: str
    date: date | datetime | str
    pages: str
    note: str = ""


@dataclass(frozen=True)
class FileIndexDoc:
    """卷内文件目录 of one case file. ``case_kind`` is the file's kind (行政处罚, 行政许可, 行政强制,
    行政检查); ``verify_url`` is what the QR code on every page holds (and is printed under it);
    ``code`` is the verification code printed beside it."""
    case_number: str | None
    party: str
    case_kind: str
    entries: Sequence[IndexEntry]
    verify_url: str
    code: str
    bureau: str = BUREAU


@dataclass(frozen=True)
class FileNotesDoc:
    """卷内备考表 of one case file. ``counts`` are printed in the order given (e.g. 文书, 照片,
    音像资料, 电子数据), a zero as 0; ``notes`` is the 本卷情况说明 in the filer's words, printed in full
    with its line breaks; ``filed_at`` (立卷时间) is a date, a datetime or an ISO 8601 string."""
    case_number: str | None
    party: str
    counts: Mapping[str, int]
    notes: str
    filed_by: str
    checked_by: str
    filed_at: date | datetime | str
    verify_url: str
    code: str
    bureau: str = BUREAU


def file_index_pdf(doc: FileIndexDoc) -> bytes:
    """卷内文件目录 as PDF bytes."""
    return _render("documents/file_index.html", doc=doc, title="卷内文件目录")


def file_notes_pdf(doc: FileNotesDoc) -> bytes:
    """卷内备考表 as PDF bytes."""
    counts = [(label, count, COUNT_UNITS.get(label, "")) for label, count in doc.counts.items()]
    return _render("documents/file_notes.html", doc=doc, title="卷内备考表", counts=counts)


def _render(template: str, **context) -> bytes:
    return render_pdf(template, STYLESHEET, verify_url=context["doc"].verify_url, day=_day, long_day=_long_day,
                      **context)


def _as_date(value) -> date | None:
    """The calendar day of a date, a datetime (Beijing time; naive means UTC) or an ISO 8601 string;
    None when the value is none of these."""
    if isinstance(value, datetime):
        return parse_when(value).astimezone(SHANGHAI).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                return date.fromisoformat(text)
            except ValueError:
                return None
        when = parse_when(text)
        return when.astimezone(SHANGHAI).date() if when else None
    return None


def _day(value) -> str:
    """The 日期 column: 2026-03-04; text that is no date is printed as given."""
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return day.isoformat()


def _long_day(value) -> str:
    """立卷时间 as forms write a date: 2026年3月4日; text that is no date is printed as given."""
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return f"{day.year}年{day.month}月{day.day}日"


# --- style (the forms' own; the frame's is page_frame.FRAME_STYLESHEET) --------------------------

STYLESHEET = """
@page { margin-bottom: 20mm; }
h1 { margin-bottom: 3mm; }
table.facts { margin-top: 0; }

table.index { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 9pt; line-height: 1.4; }
table.index thead { display: table-header-group; }
table.index tr { break-inside: avoid; }
table.index th, table.index td { border: 0.5pt solid #000; padding: 1mm 1.2mm; vertical-align: middle;
                                 overflow-wrap: anywhere; word-break: break-all; }
table.index th { font-weight: bold; text-align: center; }
table.index td { text-align: left; }
table.index td.n, table.index td.day, table.index td.pages { text-align: center; }
table.index col.n { width: 11mm; }
table.index col.doc-number { width: 32mm; }
table.index col.responsible { width: 24mm; }
table.index col.day { width: 19mm; }
table.index col.pages { width: 17mm; }
table.index col.note { width: 14mm; }
table.index td.note.marked { font-weight: bold; }
table.index td.none { text-align: center; color: #444; }

.notes { border: 0.8pt solid #000; padding: 3mm 4mm; }
.notes h2 { font-size: 12pt; margin: 0 0 2mm; letter-spacing: 0.2em; }
table.counts { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 0 0 3mm; font-size: 10pt; }
table.counts th, table.counts td { border: 0.5pt solid #000; padding: 0.8mm 1.5mm; text-align: left;
                                   vertical-align: top; overflow-wrap: anywhere; }
table.counts th { font-weight: bold; width: 40mm; }
.notes .text { white-space: pre-wrap; overflow-wrap: anywhere; text-align: justify; }
.notes .empty { color: #444; }
.filing { margin-top: 6mm; line-height: 2.4; break-inside: avoid; }
.filing .label { display: inline-block; width: 22mm; }
.filing .line { display: inline-block; min-width: 50mm; border-bottom: 0.5pt solid #000; }
"""
