"""Encryption of what a backup writes, when a key is configured: age (X25519 recipients) through
pyrage, streamed from file to file (``encrypt_io``/``decrypt_io``), never a whole-file buffer.

The backup host holds only the recipients' public keys (``FIELDAPP_BACKUP_AGE_RECIPIENTS``); the
identity that decrypts is needed only to restore (``flask restore --identity FILE``), and should live
with whoever is allowed to restore, not on the server.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

SUFFIX = ".age"
CHUNK = 1024 * 1024


class SealingError(ValueError):
    pass


def recipients(keys: Sequence[str]):
    import pyrage

    try:
        return [pyrage.x25519.Recipient.from_str(k.strip()) for k in keys if k.strip()]
    except Exception as exc:  # noqa: BLE001 - pyrage raises its own types; the message is what matters
        raise SealingError(f"not an age public key (age1…): {exc}") from exc


def identities(path: Path):
    import pyrage

    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                found.append(pyrage.x25519.Identity.from_str(line))
            except Exception as exc:  # noqa: BLE001
                raise SealingError(f"{path}: not an age identity: {exc}") from exc
    if not found:
        raise SealingError(f"{path} holds no age identity (AGE-SECRET-KEY-1…)")
    return found


class HashingReader:
    """A readable stream that takes the SHA-256 and size of what passes through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.sha256, self.size = source, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def sealed(source: BinaryIO, keys, work_dir: Path) -> BinaryIO:
    """``source`` encrypted to ``keys``, as a temporary file opened for reading (deleted on close)."""
    import pyrage

    out = tempfile.TemporaryFile(dir=work_dir)
    try:
        pyrage.encrypt_io(source, out, keys)
    except Exception:
        out.close()
        raise
    out.seek(0)
    return out


def opened(source: BinaryIO, ids, work_dir: Path) -> BinaryIO:
    """``source`` decrypted, as a temporary file opened for reading (deleted on close). A wrong key
    or a changed byte fails here: age authenticates every chunk."""
    import pyrage

    encrypted = tempfile.TemporaryFile(dir=work_dir)
    out = tempfile.TemporaryFile(dir=work_dir)
    try:
        shutil.copyfileobj(source, encrypted, CHUNK)
        encrypted.seek(0)
        pyrage.decrypt_io(encrypted, out, ids)
    except Exception as exc:
        out.close()
        raise SealingError(f"cannot decrypt: {exc}") from exc
    finally:
        encrypted.close()
    out.seek(0)
    return out
