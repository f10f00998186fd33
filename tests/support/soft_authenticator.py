"""A software WebAuthn authenticator for server-side API tests.

Why this exists: the passkey endpoints can only be tested honestly by running a
real WebAuthn ceremony against them, and that normally needs a browser plus a
platform authenticator (Touch ID, Windows Hello, ...). ``SoftAuthenticator``
plays both roles in-process: it takes the options JSON the server sends to the
browser (as produced by py_webauthn's ``options_to_json()``) and returns the
JSON a browser's ``PublicKeyCredential.toJSON()`` would post back, with real
P-256 keys and real ECDSA signatures. The server code under test therefore
verifies exactly what it would verify in production.

What is deliberately *not* mirrored: the browser's own origin / rp-id checks.
The ``origin`` argument is written into clientDataJSON verbatim, so tests can
forge a wrong origin and check that the *server* rejects it.

Only ``cryptography`` and ``cbor2`` are used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "SoftAuthenticator",
    "SoftCredential",
    "SoftAuthenticatorError",
    "CredentialExcluded",
    "NoCredential",
    "NotSupported",
    "b64url_encode",
    "b64url_decode",
]

# authenticatorData flag bits (WebAuthn L3 §6.1). BE (0x08) and BS (0x10) are
# never set: this is a single-device credential, not a synced one.
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_AT = 0x40  # attested credential data included

COSE_ALG_ES256 = -7
AAGUID_NONE = bytes(16)  # "none" attestation: an all-zero AAGUID


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, the encoding WebAuthn JSON uses for bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Inverse of :func:`b64url_encode`; tolerates missing padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class SoftAuthenticatorError(Exception):
    """Base class; each subclass stands for a DOMException a browser would throw."""


class CredentialExcluded(SoftAuthenticatorError):
    """Like the browser's ``InvalidStateError``: we already hold an excluded credential."""


class NoCredential(SoftAuthenticatorError):
    """Like the browser's ``NotAllowedError`` when no held credential fits the request."""


class NotSupported(SoftAuthenticatorError):
    """Like ``NotSupportedError``: the RP does not accept ES256, the only algorithm we have."""


