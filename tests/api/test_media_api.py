"""Media through the phone's API: a photo a pushed record references is missing until its original is
uploaded in resumable chunks, then stored byte for byte and previewed; hostile files get a clear code
and leave nothing under their hash; damaged and huge photos are stored and flagged; phone previews come
only from the author. On SQLite and PostgreSQL, and where storage matters on both media backends (a
local folder, and S3 through moto on loopback).

"Another app instance" is a second app made with make_app on the same database and the same media
folder or bucket: it shares nothing with the first but what is stored, as two hosts (or one host after
a restart) would.
"""
from __future__ import annotations

import hashlib
import io
import random
import uuid
from dataclasses import dataclass, field

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from fieldapp import db
from fieldapp.media.storage import S3Storage, storage_from_settings
from fieldapp.models import Media, MediaUploadChunk
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, demo_sign_in, post_json, push_results, seed_user, sync_push
from tests.support.soft_device import SoftDevice
from tests.unit.test_media_pipeline import grey_jpeg, patched_sof

API = "/api/v1"
ALG = "sha-256"
MiB = 1024 * 1024
OCTETS = "application/octet-stream"
APP_REQUEST_LIMIT = 2 * MiB  # MAX_CONTENT_LENGTH: what a chunk or a preview request may exceed


# ---- files -----------------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key(data_or_digest) -> dict:
    digest = data_or_digest if isinstance(data_or_digest, str) else sha(data_or_digest)
    return {"alg": ALG, "hash": digest}


def noise_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A real photo-sized JPEG (noise does not compress: 800×600 is about 400 KB), in milliseconds."""
    im = Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def jpeg_of_size(size: int, seed: int = 0) -> bytes:
    """A JPEG of exactly ``size`` bytes: a small picture and then a trailer (as MPO and some cameras
    write after the end-of-image marker), so a multi-megabyte original costs nothing to make."""
    head = noise_jpeg(64, 48, seed)
    return head + random.Random(seed).randbytes(size - len(head))


def png(width: int, height: int, seed: int = 0) -> bytes:
    im = Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))
    out = io.BytesIO()
    im.save(out, "PNG", compress_level=1)
    return out.getvalue()


def solid_jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


class CutBody(io.BytesIO):
    """A chunk's body whose connection breaks after ``cut`` bytes (its Content-Length is all of it)."""

    def __init__(self, data: bytes, cut: int):
        super().__init__(data)
        self.cut = cut

    def _allowed(self, n: int) -> int:
        if self.tell() >= self.cut:
            raise ConnectionResetError("the phone lost its signal")
        left = self.cut - self.tell()
        return left if n is None or n < 0 else min(n, left)

    def read(self, n: int | None = -1) -> bytes:
        return super().read(self._allowed(n))

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        return super().readinto(view[: self._allowed(len(view))])


# ---- a signed-in phone -----------------------------------------------------------------------------


