"""Paper that proves itself: the generated documents (现场照片, 送达回证, 卷内目录, 备考表, …), each
recorded with what it was made from, and ``/verify/<code>`` for the QR code on every page. Each
document has a page of its own: what it is, its code and whether it is still current, the PDF to
print or share from a phone, and the scans of the signed paper uploaded back and kept with it."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select
from werkzeug.exceptions import HTTPException

from .. import db
from ..access import allow, require_unit
from ..models import Case, PaperDocument, PaperScan, Role, SyncedRecord, User
from ..media.service import media_storage
from ..records import secrecy
from ..records import service as audit
from ..review import ranges
from ..review.roles import REVIEWERS
from . import codes, scans, sheets
from .paper_verify import answer

# Who sends the scan of the signed paper back: the document's own unit's officers, leads and
# records administrator.
UPLOADERS = (Role.OFFICER, Role.LEAD, Role.RECORDS_ADMIN)

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


def _document_or_404(document_id: uuid.UUID) -> PaperDocument:
    """The document, for whoever may see what it was made from (unit, art. 31 marks)."""
    document = db.session().get(PaperDocument, document_id)
    if document is None:
        abort(404)
    if document.record_id is not None:
        _record_or_404(document.record_id)
    if document.case_id is not None:
        _case_or_404(document.case_id)
    return document


def kind_title(document: PaperDocument) -> str:
    """What the document is, in the reader's language (a 笔录 is named by the form it shows)."""
    fixed = {"photo_sheet": _("On-site photo sheet"), "service_receipt": _("Proof of service"),
             "file_index": _("File index"), "file_notes": _("File notes")}
    if document.kind in fixed:
        return fixed[document.kind]
    title = sheets.title_of(document)
    return {"现场笔录": _("On-site record"), "询问笔录": _("Inquiry record")}.get(title, title)


def _standing(document: PaperDocument):
    """What /verify says of this document now (current, superseded, withdrawn): the same answer."""
    return answer(str(codes.make(document.id, document.digest)))


def _may_upload(document: PaperDocument) -> bool:
    return current_user.unit_id == document.unit_id and current_user.has_role(*UPLOADERS)


def _may_view() -> bool:
    return current_user.has_role(*REVIEWERS)


@bp.post("/paper/records/<uuid:record_id>/<kind>")
@allow(*REVIEWERS)
def record_document(record_id: uuid.UUID, kind: str):
    """Record what the document is made of (each revision, by content hash), then show its page."""
    if kind not in sheets.RECORD_KINDS:
        abort(404)
    record = _record_or_404(record_id)
    if record.record_type != sheets.RECORD_KINDS[kind]:
        abort(404)
    with db.transaction():
        document = sheets.make(kind, current_user, record=record)
    return redirect(url_for(".document_page", document_id=document.id), 303)


@bp.post("/paper/cases/<uuid:case_id>/<any(file_index, file_notes):kind>")
@allow(Role.LEAD, Role.RECORDS_ADMIN)
def case_document(case_id: uuid.UUID, kind: str):
    """The case file's 卷内目录 or 备考表 (art. 25), made by the unit that archives it."""
    case = _case_or_404(case_id)
    if case.unit_id != current_user.unit_id:
        abort(404)
    with db.transaction():
        document = sheets.make(kind, current_user, case=case)
    return redirect(url_for(".document_page", document_id=document.id), 303)


@bp.get("/paper/<uuid:document_id>.pdf")
@allow(*REVIEWERS)
def document_pdf(document_id: uuid.UUID):
    """The document as it was made, for printing on A4 (from the desk, or a phone's share sheet)."""
    document = _document_or_404(document_id)
    data, name = sheets.render(document)
    audit.accessed("print", f"paper:{document.id}", kind=document.kind)
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}", "Cache-Control": "private, no-store"})


def _page(document: PaperDocument, error: scans.ScanRefused | None = None) -> str:
    s = db.session()
    record, case = sheets.subject_of(document)
    uploaders = {u.id: u for u in s.execute(select(User).join(PaperScan, PaperScan.uploaded_by == User.id)
                                            .where(PaperScan.document_id == document.id)).scalars()}
    return render_template("documents/paper.html", document=document, title=kind_title(document),
                           record=record, case=case, maker=s.get(User, document.made_by),
                           code=str(codes.make(document.id, document.digest)), standing=_standing(document),
                           scans=scans.scans_of(document.id), uploaders=uploaders, error=error,
                           may_upload=_may_upload(document), max_mb=scans.megabytes(scans.max_bytes()))


@bp.get("/paper/<uuid:document_id>")
@allow(*REVIEWERS)
def document_page(document_id: uuid.UUID):
    """One generated document: what it is, its code and whether it is still current, the PDF to
    print or share, and the scans of the signed paper kept with it."""
    return _page(_document_or_404(document_id))