@dataclass
class SoftCredential:
    """One resident (discoverable) ES256 credential, as the authenticator stores it."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def public_key_cose(self) -> bytes:
        """The EC2 public key as a COSE_Key, the form that goes into authData."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: COSE_ALG_ES256,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            },
            canonical=True,
        )

    @property
    def public_key_spki(self) -> bytes:
        """DER SubjectPublicKeyInfo, what a browser reports as ``response.publicKey``."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )


@dataclass
class SoftAuthenticator:
    """A browser + platform authenticator stand-in holding any number of passkeys.

    ``counter=False`` keeps every signature counter at 0, which is what synced
    passkeys (iCloud Keychain, Google Password Manager) report; the default
    increments it by one per assertion like a hardware authenticator.
    Set ``user_verified = False`` to simulate an authenticator that only
    checked presence (UV flag off) in later ceremonies.
    """

    counter: bool = True
    user_verified: bool = True
    _credentials: dict[bytes, SoftCredential] = field(default_factory=dict, repr=False)

    # -- inspection / mutation -------------------------------------------------

    @property
    def credentials(self) -> list[SoftCredential]:
        """All credentials currently held, oldest first."""
        return list(self._credentials.values())

    def credential(self, credential_id: bytes) -> SoftCredential:
        """Return the stored credential (KeyError if unknown), e.g. to poke its sign_count."""
        return self._credentials[credential_id]

    def remove(self, credential_id: bytes) -> None:
        """Forget a credential, as when the user deletes a passkey on their device."""
        del self._credentials[credential_id]

    # -- ceremonies --------------------------------------------------------------

    def create(
        self, options: dict[str, Any], origin: str, *, rp_id: str | None = None
    ) -> dict[str, Any]:
        """Do ``navigator.credentials.create()`` and return ``credential.toJSON()``.

        ``options`` is the PublicKeyCredentialCreationOptions JSON dict (as from
        ``json.loads(webauthn.options_to_json(opts))``). The RP id is ``rp_id``
        if given, else ``options["rp"]["id"]``, else the origin's host, which is
        the browser's default. As a real resident-key authenticator does, a new
        credential replaces any we hold for the same RP id and user handle.
        """
        rp_id = rp_id or options["rp"].get("id") or _host(origin)
        user_handle = b64url_decode(options["user"]["id"])

        params = options.get("pubKeyCredParams") or []
        if params and not any(p.get("alg") == COSE_ALG_ES256 for p in params):
            raise NotSupported("RP does not accept ES256 (-7)")

        for excluded in options.get("excludeCredentials") or []:
            held = self._credentials.get(b64url_decode(excluded["id"]))
            if held is not None and held.rp_id == rp_id:
                raise CredentialExcluded("authenticator already holds an excluded credential")

        for old in self.credentials:
            if old.rp_id == rp_id and old.user_handle == user_handle:
                self.remove(old.credential_id)

        cred = SoftCredential(
            credential_id=os.urandom(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=user_handle,
        )
        self._credentials[cred.credential_id] = cred

        attested = (
            AAGUID_NONE
            + struct.pack(">H", len(cred.credential_id))
            + cred.credential_id
            + cred.public_key_cose
        )
        auth_data = self._auth_data(rp_id, FLAG_AT, cred.sign_count) + attested
        attestation_object = cbor2.dumps(
            {"fmt": "none", "attStmt": {}, "authData": auth_data}, canonical=True
        )
        client_data = _client_data("webauthn.create", options["challenge"], origin)

        return {
            "id": b64url_encode(cred.credential_id),
            "rawId": b64url_encode(cred.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url_encode(client_data),
                "attestationObject": b64url_encode(attestation_object),
                "transports": ["internal"],
                # The Level 3 convenience fields browsers also include.
                "authenticatorData": b64url_encode(auth_data),
                "publicKey": b64url_encode(cred.public_key_spki),
                "publicKeyAlgorithm": COSE_ALG_ES256,
            },
        }

    def get(
        self,
        options: dict[str, Any],
        origin: str,
        credential_id: bytes | None = None,
        *,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """Do ``navigator.credentials.get()`` and return ``credential.toJSON()``.

        ``options`` is the PublicKeyCredentialRequestOptions JSON dict. With an
        empty ``allowCredentials`` (discoverable / usernameless sign-in) the
        credential is ``credential_id`` if given, else the first one we hold for
        the RP id — standing in for the user's pick in the account chooser.
        Otherwise it is the first allowed credential we hold (restricted to
        ``credential_id`` if given). Raises :class:`NoCredential` if none fits.
        """
        rp_id = rp_id or options.get("rpId") or _host(origin)
        candidates = [c for c in self._credentials.values() if c.rp_id == rp_id]

        allowed = [b64url_decode(a["id"]) for a in options.get("allowCredentials") or []]
        if allowed:
            by_id = {c.credential_id: c for c in candidates}
            candidates = [by_id[i] for i in allowed if i in by_id]
        if credential_id is not None:
            candidates = [c for c in candidates if c.credential_id == credential_id]
        if not candidates:
            raise NoCredential(f"no usable credential for rp id {rp_id!r}")
        cred = candidates[0]

        if self.counter:
            cred.sign_count += 1
        auth_data = self._auth_data(rp_id, 0, cred.sign_count)
        client_data = _client_data("webauthn.get", options["challenge"], origin)
        signature = cred.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )

        return {
            "id": b64url_encode(cred.credential_id),
            "rawId": b64url_encode(cred.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url_encode(client_data),
                "authenticatorData": b64url_encode(auth_data),
                "signature": b64url_encode(signature),
                "userHandle": b64url_encode(cred.user_handle),
            },
        }

    # -- internals ---------------------------------------------------------------

    def _auth_data(self, rp_id: str, extra_flags: int, sign_count: int) -> bytes:
        """rpIdHash || flags || signCount, without attested credential data."""
        flags = FLAG_UP | extra_flags | (FLAG_UV if self.user_verified else 0)
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", sign_count)
        )


def _client_data(type_: str, challenge: str, origin: str) -> bytes:
    """clientDataJSON serialised compactly and in key order, as browsers do."""
    return json.dumps(
        {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()


def _host(origin: str) -> str:
    """The origin's host, which a browser uses as the RP id when none is given."""
    host = urlparse(origin).hostname
    if not host:
        raise ValueError(f"cannot derive an rp id from origin {origin!r}")
    return host
