"""Verification codes printed on paper (as a QR code on every page): the generated document and the
start of the digest of what it was made from — each record and revision by content hash. The code
reveals nothing by itself (a random id and a hash prefix)."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass

HASH_CHARS = 16  # 64 bits of the digest: no altered paper matches a stored document by chance
_CODE = re.compile(r"([0-9a-f]{32})-([0-9a-f]{%d})" % HASH_CHARS)


@dataclass(frozen=True)
class Code:
    document_id: uuid.UUID
    digest_prefix: str

    def __str__(self) -> str:
        return f"{self.document_id.hex}-{self.digest_prefix}"


def digest(sources: list[list]) -> str:
    """SHA-256 of the sources, canonical: sorted, compact JSON."""
    text = json.dumps(sorted([str(r), int(n), str(h)] for r, n, h in sources), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def make(document_id: uuid.UUID, full_digest: str) -> Code:
    return Code(document_id, full_digest[:HASH_CHARS])


def parse(text: str) -> Code | None:
    match = _CODE.fullmatch((text or "").strip().lower())
    return Code(uuid.UUID(match[1]), match[2]) if match else None
