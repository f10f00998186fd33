"""The hash chain itself, as pure functions: what a sealed event's hash covers, and how a run of
sealed events is checked. Anyone holding the events can recompute it (``verify.py`` of an export
uses the same rules): hash = SHA-256(previous hash ‖ canonical JSON of the event)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS = "0" * 64


@dataclass(frozen=True)
class Sealed:
    seq: int
    id: int
    at: datetime
    actor: str
    action: str
    tbl: str
    row_key: str
    row_hash: str | None
    detail: dict | str | None  # a dict, or its canonical text as stored
    prev_hash: str
    hash: str


def _at(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(detail) -> str:
    """An event's detail as the chain hashes it: sorted keys, no spaces, UTF-8 (and how it is stored)."""
    if detail is None:
        return "null"
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_bytes(seq: int, event_id: int, at: datetime, actor: str, action: str, tbl: str,
                row_key: str, row_hash: str | None, detail) -> bytes:
    """The canonical JSON array [seq, id, at, actor, action, tbl, row_key, row_hash, detail]. ``detail``
    is a dict (or None), or its canonical text as stored — the server's sealer and ``verify`` pass the
    stored text and so never parse and re-encode a large detail only to hash it."""
    text = detail if isinstance(detail, str) else canonical(detail)
    head = json.dumps([seq, event_id, _at(at), actor, action, tbl, row_key, row_hash],
                      separators=(",", ":"), ensure_ascii=False)
    return f"{head[:-1]},{text}]".encode()


def link(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


@dataclass
class ChainFault:
    seq: int
    event_id: int
    problem: str


class ChainWalk:
    """Incremental check of sealed events in seq order, keeping the head reached so far."""

    def __init__(self, prev_seq: int = 0, prev_hash: str = GENESIS):
        self.seq = prev_seq
        self.hash = prev_hash
        self.count = 0
        # What the last event's content and claimed link hash to: not what its row claims. A stretch
        # re-linked consistently carries self-consistent claims, but none of them meets a signed head.
        self.computed = prev_hash

    def step(self, e: Sealed) -> ChainFault | None:
        self.count += 1
        fault = None
        body = event_bytes(e.seq, e.id, e.at, e.actor, e.action, e.tbl, e.row_key, e.row_hash, e.detail)
        self.computed = link(e.prev_hash, body)
        if e.seq != self.seq + 1:
            fault = ChainFault(e.seq, e.id, f"sequence jumps from {self.seq} to {e.seq}: events are missing or inserted")
        elif e.prev_hash != self.hash:
            fault = ChainFault(e.seq, e.id, "does not link to the event before it")
        elif self.computed != e.hash:
            fault = ChainFault(e.seq, e.id, "its content no longer matches its hash: the event was changed")
        # Continue from what the event claims, so one break is reported once, not at every later event.
        self.seq, self.hash = e.seq, e.hash
        return fault
