"""Receiving media from phones: which hashes are missing, resumable uploads of originals, the
phones' previews, and the pipeline run when an original completes.

Rules the API enforces here, in one place:

* An upload is known by its declaration (algorithm, hash, size): its id is derived from it, so a
  phone that lost the answer to "begin" — or another phone holding the same file — gets the same
  upload back and continues from the offset the server holds, on any host.
* Bytes that match their hash are stored as received. Content that is not what a media file claims
  to be (HTML, SVG, script) and empty files are refused with a code; the type comes from the bytes.
* No database transaction is open while a request body streams in: on SQLite a transaction of a
  writing request holds the one write lock, and a chunk on a 3G link takes seconds.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from PIL import Image
from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from .. import db, events
from ..models import Media, MediaRef, MediaUpload, MediaUploadChunk, Revision, SyncedRecord, utcnow
from ..ops import metrics
from . import pipeline
from .sniff import SNIFF_BYTES, UnsupportedMedia, sniff
from .storage import (
    ALGORITHMS,
    HashMismatch,
    LocalStorage,
    MediaStorage,
    OffsetMismatch,
    UnknownUpload,
    UploadTooLarge,
    original_key,
    storage_from_settings,
    validate_digest,
)

log = logging.getLogger(__name__)

# Derived upload ids: uuid5 of the declaration under this namespace (a fixed random UUID).
UPLOAD_NAMESPACE = uuid.UUID("6c0f3b52-6d1e-4a53-9d55-3f1d0e3f8a41")
# What the phone is told to send per chunk: small enough that a cut loses little (1 MiB is 4 s on
# a 2 Mbit/s link), large enough that the round trip per chunk costs a few per cent.
RECOMMENDED_CHUNK_BYTES = 1024 * 1024
PREVIEW_MAX_PX = 2048  # a phone preview larger than this is not a preview
PREVIEW_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_QUERY_ITEMS = 1000
# A copy of an S3 original on the host for the pipeline; a host killed meanwhile leaves it behind
# in the system's temporary folder, where the sweeper looks for this prefix.
ORIGINAL_TEMP_PREFIX = "fieldapp-original-"


class MediaRefused(Exception):
    """A clear refusal: an HTTP status, a machine-readable code, a message, maybe more fields."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.extra}


def media_storage() -> MediaStorage:
    app = current_app
    if "fieldapp.media_storage" not in app.extensions:
        app.extensions["fieldapp.media_storage"] = storage_from_settings(app.config["FIELDAPP_SETTINGS"])
    return app.extensions["fieldapp.media_storage"]


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    chunk_max_bytes: int
    preview_max_bytes: int

    def to_json(self) -> dict:
        return {"algorithms": sorted(ALGORITHMS), "max_bytes": self.max_bytes,
                "chunk_max_bytes": self.chunk_max_bytes,
                "chunk_bytes": min(RECOMMENDED_CHUNK_BYTES, self.chunk_max_bytes),
                "preview_max_bytes": self.preview_max_bytes, "preview_max_px": PREVIEW_MAX_PX}


def limits() -> Limits:
    settings = current_app.config["FIELDAPP_SETTINGS"]
    return Limits(settings.media_max_bytes, settings.media_chunk_max_bytes, settings.media_preview_max_bytes)


def _refuse_unsupported(exc: UnsupportedMedia) -> MediaRefused:
    return MediaRefused(415 if exc.code != "empty" else 422, exc.code, exc.message_en, message_zh=exc.message_zh)


def checked_hash(alg, digest) -> tuple[str, str]:
    try:
        validate_digest(alg, digest)
    except ValueError as exc:
        raise MediaRefused(400, "bad_hash", str(exc)) from None
    return alg, digest


# ----------------------------------------------------------------------------------- queries