@dataclass
class Phone:
    """One signed-in client of one app instance, speaking the media API as the phone does."""

    app: Flask
    user_id: uuid.UUID
    client: object = None
    device: SoftDevice | None = None
    csrf: str = ""
    statuses: list[int] = field(default_factory=list)

    @classmethod
    def sign_in(cls, app: Flask, user_id) -> Phone:
        client = app.test_client()
        demo_sign_in(client, user_id)
        return cls(app, user_id, client, csrf=csrf_token(client))

    def _seen(self, response):
        self.statuses.append(response.status_code)
        return response

    @property
    def headers(self) -> dict:
        return {"X-CSRFToken": self.csrf}

    def register_device(self) -> SoftDevice:
        catalogue = self.client.get(f"{API}/catalogue").get_json()
        self.device = SoftDevice(author=str(self.user_id), catalogue_version=catalogue["version"])
        registered = post_json(self.client, f"{API}/devices", {"device_id": self.device.device_id,
                                                               "public_key": self.device.public_key_b64})
        assert registered.status_code == 201, registered.get_json()
        return self.device

    def step_with(self, *files: bytes, kind: str = "image/jpeg") -> dict:
        media = [{"alg": ALG, "hash": sha(f), "size": len(f), "type": kind} for f in files]
        return self.device.revision(media=media)

    def push(self, *items) -> list[dict]:
        return push_results(sync_push(self.client, self.device.batch(*items)))

    # -- the media API
    def limits(self) -> dict:
        return self._seen(self.client.get(f"{API}/media/limits")).get_json()

    def missing(self, *files) -> dict:
        response = self._seen(post_json(self.client, f"{API}/media/missing", {"items": [key(f) for f in files]}))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def begin(self, data: bytes = b"", *, digest: str | None = None, size: int | None = None,
              kind: str | None = "image/jpeg", body: dict | None = None):
        body = body if body is not None else {"alg": ALG, "hash": digest or sha(data),
                                              "size": len(data) if size is None else size, "type": kind}
        return self._seen(self.client.post(f"{API}/media/uploads", json=body, headers=self.headers))

    def begun(self, data: bytes, **kwargs) -> str:
        response = self.begin(data, **kwargs)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["upload_id"]

    def put(self, upload_id: str, offset, body, **kwargs):
        query = "" if offset is None else f"?offset={offset}"
        extra = {"input_stream": body} if isinstance(body, io.IOBase) else {"data": body}
        return self._seen(self.client.put(f"{API}/media/uploads/{upload_id}{query}", content_type=OCTETS,
                                          headers=self.headers, **extra, **kwargs))

    def offset(self, upload_id: str):
        return self._seen(self.client.get(f"{API}/media/uploads/{upload_id}"))

    def complete(self, upload_id: str):
        return self._seen(self.client.post(f"{API}/media/uploads/{upload_id}/complete", headers=self.headers))

    def send_chunks(self, upload_id: str, data: bytes, sizes, start: int = 0) -> int:
        """Send ``data`` from ``start`` in chunks of the given sizes (the last one repeats)."""
        sizes, offset = list(sizes), start
        while offset < len(data):
            size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
            response = self.put(upload_id, offset, data[offset:offset + size])
            assert response.status_code == 200, response.get_json()
            assert response.get_json()["offset"] == min(offset + size, len(data))
            offset = response.get_json()["offset"]
        return offset

    def upload(self, data: bytes, chunk: int = MiB, kind: str | None = "image/jpeg") -> dict:
        """The whole upload, as the phone runs it; the media JSON of the stored original."""
        upload_id = self.begun(data, kind=kind)
        self.send_chunks(upload_id, data, [chunk])
        done = self.complete(upload_id)
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["status"] == "stored"
        return done.get_json()["media"]

    def previews(self, parts: list[tuple[str, bytes]]):
        data = MultiDict([(name, (io.BytesIO(content), "preview.jpg", "image/jpeg")) for name, content in parts])
        return self._seen(self.client.post(f"{API}/media/previews", data=data, headers=self.headers,
                                           content_type="multipart/form-data"))

    # -- what the server holds
    def storage(self):
        """A fresh storage object on the app's folder or bucket (as another host would see it)."""
        return storage_from_settings(self.app.config["FIELDAPP_SETTINGS"])

    def stored_bytes(self, data_or_digest) -> bytes | None:
        digest = data_or_digest if isinstance(data_or_digest, str) else sha(data_or_digest)
        store = self.storage()
        if not store.exists(ALG, digest):
            return None
        with store.open(ALG, digest) as fh:
            return fh.read()

    def media_row(self, data_or_digest) -> Media | None:
        digest = data_or_digest if isinstance(data_or_digest, str) else sha(data_or_digest)
        with self.app.app_context():
            return db.session().get(Media, (ALG, digest))

    def chunk_rows(self, upload_id: str) -> list[tuple[int, int]]:
        with self.app.app_context():
            rows = db.session().execute(select(MediaUploadChunk.start, MediaUploadChunk.length).where(
                MediaUploadChunk.upload_id == uuid.UUID(upload_id)).order_by(MediaUploadChunk.start)).all()
        return [(r.start, r.length) for r in rows]


def assert_chunks_tile(rows: list[tuple[int, int]], size: int) -> None:
    """The chunk records of an upload: from byte 0, each where the last ended, none empty, to the size."""
    position = 0
    for start, length in rows:
        assert start == position and length > 0, rows
        position += length
    assert position == size, rows


