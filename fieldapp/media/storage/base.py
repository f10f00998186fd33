"""The contract every media backend keeps: the :class:`MediaStorage` interface, what it returns and
raises, and the keys it stores under.

**Keys.** Every original is known by its hash, the algorithm named beside the value
(``"sha-256"`` now; SM3 can be added to :data:`ALGORITHMS` later). Keys are made here from
validated values only, never from a client-supplied name::

    originals/sha256/ab/cd/<digest>                  the original, byte for byte
    derivatives/sha256/ab/cd/<digest>/<name>         preview, thumb, phone-preview
    uploads/<upload-id>/...                          state of one resumable upload

**Originals are never altered.** One is stored once, under its content-addressed key, by a
create-if-absent operation; a second upload of the same bytes stores nothing new.

**Verification.** ``complete`` recomputes the hash by streaming the assembled bytes (Python's hash
objects cannot be persisted). A mismatch raises :class:`HashMismatch`, discards the upload, and
nothing is stored under the declared digest. The bytes are verified even when the original is
already stored (the upload then stores nothing new): a client cannot claim a file it does not have
by naming its hash. ``put_original_file`` is the one way in that does not verify: its caller has.

**Sweeping.** ``uploads`` lists every upload with its last activity and ``sweep_temporary``
removes what interrupted work left behind (a chunk being spooled, an original being assembled),
so that `flask sweep-uploads` (:mod:`fieldapp.media.sweep`) can remove abandoned uploads, the
records of completed ones and a killed host's leftovers by age, on either backend.

**Retention** (art. 26: footage is kept at least six months, some of it permanently, and only an
approved disposal removes bytes). ``set_legal_hold`` keeps an original and its derivatives for as
long as the hold is on (permanent items); ``retain_until`` keeps an original until a date
(the six-month minimum) in compliance mode, which nobody can shorten or lift; ``dispose_original``
is the one delete of an original in the code base, refused with :class:`RetentionLocked` while
either applies. On S3 these are the bucket's own object lock, which binds even an administrator
with delete rights; a local folder has no such control (its methods return False) and is protected
by who may write to it. ``ensure_retention_setup`` readies a bucket for all this, once, idempotently.

Also here: the bounded copy helpers both backends move bytes with (:func:`_receive`,
:func:`_copy`), so that no body is ever held whole in memory.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, BinaryIO, Protocol, runtime_checkable

BUFFER_SIZE = 64 * 1024
"""Bytes per read from a request body and per copy step: no body is ever held whole in memory."""

DERIVATIVE_NAMES = frozenset({"preview", "thumb", "phone-preview", "poster"})  # poster: a footage frame


@dataclass(frozen=True)
class Algorithm:
    name: str  # as records and the API spell it: "sha-256"
    key: str  # the key segment: "sha256"
    new: Callable[[], Any]
    hex_length: int


ALGORITHMS: dict[str, Algorithm] = {
    "sha-256": Algorithm("sha-256", "sha256", hashlib.sha256, 64),
}


# ---------------------------------------------------------------------------------------- errors


class MediaError(Exception):
    """A storage-level refusal the API layer turns into a clear answer."""


class OffsetMismatch(MediaError):
    """The client's offset is not the server's: resume from ``held``."""

    def __init__(self, held: int):
        super().__init__(f"the server holds {held} bytes of this upload; resume from there")
        self.held = held


class HashMismatch(MediaError):
    def __init__(self, alg: str, expected: str, actual: str):
        super().__init__(f"the uploaded bytes have {alg} {actual}, not the declared {expected}")
        self.alg, self.expected, self.actual = alg, expected, actual


class UploadIncomplete(MediaError):
    def __init__(self, held: int, size: int):
        super().__init__(f"the upload holds {held} of {size} bytes")
        self.held, self.size = held, size


class UploadTooLarge(MediaError):
    def __init__(self, remaining: int):
        super().__init__(f"the chunk goes past the declared size: {remaining} bytes remain")
        self.remaining = remaining


class UploadConflict(MediaError):
    """``begin`` again with a different declaration for the same upload id."""


class UnknownUpload(MediaError, LookupError):
    pass


class MediaNotFound(MediaError, LookupError):
    pass


class RetentionLocked(MediaError):
    """A disposal refused: the original (or a derivative of it) is under a legal hold or a
    compliance retention that has not yet passed, or the store itself refused the delete."""

    def __init__(self, alg: str, digest: str, reason: str, deleted_nothing: bool = True):
        outcome = "nothing of it was deleted" if deleted_nothing else "part of it may already be gone"
        super().__init__(f"{alg} {digest} cannot be disposed of: {reason}; {outcome}")
        self.alg, self.digest, self.reason, self.deleted_nothing = alg, digest, reason, deleted_nothing


class RetentionUnavailable(MediaError):
    """The store could enforce retention but is not set up for it (an S3 bucket without object
    lock): refused loudly, never answered as if the item were kept."""


# ------------------------------------------------------------------------------------ validation

_HEX = re.compile(r"[0-9a-f]+")


def algorithm(alg: str) -> Algorithm:
    try:
        return ALGORITHMS[alg]
    except (KeyError, TypeError):
        raise ValueError(f"unsupported hash algorithm {alg!r}; known: {sorted(ALGORITHMS)}") from None


def validate_digest(alg: str, digest: str) -> Algorithm:
    a = algorithm(alg)
    if not (isinstance(digest, str) and len(digest) == a.hex_length and _HEX.fullmatch(digest)):
        raise ValueError(f"a {alg} digest is {a.hex_length} lowercase hexadecimal digits")
    return a


def validate_upload_id(upload_id: str) -> str:
    """Upload ids are server-made UUIDs in canonical form; nothing else becomes a key segment."""
    try:
        canonical = str(uuid.UUID(upload_id))
    except (ValueError, TypeError, AttributeError):
        raise ValueError("an upload id is a UUID") from None
    if canonical != upload_id:
        raise ValueError("an upload id is a UUID in canonical lowercase form")
    return upload_id


def validate_derivative(name: str) -> str:
    if name not in DERIVATIVE_NAMES:
        raise ValueError(f"unknown derivative {name!r}; known: {sorted(DERIVATIVE_NAMES)}")
    return name


def original_key(alg: str, digest: str) -> str:
    a = validate_digest(alg, digest)
    return f"originals/{a.key}/{digest[:2]}/{digest[2:4]}/{digest}"


def derivative_prefix(alg: str, digest: str) -> str:
    """The folder of every derivative of one original; the trailing slash keeps it to that digest."""
    a = validate_digest(alg, digest)
    return f"derivatives/{a.key}/{digest[:2]}/{digest[2:4]}/{digest}/"


def derivative_key(alg: str, digest: str, name: str) -> str:
    return derivative_prefix(alg, digest) + validate_derivative(name)


def retention_deadline(until: datetime) -> datetime:
    """``until`` as UTC; a naive time is refused (its zone would be a guess, and a retention date
    that is eight hours off is one nobody can take back)."""
    if not isinstance(until, datetime) or until.tzinfo is None or until.utcoffset() is None:
        raise ValueError("a retention date is an aware datetime (UTC)")
    return until.astimezone(timezone.utc)


# --------------------------------------------------------------------------------------- copying


def _receive(stream: BinaryIO, out: IO[bytes], max_bytes: int, remaining: int) -> int:
    """Copy up to ``max_bytes`` from ``stream`` in bounded reads; refuse bytes past ``remaining``.

    A stream that ends early gives a shorter chunk (its bytes are still the right ones); a stream
    that raises propagates, and the caller drops what it spooled.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError("max_bytes is a non-negative integer")
    limit = min(max_bytes, remaining)
    received = 0
    while received < limit:
        buf = stream.read(min(BUFFER_SIZE, limit - received))
        if not buf:
            return received
        out.write(buf)
        received += len(buf)
    if max_bytes > remaining and stream.read(1):
        raise UploadTooLarge(remaining)
    return received


