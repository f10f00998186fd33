"""Where media bytes live: content-addressed originals, their derivatives and resumable uploads.

One interface (:class:`MediaStorage`), two backends chosen by configuration
(:func:`storage_from_settings`): a local folder (:class:`LocalStorage`, the default) and
S3-compatible object storage (:class:`S3Storage`, boto3, endpoint configurable).

**Keys.** Every original is known by its hash, the algorithm named beside the value
(``"sha-256"`` now; SM3 can be added to :data:`ALGORITHMS` later). Keys are made here from
validated values only, never from a client-supplied name::

    originals/sha256/ab/cd/<digest>                  the original, byte for byte
    derivatives/sha256/ab/cd/<digest>/<name>         preview, thumb, phone-preview
    uploads/<upload-id>/...                          state of one resumable upload

**Resumable uploads.** ``begin`` declares (upload id, algorithm, digest, size); ``append`` adds one
chunk at the offset the server holds; ``complete`` verifies size and hash and stores the original.
All state of an upload lives where every app host reaches it (the media folder, or the bucket),
never in a process, so ``offset`` survives restarts and is the same from every host, and a resumed
upload may land on any host.

A chunk lands whole or not at all. The incoming body is first spooled to a temporary file in
bounded reads (:data:`BUFFER_SIZE`); if the stream raises midway (a cut connection) the temporary
file is dropped and the held offset stays where it was. Only a completely received chunk is then
published, under the name ``chunk-<start offset>``, with a create-if-absent operation
(``os.link`` locally, ``PutObject`` with ``If-None-Match: *`` on S3). The held offset is the end of
the contiguous chain of published chunks starting at 0, so publishing *is* the commit: no separate
counter can disagree with the bytes, and two hosts racing on the same offset cannot both win (the
loser gets :class:`OffsetMismatch` with the server's figure).

*Local backend*: the chunk files stay in ``uploads/<id>/`` until ``complete`` streams them, in
order, through the hash into one temporary file that is then linked under its content-addressed key
(no overwrite). That costs one extra write of the file at completion.

*S3 backend*: chunks are buffered as separate objects ``uploads/<id>/chunk-<start>`` until the
chain from the end of the last part holds at least 5 MiB (the S3 minimum part size); those chunks
then become the next multipart part (``UploadPart`` from the chunk bytes, no server-side copy),
a part record ``uploads/<id>/part-<n>-<start>-<length>`` is written and the chunk objects are
deleted. The chain reaching the declared size forms the last part, which may be smaller. The
grouping rule (shortest prefix of the chain that reaches 5 MiB, or the whole rest when it ends the
upload) depends only on the immutable chunk chain, so a part formed twice (a retry, another host,
a crash between ``UploadPart`` and its record) has the same number and the same bytes. A host that
dies loses at most the chunk it was receiving.

**Verification.** Python's hash objects cannot be persisted, so ``complete`` recomputes the hash by
streaming the assembled bytes: locally while concatenating the chunks; on S3 by completing the
multipart upload into a staging object ``uploads/<id>/assembled`` and reading it back (one GET of
the whole file through the app host), then copying it server-side to the content-addressed key (no
bytes through the app host). A mismatch raises :class:`HashMismatch`, discards the upload, and
nothing is stored under the declared digest. The bytes are verified even when the original is
already stored (the upload then stores nothing new): a client cannot claim a file it does not have
by naming its hash.

After ``complete`` an upload keeps a tiny record (``upload.json`` and ``completed``), so that a
repeated ``complete`` (a lost response) answers the same; ``abort`` removes it.

**Sweeping.** ``uploads`` lists every upload with its last activity and ``sweep_temporary``
removes what interrupted work left behind (a chunk being spooled, an original being assembled),
so that `flask sweep-uploads` (:mod:`fieldapp.media.sweep`) can remove abandoned uploads, the
records of completed ones and a killed host's leftovers by age, on either backend.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, runtime_checkable

log = logging.getLogger(__name__)

BUFFER_SIZE = 64 * 1024
"""Bytes per read from a request body and per copy step: no body is ever held whole in memory."""

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's minimum multipart part size (every part but the last)."""

MAX_PARTS = 10_000
DERIVATIVE_NAMES = frozenset({"preview", "thumb", "phone-preview"})


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


# ------------------------------------------------------------------------------------ validation

