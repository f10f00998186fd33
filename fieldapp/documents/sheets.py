"""Generated paper (arts. 3, 8, 17, 25): the 现场照片 sheet of an activity, the 送达回证 of a service,
and the case file's 卷内目录 and 备考表 — each made from the exact revisions it shows and recorded as
a ``PaperDocument``, so that the QR code on each page can be checked against the records later
(``/verify/<code>``: current, or superseded by a later revision)."""
from __future__ import annotations

import hashlib
import json
import uuid

from flask import current_app, url_for
from sqlalchemy import and_, select

from .. import db
from ..media import storage as media_store
from ..media.service import media_storage
from ..models import Case, Media, PaperDocument, Revision, SyncedRecord, Unit, User, utcnow
from . import codes

PHOTO_SHEET, SERVICE_RECEIPT, FILE_INDEX, FILE_NOTES = "photo_sheet", "service_receipt", "file_index", "file_notes"
ONSITE_RECORD = "onsite_record"  # 现场笔录 or 询问笔录, as the record's payload says
# kind → what it is made from: a record of this type, or (None) a whole case
RECORD_KINDS = {PHOTO_SHEET: "activity", SERVICE_RECEIPT: "service", ONSITE_RECORD: "onsite_record"}
CASE_KINDS = (FILE_INDEX, FILE_NOTES)
TITLES = {PHOTO_SHEET: "现场照片", SERVICE_RECEIPT: "送达回证", FILE_INDEX: "卷内目录", FILE_NOTES: "备考表",
          ONSITE_RECORD: "笔录"}
KIND_NAMES = {"penalty": "行政处罚", "licensing": "行政许可", "coercion": "行政强制", "inspection": "行政检查"}


def _heads(records: list[SyncedRecord]) -> dict[uuid.UUID, Revision]:
    if not records:
        return {}
    rows = db.session().execute(select(Revision).join(SyncedRecord, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.id.in_([r.id for r in records]))).scalars()
    return {rev.record_id: rev for rev in rows}


def _case_header(case: Case) -> list:
    """The case's header as one source: a changed case number or party supersedes the paper too."""
    header = {"number": case.case_number, "party": case.party_name, "status": case.status,
              "archived_at": case.archived_at.isoformat() if case.archived_at else None}
    return ["case:" + str(case.id), 0, hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()]


def _records_of(kind: str, record: SyncedRecord | None, case: Case | None) -> list[SyncedRecord]:
    s = db.session()
    if kind == PHOTO_SHEET:
        return [record, *s.execute(select(SyncedRecord).where(SyncedRecord.parent_id == record.id)
                                   .order_by(SyncedRecord.created_at)).scalars()]
    if kind in (SERVICE_RECEIPT, ONSITE_RECORD):
        return [record]
    return list(s.execute(select(SyncedRecord).where(SyncedRecord.case_id == case.id)
                          .order_by(SyncedRecord.created_at)).scalars())


def current_sources(kind: str, record: SyncedRecord | None = None, case: Case | None = None) -> list[list]:
    """What a document of ``kind`` is made of now: each record and its head revision, by content
    hash (and the case header for the case's forms). A later revision of any changes the digest."""
    records = _records_of(kind, record, case)
    heads = _heads(records)
    made = [[str(r.id), heads[r.id].revision, heads[r.id].content_hash] for r in records if r.id in heads]
    return ([_case_header(case)] if kind in CASE_KINDS else []) + made


def subject_of(document: PaperDocument) -> tuple[SyncedRecord | None, Case | None]:
    s = db.session()
    record = s.get(SyncedRecord, document.record_id) if document.record_id else None
    case = s.get(Case, document.case_id) if document.case_id else None
    if case is None and record is not None:
        case_id = record.case_id or (record.id if record.record_type == "case" else None)
        case = s.get(Case, case_id) if case_id else None
    return record, case


