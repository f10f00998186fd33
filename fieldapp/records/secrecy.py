"""Art. 31: records involving state secrets, trade secrets or personal privacy.

A case can be marked (``cases.confidentiality``). Its records, media and footage are then visible
only to the collecting unit's leads and records administrator, and to whoever holds an approved,
unexpired grant for the case — not to the policy section, the division head or the bureau head by
their standing. Identity and phone numbers are masked for anyone who does not need them.
"""
from __future__ import annotations

import re
import uuid

from flask import abort
from sqlalchemy import select

from .. import db
from ..models import AccessGrant, Case, FootageLink, FootageSegment, MediaRef, Role, SyncedRecord, utcnow

KEEPERS = (Role.LEAD, Role.RECORDS_ADMIN)
READERS = (Role.SUPERVISOR, Role.DIVISION_HEAD, Role.BUREAU_HEAD)  # who read records beyond their unit
_ID_NUMBER = re.compile(r"(?<![0-9])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")


def needs_identity(user, unit_id) -> bool:
    """Who needs a party's identity and phone numbers in full: the unit's own leads and records administrator."""
    return user.unit_id == unit_id and user.has_role(*KEEPERS)


def mask(text):
    """Identity numbers keep their region code and last four; mobile numbers their first three and last four."""
    if not isinstance(text, str):
        return text
    text = _ID_NUMBER.sub(lambda m: f"{m[1]}{'*' * 8}{m[3][-4:] if len(m[3]) == 4 else m[3]}", text)
    return _MOBILE.sub(lambda m: f"{m[1]}****{m[3]}", text)


def private_text(text, unit_id):
    """Free text as this page's reader may see it: in full for the unit's lead and records
    administrator, with identity and phone numbers masked for everyone else (art. 31)."""
    from flask_login import current_user
    return text if needs_identity(current_user, unit_id) else mask(text)


def marked(case: Case | None) -> bool:
    return bool(case is not None and case.confidentiality)


def may_see_case(user, case: Case | None) -> bool:
    if not marked(case):
        return True
    if user.unit_id == case.unit_id and user.has_role(*KEEPERS):
        return True
    return db.session().execute(select(AccessGrant.id).where(
        AccessGrant.subject_kind == "case", AccessGrant.subject_id == str(case.id),
        AccessGrant.requester_id == user.id, AccessGrant.state == "approved",
        AccessGrant.valid_until > utcnow()).limit(1)).first() is not None


def require_case(user, case: Case | None) -> None:
    if not may_see_case(user, case):
        abort(404)


def marked_case_ids() -> set[uuid.UUID]:
    return {c for (c,) in db.session().execute(select(Case.id).where(Case.confidentiality.is_not(None)))
            if c is not None}


def case_of(record: SyncedRecord) -> Case | None:
    case_id = record.case_id or (record.id if record.record_type == "case" else None)
    return db.session().get(Case, case_id) if case_id is not None else None


def require_record(user, record: SyncedRecord) -> None:
    require_case(user, case_of(record))


def cases_of_object(alg: str, digest: str) -> list[Case]:
    s = db.session()
    ids = {c for (c,) in s.execute(select(SyncedRecord.case_id).join(MediaRef, MediaRef.record_id == SyncedRecord.id)
                                   .where(MediaRef.alg == alg, MediaRef.hash == digest)) if c}
    ids |= {c for (c,) in s.execute(select(FootageLink.case_id).join(
        FootageSegment, FootageSegment.id == FootageLink.segment_id)
        .where(FootageSegment.alg == alg, FootageSegment.hash == digest)) if c}
    return list(s.execute(select(Case).where(Case.id.in_(ids))).scalars()) if ids else []


def may_see_object(user, alg: str, digest: str) -> bool:
    return all(may_see_case(user, case) for case in cases_of_object(alg, digest))


def subject_label_for(user, grant) -> str:
    """A grant's subject as this user may read it: a marked case's party is not named to those who
    may not see the case (art. 31)."""
    if grant.subject_kind == "case":
        case = db.session().get(Case, uuid.UUID(grant.subject_id))
        if case is not None and not may_see_case(user, case):
            return f"涉密案件 {case.case_number or str(case.id)[:8]}"
    return grant.subject_label
