"""Generated paper (arts. 3, 8, 17): the 现场照片 sheet of an on-site activity, made from the exact
revisions it shows, recorded as a ``PaperDocument`` so that the QR code on each page can be checked
against the records later (``/verify/<code>``)."""
from __future__ import annotations

import uuid

from flask import current_app, url_for
from sqlalchemy import and_, select

from .. import db
from ..media import storage as media_store
from ..media.service import media_storage
from ..models import Media, PaperDocument, Revision, SyncedRecord, User
from . import codes

PHOTO_SHEET = "photo_sheet"


def _heads(records: list[SyncedRecord]) -> dict[uuid.UUID, Revision]:
    if not records:
        return {}
    rows = db.session().execute(select(Revision).join(SyncedRecord, and_(
        Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
        .where(SyncedRecord.id.in_([r.id for r in records]))).scalars()
    return {rev.record_id: rev for rev in rows}


def sources(kind: str, record: SyncedRecord) -> list[list]:
    """What a document of ``kind`` about ``record`` is made of now: each record and its head
    revision, by content hash. A later revision of any of them changes the digest."""
    if kind != PHOTO_SHEET:
        raise ValueError(f"unknown document kind {kind!r}")
    children = list(db.session().execute(select(SyncedRecord).where(SyncedRecord.parent_id == record.id)
                                         .order_by(SyncedRecord.created_at)).scalars())
    heads = _heads([record, *children])
    return [[str(r.id), heads[r.id].revision, heads[r.id].content_hash] for r in [record, *children] if r.id in heads]


def make_photo_sheet(activity: SyncedRecord, by: User) -> PaperDocument:
    made = sources(PHOTO_SHEET, activity)
    document = PaperDocument(kind=PHOTO_SHEET, record_id=activity.id, unit_id=activity.unit_id, sources=made,
                             digest=codes.digest(made), made_by=by.id)
    db.session().add(document)
    db.session().flush()
    return document


def photo_sheet_pdf(document: PaperDocument, case) -> bytes:
    """The sheet as it was made: the photos of exactly the revisions recorded, two a page."""
    from ..review.labels import step_label
    from . import paper
    s = db.session()
    store = media_storage()
    photos = []
    for record_id, number, _hash in document.sources:
        rev = s.execute(select(Revision).where(Revision.record_id == uuid.UUID(record_id),
                                               Revision.revision == number)).scalar_one()
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
            where = place.get("text") or ""
            if media.lat_e6 is not None:
                where = f"{where} {media.lat_e6 / 1e6:.6f}, {media.lon_e6 / 1e6:.6f}".strip()
            what = " ".join(x for x in (step_label(payload.get("step_type")) if payload.get("step_type") else "",
                                        str(payload.get("notes") or "")) if x)
            photos.append(paper.SheetPhoto(image=image, number=len(photos) + 1,
                                           taken_at=media.taken_at or rev.device_time, place=where,
                                           officer=f"{author.name}（执法证号 {author.cert_no}）", description=what))
    code = str(codes.make(document.id, document.digest))
    return paper.photo_sheet_pdf(paper.PhotoSheetDoc(
        case_number=case.case_number if case else None, party=case.party_name if case else "",
        case_id=str(case.id) if case else "", photos=photos, code=code,
        # The origin officers reach the server by (FIELDAPP_ORIGINS), not whatever host a request named.
        verify_url=current_app.config["FIELDAPP_SETTINGS"].base_url + url_for("paper.verify_code", code=code)))


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