def stored_originals(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (alg, hash) have a verified original on the server."""
    if not pairs:
        return set()
    rows = db.session().execute(
        select(Media.alg, Media.hash).where(tuple_(Media.alg, Media.hash).in_(set(pairs)),
                                            Media.original_at.is_not(None)))
    return {(r.alg, r.hash) for r in rows}


def missing(items) -> dict:
    """The phone's question before uploading: of these hashes, which originals and which
    previews does the server still need?"""
    if not isinstance(items, list) or len(items) > MAX_QUERY_ITEMS:
        raise MediaRefused(400, "bad_request", f"items must be a list of at most {MAX_QUERY_ITEMS}")
    pairs = []
    for item in items:
        if not isinstance(item, dict):
            raise MediaRefused(400, "bad_request", "each item is {alg, hash}")
        pairs.append(checked_hash(item.get("alg"), item.get("hash")))
    if not pairs:
        return {"missing": [], "previews_missing": []}
    rows = {(m.alg, m.hash): m for m in db.session().execute(
        select(Media).where(tuple_(Media.alg, Media.hash).in_(set(pairs)))).scalars()}
    originals, previews = [], []
    for pair in dict.fromkeys(pairs):
        row = rows.get(pair)
        if row is None or row.original_at is None:
            originals.append({"alg": pair[0], "hash": pair[1]})
            if row is None or (row.phone_preview_at is None and not row.previews):
                previews.append({"alg": pair[0], "hash": pair[1]})
    return {"missing": originals, "previews_missing": previews}


# ----------------------------------------------------------------------------------- uploads


@dataclass(frozen=True)
class Uploader:
    """Who sends an upload's bytes: a signed-in user's phone, or a collection station with its own
    token (never a user session). Each one's uploads are theirs alone."""
    user_id: uuid.UUID | None = None
    station_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        return str(self.user_id) if self.user_id else f"station:{self.station_id}"

    def owns(self, row: MediaUpload) -> bool:
        return (row.began_by, row.station_id) == (self.user_id, self.station_id)


def _uploader(who: uuid.UUID | Uploader) -> Uploader:
    return who if isinstance(who, Uploader) else Uploader(user_id=who)


def upload_id_for(who: uuid.UUID | Uploader, alg: str, digest: str, size: int) -> uuid.UUID:
    """Each user's upload of a file is their own: someone else who knows the hash cannot append
    to it or spoil it, and a phone that lost the answer to "begin" finds its upload again."""
    return uuid.uuid5(UPLOAD_NAMESPACE, f"{_uploader(who).key}:{alg}:{digest}:{size}")


def _insert(table):
    dialect = db.session().get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@metrics.counts_upload_refusals
def begin(who: uuid.UUID | Uploader, body) -> dict:
    who = _uploader(who)
    if not isinstance(body, dict):
        raise MediaRefused(400, "bad_request", "expected {alg, hash, size, type} as JSON")
    alg, digest = checked_hash(body.get("alg"), body.get("hash"))
    size, declared = body.get("size"), body.get("type")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MediaRefused(400, "bad_size", "size is the file's length in bytes")
    if declared is not None and (not isinstance(declared, str) or len(declared) > 100 or not declared.isprintable()):
        raise MediaRefused(400, "bad_type", "type is a MIME type of at most 100 characters")
    if size == 0:
        raise _refuse_unsupported(UnsupportedMedia("empty"))
    lim = limits()
    if size > lim.max_bytes:
        raise MediaRefused(413, "too_large", f"the server accepts files of at most {lim.max_bytes} bytes",
                           max_bytes=lim.max_bytes)
    s = db.session()
    media = s.get(Media, (alg, digest))
    s.commit()  # no SQLite write lock across a storage request
    store = media_storage()
    if media is not None and media.original_at is not None and store.exists(alg, digest):
        metrics.upload_state("already_stored")
        return {"status": "stored", "media": media_json(media)}
    upload_id = upload_id_for(who, alg, digest, size)
    began = s.execute(_insert(MediaUpload.__table__).values(
        id=upload_id, alg=alg, hash=digest, size=size, declared_type=declared, began_by=who.user_id,
        station_id=who.station_id,
        began_at=utcnow()).on_conflict_do_nothing(index_elements=["id"]))
    s.commit()
    metrics.upload_state("begun" if began.rowcount else "resumed")
    store.begin(str(upload_id), alg, digest, size)
    return {"status": "uploading", "upload_id": str(upload_id), "offset": store.offset(str(upload_id)),
            "size": size, "chunk_bytes": lim.to_json()["chunk_bytes"]}


def _upload_row(upload_id: uuid.UUID, who: uuid.UUID | Uploader) -> MediaUpload:
    row = db.session().get(MediaUpload, upload_id)
    if row is None or not _uploader(who).owns(row):  # another user's upload is not revealed
        raise MediaRefused(404, "unknown_upload", "no such upload; begin it again")
    return row


def offset(who: uuid.UUID | Uploader, upload_id: uuid.UUID) -> dict:
    row = _upload_row(upload_id, who)
    try:
        held = media_storage().offset(str(upload_id))
    except UnknownUpload:
        raise MediaRefused(404, "unknown_upload", "no such upload; begin it again") from None
    return {"upload_id": str(upload_id), "offset": held, "size": row.size}


class _HeadTee:
    """Passes a stream through, keeping its first bytes (for type checks from any host)."""

    def __init__(self, stream: BinaryIO, keep: int):
        self.stream, self.keep, self.head = stream, keep, bytearray()

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        return data


@metrics.counts_upload_refusals
def append(who: uuid.UUID | Uploader, upload_id: uuid.UUID, at: int, stream: BinaryIO, length: int) -> dict:
    who = _uploader(who)
    s = db.session()
    row = _upload_row(upload_id, who)
    size, head = row.size, row.head
    s.commit()  # no transaction (and no SQLite write lock) while the body streams in
    lim = limits()
    if length > lim.chunk_max_bytes:
        raise MediaRefused(413, "chunk_too_large", f"a chunk is at most {lim.chunk_max_bytes} bytes",
                           chunk_max_bytes=lim.chunk_max_bytes)
    # The head grows from byte 0 until it holds SNIFF_BYTES (or the whole file): a first chunk too
    # short to judge is judged again with the chunks after it.
    grows_head = at == 0 or (head is not None and len(head) == at < min(SNIFF_BYTES, size))
    tee = _HeadTee(stream, SNIFF_BYTES - at) if grows_head else stream
    store = media_storage()
    try:
        new_offset = store.append(str(upload_id), at, tee, length)
    except OffsetMismatch as exc:
        raise MediaRefused(409, "offset_mismatch", str(exc), offset=exc.held) from None
    except UploadTooLarge as exc:
        raise MediaRefused(413, "past_declared_size", str(exc)) from None
    except UnknownUpload:
        raise MediaRefused(404, "unknown_upload", "no such upload; begin it again") from None
    metrics.upload_bytes(new_offset - at)
    if new_offset == at:
        return {"upload_id": str(upload_id), "offset": new_offset, "size": size}
    if grows_head:
        head = (head or b"")[:at] + bytes(tee.head)
        try:
            _check_head(head, size)
        except MediaRefused:
            _discard(upload_id)
            raise
    with db.transaction() as s:
        if grows_head:
            s.execute(MediaUpload.__table__.update().where(MediaUpload.id == upload_id).values(head=head))
        s.add(MediaUploadChunk(upload_id=upload_id, start=at, length=new_offset - at, user_id=who.user_id,
                                  station_id=who.station_id))
    return {"upload_id": str(upload_id), "offset": new_offset, "size": size}


def chunk_position(offset_text: str | None, length: int | None) -> tuple[int, int]:
    """(offset, length) of a chunk request, phone's or station's: ``?offset=N`` and Content-Length."""
    try:
        at = int(offset_text or "")
        if at < 0:
            raise ValueError
    except ValueError:
        raise MediaRefused(400, "bad_offset", "offset is the number of bytes the server holds") from None
    if length is None:
        raise MediaRefused(411, "length_required", "send Content-Length with each chunk")
    limit = limits().chunk_max_bytes
    if length > limit:
        raise MediaRefused(413, "chunk_too_large", f"a chunk is at most {limit} bytes", chunk_max_bytes=limit)
    return at, length


def discard_upload(upload_id: uuid.UUID) -> None:
    """Forget an upload nobody finished (the sweeper's abandoned uploads): its bytes go, and
    the phone that comes back begins it again from byte 0."""
    _discard(upload_id)


def _discard(upload_id: uuid.UUID) -> None:
    """Drop an upload's bytes and its record of chunks: a later upload of the same file starts
    afresh, and the chunk rows keep describing bytes that exist (no range is recorded twice)."""
    metrics.upload_state("discarded")
    media_storage().abort(str(upload_id))
    with db.transaction() as s:
        s.execute(MediaUploadChunk.__table__.delete().where(MediaUploadChunk.upload_id == upload_id))
        s.execute(MediaUpload.__table__.update().where(MediaUpload.id == upload_id).values(head=None))


def _check_head(head: bytes, size: int) -> None:
    """Refuse markup and scripts as soon as their first chunk arrives. A first chunk too short to
    judge (a client sending tiny chunks) is judged again, in full, at completion."""
    try:
        sniff(head)
    except UnsupportedMedia as exc:
        if exc.code != "unknown_type" or len(head) >= min(SNIFF_BYTES, size):
            raise _refuse_unsupported(exc) from None


@contextlib.contextmanager
def original_file(store: MediaStorage, alg: str, digest: str) -> Iterator[Path]:
    """A path to read the original from: the file itself locally, a temporary copy from S3."""
    if isinstance(store, LocalStorage):
        yield store.root.joinpath(*original_key(alg, digest).split("/"))
        return
    with tempfile.NamedTemporaryFile(prefix=ORIGINAL_TEMP_PREFIX) as tmp, store.open(alg, digest) as src:
        while chunk := src.read(1024 * 1024):
            tmp.write(chunk)
        tmp.flush()
        yield Path(tmp.name)


@metrics.counts_upload_refusals
def complete(who: uuid.UUID | Uploader, upload_id: uuid.UUID) -> dict:
    s = db.session()
    row = _upload_row(upload_id, who)
    alg, digest, size, declared, head = row.alg, row.hash, row.size, row.declared_type, row.head
    media = s.get(Media, (alg, digest))
    s.commit()
    store = media_storage()
    if media is not None and media.original_at is not None and row.completed_at is not None:
        metrics.upload_state("already_stored")
        return {"status": "stored", "media": media_json(media)}
    try:
        held = store.offset(str(upload_id))
    except UnknownUpload:
        raise MediaRefused(404, "unknown_upload", "no such upload; begin it again") from None
    if held != size:
        raise MediaRefused(409, "upload_incomplete", f"the server holds {held} of {size} bytes", offset=held)
    if head is None or len(head) < min(SNIFF_BYTES, size):
        # Bytes of the head were stored but their record was not (a host died in between): the
        # type cannot be judged without reading back, so the phone starts this file again.
        _discard(upload_id)
        raise MediaRefused(409, "restart_upload", "the upload must start again from byte 0", offset=0)
    try:
        sniffed = sniff(head)
    except UnsupportedMedia as exc:
        _discard(upload_id)
        raise _refuse_unsupported(exc) from None
    try:
        store.complete(str(upload_id))
    except HashMismatch as exc:
        _discard(upload_id)
        raise MediaRefused(422, "hash_mismatch", str(exc), expected=exc.expected, actual=exc.actual) from None
    result = _run_pipeline(store, alg, digest, size, sniffed.mime, sniffed.kind, declared)
    for name, data in result.previews.items():
        store.put_derivative(alg, digest, name, data)
    now = utcnow()
    values = dict(size=size, declared_type=declared, mime=result.mime, kind=result.kind, original_at=now,
                  previews=sorted(result.previews), width=result.width, height=result.height, frames=result.frames,
                  flags=list(result.flags), taken_at=result.exif.taken_at,
                  taken_at_zone_assumed=result.exif.taken_at_zone_assumed if result.exif.taken_at else None,
                  lat_e6=result.exif.lat_e6, lon_e6=result.exif.lon_e6, gps_accuracy_m=result.exif.gps_accuracy_m,
                  camera_make=(result.exif.make or None) and result.exif.make[:100],
                  camera_model=(result.exif.model or None) and result.exif.model[:100],
                  orientation=result.exif.orientation)
    with db.transaction() as s:
        table = Media.__table__
        # A second completion (a retried request on another host) keeps the first arrival time.
        s.execute(_insert(table).values(alg=alg, hash=digest, created_at=now, **values)
                  .on_conflict_do_update(index_elements=["alg", "hash"],
                                         set_={**values, "original_at": func.coalesce(table.c.original_at, now)}))
        s.execute(MediaUpload.__table__.update().where(MediaUpload.id == upload_id).values(completed_at=now))
        s.execute(MediaRef.__table__.update().where(MediaRef.alg == alg, MediaRef.hash == digest,
                                                    MediaRef.original_stored.is_(False)).values(original_stored=True))
        media = s.get(Media, (alg, digest), populate_existing=True)
    events.publish(events.original_stored, alg=alg, digest=digest)
    metrics.upload_state("completed")
    return {"status": "stored", "media": media_json(media)}


def _run_pipeline(store, alg, digest, size, mime, kind, declared) -> pipeline.Result:
    """The pipeline never fails an upload: the original is stored and verified whatever happens
    to its previews, and a failure becomes a flag a person can look at."""
    try:
        with original_file(store, alg, digest) as path:
            return pipeline.process(path, declared_mime=declared)
    except Exception:  # noqa: BLE001 — evidence is kept; the failure is logged and flagged
        log.exception("media pipeline failed for %s %s", alg, digest)
        result = pipeline.Result(mime=mime, kind=kind, size_bytes=size, declared_mime=declared)
        result.flag("pipeline_failed")
        return result


# ----------------------------------------------------------------------------------- previews


def first_referrer(alg: str, digest: str):
    """(author, unit) of the earliest revision the server received that references this file:
    the officer who captured it. Naming a hash later gives another user nothing — not the right to
    send its preview, nor (for their unit) to see it."""
    return db.session().execute(
        select(Revision.author_id, SyncedRecord.unit_id)
        .join(MediaRef, (MediaRef.record_id == Revision.record_id) & (MediaRef.revision == Revision.revision))
        .join(SyncedRecord, SyncedRecord.id == Revision.record_id)
        .where(MediaRef.alg == alg, MediaRef.hash == digest)
        .order_by(Revision.received_at, Revision.seq).limit(1)).first()


def accept_phone_previews(user_id: uuid.UUID, files) -> list[dict]:
    """Previews the phone made, sent before the originals so a lead can review on a bad link.
    Only the author of a record referencing the hash may send one, and the first one stays."""
    lim = limits()
    results = []
    s = db.session()
    for field_name, upload in files.items(multi=True):
        alg, _, digest = field_name.partition(":")
        entry = {"alg": alg, "hash": digest}
        try:
            checked_hash(alg, digest)
            data = upload.stream.read(lim.preview_max_bytes + 1)
            if len(data) > lim.preview_max_bytes:
                raise MediaRefused(413, "preview_too_large", f"a preview is at most {lim.preview_max_bytes} bytes")
            _check_preview(data)
            first = first_referrer(alg, digest)
            if first is None or first.author_id != user_id:
                raise MediaRefused(403, "not_referenced",
                                   "only the officer whose record first referenced this file sends its preview")
            media = s.get(Media, (alg, digest))
            s.commit()  # no SQLite write lock across the storage write
            if media is None or media.phone_preview_at is None:
                media_storage().put_derivative(alg, digest, "phone-preview", data)
                now = utcnow()
                with db.transaction() as tx:
                    tx.execute(_insert(Media.__table__).values(alg=alg, hash=digest, created_at=now,
                                                               phone_preview_at=now, previews=[], flags=[])
                               .on_conflict_do_update(index_elements=["alg", "hash"], set_={"phone_preview_at": now}))
            entry["status"] = "stored"
        except MediaRefused as exc:
            s.rollback()
            entry.update(status="rejected", error=exc.code, message=exc.message)
        results.append(entry)
    return results


def _check_preview(data: bytes) -> None:
    try:
        kind = sniff(data[:SNIFF_BYTES])
    except UnsupportedMedia as exc:
        raise _refuse_unsupported(exc) from None
    if kind.mime not in PREVIEW_TYPES:
        raise MediaRefused(415, "bad_preview_type", "a preview is a JPEG, PNG or WebP image")
    try:
        with Image.open(io.BytesIO(data), formats=[{"image/jpeg": "JPEG", "image/png": "PNG",
                                                    "image/webp": "WEBP"}[kind.mime]]) as im:
            if max(im.size) > PREVIEW_MAX_PX:
                raise MediaRefused(413, "preview_too_large", f"a preview is at most {PREVIEW_MAX_PX} px")
            im.verify()
    except MediaRefused:
        raise
    except Exception:  # noqa: BLE001 — anything Pillow cannot read is not a preview
        raise MediaRefused(422, "bad_preview", "the preview is not a readable image") from None


# ----------------------------------------------------------------------------------- views


def media_json(media: Media) -> dict:
    return {"alg": media.alg, "hash": media.hash, "size": media.size, "mime": media.mime, "kind": media.kind,
            "original_stored": media.original_at is not None, "previews": list(media.previews or []),
            "phone_preview": media.phone_preview_at is not None, "width": media.width, "height": media.height,
            "frames": media.frames,
            "flags": list(media.flags or []),
            "taken_at": media.taken_at.isoformat() if media.taken_at else None,
            "taken_at_zone_assumed": media.taken_at_zone_assumed}
