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

The page frame (head, QR code, foot, copy mark, signer lines) is :mod:`fieldapp.documents.page_frame`. Nothing
here touches a database, the storage or a request: the facts arrive in the dataclasses below. The
signature images are given to WeasyPrint from memory under ``photo:<n>`` addresses; every other URL is
refused, so no text on the form can make the renderer open a file or reach the network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from fieldapp.documents.pdf import BUREAU
from .page_frame import Images, Signer, form_time, render_pdf, sign_line

__all__ = ["ServiceReceiptDoc", "Signer", "service_receipt_pdf"]

COPY_MARK = "副本（未经签名）"
COPY_NOTE = "本件不是经签名的送达回证原件"
CERTIFICATE = "执法证号"
SELF_RELATIONS = frozenset({"本人", "受送达人本人", "法定代表人", "主要负责人", "负责人"})
"""Relations under which the recipient is the 受送达人 (or speaks for it), and so signs as 收件人."""
MIN_OFFICERS = 2
"""送达人 lines printed at the least: the law has two officers act; a missing one leaves a line to sign."""


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


def service_receipt_pdf(doc: ServiceReceiptDoc) -> bytes:
    """送达回证 as PDF bytes."""
    images = Images()
    served_date = form_time(doc.served_at, minutes=False)

    def line(signer: Signer, label: str, role: str):
        return sign_line(signer, label, role, images, served_date)

    relation = _relation(doc.recipient.role)
    proxy = bool(relation) and relation not in SELF_RELATIONS
    recipient = line(doc.recipient, "代收理由：" if proxy else "与受送达人的关系：", relation)
    witnesses = [line(w, "单位及身份：", w.role.strip()) for w in doc.witnesses]
    officers = [line(o, f"{CERTIFICATE}：", _certificate(o.role)) for o in doc.officers]
    officers += [line(Signer(name=""), "", "")] * max(0, MIN_OFFICERS - len(officers))
    return render_pdf("documents/service_receipt.html", STYLESHEET, verify_url=doc.verify_url, images=images,
                      doc=doc, title="送达回证", recipient=recipient, proxy=proxy, witnesses=witnesses,
                      officers=officers, served_time=form_time(doc.served_at, minutes=True),
                      copy_mark=COPY_MARK, copy_note=COPY_NOTE)


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


# --- style (the form's own; the frame's is page_frame.FRAME_STYLESHEET) ---------------------------

STYLESHEET = """
@page { margin-bottom: 26mm; }
.number { text-align: right; font-size: 10.5pt; margin: 0 0 1.5mm; }

table.form { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 10.5pt; }
table.form > tbody > tr > th, table.form > tbody > tr > td { border: 0.8pt solid #000; padding: 2mm 2.5mm;
    text-align: left; vertical-align: middle; overflow-wrap: anywhere; }
table.form > tbody > tr > th { width: 36mm; font-weight: bold; text-align: center; }
table.form > tbody > tr { break-inside: avoid; }
table.form > tbody > tr.long { break-inside: auto; }
table.form .text { white-space: pre-wrap; }
table.form .when { margin-top: 1mm; }
"""