def make(kind: str, by: User, *, record: SyncedRecord | None = None, case: Case | None = None) -> PaperDocument:
    """The document of ``kind`` made of what the record or case holds now: the one already made of
    exactly these sources (a second tap on 打印 gives the same paper and the same code, and its
    scans stay together), else a new one."""
    made = current_sources(kind, record, case)
    query = select(PaperDocument).where(PaperDocument.kind == kind, PaperDocument.digest == codes.digest(made))
    query = query.where(PaperDocument.record_id == record.id if record else PaperDocument.record_id.is_(None))
    query = query.where(PaperDocument.case_id == case.id if case else PaperDocument.case_id.is_(None))
    same = db.session().execute(query.order_by(PaperDocument.made_at).limit(1)).scalar_one_or_none()
    if same is not None:
        return same
    document = PaperDocument(kind=kind, record_id=record.id if record else None, case_id=case.id if case else None,
                             unit_id=record.unit_id if record else case.unit_id, sources=made,
                             digest=codes.digest(made), made_by=by.id)
    db.session().add(document)
    db.session().flush()
    return document


def _verify(document: PaperDocument) -> tuple[str, str]:
    code = str(codes.make(document.id, document.digest))
    # The origin officers reach the server by (FIELDAPP_ORIGINS), not whatever host a request named.
    return code, current_app.config["FIELDAPP_SETTINGS"].base_url + url_for("paper.verify_code", code=code)


def _revisions(document: PaperDocument) -> list[Revision]:
    """The exact revisions the document was made from, in its order."""
    s = db.session()
    out = []
    for record_id, number, _hash in document.sources:
        if str(record_id).startswith("case:"):
            continue
        out.append(s.execute(select(Revision).where(Revision.record_id == uuid.UUID(record_id),
                                                    Revision.revision == number)).scalar_one())
    return out


def render(document: PaperDocument) -> tuple[bytes, str]:
    """The document as it was made, and a file name."""
    record, case = subject_of(document)
    code, url = _verify(document)
    data = {PHOTO_SHEET: _photo_sheet, SERVICE_RECEIPT: _service_receipt, FILE_INDEX: _file_index,
            FILE_NOTES: _file_notes, ONSITE_RECORD: _onsite_record}[document.kind](document, record, case, code, url)
    label = (case.case_number or case.party_name) if case else str(document.record_id)[:8]
    return data, f"{title_of(document)}-{label}.pdf"


def title_of(document: PaperDocument) -> str:
    """The document's name: a 笔录 is a 现场笔录 or a 询问笔录 as the revision it shows says."""
    if document.kind == ONSITE_RECORD:
        from .onsite_record import title
        return title(_revisions(document)[0].payload or {})
    return TITLES[document.kind]


# --------------------------------------------------------------------------- 现场照片


def _photo_sheet(document, record, case, code, url) -> bytes:
    from ..review.labels import step_label
    from . import paper
    s = db.session()
    store = media_storage()
    photos = []
    for rev in _revisions(document):
        author = s.get(User, rev.author_id)
        payload = rev.payload or {}
        for entry in rev.media or []:
            media = s.get(Media, (entry.get("alg"), entry.get("hash")))
            if media is None or (media.kind or "") != "image":
                continue
            image = _preview(store, media)
            if image is None:
                continue
            place = payload.get("place") or {}
            where = (place.get("text") or "") if isinstance(place, dict) else str(place)
            if media.lat_e6 is not None:
                where = f"{where} {media.lat_e6 / 1e6:.6f}, {media.lon_e6 / 1e6:.6f}".strip()
            what = " ".join(x for x in (step_label(payload.get("step_type")) if payload.get("step_type") else "",
                                        str(payload.get("notes") or "")) if x)
            photos.append(paper.SheetPhoto(image=image, number=len(photos) + 1,
                                           taken_at=media.taken_at or rev.device_time, place=where,
                                           officer=f"{author.name}（执法证号 {author.cert_no}）", description=what))
    return paper.photo_sheet_pdf(paper.PhotoSheetDoc(
        case_number=case.case_number if case else None, party=case.party_name if case else "",
        case_id=str(case.id) if case else "", photos=photos, code=code, verify_url=url))


