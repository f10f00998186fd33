"""送达回证: the proof that a case's documents were served, printed to A4 in the layout of the national
form (市场监督管理行政处罚文书格式范本, 2021 revision, form 50), with a verification QR code on every page.

The form is one table, in the national form's order and wording: 送达文书名称、文号; 受送达人;
送达时间; 送达地点; 送达方式; 收件人签名或盖章 (with the date); 代收人及代收理由; 受送达人拒绝接收的事由和日期;
见证人签名; 送达人签名; 备注. (送达时间 is printed as a row of its own, to the minute, since for a
留置送达 no recipient dates the receipt.)

Who signs is given as :class:`Signer` values, and each is printed the same way: the name, what they
are (a witness's organisation and role, an officer's 执法证号, a recipient's relation to the
受送达人), then

- 拒绝签名 and the note (why, in the officer's words) for one who refused; or
- the signature drawn on the phone, when there is one, in a box of fixed size; or
- a line to sign on by hand, with the note (how a witness confirmed without signing, say), and, for
  one who signed but whose signature image is not given, 已签名，本件未附签名图像.

A recipient who is the 受送达人 (their ``role`` empty, or the relation 受送达人本人, 法定代表人 or 主要负责人)
signs in the 收件人 row; anyone else (an adult family member living with them, the staff receiving
documents for a company, an agent) in the 代收人 row, their relation printed as the 代收理由. A role
that is the id of one of the catalogue's ``service_relations`` (as the phone stores it) is printed as
that relation's Chinese label.

Every page carries in its top margin the form's name, the case number and the party, and the QR code
of the receipt's verification address with the address and the verification code beside it; at its
foot "第 N 页 共 M 页". A copy (``copy=True``: the print is not the signed original) is marked on every
page twice: 副本（未经签名） in a bold frame at the foot, and a large light 副本 across the page behind the
form.

As on the photo sheet (:mod:`fieldapp.documents.paper`, whose QR code and fetcher it uses), nothing
here touches a database, the storage or a request: the facts arrive in the dataclasses below. The
signature images are given to WeasyPrint from memory under ``photo:<n>`` addresses; every other URL is
refused, so no text on the form can make the renderer open a file or reach the network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from fieldapp.documents.paper import _fetcher, _mime, qr_svg
from fieldapp.documents.pdf import BUREAU, MONO_FAMILY, _environment, _families, _warn_missing_fonts
from fieldapp.i18n import SHANGHAI, parse_when
from .weasy import weasyprint as _weasy

UNRECORDED = "未记录"
"""Printed where a fact is missing, so a blank is never mistaken for a field someone forgot to fill in."""
UNNUMBERED = "尚未编号"
COPY_MARK = "副本（未经签名）"
COPY_NOTE = "本件不是经签名的送达回证原件"
SIGNED_ELSEWHERE = "已签名，本件未附签名图像"
"""Printed under the line of one who signed (on paper, say) when no signature image is given."""
CERTIFICATE = "执法证号"
SELF_RELATIONS = frozenset({"本人", "受送达人本人", "法定代表人", "主要负责人", "负责人"})
"""Relations under which the recipient is the 受送达人 (or speaks for it), and so signs as 收件人."""
MIN_OFFICERS = 2
"""送达人 lines printed at the least: the law has two officers act; a missing one leaves a line to sign."""


@dataclass(frozen=True)
class Signer:
    """A witness, the recipient or an officer. ``role`` is a witness's organisation and role, an
    officer's 执法证号 (with or without the words 执法证号 before it) or a recipient's relation to the
    受送达人 (its words, or the id of a catalogue ``service_relations`` entry); ``signed`` says they
    signed (on paper or on the phone's screen); ``signature_png`` is the signature drawn on the
    phone, when there is one; ``note`` is why they refused, or how they confirmed without signing."""
    name: str
    role: str = ""
    signed: bool = False
    signature_png: bytes | None = None
    refused: bool = False
    note: str = ""


@dataclass(frozen=True)
class ServiceReceiptDoc:
    """送达回证 of one service. ``document_name`` is the 送达文书名称及文号 (several joined as the
    caller likes); ``served_at`` an aware datetime or an ISO 8601 string (naive means UTC), printed as
    Beijing time, or other text printed as given; ``method`` the 送达方式 (直接送达, 留置送达, …);
    ``refusal`` how and why the recipient refused (拒收事由), None when they did not; ``photos_note``
    what photos or video record the service (printed under 备注); ``verify_url`` is what the QR code
    on every page holds (and is printed under it), ``code`` the verification code printed beside it;
    ``copy`` marks every page 副本（未经签名）."""
    case_number: str | None
    party: str
    document_name: str
    served_at: datetime | str
    place: str
    method: str
    recipient: Signer
    refusal: str | None
    witnesses: Sequence[Signer]
    officers: Sequence[Signer]
    photos_note: str
    verify_url: str
    code: str
    copy: bool = False
    bureau: str = BUREAU


@dataclass(frozen=True)
class _Line:
    """One signer as the template prints it."""
    name: str
    label: str  # what ``role`` is, e.g. 执法证号
    role: str
    url: str | None  # the signature image's address, None for a line to sign on
    refused: bool
    note: str
    dated: bool  # print the service date beside it (signed on the phone, or refused, at the service)


def service_receipt_pdf(doc: ServiceReceiptDoc) -> bytes:
    """送达回证 as PDF bytes."""
    weasyprint = _weasy()  # loads Pango (and puts back what its import changes): only when a document is made

    _warn_missing_fonts()
    images: dict[str, tuple[bytes, str]] = {}

    def line(signer: Signer, label: str, role: str) -> _Line:
        url = None
        if signer.signature_png and not signer.refused:
            url = f"photo:{len(images)}"
            images[url] = (signer.signature_png, _mime(signer.signature_png))
        note = signer.note.strip()
        if signer.signed and not url and not signer.refused:
            note = "；".join(x for x in (SIGNED_ELSEWHERE, note) if x)
        return _Line(name=signer.name.strip(), label=label if role else "", role=role, url=url,
                     refused=signer.refused, note=note, dated=bool(url) or signer.refused)

    relation = _relation(doc.recipient.role)
    proxy = bool(relation) and relation not in SELF_RELATIONS
    recipient = line(doc.recipient, "代收理由：" if proxy else "与受送达人的关系：", relation)
    witnesses = [line(w, "单位及身份：", w.role.strip()) for w in doc.witnesses]
    officers = [line(o, f"{CERTIFICATE}：", _certificate(o.role)) for o in doc.officers]
    officers += [line(Signer(name=""), "", "")] * max(0, MIN_OFFICERS - len(officers))
    html = _environment().get_template("documents/service_receipt.html").render(
        doc=doc, title="送达回证", created=datetime.now(UTC).replace(microsecond=0), qr=qr_svg(doc.verify_url),
        recipient=recipient, proxy=proxy, witnesses=witnesses, officers=officers,
        served_time=_served(doc.served_at, minutes=True), served_date=_served(doc.served_at, minutes=False),
        unrecorded=UNRECORDED, unnumbered=UNNUMBERED, copy_mark=COPY_MARK, copy_note=COPY_NOTE)
    return weasyprint.HTML(string=html, url_fetcher=_fetcher(images)).write_pdf(
        stylesheets=[weasyprint.CSS(string=_stylesheet())])


def _relation(role: str) -> str:
    """A recipient's relation in words: a catalogue relation's id becomes its Chinese label."""
    role = role.strip()
    return _relation_labels().get(role, role)


@cache
def _relation_labels() -> dict[str, str]:
    from fieldapp.rules.catalogue import load_builtin

    return {r.id: r.label_zh for r in load_builtin().service_relations}


def _certificate(role: str) -> str:
    """An officer's certificate number without the words 执法证号 (the template prints them)."""
    role = role.strip()
    return role.removeprefix(CERTIFICATE).lstrip("：: ").strip() if role.startswith(CERTIFICATE) else role


def _served(value: datetime | str, *, minutes: bool) -> str:
    """Beijing time as the form writes it (2026年3月4日 9时05分), or the date alone; text that is no time
    is printed as given, nothing as 未记录."""
    when = parse_when(value)
    if when is None:
        return str(value).strip() or UNRECORDED
    when = when.astimezone(SHANGHAI)
    day = f"{when.year}年{when.month}月{when.day}日"
    return f"{day} {when.hour}时{when.minute:02d}分" if minutes else day


# --- style ----------------------------------------------------------------------------------------

@cache
def _stylesheet() -> str:
    return STYLESHEET.replace("FAMILIES", _families()).replace("MONO", _families(MONO_FAMILY))


STYLESHEET = """
@page {
  size: A4 portrait;
  margin: 36mm 18mm 26mm 22mm;
  @top-left { content: element(head); width: 104mm; vertical-align: bottom; padding-bottom: 3mm; }
  @top-right { content: element(qr); width: 66mm; vertical-align: bottom; padding-bottom: 2mm; }
  @bottom-center { content: element(foot); width: 170mm; vertical-align: top; padding-top: 3mm; }
}
html { font-family: FAMILIES; font-size: 10.5pt; line-height: 1.5; color: #000; }
body { margin: 0; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.5em; margin: 0 0 2mm; }
p { margin: 0; }
.bureau { text-align: center; font-size: 12pt; margin: 0 0 1mm; }
.code { font-family: MONO; font-size: 8pt; overflow-wrap: anywhere; }
.number { text-align: right; font-size: 10.5pt; margin: 0 0 1.5mm; }

.head { position: running(head); font-size: 8.5pt; line-height: 1.45; color: #222; }
.head .form { font-size: 11pt; font-weight: bold; letter-spacing: 0.2em; color: #000; }

.qr { position: running(qr); font-size: 7pt; line-height: 1.3; }
.qr table { width: 100%; border-collapse: collapse; table-layout: fixed; }
.qr td { padding: 0; border: none; vertical-align: bottom; text-align: left; }
.qr td.symbol { width: 24mm; }
.qr svg { display: block; width: 24mm; height: 24mm; }
.qr .label { font-size: 7.5pt; }
.qr .url { font-family: MONO; font-size: 6.5pt; overflow-wrap: anywhere; word-break: break-all; margin-top: 0.8mm; }

.foot { position: running(foot); font-size: 9pt; line-height: 1.5; text-align: center; }
.foot .pages::before { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; }
.copy-mark { display: inline-block; border: 1.5pt solid #000; padding: 0.5mm 3mm; margin-bottom: 1.5mm;
             font-size: 11pt; font-weight: bold; letter-spacing: 0.1em; }
.copy-mark .why { font-size: 9pt; font-weight: normal; letter-spacing: 0; }
.watermark { position: fixed; top: 85mm; left: 0; width: 170mm; z-index: -1; text-align: center;
             font-size: 120pt; font-weight: bold; letter-spacing: 0.3em; line-height: 1; color: #dadada;
             transform: rotate(-30deg); }

table.form { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 10.5pt; }
table.form > tbody > tr > th, table.form > tbody > tr > td { border: 0.8pt solid #000; padding: 2mm 2.5mm;
    text-align: left; vertical-align: middle; overflow-wrap: anywhere; }
table.form > tbody > tr > th { width: 36mm; font-weight: bold; text-align: center; }
table.form > tbody > tr { break-inside: avoid; }
table.form > tbody > tr.long { break-inside: auto; }
table.form .text { white-space: pre-wrap; }
table.form .when { margin-top: 1mm; }
.empty { color: #444; }

table.signer { width: 100%; border-collapse: collapse; table-layout: fixed; break-inside: avoid; }
table.signer + table.signer { border-top: 0.5pt dotted #666; }
table.signer td { border: none; padding: 1.2mm 0; vertical-align: middle; text-align: left; overflow-wrap: anywhere; }
table.signer td.who { width: 52mm; padding-right: 2mm; line-height: 1.35; }
table.signer td.date { width: 34mm; text-align: right; white-space: nowrap; }
table.signer .name { font-weight: bold; }
table.signer .role { font-size: 9pt; }
table.signer .note { font-size: 9pt; line-height: 1.35; white-space: pre-wrap; margin-top: 0.5mm; }
.signature { display: block; width: 40mm; height: 14mm; object-fit: contain; object-position: left center; }
.sigline { display: inline-block; width: 38mm; height: 9mm; border-bottom: 0.5pt solid #000; }
.refused { font-weight: bold; border: 1pt solid #000; padding: 0 1.5mm; }
.blank { display: inline-block; width: 7mm; border-bottom: 0.5pt solid #000; }
.blank.year { width: 10mm; }
"""
