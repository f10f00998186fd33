"""What ``/verify/<code>`` says of a code printed on paper: whether it names a document the bureau
generated, and whether the records it was made from are still as they were (current) or have a
later revision (superseded)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_login import current_user

from .. import db
from ..access import can_see_unit
from ..models import Case, PaperDocument, SyncedRecord
from ..records import secrecy
from . import codes, sheets


@dataclass(frozen=True)
class Answer:
    matches: bool
    kind: str | None = None
    revision: int | None = None  # of the record the document is about, as printed
    current: bool = False
    withdrawn: bool = False
    record: SyncedRecord | None = None  # only for staff who may see it
    case: Case | None = None  # of a case file document (卷内目录, 备考表), only for staff who may see it


def answer(text: str) -> Answer:
    code = codes.parse(text)
    if code is None:
        return Answer(False)
    s = db.session()
    document = s.get(PaperDocument, code.document_id)
    if document is None or not document.digest.startswith(code.digest_prefix):
        return Answer(False)
    record, case = sheets.subject_of(document)
    now = codes.digest(sheets.current_sources(document.kind, record, case))
    withdrawn = bool(record.withdrawn) if record is not None else False
    subject_unit = record.unit_id if record is not None else case.unit_id if case is not None else None
    staff = (subject_unit is not None and current_user.is_authenticated and can_see_unit(current_user, subject_unit)
             and current_user.has_role(*secrecy.KEEPERS, *secrecy.READERS) and secrecy.may_see_case(current_user, case))
    # The revision printed is the document's own record's; a case file document is made of the
    # whole case and has no one revision to name.
    printed = next((n for r, n, _ in document.sources if record is not None and str(r) == str(record.id)), None)
    return Answer(True, document.kind, printed, current=now == document.digest and not withdrawn,
                  withdrawn=withdrawn, record=record if staff else None,
                  case=case if staff and record is None else None)