def assert_nothing_stored_under(phone: Phone, data_or_digest) -> None:
    assert phone.stored_bytes(data_or_digest) is None
    row = phone.media_row(data_or_digest)
    assert row is None or row.original_at is None
    assert phone.missing(data_or_digest)["missing"] == [key(data_or_digest)]


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def storage_settings(backend, request, tmp_path) -> dict:
    """Settings of the media store: a folder of this test, or a bucket and prefix of this test."""
    if backend == "local":
        return {"media_backend": "local", "media_dir": tmp_path / "media"}
    server = request.getfixturevalue("s3_server")
    bucket, prefix = f"fieldapp-{uuid.uuid4().hex[:16]}", f"t{uuid.uuid4().hex[:8]}/media"
    S3Storage(bucket, endpoint_url=server.endpoint_url, region=server.region, access_key=server.access_key,
              secret_key=server.secret_key, prefix=prefix).ensure_bucket()
    return {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint": server.endpoint_url,
            "s3_region": server.region, "s3_access_key": server.access_key, "s3_secret_key": server.secret_key,
            "s3_prefix": prefix}


@pytest.fixture
def media_app(db_url, tmp_path, storage_settings):
    app = make_app(db_url, tmp_path / "var", demo=True, **storage_settings)
    yield app
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def officer(media_app) -> Phone:
    seeded = seed_user(media_app, "张伟", "C-1", "ZF1")
    phone = Phone.sign_in(media_app, seeded.user_id)
    phone.register_device()
    yield phone
    assert all(status < 500 for status in phone.statuses), phone.statuses


def colleague(app: Flask, name: str = "李娜", cert_no: str = "C-2") -> Phone:
    seeded = seed_user(app, name, cert_no, "ZF1")
    phone = Phone.sign_in(app, seeded.user_id)
    phone.register_device()
    return phone


LOCAL_ONLY = pytest.mark.parametrize("backend", ["local"])  # where storage does not matter


# ---- the journey of one photo ----------------------------------------------------------------------


