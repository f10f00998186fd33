"""现场笔录 and 询问笔录 (national forms 9 and 14), printed to A4 from the record as it was signed on
the phone, with a verification QR code on every page.

The form reproduces what the party read and signed: the header (time from and to, place, officers
with their 执法证号, the recorder, whom it is about), the notice (credentials shown, the right to ask
for recusal and the answer), the record itself (现场情况 and the party's opinion; or the questions
and answers), then the party's confirmation in the form's words with their signature — or 拒绝签名
with the officers' note, or 当事人不到场 — the witness, and each officer's signature. The party's
signature is also printed at the foot of every page, as a 笔录 is signed page by page.

Whether the print is the signed 笔录 is :func:`fieldapp.rules.onsite_records.assess`'s answer; a
record that misses a rule prints as a copy (副本) on every page, with each missing rule and its
article listed at the end, so paper without the signatures never passes for the original.

Nothing here touches a database, the storage or a request: the payload (its format is described in
:mod:`fieldapp.rules.onsite_records`) and the signature images arrive as arguments.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fieldapp.documents.pdf import BUREAU
from fieldapp.rules import onsite_records as rules
from .page_frame import Images, Signer, form_time, render_pdf, sign_line

COPY_MARK = "副本（非经签名的笔录原件）"
RECUSAL = {"not_requested": "不申请回避", "requested": "申请回避"}
SEX = {"male": "男", "female": "女"}


@dataclass(frozen=True)
class OnsiteRecordDoc:
    """One 笔录: ``payload`` as the phone signed it; ``signatures`` the PNG of each signature image
    held for this revision, by its SHA-256 (a signature whose image is not here makes the print a
    copy); ``earlier`` the record's earlier revisions' payloads (a signature carried over onto other
    content is caught); ``verify_url`` is what the QR code on every page holds, ``code`` the
    verification code printed beside it."""
    case_number: str | None
    party: str
    payload: Mapping
    verify_url: str
    code: str
    signatures: Mapping[str, bytes] = field(default_factory=dict)
    earlier: tuple = ()
    bureau: str = BUREAU

    @property
    def clean(self) -> dict:
        return rules.normalised(self.payload)[0]

    @property
    def form(self) -> rules.Form:
        return rules.form(self.clean["form"]) or rules.form("scene")

    @property
    def assessment(self) -> rules.Assessment:
        payload = self.payload if isinstance(self.payload, dict) else {}
        return rules.assess(dict(payload), present=set(self.signatures), earlier=list(self.earlier))

    @property
    def copy(self) -> bool:
        return not self.assessment.signed_original


def title(payload: Mapping) -> str:
    found = rules.form(rules.normalised(payload)[0]["form"])
    return found.title if found else "笔录"


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def onsite_record_pdf(doc: OnsiteRecordDoc) -> bytes:
    """The 笔录 as PDF bytes."""
    p, form, assessment = doc.clean, doc.form, doc.assessment
    signing = p["signing"]
    party, witness = signing["party"], signing["witness"] or {}
    images = Images()
    day = form_time(p["ended_at"] or p["started_at"] or "", minutes=False)

    def picture(digest) -> bytes | None:
        return doc.signatures.get(digest) if isinstance(digest, str) else None

    subject = p["subject"]
    outcome = assessment.outcome
    party_line = sign_line(Signer(
        name=_text(subject.get("name")), signed=outcome == "signed" and bool(party.get("signature")),
        signature_png=picture(party.get("signature")) if outcome == "signed" else None,
        refused=outcome == "refused",
        note=_text(party.get("refused_reason")) if outcome == "refused" else
        ("当事人不到场，由见证人签名" if outcome == "absent" else "")), "", "", images, day)
    witness_line = None
    if witness.get("name"):
        witness_line = sign_line(Signer(name=_text(witness.get("name")), role=_text(witness.get("org")),
                                        signed=bool(witness.get("signature")),
                                        signature_png=picture(witness.get("signature"))),
                                 "单位及身份：", _text(witness.get("org")), images, day)
    signed_officers = {o.get("cert_no"): o for o in signing["officers"] if o.get("cert_no")}
    officers = []
    for o in p["officers"]:
        mark = signed_officers.get(o.get("cert_no")) or {}
        officers.append(sign_line(Signer(name=_text(o.get("name")), role=_text(o.get("cert_no")),
                                         signed=bool(mark.get("signature")),
                                         signature_png=picture(mark.get("signature"))),
                                  "执法证号：", _text(o.get("cert_no")), images, day))
    # the party's signature again at the foot of every page, as a 笔录 is signed page by page
    qa = [(_text(x.get("q")), _text(x.get("a"))) for x in p["qa"]]
    return render_pdf(
        "documents/onsite_record.html", STYLESHEET, verify_url=doc.verify_url, images=images,
        doc=doc, p=p, form=form, title=form.title if rules.form(p["form"]) else "笔录", subject=subject,
        party_line=party_line, witness_line=witness_line, officers=officers, foot_signature=party_line.url, qa=qa,
        started=form_time(p["started_at"] or "", minutes=True), ended=form_time(p["ended_at"] or "", minutes=True),
        credentials_shown=p["notice"]["credentials_shown"], recusal=RECUSAL.get(p["notice"]["recusal"], "未记录"),
        sex=SEX.get(subject.get("sex"), _text(subject.get("sex"))),
        confirmation=_text(party.get("confirmation")) or form.confirmation_zh, outcome=outcome,
        problems=assessment.problems, copy_mark=COPY_MARK, copy_note="；".join(r.zh for r in assessment.problems))


STYLESHEET = """
@page { margin-bottom: 30mm; }
.foot .party-sign { text-align: left; font-size: 9.5pt; }
.foot .party-sign img { display: inline-block; width: 30mm; height: 10mm; object-fit: contain; vertical-align: middle; }
.foot .party-sign .sigline { width: 30mm; height: 7mm; }
table.form { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 10.5pt; margin-bottom: 3mm; }
table.form th, table.form td { border: 0.8pt solid #000; padding: 1.5mm 2mm; text-align: left;
                               vertical-align: top; overflow-wrap: anywhere; }
table.form th { width: 26mm; font-weight: bold; }
section { margin: 0 0 3mm; }
section h2 { font-size: 11pt; margin: 0 0 1mm; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; text-align: justify; }
.qa p { margin: 0 0 1mm; white-space: pre-wrap; overflow-wrap: anywhere; }
.qa .q::before { content: "问："; font-weight: bold; }
.qa .a::before { content: "答："; font-weight: bold; }
.confirm { border: 0.8pt solid #000; padding: 2mm 3mm; margin-bottom: 3mm; }
.confirm .words { margin-bottom: 1mm; }
.problems { border: 1.5pt solid #000; padding: 2mm 3mm; break-inside: avoid; font-size: 9.5pt; }
.problems h2 { font-size: 10.5pt; margin: 0 0 1mm; }
.problems .article { font-size: 8.5pt; color: #222; }
"""
