"""A lead's recorded acceptance of a finding as an exception.

Some findings the law lets a lead accept after the fact: a step the regulation requires on
audio/video that was not recorded, for a reason the officer gave (arts. 12, 19, 22, 24), or a
required document marked not applicable. Which ones is data (``exception_allowed`` on the
catalogue's finding). The finding stays open and visible with who accepted it and why; it only
stops blocking archiving. An exception covers the finding as it stood (a fingerprint of its
detail): if the facts change, it blocks again until a lead decides anew.
"""
from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import select

from .. import db
from ..models import Finding, FindingException

REASON_LIMIT = 2000


class ExceptionRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def fingerprint(detail: dict | None) -> str:
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def accept(finding: Finding, by_id: uuid.UUID, reason: str, rules: dict[str, dict]) -> FindingException:
    """Record the exception inside the caller's transaction."""
    reason = (reason or "").strip()
    if not rules.get(finding.rule_id, {}).get("exception_allowed"):
        raise ExceptionRefused("not_allowed", "this finding cannot be accepted as an exception")
    if finding.resolved_at is not None:
        raise ExceptionRefused("resolved", "the finding is no longer open")
    if not reason:
        raise ExceptionRefused("reason_needed", "give the reason for accepting the exception")
    if len(reason) > REASON_LIMIT:
        raise ExceptionRefused("reason_too_long", f"the reason is longer than {REASON_LIMIT} characters")
    row = FindingException(finding_id=finding.id, case_id=finding.case_id, unit_id=finding.unit_id, key=finding.key,
                           fingerprint=fingerprint(finding.detail), reason=reason, by_id=by_id)
    s = db.session()
    s.add(row)
    s.flush()
    return row


def latest_by_key(case_id: uuid.UUID) -> dict[str, FindingException]:
    """The latest exception recorded for each finding key of a case."""
    rows = db.session().execute(select(FindingException).where(FindingException.case_id == case_id)
                                .order_by(FindingException.at)).scalars()
    return {row.key: row for row in rows}


def covers(exception: FindingException | None, detail: dict | None) -> bool:
    return exception is not None and exception.fingerprint == fingerprint(detail)