def test_a_referenced_photo_is_missing_until_uploaded_in_chunks_then_stored_byte_for_byte(officer):
    photo = noise_jpeg(800, 600)  # about 400 KB: three chunks
    step = officer.step_with(photo)
    created = officer.push(step)[0]
    assert created["status"] == "created" and created["missing_media"] == [sha(photo)]
    assert officer.missing(photo) == {"missing": [key(photo)], "previews_missing": [key(photo)]}

    limits = officer.limits()
    assert limits["algorithms"] == [ALG] and limits["chunk_bytes"] <= limits["chunk_max_bytes"]
    began = officer.begin(photo)
    assert began.status_code == 201
    assert began.get_json() == {**began.get_json(), "status": "uploading", "offset": 0, "size": len(photo),
                                "chunk_bytes": limits["chunk_bytes"]}
    upload_id = began.get_json()["upload_id"]
    officer.send_chunks(upload_id, photo, [len(photo) // 3 + 1])
    assert officer.offset(upload_id).get_json() == {"upload_id": upload_id, "offset": len(photo),
                                                    "size": len(photo)}

    done = officer.complete(upload_id)
    assert done.status_code == 200
    media = done.get_json()["media"]
    assert media == {**media, "alg": ALG, "hash": sha(photo), "size": len(photo), "mime": "image/jpeg",
                     "kind": "image", "original_stored": True, "previews": ["preview", "thumb"],
                     "width": 800, "height": 600, "flags": []}
    assert officer.complete(upload_id).get_json() == done.get_json()  # a lost answer: ask again

    # The record is now complete: a re-push is a duplicate that misses nothing, and nothing is missing.
    again = officer.push(step)[0]
    assert again["status"] == "duplicate" and again["missing_media"] == []
    assert officer.missing(photo) == {"missing": [], "previews_missing": []}

    # Byte for byte what was sent, from a fresh look at the store; previews made from it.
    assert officer.stored_bytes(photo) == photo
    store = officer.storage()
    assert decoded(store.get_derivative(ALG, sha(photo), "preview")).size == (800, 600)
    assert max(decoded(store.get_derivative(ALG, sha(photo), "thumb")).size) == 320
    rows = officer.chunk_rows(upload_id)
    assert len(rows) == 3
    assert_chunks_tile(rows, len(photo))


def test_a_cut_connection_keeps_the_offset_and_another_app_instance_finishes(officer, db_url, tmp_path,
                                                                             storage_settings):
    original = jpeg_of_size(6 * MiB + 12_345)  # on S3: a 5 MiB part and a last, smaller one
    upload_id = officer.begun(original)
    first = 3 * MiB  # above the app's 2 MiB request limit, within the advertised chunk limit
    assert first > APP_REQUEST_LIMIT and first <= officer.limits()["chunk_max_bytes"]
    assert officer.put(upload_id, 0, original[:first]).get_json()["offset"] == first

    # The connection breaks in the middle of the next chunk: nothing of that chunk is kept.
    cut = officer.put(upload_id, first, CutBody(original[first:first + 2 * MiB], cut=MiB + 7))
    assert cut.status_code == 400
    assert officer.offset(upload_id).get_json()["offset"] == first
    # A body shorter than its Content-Length (the phone went away before sending it all): same.
    short = officer.put(upload_id, first, original[first:first + 1000], environ_overrides={"CONTENT_LENGTH": "5000"})
    assert short.status_code == 400
    assert officer.offset(upload_id).get_json()["offset"] == first

    # The phone, unsure what landed, sends from another offset: it is told where the server is.
    for wrong in (0, first - 1, first + MiB):
        stale = officer.put(upload_id, wrong, original[wrong:wrong + 1000])
        assert stale.status_code == 409
        assert stale.get_json() == {**stale.get_json(), "error": "offset_mismatch", "offset": first}
    assert officer.offset(upload_id).get_json()["offset"] == first

    # Another app instance on the same database and media store takes over.
    second_app = make_app(db_url, tmp_path / "var", demo=True, **storage_settings)
    try:
        other = Phone.sign_in(second_app, officer.user_id)
        again = other.begin(original)
        assert again.status_code == 201
        assert (again.get_json()["upload_id"], again.get_json()["offset"]) == (upload_id, first)
        assert other.offset(upload_id).get_json()["offset"] == first
        other.send_chunks(upload_id, original, [MiB], start=first)
        done = other.complete(upload_id)
        assert done.status_code == 200 and done.get_json()["media"]["mime"] == "image/jpeg"
        assert other.stored_bytes(original) == original
        assert officer.stored_bytes(original) == original
        assert_chunks_tile(other.chunk_rows(upload_id), len(original))
        assert all(status < 500 for status in other.statuses), other.statuses
    finally:
        second_app.extensions["fieldapp.engine"].dispose()


@LOCAL_ONLY
def test_begin_is_idempotent_and_an_original_already_stored_needs_no_upload(officer):
    photo = noise_jpeg(200, 150)
    first, second = officer.begin(photo), officer.begin(photo)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    upload_id = first.get_json()["upload_id"]
    half = len(photo) // 2
    officer.put(upload_id, 0, photo[:half])
    resumed = officer.begin(photo)  # a phone that lost every answer learns where to go on
    assert (resumed.status_code, resumed.get_json()["upload_id"], resumed.get_json()["offset"]) == (201, upload_id, half)
    officer.send_chunks(upload_id, photo, [MiB], start=half)
    assert officer.complete(upload_id).status_code == 200

    stored = officer.begin(photo)
    assert stored.status_code == 200
    assert stored.get_json()["status"] == "stored"
    assert stored.get_json()["media"] == {**stored.get_json()["media"], "hash": sha(photo), "original_stored": True}
    # Another phone holding the same photo gets the same answer: nothing to send.
    other = colleague(officer.app)
    assert other.begin(photo).get_json()["status"] == "stored"


@LOCAL_ONLY
def test_a_first_chunk_too_short_to_judge_is_judged_with_the_chunks_after_it(officer):
    photo = noise_jpeg(64, 48)
    upload_id = officer.begun(photo)
    officer.send_chunks(upload_id, photo, [2, 100, 1000])  # b"\xff\xd8" alone is no type yet
    done = officer.complete(upload_id)
    assert done.status_code == 200 and done.get_json()["media"]["mime"] == "image/jpeg"
    assert officer.stored_bytes(photo) == photo

    page = b"  \n<!doctype html><html><body><script>alert(1)</script></body></html>"
    upload_id = officer.begun(page)
    assert officer.put(upload_id, 0, page[:2]).status_code == 200  # two spaces: not judged yet
    refused = officer.put(upload_id, 2, page[2:])
    assert refused.status_code == 415 and refused.get_json()["error"] == "html"
    assert officer.complete(upload_id).status_code == 404
    assert_nothing_stored_under(officer, page)


# ---- hostile input ---------------------------------------------------------------------------------


def test_hostile_uploads_get_a_clear_code_and_nothing_is_stored_under_their_hash(officer):
    kept = noise_jpeg(320, 240, seed=1)
    kept_media = officer.upload(kept)
    kept_upload = officer.begin(kept, size=len(kept) + 1)  # declared otherwise: still nothing to send
    assert kept_upload.status_code == 200 and kept_upload.get_json()["media"] == kept_media

    def refused(response, status: int, code: str) -> dict:
        body = response.get_json()
        assert (response.status_code, body["error"]) == (status, code), body
        return body

    # Bytes that are not the declared hash (one bit flipped on the way).
    claimed = noise_jpeg(320, 240, seed=2)
    sent = bytearray(claimed)
    sent[len(sent) // 2] ^= 0x01
    upload_id = officer.begun(claimed)
    officer.send_chunks(upload_id, bytes(sent), [MiB])
    mismatch = refused(officer.complete(upload_id), 422, "hash_mismatch")
    assert (mismatch["expected"], mismatch["actual"]) == (sha(claimed), sha(bytes(sent)))
    refused(officer.offset(upload_id), 404, "unknown_upload")  # discarded: begin again
    assert_nothing_stored_under(officer, claimed)

    # Content that is not a photo, named and declared as one: refused from its first chunk.
    page = b"<!DOCTYPE html><html><head><title>photo.jpg</title></head><body><script>alert(1)</script></body></html>"
    drawing = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
               b'height="10"><script>alert(document.cookie)</script><rect width="10" height="10"/></svg>')
    script = b"#!/bin/sh\nrm -rf /\n"
    for content, code in ((page, "html"), (drawing, "svg"), (script, "script")):
        upload_id = officer.begun(content, kind="image/jpeg")
        body = refused(officer.put(upload_id, 0, content), 415, code)
        assert body["message"] and body["message_zh"]
        refused(officer.complete(upload_id), 404, "unknown_upload")
        assert_nothing_stored_under(officer, content)

    # An empty file is not an original.
    refused(officer.begin(b""), 422, "empty")

    # A chunk past the declared size, from the start or at the end: nothing of it is kept.
    small = noise_jpeg(64, 48, seed=3)
    upload_id = officer.begun(small)
    refused(officer.put(upload_id, 0, small + b"tail"), 413, "past_declared_size")
    assert officer.offset(upload_id).get_json()["offset"] == 0
    officer.send_chunks(upload_id, small, [len(small) - 10])
    refused(officer.put(upload_id, len(small), b"more"), 413, "past_declared_size")
    assert officer.complete(upload_id).status_code == 200

    # A chunk over the advertised chunk limit, refused by its Content-Length before it is read.
    over = officer.put(upload_id, 0, b"x", environ_overrides={"CONTENT_LENGTH": str(officer.limits()["chunk_max_bytes"] + 1)})
    assert over.status_code == 413 and over.get_json()["error"] in ("too_large", "chunk_too_large")

    # Bad hash text, algorithm, size or type.
    for digest in ("XYZ", sha(small).upper(), sha(small)[:-1], sha(small) + "0", "../../etc/passwd"):
        refused(officer.begin(small, digest=digest), 400, "bad_hash")
        refused(post_json(officer.client, f"{API}/media/missing", {"items": [{"alg": ALG, "hash": digest}]}),
                400, "bad_hash")
    refused(officer.begin(body={"alg": "md5", "hash": hashlib.md5(small).hexdigest(), "size": len(small)}),
            400, "bad_hash")
    for size in (-1, "12", 1.5, True, None):
        refused(officer.begin(small, size=size) if size is not None else
                officer.begin(body={"alg": ALG, "hash": sha(small)}), 400, "bad_size")
    for kind in ("x" * 101, "image/jpeg\x00", "image/jpeg\r\nX-Injected: 1", ["image/jpeg"]):
        refused(officer.begin(small, kind=kind), 400, "bad_type")  # a NUL was a server error on PostgreSQL
    refused(officer.begin(small, size=officer.limits()["max_bytes"] + 1), 413, "too_large")
    refused(officer.client.post(f"{API}/media/uploads", data="{not json", content_type="application/json",
                                headers=officer.headers), 400, "bad_request")

    # Bad offsets, no Content-Length, unknown uploads.
    upload_id = officer.begun(small + b"\x00")
    for offset in ("-1", "abc", "1.5", None):
        refused(officer.put(upload_id, offset, small), 400, "bad_offset")
    refused(officer.put(upload_id, 0, b""), 411, "length_required")  # no body: no Content-Length sent
    stranger = str(uuid.uuid4())
    refused(officer.put(stranger, 0, small), 404, "unknown_upload")
    refused(officer.offset(stranger), 404, "unknown_upload")
    refused(officer.complete(stranger), 404, "unknown_upload")
    refused(officer.complete(upload_id), 409, "upload_incomplete")
    assert officer.client.get(f"{API}/media/uploads/not-a-uuid").status_code == 404

    # Another user who knows the hash can neither see nor touch this user's upload.
    intruder = Phone.sign_in(officer.app, seed_user(officer.app, "外人", "X-9", "ZF2").user_id)
    refused(intruder.put(upload_id, 0, small), 404, "unknown_upload")
    refused(intruder.offset(upload_id), 404, "unknown_upload")
    refused(intruder.complete(upload_id), 404, "unknown_upload")

    # Trying to overwrite the stored original through its own completed upload changes nothing.
    kept_id = officer.begin(kept).get_json()
    assert kept_id["status"] == "stored"
    from fieldapp.media.service import upload_id_for
    kept_upload_id = str(upload_id_for(officer.user_id, ALG, sha(kept), len(kept)))
    refused(officer.put(kept_upload_id, 0, claimed[:len(kept)]), 409, "offset_mismatch")
    refused(officer.put(kept_upload_id, len(kept), b"appended"), 413, "past_declared_size")

    # Earlier stored originals are never lost: byte for byte, and still known as stored.
    assert officer.stored_bytes(kept) == kept
    assert officer.missing(kept) == {"missing": [], "previews_missing": []}
    assert officer.media_row(kept).original_at is not None
    assert officer.begin(kept).get_json()["media"] == kept_media


# ---- damaged and huge photos -------------------------------------------------------------------------


@LOCAL_ONLY
def test_damaged_and_huge_photos_are_stored_as_received_and_flagged(officer):
    whole = noise_jpeg(640, 480, seed=4)
    truncated = whole[:len(whole) // 2]
    media = officer.upload(truncated)
    assert media["flags"] == ["truncated"] and media["previews"] == ["preview", "thumb"]
    assert (media["width"], media["height"]) == (640, 480)

    # Headers claiming 300 MP (Pillow only warns) and 528 MP (Pillow raises): a few KB each.
    for width, height in ((20000, 15000), (24000, 22000)):
        bomb = patched_sof(width, height)
        media = officer.upload(bomb)
        assert "decompression_bomb" in media["flags"]
        assert (media["width"], media["height"]) == (width, height)
        assert officer.stored_bytes(bomb) == bomb

    # A 200-megapixel phone photo (3.5 MB, built by hand): stored, and previewed through draft mode.
    huge = grey_jpeg(16320, 12240)
    media = officer.upload(huge)
    assert media["flags"] == [] and (media["width"], media["height"]) == (16320, 12240)
    assert media["previews"] == ["preview", "thumb"]
    preview = decoded(officer.storage().get_derivative(ALG, sha(huge), "preview"))
    assert max(preview.size) <= 1280 and preview.size == (1280, 960)

    # A PNG the phone declared as a JPEG is the PNG its bytes show (and says the phone was wrong).
    picture = png(300, 200)
    media = officer.upload(picture, kind="image/jpeg")
    assert (media["mime"], media["kind"], media["flags"]) == ("image/png", "image", ["declared_type_mismatch"])
    assert media["previews"] == ["preview", "thumb"]
    for data in (truncated, huge, picture):
        assert officer.stored_bytes(data) == data


# ---- phone previews --------------------------------------------------------------------------------


@LOCAL_ONLY
def test_a_phone_preview_comes_only_from_the_author_of_a_referencing_record_and_the_first_stays(officer):
    photo = noise_jpeg(640, 480, seed=5)
    name = f"{ALG}:{sha(photo)}"
    first, second = solid_jpeg((200, 30, 30)), solid_jpeg((30, 30, 200))

    def results(response) -> list[tuple[str, str | None]]:
        assert response.status_code == 200, response.get_json()
        return [(r["status"], r.get("error")) for r in response.get_json()["results"]]

    # Before any record references the photo, not even its author may send a preview.
    assert results(officer.previews([(name, first)])) == [("rejected", "not_referenced")]
    officer.push(officer.step_with(photo))
    other = colleague(officer.app)
    assert results(other.previews([(name, first)])) == [("rejected", "not_referenced")]
    assert officer.missing(photo)["previews_missing"] == [key(photo)]

    assert results(officer.previews([(name, first)])) == [("stored", None)]
    assert officer.missing(photo) == {"missing": [key(photo)], "previews_missing": []}
    assert results(officer.previews([(name, second)]))[0][0] == "stored"
    assert results(other.previews([(name, second)])) == [("rejected", "not_referenced")]
    assert officer.storage().get_derivative(ALG, sha(photo), "phone-preview") == first  # the first stays

    # Several previews in one request, larger together than the app's usual 2 MiB request limit, and
    # refusals answered item by item.
    a, b = noise_jpeg(64, 48, seed=6), noise_jpeg(64, 48, seed=7)
    officer.push(officer.step_with(a, b))
    big_a, big_b = png(850, 600, seed=8), png(850, 600, seed=9)
    assert len(big_a) + len(big_b) > APP_REQUEST_LIMIT
    assert len(big_a) <= officer.limits()["preview_max_bytes"]
    answer = officer.previews([(f"{ALG}:{sha(a)}", big_a), (f"{ALG}:{sha(b)}", big_b),
                               (f"{ALG}:{sha(photo).upper()}", first), (f"md5:{sha(photo)}", first)])
    assert results(answer) == [("stored", None), ("stored", None), ("rejected", "bad_hash"),
                               ("rejected", "bad_hash")]
    c = noise_jpeg(64, 48, seed=10)
    officer.push(officer.step_with(c))
    hostile = officer.previews([(f"{ALG}:{sha(c)}", b"<html><script>alert(1)</script></html>"),
                                (f"{ALG}:{sha(c)}", solid_jpeg((1, 2, 3), (2100, 10))),
                                (f"{ALG}:{sha(c)}", b"\xff\xd8\xff\xe0\x00\x10" + bytes(range(256)) * 4)])
    assert results(hostile) == [("rejected", "html"), ("rejected", "preview_too_large"),
                                ("rejected", "bad_preview")]
    assert officer.missing(c)["previews_missing"] == [key(c)]
    # A part name with a line break is unreadable (it was a server error in the CSRF check).
    broken = officer.previews([(f"{ALG}:{sha(c)}\r", first), (f"{ALG}:{sha(c)}", first)])
    assert broken.status_code == 400 and broken.get_json()["error"] == "bad_request"
    assert officer.missing(c)["previews_missing"] == [key(c)]
    assert officer.storage().get_derivative(ALG, sha(a), "phone-preview") == big_a


def test_a_stranger_gets_no_raised_body_limit(db_url, tmp_path):
    """Only a signed-in phone may send the larger bodies of chunks and preview batches."""
    app = make_app(db_url, tmp_path / "var")
    client = app.test_client()
    big = io.BytesIO(b"\xff" * (3 * 1024 * 1024))
    response = client.post(f"{API}/media/previews", data={f"{ALG}:{'a' * 64}": (big, "p.jpg")},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 413
    app.extensions["fieldapp.engine"].dispose()