def _preview(store, media: Media) -> bytes | None:
    for name in ("preview", "phone-preview"):
        if name == "preview" and "preview" not in (media.previews or []):
            continue
        if name == "phone-preview" and media.phone_preview_at is None:
            continue
        try:
            return store.get_derivative(media.alg, media.hash, name)
        except media_store.MediaNotFound:
            continue
    return None


# --------------------------------------------------------------------------- 送达回证


def _signature(store, digest, rev: Revision) -> bytes | None:
    """The signature image ``digest`` names, if it is one of the revision's own files, an image, and
    of a signature's size: a payload naming someone else's signature, or a photo or a video of the
    record, must not print it (nor load a video into memory)."""
    from ..rules.onsite_records import SIGNATURE_MAX_BYTES

    if not isinstance(digest, str) or not any(
            isinstance(m, dict) and m.get("alg") == "sha-256" and m.get("hash") == digest for m in rev.media or []):
        return None
    media = db.session().get(Media, ("sha-256", digest))
    if media is None or (media.kind or "") != "image" or (media.size or 0) > SIGNATURE_MAX_BYTES:
        return None
    if media.original_at is not None:
        with store.open("sha-256", digest) as fh:
            return fh.read(SIGNATURE_MAX_BYTES + 1)[:SIGNATURE_MAX_BYTES]
    return _preview(store, media)


def _service_receipt(document, record, case, code, url) -> bytes:
    from . import receipt
    (rev,) = _revisions(document)
    p = rev.payload or {}
    store = media_storage()
    recipient = p.get("recipient") or {}
    refusal = p.get("refusal") or {}
    refused_text = "；".join(x for x in (refusal.get("words"), refusal.get("acts")) if x) or None
    witnesses = [receipt.Signer(name=w.get("name") or "", role=w.get("org") or w.get("role") or "",
                                signed=w.get("confirmation") == "signed",
                                signature_png=_signature(store, w.get("signature"), rev),
                                refused=w.get("confirmation") == "refused",
                                note=w.get("refused_reason") or w.get("confirmed_how") or "")
                 for w in p.get("witnesses") or []]
    officers = [receipt.Signer(name=o.get("name") or "", role=f"执法证号 {o.get('cert_no') or ''}",
                               signed=bool(o.get("signature")), signature_png=_signature(store, o.get("signature"), rev))
                for o in p.get("officers") or [] if isinstance(o, dict)]
    documents = "；".join(f"{d.get('name')}{'（' + d['number'] + '）' if d.get('number') else ''}"
                         for d in p.get("documents") or [] if isinstance(d, dict))
    photos = [m for m in p.get("media") or []]
    # On-site records are signed on site: a receipt whose officers did not all sign on the phone — or
    # whose signature images have not arrived — prints as a copy.
    unsigned = not officers or any(o.signature_png is None for o in officers)
    return receipt.service_receipt_pdf(receipt.ServiceReceiptDoc(
        case_number=case.case_number if case else None, party=case.party_name if case else "",
        document_name=documents, served_at=p.get("at") or rev.device_time, place=str(p.get("place") or ""),
        method="留置送达" if refused_text else "直接送达",
        recipient=receipt.Signer(name=recipient.get("name") or "", role=recipient.get("relation") or "",
                                 refused=bool(refused_text)),
        refusal=refused_text, witnesses=witnesses, officers=officers,
        photos_note=f"已拍摄照片或视频 {len(photos)} 个，留置文书于受送达人住所" if photos else "",
        verify_url=url, code=code, copy=unsigned))


# --------------------------------------------------------------------------- 现场笔录、询问笔录