_HEX = re.compile(r"[0-9a-f]+")
_CHUNK = re.compile(r"chunk-(\d{20})")
_PART = re.compile(r"part-(\d{5})-(\d{20})-(\d{20})")


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


def derivative_key(alg: str, digest: str, name: str) -> str:
    a = validate_digest(alg, digest)
    return f"derivatives/{a.key}/{digest[:2]}/{digest[2:4]}/{digest}/{validate_derivative(name)}"


def _declaration(upload_id: str, alg: str, digest: str, size: int) -> dict:
    validate_upload_id(upload_id)
    validate_digest(alg, digest)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size is a non-negative integer")
    return {"alg": alg, "digest": digest, "size": size}


def _check_same(existing: dict, wanted: dict) -> None:
    if {k: existing.get(k) for k in wanted} != wanted:
        raise UploadConflict("this upload id was begun with a different algorithm, digest or size")


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


@dataclass(frozen=True)
class StoredMedia:
    alg: str
    digest: str
    size: int
    key: str
    created: bool  # False when the original was already stored (a retry or a second upload)


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

    def get_derivative(self, alg: str, digest: str, name: str) -> bytes: ...

    def probe(self, timeout: float = 2.0) -> None:
        """Raise unless the store answers now (readiness): cheap, no retries, bounded by ``timeout``
        where the backend can bound it."""

    def uploads(self) -> Iterator[UploadState]:
        """Every upload that has state in the store, with its age; removed with ``abort``."""

    def sweep_temporary(self, older_than: datetime, dry_run: bool = False) -> Swept:
        """Remove the temporary objects of interrupted work (a host killed while receiving a chunk
        or assembling an original) last written before ``older_than``; never an upload's state."""


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


