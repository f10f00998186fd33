"""Media's answers to domain events: an original just stored gets its SM3 (GB/T 32905) beside its
SHA-256, so an evidence package lists the national hash taken at ingest, not at extraction."""
from __future__ import annotations

import hashlib

from .. import db, events
from ..models import Media
from .service import media_storage

READ_BYTES = 4 * 1024 * 1024


@events.original_stored.connect
def sm3_of_stored_original(_sender, alg: str, digest: str) -> None:
    media = db.session().get(Media, (alg, digest))
    if media is None or media.sm3:
        return
    sm3 = hashlib.new("sm3")  # OpenSSL's
    with media_storage().open(alg, digest) as original:
        while chunk := original.read(READ_BYTES):
            sm3.update(chunk)
    media.sm3 = sm3.hexdigest()
