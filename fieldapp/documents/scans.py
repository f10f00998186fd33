"""Scans of the signed paper, uploaded back and kept with the generated document they were printed
from (issue 18): the 送达回证 signed by the recipient, the 现场照片 sheet signed by the officers.

A scan is kept as an original in the content-addressed media storage, under its SHA-256, through
the same staged-and-adopted path body-camera footage takes: the bytes are hashed (SHA-256 and SM3,
GB/T 32905) in the one read that writes the staged copy, so they are read once, never held whole in
memory, and appear in the store whole or not at all, on a local folder or S3 alike. What the file is
comes from its bytes, never its name: a PDF starts with ``%PDF-``; a JPEG or PNG is what the media
sniffer says and must open with Pillow under the media pipeline's decompression-bomb limit.
Nothing is kept (no row, no stored bytes) from a refused file; the same bytes uploaded again for
the same document are the scan already kept."""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import db
from ..footage.digests import STAGED_PREFIX, digest_stream
from ..media import pipeline
from ..media.service import media_storage
from ..media.sniff import SNIFF_BYTES, UnsupportedMedia, sniff
from ..models import PaperDocument, PaperScan, User

ALG = "sha-256"
TYPES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# Room for the multipart envelope around the file (boundaries, headers, the CSRF token).
FORM_OVERHEAD = 64 * 1024


class ScanRefused(Exception):
    """A scan not kept: an HTTP status, a stable code, and the message for the person who sent it."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def max_bytes() -> int:
    """FIELDAPP_SCAN_MAX_BYTES, from the app's config (tests set it there) or the environment."""
    configured = current_app.config.get("FIELDAPP_SCAN_MAX_BYTES") or os.environ.get("FIELDAPP_SCAN_MAX_BYTES")
    try:
        value = int(configured) if configured else DEFAULT_MAX_BYTES
    except ValueError:
        value = DEFAULT_MAX_BYTES
    return value if value > 0 else DEFAULT_MAX_BYTES


def too_large() -> ScanRefused:
    return ScanRefused(413, "too_large", _(
        "The scan is larger than %(mb)s MB and was not kept. Scan at a lower resolution, or in parts.",
        mb=megabytes(max_bytes())))


def megabytes(n: int) -> str:
    value = n / (1024 * 1024)
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".rstrip("0").rstrip(".") if value >= 0.1 else f"{value:.2g}"


class _Capped:
    """Passes a stream through and refuses it once more than ``cap`` bytes have come."""

    def __init__(self, stream: BinaryIO, cap: int):
        self.stream, self.cap, self.seen = stream, cap, 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.seen += len(data)
        if self.seen > self.cap:
            raise too_large()
        return data


@dataclass(frozen=True)
class Kept:
    scan: PaperScan
    created: bool  # False: these bytes were already kept with this document


def keep(document: PaperDocument, by: User, stream: BinaryIO) -> Kept:
    """Stage, hash and judge the bytes of ``stream``; store them as an original and record the
    scan with ``document`` — or raise :class:`ScanRefused`, leaving nothing behind."""
    document_id, user_id = document.id, by.id
    db.session().commit()  # no transaction open while the bytes are copied and judged
    store = media_storage()
    fd, name = tempfile.mkstemp(dir=store.staging_dir(), prefix=STAGED_PREFIX)
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            digests = digest_stream(_Capped(stream, max_bytes()), md5=False, copy_to=out)
            os.fsync(out.fileno())
        if digests.size == 0:
            raise ScanRefused(422, "empty", _("The file is empty (0 bytes); choose the scan again."))
        content_type, pages = judge(staged)
        existing = _kept(document_id, digests.sha256)
        if existing is not None:
            return Kept(existing, False)
        db.session().commit()  # nor while the original is written (to S3, it may take a while)
        store.adopt_staged_original(ALG, digests.sha256, staged)  # the staged file is gone either way
        try:
            with db.transaction() as s:
                scan = PaperScan(document_id=document_id, alg=ALG, hash=digests.sha256, sm3=digests.sm3,
                                 size=digests.size, content_type=content_type, pages=pages, uploaded_by=user_id)
                s.add(scan)
        except IntegrityError:  # the same bytes, kept meanwhile by another request
            existing = _kept(document_id, digests.sha256)
            if existing is None:
                raise
            return Kept(existing, False)
        return Kept(scan, True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def _kept(document_id, digest: str) -> PaperScan | None:
    return db.session().execute(select(PaperScan).where(
        PaperScan.document_id == document_id, PaperScan.alg == ALG, PaperScan.hash == digest)).scalar_one_or_none()


def judge(path: Path) -> tuple[str, int | None]:
    """(content type, pages) of the file at ``path``, from its bytes; :class:`ScanRefused` for
    anything but a PDF, or a JPEG or PNG that Pillow opens within the decompression-bomb limit."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(b"%PDF-"):
        pages = _pdf_pages(path)
        if not pages:
            raise ScanRefused(422, "unreadable_pdf", _(
                "The PDF cannot be read (damaged, cut off or empty) and was not kept."))
        return "application/pdf", pages
    wrong = ScanRefused(415, "wrong_type", _(
        "Only a scan saved as PDF, JPEG or PNG is accepted; the content of this file is none of them."))
    try:
        sniffed = sniff(head)
    except UnsupportedMedia:
        raise wrong from None
    if sniffed.mime not in TYPES:
        raise wrong
    # The media pipeline's own opening: Pillow restricted to the one format the bytes are, its
    # decompression-bomb warning made an error, under the app's MAX_IMAGE_PIXELS.
    result = pipeline.Result(mime=sniffed.mime, kind=sniffed.kind, size_bytes=os.path.getsize(path))
    with open(path, "rb") as f:
        image = pipeline._open(f, TYPES[sniffed.mime], result)
        if image is not None:
            try:
                if "decompression_bomb" not in result.flags:
                    image.load()  # decode it all: a cut-off file opens but does not load
            except (OSError, ValueError, SyntaxError):
                result.flag("corrupt")
            finally:
                image.close()
    if "decompression_bomb" in result.flags:
        raise ScanRefused(422, "decompression_bomb", _(
            "The image has more pixels than the safety limit (a possible decompression bomb) and was not kept."))
    if image is None or "corrupt" in result.flags:
        raise ScanRefused(422, "unreadable", _("The image cannot be read (damaged or cut off) and was not kept."))
    return sniffed.mime, 1


def _pdf_pages(path: Path) -> int | None:
    """The PDF's page count; None when pypdf cannot read it (then it is no scan we can vouch for)."""
    from pypdf import PdfReader

    try:
        return len(PdfReader(str(path), strict=False).pages)
    except Exception:  # noqa: BLE001 — whatever pypdf fails on, the answer is "cannot be read"
        return None


def scans_of(document_id) -> list[PaperScan]:
    return list(db.session().execute(select(PaperScan).where(PaperScan.document_id == document_id)
                                     .order_by(PaperScan.uploaded_at, PaperScan.id)).scalars())
