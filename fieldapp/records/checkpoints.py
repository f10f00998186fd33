"""Checkpoints: the chain head, signed (and optionally timestamped by an RFC 3161 authority).

The signed statement is canonical JSON naming the chain position, its hash, the time and the key;
``verify`` recomputes the chain up to that position and checks both the hash and the signature, so
a chain cut and re-linked by someone without the key no longer reaches any signed head.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditCheckpoint, utcnow
from . import keys, sealer

KIND = "fieldapp-audit-checkpoint"


def statement(seq: int, head_hash: str, at: datetime, key_id: str) -> bytes:
    return json.dumps({"kind": KIND, "v": 1, "seq": seq, "head": head_hash, "at": at.isoformat(timespec="seconds"),
                       "key": key_id}, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Statement:
    seq: int
    head: str
    key: str


def parse(raw: bytes) -> Statement:
    data = json.loads(raw)
    if data.get("kind") != KIND:
        raise ValueError("not a checkpoint statement")
    return Statement(int(data["seq"]), str(data["head"]), str(data["key"]))


def signature_holds(public: Ed25519PublicKey, raw: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, raw)
        return True
    except InvalidSignature:
        return False


def make(s: Session, private: Ed25519PrivateKey, reason: str, timestamp=None) -> AuditCheckpoint | None:
    """Sign the current sealed head (None if the chain is empty). ``timestamp`` is a callable that
    returns an RFC 3161 token for the statement, or None when no authority is configured."""
    at_head = sealer.head(s)
    if at_head.seq == 0:
        return None
    now = utcnow()
    kid = keys.key_id(private.public_key())
    raw = statement(at_head.seq, at_head.hash, now, kid)
    row = AuditCheckpoint(seq=at_head.seq, head_hash=at_head.hash, at=now, key_id=kid, statement=raw,
                          signature=private.sign(raw), tsa_token=timestamp(raw) if timestamp else None,
                          reason=reason)
    s.add(row)
    return row


def latest(s: Session) -> AuditCheckpoint | None:
    return s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).scalar_one_or_none()


def due(s: Session, every: timedelta) -> bool:
    """A daily checkpoint is due when the last is older than ``every`` and the chain has grown since."""
    last = latest(s)
    if last is None:
        return sealer.head(s).seq > 0
    return utcnow() - last.at >= every and sealer.head(s).seq > last.seq
