"""Media in a local folder every app host mounts (the default: ``var/media``).

An upload's chunk files stay in ``uploads/<id>/`` until ``complete`` streams them, in order,
through the hash into one temporary file in ``tmp/`` that is then linked under its
content-addressed key (no overwrite). That costs one extra write of the file at completion.
A file handed over whole (``put_original_file``) is copied into ``tmp/`` by the kernel, then
linked under its key (never hard-linked from the caller's folder: the original must not share
its bytes with a file somebody else may write).
``tmp/`` is on the same file system as the originals, so every link and rename is atomic, and
what a killed host leaves there is swept without walking the whole tree.

A folder has no retention control of its own: holds and retention dates are the records' business
here (the methods say so by returning False), and the folder is protected by who may write to it.
Disposal removes the files outright.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from .base import (
    HashMismatch,
    MediaNotFound,
    OffsetMismatch,
    StoredMedia,
    StoredObject,
    parse_object_key,
    Swept,
    UnknownUpload,
    UploadIncomplete,
    UploadState,
    _copy,
    _receive,
    algorithm,
    derivative_key,
    derivative_prefix,
    original_key,
    retention_deadline,
    validate_upload_id,
)
from .uploads import _CHUNK, _canonical_upload_id, _chain_from, _check_same, _chunk_name, _declaration


# A hard link cannot be made here (another file system, too many links, not supported, or refused
# by fs.protected_hardlinks): copy instead.



def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


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
        return _chain_from(starts, lambda path: path.stat().st_size)

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
                os.link(tmp, directory / _chunk_name(held))
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

    def put_original_file(self, alg: str, digest: str, path: str | os.PathLike) -> bool:
        if self._path(original_key(alg, digest)).is_file():
            return False
        # Always a copy, never one more name for the caller's inode: a station export folder is
        # the station's, and a later write to it must not reach the original. The kernel copies
        # (copy_file_range or sendfile), so gigabytes do not pass through Python; the copy is then
        # adopted like any staged one.
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir(), prefix="original-")
        try:
            os.close(fd)
            shutil.copyfile(path, tmp)
            with open(tmp, "rb") as out:
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return self.adopt_staged_original(alg, digest, tmp)

    def staging_dir(self) -> Path:
        return self._tmp_dir()

    def adopt_staged_original(self, alg: str, digest: str, staged: str | os.PathLike) -> bool:
        final = self._path(original_key(alg, digest))
        try:
            if final.is_file():
                return False
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged, 0o444)
            try:
                os.link(staged, final)  # our own staged copy, never a caller's file
            except FileExistsError:  # stored meanwhile by another upload of the same bytes
                return False
            _fsync_dir(final.parent)
            return True
        finally:
            os.unlink(staged)

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

    # -- listing
    def objects(self) -> Iterator[StoredObject]:
        for top in ("originals", "derivatives"):
            base = self.root / top
            for folder, _dirs, files in os.walk(base):
                for name in files:
                    path = Path(folder) / name
                    found = parse_object_key(path.relative_to(self.root).as_posix())
                    if found is None:
                        continue
                    try:
                        size = path.stat().st_size
                    except FileNotFoundError:  # disposed of meanwhile
                        continue
                    yield StoredObject(found[0], found[1], found[2], size)

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
        """``tmp/`` (assembled and copied originals, derivative spools, probes) and the
        ``.incoming-`` spools of chunks and markers in each upload's folder."""
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

    # -- retention (art. 26): nothing to enforce in a folder, but the same contract otherwise
    def _require_original(self, alg: str, digest: str) -> None:
        if not self.exists(alg, digest):
            raise MediaNotFound(f"no {alg} {digest}")

    def set_legal_hold(self, alg: str, digest: str, on: bool) -> bool:
        self._require_original(alg, digest)
        return False

    def retain_until(self, alg: str, digest: str, until: datetime) -> bool:
        retention_deadline(until)  # refused here as on S3, so a caller's bug shows on either backend
        self._require_original(alg, digest)
        return False

    def dispose_original(self, alg: str, digest: str) -> int:
        # Whatever is already gone counts 0, so a purge retried after a failure part-way finishes.
        freed = _remove_file(self._path(original_key(alg, digest)))
        return freed + _remove_tree(self._path(derivative_prefix(alg, digest).rstrip("/")))

    def ensure_retention_setup(self, noncurrent_days: int = 30, upload_days: int = 7) -> None:
        return None


def _remove_file(path: Path) -> int:
    """Unlink ``path`` and make that durable; its size, or 0 when it was not there."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:  # never stored, or removed by an earlier (retried) disposal
        return 0
    _fsync_dir(path.parent)
    return size


def _remove_tree(folder: Path) -> int:
    """Remove ``folder`` and everything in it; the bytes its files held (0 when it was not there)."""
    freed = 0
    for parent, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            freed += _remove_file(Path(parent) / name)
        for name in dirs:
            os.rmdir(Path(parent) / name)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    return freed