def _copy(src: IO[bytes], dst: IO[bytes] | None, hasher=None, limit: int | None = None) -> int:
    copied = 0
    while limit is None or copied < limit:
        buf = src.read(BUFFER_SIZE if limit is None else min(BUFFER_SIZE, limit - copied))
        if not buf:
            break
        if hasher is not None:
            hasher.update(buf)
        if dst is not None:
            dst.write(buf)
        copied += len(buf)
    return copied


# --------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StoredMedia:
    alg: str
    digest: str
    size: int
    key: str
    created: bool  # False when the original was already stored (a retry or a second upload)


@dataclass(frozen=True)
class StoredObject:
    """An object the store holds: an original, or a derivative (``name``) of one."""
    alg: str
    digest: str
    name: str | None
    size: int

    @property
    def key(self) -> str:
        return original_key(self.alg, self.digest) if self.name is None else derivative_key(self.alg, self.digest, self.name)


def parse_object_key(key: str) -> tuple[str, str, str | None] | None:
    """(alg, digest, derivative name or None) of an ``originals/…`` or ``derivatives/…`` key; None
    for anything else (uploads, temporary files, objects that are not ours)."""
    parts = key.split("/")
    by_key = {a.key: a for a in ALGORITHMS.values()}
    if len(parts) == 5 and parts[0] == "originals" and parts[1] in by_key:
        alg, digest, name = by_key[parts[1]], parts[4], None
    elif len(parts) == 6 and parts[0] == "derivatives" and parts[1] in by_key:
        alg, digest, name = by_key[parts[1]], parts[4], parts[5]
        if name not in DERIVATIVE_NAMES:
            return None
    else:
        return None
    if len(digest) != alg.hex_length or parts[2] != digest[:2] or parts[3] != digest[2:4] \
            or any(c not in "0123456789abcdef" for c in digest):
        return None
    return alg.name, digest, name


@dataclass(frozen=True)
class UploadState:
    """An upload as the store holds it, for the sweeper (fieldapp.media.sweep)."""

    upload_id: str
    completed: bool
    last_activity: datetime  # UTC: the newest write to any part of the upload's state


