"""Paper that proves itself: ``/verify/<code>`` for the QR code on every page of a generated
document, and the documents themselves."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from flask import Blueprint, Response, abort, redirect, render_template, url_for
from flask_login import current_user

from .. import db
from ..access import allow, require_unit
from ..models import PaperDocument, SyncedRecord
from ..records import secrecy
from ..records import service as audit
from ..review.roles import REVIEWERS
from . import sheets

bp = Blueprint("paper", __name__)


def _record_or_404(record_id: uuid.UUID) -> SyncedRecord:
    record = db.session().get(SyncedRecord, record_id)
    if record is None:
        abort(404)
    require_unit(current_user, record.unit_id)
    secrecy.require_record(current_user, record)
    return record


@bp.post("/paper/activities/<uuid:activity_id>/photo-sheet")
@allow(*REVIEWERS)
def photo_sheet_make(activity_id: uuid.UUID):
    """Record what the sheet is made of (each revision, by content hash), then show it."""
    activity = _record_or_404(activity_id)
    if activity.record_type != "activity":
        abort(404)
    with db.transaction():
        document = sheets.make_photo_sheet(activity, current_user)
    return redirect(url_for(".document_pdf", document_id=document.id), 303)


@bp.get("/paper/<uuid:document_id>.pdf")
@allow(*REVIEWERS)
def document_pdf(document_id: uuid.UUID):
    """The document as it was made, for printing on A4 (from the desk, or a phone's share sheet)."""
    document = db.session().get(PaperDocument, document_id)
    if document is None:
        abort(404)
    record = _record_or_404(document.record_id)
    case = secrecy.case_of(record)
    data = sheets.photo_sheet_pdf(document, case)
    audit.accessed("print", f"paper:{document.id}", kind=document.kind)
    name = f"现场照片-{(case.case_number or case.party_name) if case else record.id}.pdf"
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}", "Cache-Control": "private, no-store"})


@bp.get("/verify/<code>")
@allow(public=True)
def verify_code(code: str):
    """Does this paper match a stored record? Anyone may ask; the public learns only whether it
    matches revision N of a record of the bureau and whether that is current — staff who may see
    the record also get what it is and a link to it."""
    from .paper_verify import answer
    found = answer(code)
    return render_template("documents/verify.html", found=found, code=code[:120]), (200 if found.matches else 404)