def _onsite_record(document, record, case, code, url) -> bytes:
    from .onsite_record import OnsiteRecordDoc, onsite_record_pdf
    (rev,) = _revisions(document)
    return onsite_record_pdf(OnsiteRecordDoc(
        case_number=case.case_number if case else None, party=case.party_name if case else "",
        payload=rev.payload or {}, verify_url=url, code=code, signatures=onsite_signatures(rev),
        earlier=tuple(earlier_payloads(rev))))


def onsite_signatures(rev: Revision) -> dict[str, bytes]:
    """The signature images an on-site record's revision carries and the server holds, by hash."""
    from ..rules.onsite_records import normalised
    signing = normalised(rev.payload or {})[0]["signing"]
    wanted = [signing["party"].get("signature"), (signing["witness"] or {}).get("signature"),
              *[o.get("signature") for o in signing["officers"]]]
    store = media_storage()
    return {d: png for d in wanted if (png := _signature(store, d, rev)) is not None}


def earlier_payloads(rev: Revision) -> list[dict]:
    return [r.payload or {} for r in db.session().execute(
        select(Revision).where(Revision.record_id == rev.record_id, Revision.revision < rev.revision)
        .order_by(Revision.revision)).scalars()]


# --------------------------------------------------------------------------- 卷内目录、备考表


def _file_index(document, record, case, code, url) -> bytes:
    from ..review.labels import record_type_label, step_label
    from . import archive_forms
    s = db.session()
    unit = s.get(Unit, case.unit_id)
    entries = []
    for rev in _revisions(document):
        row = s.get(SyncedRecord, rev.record_id)
        p = rev.payload or {}
        names = [d.get("name") if isinstance(d, dict) else str(d) for d in p.get("documents") or []]
        numbers = [d.get("number") for d in p.get("documents") or [] if isinstance(d, dict) and d.get("number")]
        title = step_label(p.get("step_type")) if p.get("step_type") else str(record_type_label(row.record_type))
        if names:
            title = f"{title}：{'、'.join(n for n in names if n)}"
        author = s.get(User, rev.author_id)
        entries.append(archive_forms.IndexEntry(
            number=len(entries) + 1, doc_number="；".join(numbers), responsible=f"{unit.name} {author.name}",
            title=title, date=(p.get("at") or p.get("arrived_at") or rev.device_time)[:10], pages="",
            note="已撤回" if row.withdrawn else ""))
    return archive_forms.file_index_pdf(archive_forms.FileIndexDoc(
        case_number=case.case_number, party=case.party_name, case_kind=KIND_NAMES.get(case.kind, case.kind),
        entries=entries, verify_url=url, code=code))


def _file_notes(document, record, case, code, url) -> bytes:
    from . import archive_forms
    s = db.session()
    revisions = _revisions(document)
    counts = {"文书": 0, "照片": 0, "音像资料": 0, "电子数据": 0}
    for rev in revisions:
        counts["文书"] += sum(1 for d in (rev.payload or {}).get("documents") or [] if d)
        for entry in rev.media or []:
            media = s.get(Media, (entry.get("alg"), entry.get("hash")))
            kind = media.kind if media else None
            counts["照片" if kind == "image" else "音像资料" if kind in ("video", "audio") else "电子数据"] += 1
    maker = s.get(User, document.made_by)
    withdrawn = sum(1 for rev in revisions if s.get(SyncedRecord, rev.record_id).withdrawn)
    notes = (f"本卷由执法记录系统按记录生成，共 {len(revisions)} 条记录"
             + (f"，其中 {withdrawn} 条已撤回（保留在卷，未删除）" if withdrawn else "") + "。")
    return archive_forms.file_notes_pdf(archive_forms.FileNotesDoc(
        case_number=case.case_number, party=case.party_name, counts=counts, notes=notes,
        filed_by=maker.name, checked_by="", filed_at=case.archived_at or document.made_at or utcnow(),
        verify_url=url, code=code))
