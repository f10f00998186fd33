"""What ``/verify/<code>`` says of a code printed on paper: whether it names a document the bureau
generated, and whether the records it was made from are still as they were (current) or have a
later revision (superseded)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_login import current_user

from .. import db
from ..access import can_see_unit
from ..models import PaperDocument, SyncedRecord
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
    shown = None
    if record is not None and current_user.is_authenticated and can_see_unit(current_user, record.unit_id) \
            and current_user.has_role(*secrecy.KEEPERS, *secrecy.READERS) and secrecy.may_see_case(current_user, case):
        shown = record
    printed = next((n for r, n, _ in document.sources if not str(r).startswith("case:")), None)
    return Answer(True, document.kind, printed, current=now == document.digest and not withdrawn,
                  withdrawn=withdrawn, record=shown)
