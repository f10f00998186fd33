"""Paper that proves itself: the generated documents (现场照片, 送达回证, 卷内目录, 备考表), each
recorded with what it was made from, and ``/verify/<code>`` for the QR code on every page."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from flask import Blueprint, Response, abort, redirect, render_template, url_for
from flask_login import current_user

from .. import db
from ..access import allow, require_unit
from ..models import Case, PaperDocument, Role, SyncedRecord
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


def _case_or_404(case_id: uuid.UUID) -> Case:
    case = db.session().get(Case, case_id)
    if case is None:
        abort(404)
    require_unit(current_user, case.unit_id)
    secrecy.require_case(current_user, case)
    return case


@bp.post("/paper/records/<uuid:record_id>/<any(photo_sheet, service_receipt):kind>")
@allow(*REVIEWERS)
def record_document(record_id: uuid.UUID, kind: str):
    """Record what the document is made of (each revision, by content hash), then show it."""
    record = _record_or_404(record_id)
    if record.record_type != sheets.RECORD_KINDS[kind]:
        abort(404)
    with db.transaction():
        document = sheets.make(kind, current_user, record=record)
    return redirect(url_for(".document_pdf", document_id=document.id), 303)


@bp.post("/paper/cases/<uuid:case_id>/<any(file_index, file_notes):kind>")
@allow(Role.LEAD, Role.RECORDS_ADMIN)
def case_document(case_id: uuid.UUID, kind: str):
    """The case file's 卷内目录 or 备考表 (art. 25), made by the unit that archives it."""
    case = _case_or_404(case_id)
    if case.unit_id != current_user.unit_id:
        abort(404)
    with db.transaction():
        document = sheets.make(kind, current_user, case=case)
    return redirect(url_for(".document_pdf", document_id=document.id), 303)


@bp.get("/paper/<uuid:document_id>.pdf")
@allow(*REVIEWERS)
def document_pdf(document_id: uuid.UUID):
    """The document as it was made, for printing on A4 (from the desk, or a phone's share sheet)."""
    document = db.session().get(PaperDocument, document_id)
    if document is None:
        abort(404)
    if document.record_id is not None:
        _record_or_404(document.record_id)
    if document.case_id is not None:
        _case_or_404(document.case_id)
    data, name = sheets.render(document)
    audit.accessed("print", f"paper:{document.id}", kind=document.kind)
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
