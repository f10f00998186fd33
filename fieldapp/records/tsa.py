"""RFC 3161 timestamps for checkpoints (optional; filled in below)."""
from __future__ import annotations


def request_token(url: str, statement: bytes) -> bytes:
    raise NotImplementedError


def checker(cert_file):
    raise NotImplementedError