def _raise_scan_body_limit():
    """A scan may be larger than the app-wide request limit (2 MiB): raised for the upload, for a
    signed-in user, before anything reads the body (the CSRF check reads the form first); a body
    that says it is larger than a scan may be is refused before a byte of it is read."""
    if request.endpoint != "paper.upload_scan" or not current_user.is_authenticated:
        return
    limit = scans.max_bytes() + scans.FORM_OVERHEAD
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413)


@bp.record_once
def _install_body_limit(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _raise_scan_body_limit)


@bp.errorhandler(413)
def _too_large(_exc):
    if request.endpoint != "paper.upload_scan" or not current_user.is_authenticated:
        return render_template("errors/error.html", status=413), 413
    back = request.view_args.get("document_id") if request.view_args and _may_view() else None
    return render_template("documents/scan_answer.html", error=scans.too_large(), document_id=back), 413


def _answered(document: PaperDocument, error: scans.ScanRefused):
    if _may_view():
        return _page(document, error), error.status
    return render_template("documents/scan_answer.html", error=error, document_id=None), error.status


@bp.post("/paper/<uuid:document_id>/scans")
@allow(*UPLOADERS)
def upload_scan(document_id: uuid.UUID):
    """The scan of the signed paper, sent back to be kept with the document (its own unit only)."""
    document = _document_or_404(document_id)
    if document.unit_id != current_user.unit_id:
        abort(404)
    upload = request.files.get("scan")
    try:
        if upload is None or not upload.filename:
            raise scans.ScanRefused(400, "missing", _("Choose the scan of the signed paper to upload."))
        kept = scans.keep(document, current_user, upload.stream)
    except scans.ScanRefused as exc:
        return _answered(document, exc)
    if kept.created:
        message = _("The scan was kept with the document (SHA-256 %(hash)s).", hash=kept.scan.hash)
    else:
        message = _("These exact bytes were already kept with this document; nothing was added.")
    if _may_view():
        flash(message, "ok")
        return redirect(url_for(".document_page", document_id=document_id), 303)
    return render_template("documents/scan_answer.html", message=message, document_id=None), (201 if kept.created else 200)


@bp.get("/paper/<uuid:document_id>/scans/<uuid:scan_id>")
@allow(*REVIEWERS)
def scan_file(document_id: uuid.UUID, scan_id: uuid.UUID):
    """A kept scan, byte for byte, as a download; each download is in the audit chain."""
    document = _document_or_404(document_id)
    scan = db.session().get(PaperScan, scan_id)
    if scan is None or scan.document_id != document.id:
        abort(404)
    audit.accessed("paper_scan", f"paper-scan:{scan.id}", document=str(document.id), alg=scan.alg, hash=scan.hash)
    ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(scan.content_type, "bin")
    ascii_name = f"scan-{document.kind}-{str(scan.id)[:8]}.{ext}"
    name = f"{sheets.title_of(document)}-扫描件-{str(scan.id)[:8]}.{ext}"
    # Streamed from the store (local folder or S3), never buffered; no-store, and never shown as a page.
    return ranges.stream(media_storage(), scan.alg, scan.hash, scan.size, scan.content_type,
                         disposition=f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}")


def case_papers(case: Case) -> list[dict]:
    """The documents generated for a case — its own archive forms and its records' papers — newest
    first, each with whether it is still current and how many scans are kept with it."""
    if case is None:
        return []
    s = db.session()
    of_records = select(SyncedRecord.id).where(or_(SyncedRecord.case_id == case.id, SyncedRecord.id == case.id))
    documents = list(s.execute(select(PaperDocument).where(or_(
        PaperDocument.case_id == case.id, PaperDocument.record_id.in_(of_records)))
        .order_by(PaperDocument.made_at.desc(), PaperDocument.id)).scalars())
    if not documents:
        return []
    counts = dict(s.execute(select(PaperScan.document_id, func.count()).where(
        PaperScan.document_id.in_([d.id for d in documents])).group_by(PaperScan.document_id)).all())
    return [{"document": d, "title": kind_title(d), "standing": _standing(d), "scans": counts.get(d.id, 0)}
            for d in documents]


bp.add_app_template_global(case_papers, "case_papers")


@bp.get("/verify/<code>")
@allow(public=True)
def verify_code(code: str):
    """Does this paper match a stored record? Anyone may ask; the public learns only whether it
    matches revision N of a record of the bureau and whether that is current — staff who may see
    the record also get what it is and a link to it."""
    found = answer(code)
    return render_template("documents/verify.html", found=found, code=code[:120], document=_scan_target(code, found),
                           max_mb=scans.megabytes(scans.max_bytes())), (200 if found.matches else 404)


def _scan_target(code: str, found) -> PaperDocument | None:
    """The document whose scan the signed-in user may send back from /verify: the officer holding
    the signed paper scans its QR code and uploads the photo of it there (the document's page is
    the reviewers')."""
    if not found.matches or not current_user.is_authenticated:
        return None
    document = db.session().get(PaperDocument, codes.parse(code).document_id)
    if document is None or not _may_upload(document):
        return None
    try:
        return _document_or_404(document.id)
    except HTTPException:
        return None
