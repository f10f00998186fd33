"""Server-side WebAuthn challenges: random, short-lived, single use, visible to every worker."""
from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, update

from .. import db
from ..models import WebAuthnChallenge, utcnow

CHALLENGE_BYTES = 32


def issue(purpose: str, ttl_seconds: int, *, user_id: uuid.UUID | None = None,
          enrollment_id: uuid.UUID | None = None, attachment: str | None = None) -> bytes:
    now = utcnow()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    s = db.session()
    # Expired challenges are useless; clear them here instead of in a separate job.
    s.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < now - timedelta(hours=1)))
    s.add(WebAuthnChallenge(
        challenge=challenge, purpose=purpose, user_id=user_id, enrollment_id=enrollment_id,
        attachment=attachment, created_at=now, expires_at=now + timedelta(seconds=ttl_seconds),
    ))
    s.flush()
    return challenge


def consume(challenge: bytes, purpose: str) -> WebAuthnChallenge | None:
    """Mark the challenge used and return it, or None if unknown, expired, used or of another purpose.

    The conditional UPDATE is the single-use guarantee: of two requests racing with one assertion
    (a replay), exactly one sees rowcount 1, whichever worker or host it reached.
    """
    now = utcnow()
    s = db.session()
    result = s.execute(
        update(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.challenge == challenge,
            WebAuthnChallenge.purpose == purpose,
            WebAuthnChallenge.used_at.is_(None),
            WebAuthnChallenge.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return s.query(WebAuthnChallenge).filter_by(challenge=challenge).one()
