"""Every byte of a footage file, hashed once: SHA-256 (how media storage knows it), SM3 (the
national standard hash kept beside it, GB/T 32905) and MD5 (what many stations write), in one
read. OpenSSL does the work (``hashlib``) and releases the GIL on large updates, so files hash in
parallel threads."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    sm3: str
    md5: str


def digest_stream(stream: BinaryIO) -> Digests:
    sha256, sm3, md5 = hashlib.sha256(), hashlib.new("sm3"), hashlib.md5(usedforsecurity=False)
    size = 0
    while chunk := stream.read(READ_BYTES):
        size += len(chunk)
        sha256.update(chunk)
        sm3.update(chunk)
        md5.update(chunk)
    return Digests(size, sha256.hexdigest(), sm3.hexdigest(), md5.hexdigest())


def digest_file(path: Path) -> Digests:
    with open(path, "rb", buffering=0) as f:
        return digest_stream(f)


def digest_files(paths: Iterable[Path], workers: int = 4) -> Iterator[tuple[Path, Digests | OSError]]:
    """(path, digests) in the order given; a file that cannot be read answers its OSError."""
    def one(path: Path):
        try:
            return path, digest_file(path)
        except OSError as exc:
            return path, exc
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="footage-hash") as pool:
        yield from pool.map(one, list(paths))
