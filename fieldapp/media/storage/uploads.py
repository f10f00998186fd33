"""The state of a resumable upload, apart from where its bytes are kept: its declaration, the names
of its chunks and parts, and the held offset those names imply. Nothing here reads or writes a
file or an object; each backend lists what it stores and hands the names here.

``begin`` declares (upload id, algorithm, digest, size); ``append`` adds one chunk at the offset
the server holds; ``complete`` verifies size and hash and stores the original. All state of an
upload lives where every app host reaches it (the media folder, or the bucket), never in a
process, so ``offset`` survives restarts and is the same from every host, and a resumed upload may
land on any host.

A chunk lands whole or not at all. The incoming body is first spooled to a temporary file in
bounded reads (:data:`~fieldapp.media.storage.base.BUFFER_SIZE`); if the stream raises midway (a
cut connection) the temporary file is dropped and the held offset stays where it was. Only a
completely received chunk is then published, under the name ``chunk-<start offset>``, with a
create-if-absent operation (``os.link`` locally, ``PutObject`` with ``If-None-Match: *`` on S3).
The held offset is the end of the contiguous chain of published chunks starting at 0
(:func:`_chain_from`), so publishing *is* the commit: no separate counter can disagree with the
bytes, and two hosts racing on the same offset cannot both win (the loser gets
:class:`~fieldapp.media.storage.base.OffsetMismatch` with the server's figure).

On S3 the chain is cut into multipart parts (:class:`_S3Upload`), each recorded as
``part-<n>-<start>-<length>``. The grouping rule (shortest prefix of the chain that reaches
:data:`MIN_PART_SIZE`, or the whole rest when it ends the upload) depends only on the immutable
chunk chain, so a part formed twice (a retry, another host, a crash between ``UploadPart`` and its
record) has the same number and the same bytes.

After ``complete`` an upload keeps a tiny record (``upload.json`` and ``completed``), so that a
repeated ``complete`` (a lost response) answers the same; ``abort`` removes it.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from .base import MediaError, UploadConflict, validate_digest, validate_upload_id

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's minimum multipart part size (every part but the last)."""

MAX_PARTS = 10_000

_CHUNK = re.compile(r"chunk-(\d{20})")
_PART = re.compile(r"part-(\d{5})-(\d{20})-(\d{20})")

_T = TypeVar("_T")


def _chunk_name(start: int) -> str:
    return f"chunk-{start:020d}"


def _part_name(number: int, start: int, length: int) -> str:
    return f"part-{number:05d}-{start:020d}-{length:020d}"


def _canonical_upload_id(name: str) -> str | None:
    try:
        return validate_upload_id(name)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------- declaration


def _declaration(upload_id: str, alg: str, digest: str, size: int) -> dict:
    validate_upload_id(upload_id)
    validate_digest(alg, digest)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size is a non-negative integer")
    return {"alg": alg, "digest": digest, "size": size}


def _check_same(existing: dict, wanted: dict) -> None:
    if {k: existing.get(k) for k in wanted} != wanted:
        raise UploadConflict("this upload id was begun with a different algorithm, digest or size")


# ----------------------------------------------------------------------------------------- chain


def _chain_from(
    chunks: Mapping[int, _T], length_of: Callable[[_T], int], position: int = 0
) -> tuple[list[tuple[int, int, _T]], int]:
    """The contiguous chain of published chunks from ``position`` as (start, length, chunk), and
    its end: the held offset. ``chunks`` maps each start to what the backend knows of that chunk;
    ``length_of`` is asked only for chunks on the chain. A gap or an empty chunk ends it."""
    chain: list[tuple[int, int, _T]] = []
    while position in chunks:
        length = length_of(chunks[position])
        if length == 0:
            break
        chain.append((position, length, chunks[position]))
        position += length
    return chain, position


@dataclass
class _S3Upload:
    meta: dict
    parts: list[tuple[int, int, int]] = field(default_factory=list)  # (number, start, length)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # chain from parts_end
    stale_chunks: list[int] = field(default_factory=list)  # starts behind parts_end: garbage
    completed: bool = False
    assembled: bool = False

    @classmethod
    def from_listing(cls, upload_id: str, meta: dict, listing: Mapping[str, int]) -> _S3Upload:
        """The state from the declaration (``upload.json``) and the upload's objects (leaf name to
        size): the part records must number 1, 2, ... and cover the bytes from 0 without a gap;
        the chunk chain continues where the last part ends."""
        state = cls(meta)
        chunks: dict[int, int] = {}
        parts: dict[int, tuple[int, int]] = {}
        for leaf, size in listing.items():
            if leaf == "completed":
                state.completed = True
            elif leaf == "assembled":
                state.assembled = True
            elif match := _CHUNK.fullmatch(leaf):
                chunks[int(match[1])] = size
            elif match := _PART.fullmatch(leaf):
                number, start, length = (int(g) for g in match.groups())
                if number in parts and parts[number] != (start, length):
                    raise MediaError(f"upload {upload_id}: two records for part {number}")
                parts[number] = (start, length)
        position = 0
        for number in range(1, len(parts) + 1):
            if number not in parts or parts[number][0] != position:
                raise MediaError(f"upload {upload_id}: part records are not contiguous")
            state.parts.append((number, *parts[number]))
            position += parts[number][1]
        state.stale_chunks = sorted(s for s in chunks if s < position)
        chain, _ = _chain_from(chunks, int, position)
        state.chunks = [(start, length) for start, length, _ in chain]
        return state

    @property
    def size(self) -> int:
        return self.meta["size"]

    @property
    def parts_end(self) -> int:
        return self.parts[-1][1] + self.parts[-1][2] if self.parts else 0

    @property
    def held(self) -> int:
        if self.completed:
            return self.size
        return self.chunks[-1][0] + self.chunks[-1][1] if self.chunks else self.parts_end

    def next_group(self) -> list[tuple[int, int]] | None:
        """The chunks of the next part: the shortest prefix of the chain reaching the minimum part
        size, or the whole rest when it ends the upload. Depends only on the chain, so every host
        (and every retry) forms the same part from the same bytes."""
        total = 0
        for index, (_, length) in enumerate(self.chunks):
            total += length
            if total >= MIN_PART_SIZE:
                return self.chunks[: index + 1]
        if self.chunks and self.held == self.size:
            return list(self.chunks)
        return None
