"""One-time enrolment codes: how a user gets their first passkey onto their phone."""
from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from .. import db
from ..models import Enrollment, EnrollmentEvent, User, utcnow

# 20 characters of a 32-letter alphabet without look-alikes: 100 bits, and still typeable by hand
# from a printed sheet when a QR code cannot be scanned.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 20


class CodeProblem(enum.StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    USER_DISABLED = "user_disabled"


@dataclass
class IssuedCode:
    enrollment: Enrollment
    code: str


def hash_code(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()


def format_code(code: str) -> str:
    return "-".join(code[i:i + 5] for i in range(0, len(code), 5))


def issue(user: User, hours: int, created_by: uuid.UUID | None = None) -> IssuedCode:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
    now = utcnow()
    enrollment = Enrollment(
        user_id=user.id, code_hash=hash_code(code), created_by=created_by,
        created_at=now, expires_at=now + timedelta(hours=hours),
    )
    db.session().add(enrollment)
    db.session().flush()
    return IssuedCode(enrollment, format_code(code))


def find(code: str) -> tuple[Enrollment | None, CodeProblem | None]:
    enrollment = db.session().execute(
        select(Enrollment).where(Enrollment.code_hash == hash_code(code))
    ).scalar_one_or_none()
    if enrollment is None:
        return None, CodeProblem.UNKNOWN
    if enrollment.used_at is not None:
        return enrollment, CodeProblem.USED
    if enrollment.expires_at <= utcnow():
        return enrollment, CodeProblem.EXPIRED
    if not enrollment.user.active:
        return enrollment, CodeProblem.USER_DISABLED
    return enrollment, None


def record_event(enrollment: Enrollment, outcome: str, reason: str = "", detail: str = "",
                 user_agent: str = "") -> None:
    db.session().add(EnrollmentEvent(
        enrollment_id=enrollment.id, outcome=outcome[:20], reason=reason[:60],
        detail=detail[:500], user_agent=user_agent[:300],
    ))


def link(base_url: str, code: str) -> str:
    """The URL the user opens on the phone (built without a request, so the CLI can print it)."""
    return f"{base_url}/enroll/{code}"
