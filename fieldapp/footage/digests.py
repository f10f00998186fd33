"""Every byte of a footage file, hashed once: SHA-256 (how media storage knows it), SM3 (the
national standard hash kept beside it, GB/T 32905) and MD5 (what many stations write, computed only
when the station gave one to check), in one read — the same read that writes the staged copy media
storage adopts as the original, so a file is read once, not once to hash and again to store.
OpenSSL does the work (``hashlib``) and releases the GIL on large updates, so files are staged in
parallel threads."""
from __future__ import annotations

import hashlib
from collections import deque
import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_BYTES = 4 * 1024 * 1024
# Swept like any temporary copy of an original a killed host leaves (media.sweep).
STAGED_PREFIX = "fieldapp-original-"


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    sm3: str
    md5: str | None  # None: not computed (the station gave no MD5 to check)


def digest_stream(stream: BinaryIO, *, md5: bool = True, copy_to: BinaryIO | None = None) -> Digests:
    sha256, sm3 = hashlib.sha256(), hashlib.new("sm3")
    md5_hash = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    while chunk := stream.read(READ_BYTES):
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
        sha256.update(chunk)
        sm3.update(chunk)
        if md5_hash is not None:
            md5_hash.update(chunk)
    return Digests(size, sha256.hexdigest(), sm3.hexdigest(), md5_hash.hexdigest() if md5_hash else None)


@dataclass(frozen=True)
class Staged:
    source: Path
    digests: Digests
    copy: Path | None  # the staged copy (None when only hashed)


def stage_file(path: Path, staging_dir: Path | None, *, md5: bool) -> Staged:
    """Hash ``path`` and, given a staging folder, write its copy there in the same read, made
    durable (fsync) before anyone may call it stored."""
    if staging_dir is None:
        with open(path, "rb", buffering=0) as f:
            return Staged(path, digest_stream(f, md5=md5), None)
    fd, name = tempfile.mkstemp(dir=staging_dir, prefix=STAGED_PREFIX)
    try:
        with open(path, "rb", buffering=0) as f, os.fdopen(fd, "wb", buffering=0) as out:
            digests = digest_stream(f, md5=md5, copy_to=out)
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Staged(path, digests, Path(name))


def stage_files(jobs: Iterable[tuple[Path, bool, bool]], staging_dir: Path, workers: int = 4
                ) -> Iterator[Staged | tuple[Path, OSError]]:
    """For each (path, stage a copy?, compute MD5?): a :class:`Staged`, or (path, error) for a file
    that could not be read — in the order given, the work spread over threads."""
    def one(job):
        path, copy, md5 = job
        try:
            return stage_file(path, staging_dir if copy else None, md5=md5)
        except OSError as exc:
            return path, exc
    workers = max(1, workers)
    # A sliding window, not every file at once: staged copies wait on disk only until the caller
    # has stored them, so the staging folder never holds the whole export.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="footage-stage") as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(one, job))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