def _canonical_upload_id(name: str) -> str | None:
    try:
        return validate_upload_id(name)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------- local


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` atomically; False (and nothing written) if it already exists."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        os.unlink(tmp)


class LocalStorage:
    """Media in a folder every app host mounts (the default: ``var/media``).

    Partial uploads are chunk files ``uploads/<id>/chunk-<start>`` in that same folder, so an
    upload resumed on another host or after a restart continues from the last whole chunk.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- paths
    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _upload_dir(self, upload_id: str) -> Path:
        return self.root / "uploads" / validate_upload_id(upload_id)

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def _meta(self, upload_id: str) -> tuple[Path, dict]:
        directory = self._upload_dir(upload_id)
        try:
            meta = json.loads((directory / "upload.json").read_bytes())
        except FileNotFoundError:
            raise UnknownUpload(f"no upload {upload_id}") from None
        return directory, meta

    @staticmethod
    def _chain(directory: Path) -> tuple[list[tuple[int, int, Path]], int]:
        starts: dict[int, Path] = {}
        for entry in os.scandir(directory):
            match = _CHUNK.fullmatch(entry.name)
            if match:
                starts[int(match[1])] = Path(entry.path)
        chain: list[tuple[int, int, Path]] = []
        position = 0
        while position in starts:
            length = starts[position].stat().st_size
            if length == 0:
                break
            chain.append((position, length, starts[position]))
            position += length
        return chain, position

    def _held(self, directory: Path, meta: dict) -> int:
        if (directory / "completed").exists():
            return meta["size"]
        return self._chain(directory)[1]

    # -- uploads
    def begin(self, upload_id: str, alg: str, digest: str, size: int) -> None:
        wanted = _declaration(upload_id, alg, digest, size)
        directory = self._upload_dir(upload_id)
        directory.mkdir(parents=True, exist_ok=True)
        if not _write_new(directory / "upload.json", json.dumps(wanted).encode()):
            _check_same(self._meta(upload_id)[1], wanted)

    def offset(self, upload_id: str) -> int:
        directory, meta = self._meta(upload_id)
        return self._held(directory, meta)

    def append(self, upload_id: str, expected_offset: int, stream: BinaryIO, max_bytes: int) -> int:
        directory, meta = self._meta(upload_id)
        held = self._held(directory, meta)
        if expected_offset != held:
            raise OffsetMismatch(held)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                received = _receive(stream, out, max_bytes, meta["size"] - held)
                out.flush()
                os.fsync(out.fileno())
            if received == 0:
                return held
            try:
                os.link(tmp, directory / f"chunk-{held:020d}")
            except FileExistsError:  # another host landed a chunk at this offset first
                raise OffsetMismatch(self._held(directory, meta)) from None
            _fsync_dir(directory)
        finally:
            os.unlink(tmp)
        return held + received

    def complete(self, upload_id: str) -> StoredMedia:
        directory, meta = self._meta(upload_id)
        alg, digest, size = meta["alg"], meta["digest"], meta["size"]
        key = original_key(alg, digest)
        final = self._path(key)
        if (directory / "completed").exists():
            if final.is_file():
                return StoredMedia(alg, digest, size, key, created=False)
            raise UnknownUpload(f"upload {upload_id} was completed but its original is gone")
        hasher = algorithm(alg).new()
        already = final.is_file()
        tmp: str | None = None
        try:
            chain, held = self._chain(directory)
            if held != size:
                raise UploadIncomplete(held, size)
            if already:  # still verify: naming a stored hash does not prove having its bytes
                for _, length, path in chain:
                    with open(path, "rb") as src:
                        _copy(src, None, hasher, length)
            else:
                fd, tmp = tempfile.mkstemp(dir=self._tmp_dir(), prefix="assembling-")
                with os.fdopen(fd, "wb") as out:
                    for _, length, path in chain:
                        with open(path, "rb") as src:
                            _copy(src, out, hasher, length)
                    out.flush()
                    os.fsync(out.fileno())
        except (FileNotFoundError, UploadIncomplete):
            # Chunks gone: another host completed this upload meanwhile (a retried "complete"
            # reaching a second host while the first still runs) after verifying these same bytes.
            if tmp is not None:
                os.unlink(tmp)
            if (directory / "completed").exists() and final.is_file():
                return StoredMedia(alg, digest, size, key, created=False)
            raise
        actual = hasher.hexdigest()
        created = False
        try:
            if actual != digest:
                self.abort(upload_id)
                raise HashMismatch(alg, digest, actual)
            if tmp is not None:
                os.chmod(tmp, 0o444)
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(tmp, final)
                    created = True
                except FileExistsError:  # stored meanwhile by another upload of the same bytes
                    pass
                _fsync_dir(final.parent)
        finally:
            if tmp is not None:
                os.unlink(tmp)
        _write_new(directory / "completed", b"")
        for entry in os.scandir(directory):
            # Only the chunks: a temporary file here is another host's, in use (its "completed").
            if _CHUNK.fullmatch(entry.name):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:  # removed by a host completing the same upload at once
                    pass
        return StoredMedia(alg, digest, size, key, created)

    def abort(self, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    # -- originals and derivatives
    def exists(self, alg: str, digest: str) -> bool:
        return self._path(original_key(alg, digest)).is_file()

    def size(self, alg: str, digest: str) -> int:
        try:
            return self._path(original_key(alg, digest)).stat().st_size
        except FileNotFoundError:
            raise MediaNotFound(f"no {alg} {digest}") from None

    def open(self, alg: str, digest: str, start: int = 0) -> BinaryIO:
        try:
            reader = open(self._path(original_key(alg, digest)), "rb")
        except FileNotFoundError:
            raise MediaNotFound(f"no {alg} {digest}") from None
        if start:
            reader.seek(start)
        return reader

    def put_derivative(self, alg: str, digest: str, name: str, data: bytes) -> None:
        target = self._path(derivative_key(alg, digest, name))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Spooled in tmp/ (same file system, so the rename is atomic): what a killed host leaves
        # there is swept, without walking the whole derivatives tree.
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir(), prefix="derivative-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)  # a derivative may be made again; the newest wins
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    def get_derivative(self, alg: str, digest: str, name: str) -> bytes:
        try:
            return self._path(derivative_key(alg, digest, name)).read_bytes()
        except FileNotFoundError:
            raise MediaNotFound(f"no {name} of {alg} {digest}") from None

    def probe(self, timeout: float = 2.0) -> None:
        """Write, sync and remove a small file: a missing, read-only or full folder fails here.
        A hung network mount hangs here; the caller bounds the wait (see fieldapp.ops.health)."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir(), prefix="probe-")
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)

    # -- sweeping
    def uploads(self) -> Iterator[UploadState]:
        try:
            entries = list(os.scandir(self.root / "uploads"))
        except FileNotFoundError:
            return
        for entry in entries:
            upload_id = _canonical_upload_id(entry.name)
            if upload_id is None or not entry.is_dir(follow_symlinks=False):
                continue  # not ours: left alone
            try:
                # The folder's own time changes when a chunk or marker is added to it.
                newest = entry.stat(follow_symlinks=False).st_mtime
                completed = False
                for leaf in os.scandir(entry.path):
                    newest = max(newest, leaf.stat(follow_symlinks=False).st_mtime)
                    completed = completed or leaf.name == "completed"
            except FileNotFoundError:  # removed meanwhile (completed or swept by another host)
                continue
            yield UploadState(upload_id, completed, _utc(newest))

    def sweep_temporary(self, older_than: datetime, dry_run: bool = False) -> Swept:
        """``tmp/`` (assembled copies, derivative spools, probes) and the ``.incoming-`` spools
        of chunks and markers in each upload's folder."""
        swept = Swept()
        folders = [self.root / "tmp"]
        try:
            folders += [Path(e.path) for e in os.scandir(self.root / "uploads")
                        if _canonical_upload_id(e.name) and e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            pass
        for folder in folders:
            in_tmp = folder.name == "tmp"
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not (in_tmp or entry.name.startswith(".incoming-")):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    if not entry.is_file(follow_symlinks=False) or _utc(info.st_mtime) >= older_than:
                        continue
                    if not dry_run:
                        os.unlink(entry.path)
                except FileNotFoundError:  # finished (renamed or removed) meanwhile
                    continue
                swept.add(info.st_size)
        return swept


# -------------------------------------------------------------------------------------------- S3


@dataclass
class _S3Upload:
    meta: dict
    parts: list[tuple[int, int, int]] = field(default_factory=list)  # (number, start, length)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # chain from parts_end
    stale_chunks: list[int] = field(default_factory=list)  # starts behind parts_end: garbage
    completed: bool = False
    assembled: bool = False

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


class _ChainChanged(Exception):
    """A chunk vanished while forming a part: another host formed it first; read the state again."""


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


class S3Storage:
    """Media in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), reached with boto3."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        *,
        client: Any = None,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.region = region or "us-east-1"
        prefix = (prefix or "").strip("/")
        if prefix and any(part in {"", ".", ".."} for part in prefix.split("/")):
            raise ValueError("the S3 prefix has an empty, '.' or '..' segment")
        self.prefix = f"{prefix}/" if prefix else ""
        self._connection = {"region_name": self.region, "endpoint_url": endpoint_url or None,
                            "aws_access_key_id": access_key, "aws_secret_access_key": secret_key,
                            "addressing_style": "path" if endpoint_url else "auto"}
        self._injected_client = client is not None
        self._probe_clients: dict[float, Any] = {}
        if client is None:
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                # Checksums only where S3 requires them: several S3-compatible servers refuse the
                # newer default trailing checksums. Integrity is checked end to end by the hash.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            with _SESSION_LOCK:  # one session: its loaded service models are reused by each client
                global _SESSION
                if _SESSION is None:
                    _SESSION = boto3.session.Session()
                client = _SESSION.client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=endpoint_url or None,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret_key,
                    config=config,
                )
        self.client = client

    # -- helpers
    def _k(self, key: str) -> str:
        return self.prefix + key

    def _u(self, upload_id: str, leaf: str = "") -> str:
        return self._k(f"uploads/{validate_upload_id(upload_id)}/{leaf}")

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _is(self, exc: Exception, *codes: str) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and self._code(exc) in codes

    _NOT_FOUND = ("NoSuchKey", "404", "NotFound")
    _PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict")

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                return None
            raise

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            if batch:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )

    def _list(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix) :]] = item["Size"]
        return found

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (deployments may instead create it with its policy)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:
            if not self._is(exc, "404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except Exception as exc:
            if not self._is(exc, "BucketAlreadyOwnedByYou"):
                raise

    def _state(self, upload_id: str) -> _S3Upload:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._u(upload_id, "upload.json"))
            meta = json.loads(body["Body"].read())
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise UnknownUpload(f"no upload {upload_id}") from None
            raise
        state = _S3Upload(meta)
        chunks: dict[int, int] = {}
        parts: dict[int, tuple[int, int]] = {}
        for leaf, size in self._list(self._u(upload_id)).items():
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
        while chunks.get(position):
            state.chunks.append((position, chunks[position]))
            position += chunks[position]
        return state

    # -- uploads
    def begin(self, upload_id: str, alg: str, digest: str, size: int) -> None:
        wanted = _declaration(upload_id, alg, digest, size)
        try:
            _check_same(self._state(upload_id).meta, wanted)
            return
        except UnknownUpload:
            pass
        multipart = None
        if size > 0:
            multipart = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._u(upload_id, "assembled")
            )["UploadId"]
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._u(upload_id, "upload.json"),
                Body=json.dumps({**wanted, "multipart": multipart}).encode(),
                IfNoneMatch="*",
            )
        except Exception as exc:
            if not self._is(exc, *self._PRECONDITION):
                raise
            if multipart:  # another host began it at the same moment: use theirs
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._u(upload_id, "assembled"), UploadId=multipart
                )
            _check_same(self._state(upload_id).meta, wanted)

    def offset(self, upload_id: str) -> int:
        return self._state(upload_id).held

    def describe(self, upload_id: str) -> dict:
        """The upload's stored state, for operators and tests."""
        state = self._state(upload_id)
        return {
            **state.meta,
            "held": state.held,
            "completed": state.completed,
            "parts": [{"number": n, "start": s, "length": ln} for n, s, ln in state.parts],
            "buffered": [{"start": s, "length": ln} for s, ln in state.chunks],
        }

    def append(self, upload_id: str, expected_offset: int, stream: BinaryIO, max_bytes: int) -> int:
        state = self._state(upload_id)
        held = state.held
        if expected_offset != held:
            raise OffsetMismatch(held)
        with tempfile.TemporaryFile() as spool:
            received = _receive(stream, spool, max_bytes, state.size - held)
            if received == 0:
                return held
            spool.seek(0)
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._u(upload_id, f"chunk-{held:020d}"),
                    Body=spool,
                    ContentLength=received,
                    IfNoneMatch="*",
                )
            except Exception as exc:
                if self._is(exc, *self._PRECONDITION):
                    raise OffsetMismatch(self.offset(upload_id)) from None
                raise
            state.chunks.append((held, received))
            # The chunk is durable now; forming parts is deferred work that any later append or
            # complete redoes, so its failure must not fail this chunk.
            try:
                self._form_parts(upload_id, state, {held: spool})
            except Exception:
                log.warning("upload %s: forming a multipart part deferred", upload_id, exc_info=True)
        return held + received

    def _form_parts(self, upload_id: str, state: _S3Upload, local: dict[int, IO[bytes]]) -> _S3Upload:
        for _attempt in range(5):
            try:
                if state.stale_chunks:
                    self._delete([self._u(upload_id, f"chunk-{s:020d}") for s in state.stale_chunks])
                    state.stale_chunks = []
                while (group := state.next_group()) is not None:
                    self._upload_part(upload_id, state, group, local)
                return state
            except _ChainChanged:
                state = self._state(upload_id)
        raise MediaError(f"upload {upload_id}: the chunk chain kept changing while forming parts")

    def _upload_part(
        self, upload_id: str, state: _S3Upload, group: list[tuple[int, int]], local: dict
    ) -> None:
        number = len(state.parts) + 1
        if number > MAX_PARTS:
            raise MediaError(f"upload {upload_id} needs more than {MAX_PARTS} parts")
        start, total = group[0][0], sum(length for _, length in group)
        with tempfile.TemporaryFile() as body:
            if len(group) == 1 and start in local:
                source: IO[bytes] = local[start]
            else:
                for chunk_start, length in group:
                    if chunk_start in local:
                        local[chunk_start].seek(0)
                        copied = _copy(local[chunk_start], body, limit=length)
                    else:
                        try:
                            obj = self.client.get_object(
                                Bucket=self.bucket, Key=self._u(upload_id, f"chunk-{chunk_start:020d}")
                            )
                        except Exception as exc:
                            if self._is(exc, *self._NOT_FOUND):
                                raise _ChainChanged from None
                            raise
                        with obj["Body"] as stream:
                            copied = _copy(stream, body)
                    if copied != length:
                        raise _ChainChanged
                source = body
            source.seek(0)
            etag = self.client.upload_part(
                Bucket=self.bucket,
                Key=self._u(upload_id, "assembled"),
                UploadId=state.meta["multipart"],
                PartNumber=number,
                Body=source,
                ContentLength=total,
            )["ETag"]
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._u(upload_id, f"part-{number:05d}-{start:020d}-{total:020d}"),
            Body=json.dumps({"etag": etag}).encode(),
        )
        self._delete([self._u(upload_id, f"chunk-{s:020d}") for s, _ in group])
        state.parts.append((number, start, total))
        state.chunks = state.chunks[len(group) :]

    def complete(self, upload_id: str) -> StoredMedia:
        state = self._state(upload_id)
        alg, digest, size = state.meta["alg"], state.meta["digest"], state.size
        key = original_key(alg, digest)
        if state.completed:
            if self._head(self._k(key)) is not None:
                return StoredMedia(alg, digest, size, key, created=False)
            raise UnknownUpload(f"upload {upload_id} was completed but its original is gone")
        if state.held != size:
            raise UploadIncomplete(state.held, size)
        staging = self._u(upload_id, "assembled")
        try:
            if not state.assembled:
                if size == 0:
                    self.client.put_object(Bucket=self.bucket, Key=staging, Body=b"")
                else:
                    state = self._form_parts(upload_id, state, {})
                    self._complete_multipart(upload_id, state, staging)
            hasher = algorithm(alg).new()
            obj = self.client.get_object(Bucket=self.bucket, Key=staging)
            with obj["Body"] as stream:
                received = _copy(stream, None, hasher)
            actual = hasher.hexdigest()
            if actual != digest or received != size:
                self.abort(upload_id)
                raise HashMismatch(alg, digest, actual)
            created = False
            if self._head(self._k(key)) is None:
                from boto3.s3.transfer import TransferConfig

                # Server-side: no bytes pass through this host. One CopyObject up to 5 GiB.
                self.client.copy(
                    {"Bucket": self.bucket, "Key": staging},
                    self.bucket,
                    self._k(key),
                    Config=TransferConfig(
                        multipart_threshold=5 * 1024**3, multipart_chunksize=1024**3, use_threads=False
                    ),
                )
                created = True
        except HashMismatch:
            raise
        except Exception:
            # Staging, parts or chunks gone: another host completed this upload meanwhile (a
            # retried "complete" reaching a second host while the first still runs), after
            # verifying these same bytes, and removed them.
            if self._head(self._u(upload_id, "completed")) is not None and self._head(self._k(key)) is not None:
                return StoredMedia(alg, digest, size, key, created=False)
            raise
        self.client.put_object(Bucket=self.bucket, Key=self._u(upload_id, "completed"), Body=b"")
        leftovers = self._list(self._u(upload_id))
        self._delete(
            [self._u(upload_id, leaf) for leaf in leftovers if leaf not in {"upload.json", "completed"}]
        )
        return StoredMedia(alg, digest, size, key, created)

    def _complete_multipart(self, upload_id: str, state: _S3Upload, staging: str) -> None:
        multipart = state.meta["multipart"]
        etags: dict[int, tuple[str, int]] = {}
        try:
            for page in self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=staging, UploadId=multipart
            ):
                for part in page.get("Parts", []):
                    etags[part["PartNumber"]] = (part["ETag"], part["Size"])
            for number, _start, length in state.parts:
                if etags.get(number, ("", -1))[1] != length:
                    raise MediaError(f"upload {upload_id}: part {number} is not the recorded size")
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=staging,
                UploadId=multipart,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n][0]} for n, _, _ in state.parts]
                },
            )
        except Exception as exc:
            # Completed by an earlier attempt (or another host) that stopped before recording it.
            if self._is(exc, "NoSuchUpload") and self._head(staging) is not None:
                return
            raise

    def _meta(self, upload_id: str) -> dict | None:
        """The upload's declaration (upload.json), or None when there is none."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._u(upload_id, "upload.json"))
            return json.loads(body["Body"].read())
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                return None
            raise

    def abort(self, upload_id: str) -> None:
        # Only the declaration is read: an upload whose chunk records are inconsistent can still go.
        meta = self._meta(upload_id) or {}
        if meta.get("multipart"):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._u(upload_id, "assembled"), UploadId=meta["multipart"]
                )
            except Exception as exc:
                if not self._is(exc, "NoSuchUpload", *self._NOT_FOUND):
                    raise
        self._delete(list(self._u(upload_id, leaf) for leaf in self._list(self._u(upload_id))))

    # -- originals and derivatives
    def exists(self, alg: str, digest: str) -> bool:
        return self._head(self._k(original_key(alg, digest))) is not None

    def size(self, alg: str, digest: str) -> int:
        head = self._head(self._k(original_key(alg, digest)))
        if head is None:
            raise MediaNotFound(f"no {alg} {digest}")
        return int(head["ContentLength"])

    def open(self, alg: str, digest: str, start: int = 0) -> BinaryIO:
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(original_key(alg, digest)), **extra)[
                "Body"
            ]
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise MediaNotFound(f"no {alg} {digest}") from None
            raise

    def put_derivative(self, alg: str, digest: str, name: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._k(derivative_key(alg, digest, name)), Body=bytes(data)
        )

    def get_derivative(self, alg: str, digest: str, name: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._k(derivative_key(alg, digest, name)))
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise MediaNotFound(f"no {name} of {alg} {digest}") from None
            raise
        with obj["Body"] as body:
            return body.read()

    def probe(self, timeout: float = 2.0) -> None:
        """List at most one key under our uploads prefix, once, with connect and read timeouts of
        ``timeout`` and no retries: the app's own client retries with back-off for a minute or
        more against a dead endpoint. (A listing under our prefix, not a HEAD of the bucket: it
        needs exactly the permission the app uses, which a policy may grant for the prefix only.)"""
        self._probe_client(timeout).list_objects_v2(Bucket=self.bucket, Prefix=self._k("uploads/"), MaxKeys=1)

    # -- sweeping
    def uploads(self) -> Iterator[UploadState]:
        base = self._k("uploads/")
        found: dict[str, tuple[bool, datetime]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                name, _, leaf = item["Key"][len(base):].partition("/")
                upload_id = _canonical_upload_id(name)
                if upload_id is None:
                    continue  # not ours: left alone
                completed, newest = found.get(upload_id, (False, item["LastModified"]))
                found[upload_id] = (completed or leaf == "completed", max(newest, item["LastModified"]))
        for upload_id, (completed, newest) in found.items():
            yield UploadState(upload_id, completed, newest)

    def sweep_temporary(self, older_than: datetime, dry_run: bool = False) -> Swept:
        """Multipart uploads no upload's declaration names: a host killed between creating one and
        writing upload.json, or a begin that lost a race and died before aborting its own. (A
        declared upload's multipart upload goes with the upload; the bucket has no other temporary
        objects: chunks are spooled in anonymous temporary files on the host.)"""
        swept = Swept()
        base = self._k("uploads/")
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=base):
            for pending in page.get("Uploads", []):
                name, _, leaf = pending["Key"][len(base):].partition("/")
                upload_id = _canonical_upload_id(name)
                if upload_id is None or leaf != "assembled" or pending["Initiated"] >= older_than:
                    continue
                if (self._meta(upload_id) or {}).get("multipart") == pending["UploadId"]:
                    continue
                if not dry_run:
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=pending["Key"],
                                                           UploadId=pending["UploadId"])
                    except Exception as exc:
                        if not self._is(exc, "NoSuchUpload", *self._NOT_FOUND):
                            raise
                swept.add(0)
        return swept

    def _probe_client(self, timeout: float) -> Any:
        if self._injected_client:
            return self.client
        if timeout not in self._probe_clients:
            from botocore.config import Config

            connection = dict(self._connection)
            addressing = connection.pop("addressing_style")
            config = Config(signature_version="s3v4", s3={"addressing_style": addressing},
                            connect_timeout=timeout, read_timeout=timeout,
                            retries={"total_max_attempts": 1, "mode": "standard"})
            with _SESSION_LOCK:
                self._probe_clients[timeout] = _SESSION.client("s3", config=config, **connection)
        return self._probe_clients[timeout]


# ---------------------------------------------------------------------------------- configuration


def storage_from_settings(settings: Any) -> MediaStorage:
    """The backend named by ``settings.media_backend`` ("local", the default, or "s3")."""
    backend = (getattr(settings, "media_backend", None) or "local").strip().lower()
    if backend == "local":
        media_dir = getattr(settings, "media_dir", None)
        if media_dir is None:
            media_dir = Path(getattr(settings, "var_dir", "var")) / "media"
        return LocalStorage(Path(media_dir))
    if backend == "s3":
        bucket = getattr(settings, "s3_bucket", None)
        if not bucket:
            raise ValueError("media_backend 's3' needs s3_bucket")
        return S3Storage(
            bucket=bucket,
            endpoint_url=getattr(settings, "s3_endpoint", None) or None,
            region=getattr(settings, "s3_region", None) or "us-east-1",
            access_key=getattr(settings, "s3_access_key", None) or None,
            secret_key=getattr(settings, "s3_secret_key", None) or None,
            prefix=getattr(settings, "s3_prefix", "") or "",
        )
    raise ValueError(f"unknown media_backend {backend!r}: 'local' or 's3'")
