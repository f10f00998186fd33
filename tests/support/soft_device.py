"""A phone's device identity in Python: an ECDSA P-256 key and revisions signed the way the phone
signs them (RFC 8785 canonical JSON, raw r‖s signature, base64url), for API tests and benchmarks."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fieldapp.sync.push import SIGNED_FIELDS
from fieldapp.sync.signing import b64url_encode, canonical_bytes


@dataclass
class SoftDevice:
    author: str  # the signed-in user's id
    catalogue_version: int = 1
    device_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key_b64(self) -> str:
        spki = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return b64url_encode(spki)

    def sign(self, envelope: dict) -> str:
        der = self.key.sign(canonical_bytes(envelope), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def revision(self, record_id: str | None = None, revision: int = 1, payload: dict | None = None, *,
                 record_type: str = "step", parent_id: str | None = None, media: list | None = None,
                 reason: str | None = None, device_time: str | None = None, author: str | None = None,
                 catalogue_version: int | None = None) -> dict:
        envelope = {
            "record_id": record_id or str(uuid.uuid4()),
            "record_type": record_type,
            "revision": revision,
            "parent": None if revision == 1 else revision - 1,
            "parent_id": parent_id,
            "catalogue_version": catalogue_version or self.catalogue_version,
            "author": author or self.author,
            "device_id": self.device_id,
            "device_time": device_time or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "reason": reason,
            "payload": payload if payload is not None else {"notes": "现场检查", "at": "2026-11-27T01:00:00Z"},
            "media": media or [],
            "withdrawn_media": [],
        }
        assert tuple(envelope) == SIGNED_FIELDS
        return {**envelope, "signature": self.sign(envelope)}

    def batch(self, *items: dict, sent_at: str | None = None, heartbeat: dict | None = None) -> dict:
        return {"device_id": self.device_id, "items": list(items),
                "sent_at": sent_at or datetime.now(UTC).isoformat(), "heartbeat": heartbeat or {}}