@dataclass
class Swept:
    """What a sweep of temporary files removed (or, in a dry run, would remove)."""

    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size


# ------------------------------------------------------------------------------------- interface


@runtime_checkable
class MediaStorage(Protocol):
    def begin(self, upload_id: str, alg: str, digest: str, size: int) -> None:
        """Declare an upload; beginning an existing one with the same declaration keeps its bytes."""

    def offset(self, upload_id: str) -> int:
        """Bytes durably held for the upload, the same from every host and after restarts."""

    def append(self, upload_id: str, expected_offset: int, stream: BinaryIO, max_bytes: int) -> int:
        """Add one chunk (at most ``max_bytes``) at ``expected_offset``; return the new offset.

        Raises :class:`OffsetMismatch` when ``expected_offset`` is not the held offset.
        """

    def complete(self, upload_id: str) -> StoredMedia:
        """Verify size and hash, store the original under its content-addressed key."""

    def abort(self, upload_id: str) -> None: ...

    def exists(self, alg: str, digest: str) -> bool: ...

    def size(self, alg: str, digest: str) -> int: ...

    def open(self, alg: str, digest: str, start: int = 0) -> BinaryIO:
        """A streaming reader of the original from byte ``start`` on; the caller closes it.
        Starting later costs nothing on either backend (a seek, an S3 Range request), so a video
        player seeking in a 4 GB recording reads only what it shows."""

    def put_derivative(self, alg: str, digest: str, name: str, data: bytes) -> None: ...

    def put_original_file(self, alg: str, digest: str, path: str | os.PathLike) -> bool:
        """Store the local file at ``path`` as the original of (``alg``, ``digest``), streaming it
        (footage is never held in memory). The caller has ALREADY verified that the file has that
        hash: nothing here checks it. False, and nothing done, when that original is already
        stored: an original is never overwritten. Atomic: the original appears whole or not at
        all. ``path`` stays the caller's: the original is a copy of it."""

    def staging_dir(self) -> Path:
        """A local folder for a file being received whole (footage hashed while it is copied):
        on the originals' own file system for the local backend, so :meth:`adopt_staged_original`
        is a rename; the system's temporary folder for S3. Swept of what a killed host leaves."""

    def adopt_staged_original(self, alg: str, digest: str, staged: str | os.PathLike) -> bool:
        """Make a file the caller wrote (and fsynced) in :meth:`staging_dir`, and verified as the
        original of (``alg``, ``digest``), that original; the staged file is gone afterwards either
        way. False when the original was already stored (never overwritten)."""

    def get_derivative(self, alg: str, digest: str, name: str) -> bytes: ...

    def probe(self, timeout: float = 2.0) -> None:
        """Raise unless the store answers now (readiness): cheap, no retries, bounded by ``timeout``
        where the backend can bound it."""

    def objects(self) -> Iterator[StoredObject]:
        """Every original and derivative held, in no particular order (backups and the media audit)."""
        ...

    def uploads(self) -> Iterator[UploadState]:
        """Every upload that has state in the store, with its age; removed with ``abort``."""

    def sweep_temporary(self, older_than: datetime, dry_run: bool = False) -> Swept:
        """Remove the temporary objects of interrupted work (a host killed while receiving a chunk
        or assembling an original) last written before ``older_than``; never an upload's state."""

    # -- retention (art. 26)
    def set_legal_hold(self, alg: str, digest: str, on: bool) -> bool:
        """Put (``on``) or lift a legal hold on the original and the derivatives it has now, so
        that nobody, not even a bucket administrator with delete rights, can delete them while it is
        on (permanent items). True when the store enforces it; False when the backend has no such
        control (a local folder: nothing done). :class:`MediaNotFound` when there is no original;
        :class:`RetentionUnavailable` when the store could but is not set up for it. A derivative
        made later is not held by an earlier call: hold again after making one."""

    def retain_until(self, alg: str, digest: str, until: datetime) -> bool:
        """Keep the original at least until ``until`` (aware; stored as UTC) in compliance mode,
        which nobody can shorten or lift: the six-month minimum. Never shortens a retention already
        set (the later date stays). Permanent items get :meth:`set_legal_hold` instead, so that a
        six-month item stays disposable, after approval, once its date has passed. True when the
        store enforces it (a date already past needs nothing and is True too); False when the
        backend has no such control. :class:`MediaNotFound` when there is no original."""

    def dispose_original(self, alg: str, digest: str) -> int:
        """Remove the original and every derivative of it for good, every stored version of
        each; return the bytes freed. The ONLY delete of an original in the code base: the approved
        disposal's purge calls it and nothing else does. Raises :class:`RetentionLocked`, deleting
        nothing, while a legal hold or an unexpired retention covers any of it. Nothing stored:
        0 (a purge may be retried)."""

    def ensure_retention_setup(self, noncurrent_days: int = 30, upload_days: int = 7) -> None:
        """Ready the store for retention, idempotently: on S3 versioning and object lock on the
        bucket (or :class:`RetentionUnavailable` saying it must be made again with object lock),
        and lifecycle rules that clean up what versioning and interrupted uploads leave. A local
        folder needs nothing."""
