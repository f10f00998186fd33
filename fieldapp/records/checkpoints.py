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


def statement(seq: int, head_hash: str, at: datetime, key_id: str, previous: tuple[int, str] | None = None) -> bytes:
    """The signed bytes. ``previous`` names the checkpoint before (its position and head), so a
    checkpoint removed from between two others breaks the link of the next one."""
    body = {"kind": KIND, "v": 1, "seq": seq, "head": head_hash, "at": at.isoformat(timespec="seconds"),
            "key": key_id}
    if previous is not None:
        body["prev"] = {"seq": previous[0], "head": previous[1]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Statement:
    seq: int
    head: str
    key: str
    previous: tuple[int, str] | None = None


def parse(raw: bytes) -> Statement:
    data = json.loads(raw)
    if data.get("kind") != KIND:
        raise ValueError("not a checkpoint statement")
    prev = data.get("prev")
    return Statement(int(data["seq"]), str(data["head"]), str(data["key"]),
                     (int(prev["seq"]), str(prev["head"])) if prev else None)


def signature_holds(public: Ed25519PublicKey, raw: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, raw)
        return True
    except InvalidSignature:
        return False


class ChainBroken(RuntimeError):
    """The chain since the last checkpoint does not hold: signing its head would vouch for a forgery."""


def last_valid(s: Session, public: Ed25519PublicKey) -> AuditCheckpoint | None:
    """The newest checkpoint this key signed whose statement still matches its columns."""
    for row in s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc())).scalars():
        try:
            stated = parse(row.statement)
        except (ValueError, KeyError, TypeError):
            continue
        if (stated.seq, stated.head) == (row.seq, row.head_hash) and signature_holds(public, row.statement,
                                                                                      row.signature):
            return row
    return None


def checked_head(s: Session, public: Ed25519PublicKey) -> tuple[sealer.Head, AuditCheckpoint | None]:
    """Walk the chain from the last valid checkpoint to its head and return the head — or raise
    ChainBroken: a checkpoint signs only what it has re-checked, never what the head row claims."""
    from .chain import ChainWalk
    from .verification import sealed_events

    last = last_valid(s, public)
    walk = ChainWalk(last.seq, last.head_hash) if last else ChainWalk()
    for event in sealed_events(s, after=walk.seq):
        fault = walk.step(event)
        if fault:
            raise ChainBroken(f"event {fault.event_id} (seq {fault.seq}): {fault.problem}")
    return sealer.Head(walk.seq, walk.hash), last


def make(s: Session, private: Ed25519PrivateKey, reason: str, timestamp=None) -> AuditCheckpoint | None:
    """Re-check and sign the sealed head (None if the chain is empty, or nothing new since the last
    checkpoint). ``timestamp`` returns an RFC 3161 token for the statement, or None; the caller
    keeps any slow call to an authority outside its write transaction (see service.checkpoint_now)."""
    at_head, last = checked_head(s, private.public_key())
    if at_head.seq == 0 or (last is not None and last.seq == at_head.seq and reason == "daily"):
        return None
    row = signed(private, at_head, last, reason, timestamp)
    s.add(row)
    return row


def signed(private: Ed25519PrivateKey, at_head: sealer.Head, last: AuditCheckpoint | None, reason: str,
           timestamp=None) -> AuditCheckpoint:
    now = utcnow()
    kid = keys.key_id(private.public_key())
    raw = statement(at_head.seq, at_head.hash, now, kid, (last.seq, last.head_hash) if last else None)
    return AuditCheckpoint(seq=at_head.seq, head_hash=at_head.hash, at=now, key_id=kid, statement=raw,
                           signature=private.sign(raw), tsa_token=timestamp(raw) if timestamp else None,
                           reason=reason)


def latest(s: Session) -> AuditCheckpoint | None:
    return s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).scalar_one_or_none()


def due(s: Session, every: timedelta) -> bool:
    """A periodic checkpoint is due when the last is older than ``every`` and the chain has grown since."""
    last = latest(s)
    if last is None:
        return sealer.head(s).seq > 0
    return utcnow() - last.at >= every and sealer.head(s).seq > last.seq
