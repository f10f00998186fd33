"""The two WebAuthn ceremonies (register a passkey, sign in with one) on top of py_webauthn.

Options are produced here and their challenge stored server-side; verification looks the challenge
up from the client data the authenticator signed, consumes it (single use), and only then checks
the signature. Because nothing lives in the process or the cookie, the options may come from one
worker or host and the verification go to another.
"""
from __future__ import annotations

import json

from flask import current_app
from sqlalchemy import select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, options_to_json_dict
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import db
from ..models import Passkey, User, WebAuthnChallenge, utcnow
from . import challenges

ATTACHMENTS = {"platform", "cross-platform"}
TIMEOUT_MS = 120_000  # a security key may be in a pocket; give the officer two minutes


class CeremonyError(Exception):
    """A ceremony that must be refused; ``code`` is machine-readable, the message is for logs."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


def _settings():
    return current_app.config["FIELDAPP_SETTINGS"]


def registration_options(user: User, attachment: str | None, *, enrollment_id=None) -> dict:
    if attachment is not None and attachment not in ATTACHMENTS:
        raise CeremonyError("bad_attachment")
    settings = _settings()
    existing = [
        PublicKeyCredentialDescriptor(id=p.credential_id)
        for p in user.passkeys if p.revoked_at is None
    ]
    hints = None
    if attachment == "cross-platform":
        hints = [PublicKeyCredentialHint.SECURITY_KEY]
    elif attachment == "platform":
        hints = [PublicKeyCredentialHint.CLIENT_DEVICE]
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name=settings.rp_name,
        user_id=user.webauthn_handle,
        user_name=user.cert_no,
        user_display_name=user.name,
        challenge=challenges.issue(
            "register", settings.challenge_seconds, user_id=user.id,
            enrollment_id=enrollment_id, attachment=attachment,
        ),
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment(attachment) if attachment else None,
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=existing,
        hints=hints,
    )
    return options_to_json_dict(options)


def _client_challenge(credential: dict) -> bytes:
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        return base64url_to_bytes(client_data["challenge"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CeremonyError("malformed_credential", str(exc)) from exc


def verify_registration(credential: dict, label: str) -> tuple[Passkey, WebAuthnChallenge]:
    """Verify a new passkey and store it; the caller commits (or rolls back) the transaction."""
    if not isinstance(credential, dict):
        raise CeremonyError("malformed_credential")
    challenge = challenges.consume(_client_challenge(credential), "register")
    if challenge is None or challenge.user_id is None:
        raise CeremonyError("challenge_invalid", "unknown, expired or already used challenge")
    settings = _settings()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, KeyError, TypeError, ValueError) as exc:
        raise CeremonyError("verification_failed", str(exc)) from exc
    s = db.session()
    if s.execute(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)).first():
        raise CeremonyError("credential_exists")
    transports = credential.get("response", {}).get("transports") or []
    attachment = credential.get("authenticatorAttachment") or challenge.attachment
    passkey = Passkey(
        user_id=challenge.user_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str)][:8],
        attachment=attachment if attachment in ATTACHMENTS else None,
        aaguid=verified.aaguid,
        backed_up=verified.credential_backed_up,
        label=(label or "").strip()[:80] or _default_label(attachment),
    )
    s.add(passkey)
    s.flush()
    return passkey, challenge


def _default_label(attachment: str | None) -> str:
    return "安全密钥" if attachment == "cross-platform" else "本机通行密钥"


def authentication_options() -> dict:
    settings = _settings()
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        challenge=challenges.issue("authenticate", settings.challenge_seconds),
        timeout=TIMEOUT_MS,
        allow_credentials=[],  # discoverable credentials: the passkey picker chooses the user
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options)


def credential_id_of(credential: dict) -> bytes:
    try:
        return base64url_to_bytes(credential["rawId"] if "rawId" in credential else credential["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CeremonyError("malformed_credential", str(exc)) from exc


def verify_authentication(credential: dict) -> Passkey:
    """Return the passkey that signed a valid, fresh assertion; raise CeremonyError otherwise."""
    if not isinstance(credential, dict):
        raise CeremonyError("malformed_credential")
    credential_id = credential_id_of(credential)
    challenge = challenges.consume(_client_challenge(credential), "authenticate")
    if challenge is None:
        raise CeremonyError("challenge_invalid", "unknown, expired or already used challenge")
    s = db.session()
    passkey = s.execute(select(Passkey).where(Passkey.credential_id == credential_id)).scalar_one_or_none()
    if passkey is None or passkey.revoked_at is not None:
        raise CeremonyError("unknown_credential")
    if not passkey.user.active:
        raise CeremonyError("user_disabled")
    settings = _settings()
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, KeyError, TypeError, ValueError) as exc:
        raise CeremonyError("verification_failed", str(exc)) from exc
    handle = credential.get("response", {}).get("userHandle")
    if handle and base64url_to_bytes(handle) != passkey.user.webauthn_handle:
        raise CeremonyError("verification_failed", "user handle does not match the credential")
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = utcnow()
    return passkey
