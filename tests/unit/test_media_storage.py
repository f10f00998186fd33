"""Media storage: both backends (a local folder and S3 via moto on loopback) pass the same tests.

"A second host" is a new storage object on the same folder or bucket: it shares nothing with the
first but what is stored, as two app hosts (or one host after a restart) would.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from fieldapp.media.storage import (
    BUFFER_SIZE,
    MIN_PART_SIZE,
    HashMismatch,
    LocalStorage,
    MediaNotFound,
    MediaStorage,
    OffsetMismatch,
    S3Storage,
    UnknownUpload,
    UploadConflict,
    UploadIncomplete,
    UploadTooLarge,
    original_key,
    storage_from_settings,
)

MiB = 1024 * 1024
ALG = "sha-256"
SAMPLE_ID = "8f14e45f-ceea-467f-a4c3-ec0f9c1f1c2a"


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_id() -> str:
    return str(uuid.uuid4())


class CutStream(io.RawIOBase):
    """A request body whose connection breaks after ``cut_after`` bytes."""

    def __init__(self, data: bytes, cut_after: int):
        self._data, self._cut, self._pos = data, cut_after, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self._cut:
            raise ConnectionResetError("client went away")
        n = len(self._data) - self._pos if n is None or n < 0 else n
        end = min(self._pos + n, self._cut, len(self._data))
        out, self._pos = self._data[self._pos : end], end
        return out


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random bytes made on demand; fails the test on any read over ``max_read``."""

    def __init__(self, size: int, max_read: int):
        self.size, self.max_read, self.sent, self.largest_read = size, max_read, 0, 0
        self.hasher = hashlib.sha256()
        self._block = blob(BUFFER_SIZE, seed=7)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        assert n is not None and 0 <= n <= self.max_read, f"read({n}) would take the body whole"
        self.largest_read = max(self.largest_read, n)
        n = min(n, self.size - self.sent)
        start = self.sent % len(self._block)
        out = (self._block * ((start + n) // len(self._block) + 1))[start : start + n]
        self.sent += len(out)
        self.hasher.update(out)
        return out


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_storage(backend, request, tmp_path: Path):
    """A factory of storage objects on one folder or bucket: each call is another host."""
    if backend == "local":
        return lambda: LocalStorage(tmp_path / "media")
    return s3_factory(request.getfixturevalue("s3_server"))


def s3_factory(server):
    bucket = f"fieldapp-{uuid.uuid4().hex[:16]}"

    def make() -> S3Storage:
        return S3Storage(
            bucket,
            endpoint_url=server.endpoint_url,
            region=server.region,
            access_key=server.access_key,
            secret_key=server.secret_key,
            prefix="media",
        )

    make().ensure_bucket()
    return make


@pytest.fixture
def storage(make_storage) -> MediaStorage:
    return make_storage()


def upload(storage, data: bytes, chunk: int, upload_id: str | None = None, digest: str | None = None):
    upload_id = upload_id or new_id()
    storage.begin(upload_id, ALG, digest or sha(data), len(data))
    offset = 0
    while offset < len(data):
        piece = data[offset : offset + chunk]
        offset = storage.append(upload_id, offset, io.BytesIO(piece), len(piece))
    return upload_id


# ------------------------------------------------------------------------------------------ tests


def test_both_backends_are_media_storage(storage):
    assert isinstance(storage, MediaStorage)


def test_chunked_upload_completes_under_content_addressed_key(storage, make_storage):
    data = blob(300_000, seed=1)
    upload_id = upload(storage, data, chunk=70_001)
    assert storage.offset(upload_id) == len(data)
    stored = storage.complete(upload_id)
    digest = sha(data)
    assert stored.key == f"originals/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert (stored.alg, stored.digest, stored.size, stored.created) == (ALG, digest, len(data), True)
    other_host = make_storage()
    assert other_host.exists(ALG, digest)
    assert other_host.size(ALG, digest) == len(data)
    with other_host.open(ALG, digest) as fh:
        assert fh.read() == data
    # From an offset, without reading what comes before (a seek; on S3 a Range request).
    with other_host.open(ALG, digest, start=299_990) as fh:
        assert fh.read() == data[299_990:]


def test_second_host_resumes_from_the_held_offset(make_storage):
    data = blob(200_000, seed=2)
    first = make_storage()
    upload_id = new_id()
    first.begin(upload_id, ALG, sha(data), len(data))
    assert first.append(upload_id, 0, io.BytesIO(data[:80_000]), 80_000) == 80_000

    second = make_storage()  # another host, or the first one after a restart
    second.begin(upload_id, ALG, sha(data), len(data))  # begin again keeps the bytes
    assert second.offset(upload_id) == 80_000
    assert second.append(upload_id, 80_000, io.BytesIO(data[80_000:]), len(data)) == len(data)
    assert first.offset(upload_id) == len(data)
    assert first.complete(upload_id).digest == sha(data)
    with second.open(ALG, sha(data)) as fh:
        assert fh.read() == data


def test_a_stale_offset_is_refused_with_the_servers_figure(storage):
    data = blob(50_000, seed=3)
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(data), len(data))
    storage.append(upload_id, 0, io.BytesIO(data[:20_000]), 20_000)
    for stale in (0, 10_000, 30_000):
        with pytest.raises(OffsetMismatch) as caught:
            storage.append(upload_id, stale, io.BytesIO(data[stale:]), len(data))
        assert caught.value.held == 20_000
    assert storage.offset(upload_id) == 20_000


def test_begin_with_another_declaration_is_a_conflict(storage):
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(b"a"), 1)
    storage.begin(upload_id, ALG, sha(b"a"), 1)
    with pytest.raises(UploadConflict):
        storage.begin(upload_id, ALG, sha(b"b"), 1)


def test_a_cut_connection_keeps_the_held_offset_and_the_upload_resumes(make_storage, backend, tmp_path):
    data = blob(7 * MiB + 123, seed=4)
    first = make_storage()
    upload_id = new_id()
    first.begin(upload_id, ALG, sha(data), len(data))
    assert first.append(upload_id, 0, io.BytesIO(data[: 3 * MiB]), 3 * MiB) == 3 * MiB
    with pytest.raises(ConnectionResetError):
        first.append(upload_id, 3 * MiB, CutStream(data[3 * MiB :], cut_after=2 * MiB + 5), 4 * MiB)
    assert first.offset(upload_id) == 3 * MiB
    if backend == "local":  # no half chunk left behind
        leftovers = sorted(p.name for p in (tmp_path / "media" / "uploads" / upload_id).iterdir())
        assert leftovers == [f"chunk-{0:020d}", "upload.json"]

    second = make_storage()
    offset = second.offset(upload_id)
    while offset < len(data):
        piece = data[offset : offset + 2 * MiB]
        offset = second.append(upload_id, offset, io.BytesIO(piece), len(piece))
    assert second.complete(upload_id).size == len(data)
    with first.open(ALG, sha(data)) as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == sha(data)


def test_wrong_bytes_are_refused_and_nothing_is_stored(storage):
    claimed = blob(40_000, seed=5)
    sent = bytearray(claimed)
    sent[12_345] ^= 0xFF
    upload_id = upload(storage, bytes(sent), chunk=15_000, digest=sha(claimed))
    with pytest.raises(HashMismatch) as caught:
        storage.complete(upload_id)
    assert caught.value.expected == sha(claimed)
    assert caught.value.actual == sha(bytes(sent))
    assert sha(claimed) in str(caught.value)
    assert not storage.exists(ALG, sha(claimed))
    with pytest.raises(MediaNotFound):
        storage.open(ALG, sha(claimed))
    with pytest.raises(UnknownUpload):  # the partial upload is discarded
        storage.offset(upload_id)


def test_complete_is_idempotent_and_still_verifies_a_known_digest(storage):
    data = blob(60_000, seed=6)
    first_id = upload(storage, data, chunk=25_000)
    assert storage.complete(first_id).created is True
    again = storage.complete(first_id)  # a retry after a lost response
    assert (again.created, again.digest, again.size) == (False, sha(data), len(data))
    assert storage.offset(first_id) == len(data)

    second = storage.complete(upload(storage, data, chunk=60_000))  # the same photo once more
    assert (second.created, second.key) == (False, again.key)

    forged = upload(storage, blob(len(data), seed=99), chunk=60_000, digest=sha(data))
    with pytest.raises(HashMismatch):  # naming a stored hash does not prove having the bytes
        storage.complete(forged)
    with storage.open(ALG, sha(data)) as fh:
        assert fh.read() == data


def test_complete_before_all_bytes_and_bytes_past_the_size(storage):
    data = blob(10_000, seed=8)
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(data), len(data))
    storage.append(upload_id, 0, io.BytesIO(data[:4_000]), 4_000)
    with pytest.raises(UploadIncomplete) as caught:
        storage.complete(upload_id)
    assert (caught.value.held, caught.value.size) == (4_000, len(data))
    with pytest.raises(UploadTooLarge):
        storage.append(upload_id, 4_000, io.BytesIO(data[4_000:] + b"extra"), 100_000)
    assert storage.offset(upload_id) == 4_000
    # max_bytes bounds what is read even when the stream has more
    assert storage.append(upload_id, 4_000, io.BytesIO(data[4_000:] + b"next"), 6_000) == len(data)
    assert storage.complete(upload_id).digest == sha(data)


def test_empty_file(storage):
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(b""), 0)
    assert storage.offset(upload_id) == 0
    assert storage.append(upload_id, 0, io.BytesIO(b""), 0) == 0
    assert storage.complete(upload_id).size == 0
    with storage.open(ALG, sha(b"")) as fh:
        assert fh.read() == b""


def test_abort_discards_the_upload(storage):
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(b"x" * 10), 10)
    storage.append(upload_id, 0, io.BytesIO(b"x" * 4), 4)
    storage.abort(upload_id)
    storage.abort(upload_id)
    with pytest.raises(UnknownUpload):
        storage.offset(upload_id)
    with pytest.raises(UnknownUpload):
        storage.append(upload_id, 0, io.BytesIO(b"x"), 1)


def test_a_large_chunk_is_streamed_in_bounded_reads(storage, backend):
    size = 20 * MiB
    stream = GeneratedStream(size, max_read=1 * MiB)
    # The body is made on demand, so the digest is known only afterwards: hash a twin first.
    twin = GeneratedStream(size, max_read=1 * MiB)
    while twin.read(BUFFER_SIZE):
        pass
    digest = twin.hasher.hexdigest()
    upload_id = new_id()
    storage.begin(upload_id, ALG, digest, size)
    if backend == "local":
        tracemalloc.start()
    try:
        assert storage.append(upload_id, 0, stream, size) == size
        if backend == "local":
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 4 * MiB, f"appending 20 MiB peaked at {peak} bytes"
    finally:
        if backend == "local":
            tracemalloc.stop()
    assert 0 < stream.largest_read <= 1 * MiB
    assert stream.sent == size
    assert storage.complete(upload_id).digest == digest
    assert storage.size(ALG, digest) == size


def test_s3_parts_are_at_least_5_mib_except_the_last(s3_server):
    make_storage = s3_factory(s3_server)
    data = blob(12 * MiB, seed=9)
    first = make_storage()
    upload_id = new_id()
    first.begin(upload_id, ALG, sha(data), len(data))
    offset = 0
    for index in range(12):
        host = first if index < 6 else make_storage()  # halfway, another host takes over
        offset = host.append(upload_id, offset, io.BytesIO(data[offset : offset + MiB]), MiB)
        state = host.describe(upload_id)
        assert sum(c["length"] for c in state["buffered"]) < MIN_PART_SIZE or offset == len(data)

    state = first.describe(upload_id)
    assert [p["length"] for p in state["parts"]] == [5 * MiB, 5 * MiB, 2 * MiB]
    assert [p["start"] for p in state["parts"]] == [0, 5 * MiB, 10 * MiB]
    assert state["buffered"] == []
    # What the S3 server itself holds for the multipart upload agrees with the records.
    listed = first.client.list_parts(
        Bucket=first.bucket, Key=f"media/uploads/{upload_id}/assembled", UploadId=state["multipart"]
    )["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MiB), (2, 5 * MiB), (3, 2 * MiB)]

    stored = make_storage().complete(upload_id)
    head = first.client.head_object(Bucket=first.bucket, Key=f"media/{stored.key}")
    assert head["ContentLength"] == len(data)  # no byte range stored twice
    with first.open(ALG, sha(data)) as fh:
        assert sha(fh.read()) == sha(data)
    leftovers = first.client.list_objects_v2(Bucket=first.bucket, Prefix=f"media/uploads/{upload_id}/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in leftovers["Contents"]) == ["completed", "upload.json"]
    assert first.client.list_multipart_uploads(Bucket=first.bucket).get("Uploads", []) == []


def test_derivatives_round_trip(storage, make_storage):
    digest = sha(b"photo")
    storage.put_derivative(ALG, digest, "preview", b"small jpeg")
    storage.put_derivative(ALG, digest, "thumb", b"tiny jpeg")
    storage.put_derivative(ALG, digest, "thumb", b"tiny jpeg, made again")
    other = make_storage()
    assert other.get_derivative(ALG, digest, "preview") == b"small jpeg"
    assert other.get_derivative(ALG, digest, "thumb") == b"tiny jpeg, made again"
    with pytest.raises(MediaNotFound):
        other.get_derivative(ALG, digest, "phone-preview")
    for name in ("original", "../preview", "preview/x", ""):
        with pytest.raises(ValueError):
            storage.put_derivative(ALG, digest, name, b"x")


# ------------------------------------------------------------------ originals handed over as files


def write_generated(path: Path, size: int) -> str:
    """Write ``size`` generated bytes to ``path`` a MiB at a time; return their SHA-256."""
    stream = GeneratedStream(size, max_read=MiB)
    with open(path, "wb") as out:
        while piece := stream.read(min(MiB, size - stream.sent)):
            out.write(piece)
    return stream.hasher.hexdigest()


def local_original(root: Path, digest: str) -> Path:
    return root.joinpath(*original_key(ALG, digest).split("/"))


def test_put_original_file_stores_a_verified_file_once(storage, make_storage, tmp_path):
    data = blob(300_000, seed=30)
    source = tmp_path / "footage.mp4"
    source.write_bytes(data)
    assert storage.put_original_file(ALG, sha(data), source) is True
    other_host = make_storage()
    assert other_host.exists(ALG, sha(data)) and other_host.size(ALG, sha(data)) == len(data)
    with other_host.open(ALG, sha(data)) as fh:
        assert fh.read() == data
    assert source.read_bytes() == data  # the caller's file is still there, for the caller to remove

    # Already stored: nothing done. An original is never overwritten, whatever the file holds.
    impostor = tmp_path / "impostor"
    impostor.write_bytes(blob(len(data), seed=31))
    assert other_host.put_original_file(ALG, sha(data), impostor) is False
    assert storage.put_original_file(ALG, sha(data), str(source)) is False
    with storage.open(ALG, sha(data)) as fh:
        assert fh.read() == data

    with pytest.raises(ValueError):  # keys are made from validated values only
        storage.put_original_file("md5", hashlib.md5(data).hexdigest(), source)


def test_put_original_file_and_an_upload_of_the_same_bytes_store_one_original(storage, tmp_path):
    filed = blob(100_000, seed=32)
    (tmp_path / "filed").write_bytes(filed)
    assert storage.put_original_file(ALG, sha(filed), tmp_path / "filed") is True
    assert storage.complete(upload(storage, filed, chunk=40_000)).created is False

    uploaded = blob(50_000, seed=33)
    assert storage.complete(upload(storage, uploaded, chunk=50_000)).created is True
    (tmp_path / "uploaded").write_bytes(uploaded)
    assert storage.put_original_file(ALG, sha(uploaded), tmp_path / "uploaded") is False


def test_put_original_file_streams_a_large_file(storage, backend, tmp_path):
    size = 20 * MiB  # past boto3's multipart threshold (8 MiB): several parts on S3
    source = tmp_path / "bodycam.mp4"
    digest = write_generated(source, size)
    assert storage.put_original_file(ALG, digest, source) is True
    assert storage.size(ALG, digest) == size
    hasher = hashlib.sha256()
    with storage.open(ALG, digest) as fh:
        while piece := fh.read(MiB):
            hasher.update(piece)
    assert hasher.hexdigest() == digest
    if backend == "s3":
        head = storage.client.head_object(Bucket=storage.bucket, Key=storage._k(original_key(ALG, digest)))
        assert "-" in head["ETag"]  # a multipart upload's ETag: <md5 of the part md5s>-<parts>


def test_a_staged_copy_becomes_the_original_once_and_is_gone_either_way(storage):
    data = blob(300_000, seed=35)
    staged = storage.staging_dir() / "fieldapp-original-test"
    staged.write_bytes(data)
    assert storage.adopt_staged_original(ALG, sha(data), staged) is True
    assert not staged.exists()
    with storage.open(ALG, sha(data)) as f:
        assert f.read() == data
    again = storage.staging_dir() / "fieldapp-original-again"
    again.write_bytes(b"not the same bytes")
    assert storage.adopt_staged_original(ALG, sha(data), again) is False  # never overwritten
    assert not again.exists()
    with storage.open(ALG, sha(data)) as f:
        assert f.read() == data


def test_local_put_original_file_is_a_copy_a_later_write_to_the_export_cannot_reach(tmp_path):
    storage = LocalStorage(tmp_path / "media")
    data = blob(100_000, seed=34)
    source = tmp_path / "clip.mp4"
    source.write_bytes(data)
    assert storage.put_original_file(ALG, sha(data), source) is True
    final = local_original(tmp_path / "media", sha(data))
    assert not final.samefile(source)
    assert final.stat().st_mode & 0o777 == 0o444
    assert source.stat().st_mode & 0o200  # the caller's file is left as it was
    with open(source, "r+b") as f:  # the station reuses its export folder
        f.write(b"overwritten")
    assert final.read_bytes() == data
    assert list((tmp_path / "media").glob("tmp/*")) == []


def test_local_put_original_file_streams_a_large_file(tmp_path):
    storage = LocalStorage(tmp_path / "media")
    source = tmp_path / "bodycam.mp4"
    digest = write_generated(source, 20 * MiB)
    tracemalloc.start()
    try:
        assert storage.put_original_file(ALG, digest, source) is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, f"storing a 20 MiB file peaked at {peak} bytes"
    final = local_original(tmp_path / "media", digest)
    assert final.stat().st_size == 20 * MiB
    assert list((tmp_path / "media" / "tmp").iterdir()) == []  # the copy became the original
    assert storage.put_original_file(ALG, digest, source) is False


@pytest.mark.parametrize("alg", ["sha256", "SHA-256", "md5", "sm3", "", None])
def test_unknown_algorithms_are_refused(storage, alg):
    digest = sha(b"x")
    for call in (
        lambda: storage.begin(new_id(), alg, digest, 1),
        lambda: storage.exists(alg, digest),
        lambda: storage.open(alg, digest),
        lambda: storage.put_derivative(alg, digest, "preview", b"x"),
    ):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize(
    "digest", [sha(b"x").upper(), sha(b"x")[:63], sha(b"x") + "0", "../" + sha(b"x")[3:], "g" * 64, ""]
)
def test_malformed_digests_are_refused(storage, digest):
    for call in (
        lambda: storage.begin(new_id(), ALG, digest, 1),
        lambda: storage.exists(ALG, digest),
        lambda: storage.open(ALG, digest),
        lambda: storage.get_derivative(ALG, digest, "preview"),
    ):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize(
    "upload_id",
    ["../etc", "not-a-uuid", SAMPLE_ID.upper(), "{" + SAMPLE_ID + "}", SAMPLE_ID.replace("-", ""),
     SAMPLE_ID + "/..", "", "a/b", None],
)
def test_malformed_upload_ids_are_refused(storage, upload_id):
    for call in (
        lambda: storage.begin(upload_id, ALG, sha(b"x"), 1),
        lambda: storage.offset(upload_id),
        lambda: storage.append(upload_id, 0, io.BytesIO(b"x"), 1),
        lambda: storage.complete(upload_id),
        lambda: storage.abort(upload_id),
    ):
        with pytest.raises(ValueError):
            call()


def test_bad_sizes_are_refused(storage):
    for size in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError):
            storage.begin(new_id(), ALG, sha(b"x"), size)


def test_storage_from_settings(tmp_path):
    local = storage_from_settings(SimpleNamespace(media_dir=tmp_path / "m"))
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "m"
    s3 = storage_from_settings(
        SimpleNamespace(
            media_backend="s3", s3_bucket="media", s3_endpoint="http://127.0.0.1:9",
            s3_region="cn-north-1", s3_access_key="a", s3_secret_key="b",
        )
    )
    assert isinstance(s3, S3Storage) and s3.bucket == "media" and s3.region == "cn-north-1"
    with pytest.raises(ValueError):
        storage_from_settings(SimpleNamespace(media_backend="s3"))
    with pytest.raises(ValueError):
        storage_from_settings(SimpleNamespace(media_backend="ftp"))


class RacingStream(io.RawIOBase):
    """A body during whose transfer another host lands a chunk at the same offset."""

    def __init__(self, data: bytes, on_first_read):
        self._inner, self._hook = io.BytesIO(data), on_first_read

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._hook:
            hook, self._hook = self._hook, None
            hook()
        return self._inner.read(n)


def test_two_hosts_racing_on_one_offset_cannot_both_land(make_storage):
    data = blob(30_000, seed=10)
    first, second = make_storage(), make_storage()
    upload_id = new_id()
    first.begin(upload_id, ALG, sha(data), len(data))
    racer = RacingStream(
        data[:20_000], lambda: second.append(upload_id, 0, io.BytesIO(data[:12_000]), 12_000)
    )
    with pytest.raises(OffsetMismatch) as caught:
        first.append(upload_id, 0, racer, 20_000)
    assert caught.value.held == 12_000 == first.offset(upload_id)
    first.append(upload_id, 12_000, io.BytesIO(data[12_000:]), len(data))
    with second.open(ALG, first.complete(upload_id).digest) as fh:
        assert fh.read() == data


class FailingOnce:
    """An S3 client that fails the first call of ``method`` whose Key contains ``marker``."""

    def __init__(self, client, method: str, marker: str):
        self._client, self._method, self._marker, self.failed = client, method, marker, False

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name != self._method:
            return attr

        def call(**kwargs):
            if not self.failed and self._marker in kwargs.get("Key", ""):
                self.failed = True
                raise ConnectionError("host died here")
            return attr(**kwargs)

        return call


def test_s3_host_dying_between_a_part_and_its_record_loses_nothing(s3_server):
    make_storage = s3_factory(s3_server)
    data = blob(11 * MiB, seed=11)
    dying = make_storage()
    dying.client = FailingOnce(dying.client, "put_object", "/part-")
    upload_id = new_id()
    dying.begin(upload_id, ALG, sha(data), len(data))
    offset = 0
    for _ in range(6):  # the 5th chunk uploads part 1 but its record fails: deferred, not lost
        offset = dying.append(upload_id, offset, io.BytesIO(data[offset : offset + MiB]), MiB)
    assert dying.client.failed
    state = make_storage().describe(upload_id)
    assert state["held"] == 6 * MiB
    # Part 1 was formed again at the 6th chunk: same number, same 5 chunks, same bytes.
    assert [p["length"] for p in state["parts"]] == [5 * MiB]
    assert state["buffered"] == [{"start": 5 * MiB, "length": MiB}]

    survivor = make_storage()
    offset = survivor.append(upload_id, offset, io.BytesIO(data[offset:]), len(data))
    assert [p["length"] for p in survivor.describe(upload_id)["parts"]] == [5 * MiB, 6 * MiB]
    assert survivor.complete(upload_id).size == len(data)


def test_s3_host_dying_after_assembly_completes_on_retry(s3_server):
    make_storage = s3_factory(s3_server)
    data = blob(MiB + 5, seed=12)
    dying = make_storage()
    dying.client = FailingOnce(dying.client, "get_object", "/assembled")
    upload_id = upload(dying, data, chunk=300_000)
    with pytest.raises(ConnectionError):
        dying.complete(upload_id)
    assert not dying.exists(ALG, sha(data))
    stored = make_storage().complete(upload_id)
    assert stored.created and stored.size == len(data)


# ------------------------------------------------------------------------------- sweeping, probe


def test_uploads_lists_each_upload_with_its_completion_and_last_activity(storage):
    before = datetime.now(timezone.utc) - timedelta(seconds=2)  # S3 times are whole seconds
    data = blob(300_000, seed=21)
    in_progress = new_id()
    storage.begin(in_progress, ALG, sha(data), len(data))
    storage.append(in_progress, 0, io.BytesIO(data[:100_000]), 100_000)
    completed = upload(storage, data, chunk=100_000)
    storage.complete(completed)
    states = {s.upload_id: s for s in storage.uploads()}
    assert set(states) == {in_progress, completed}
    assert not states[in_progress].completed and states[completed].completed
    after = datetime.now(timezone.utc) + timedelta(seconds=2)
    assert all(before <= s.last_activity <= after for s in states.values())
    storage.abort(completed)
    assert {s.upload_id for s in storage.uploads()} == {in_progress}
    assert storage.exists(ALG, sha(data))  # removing a completed upload's state keeps its original


def test_sweeping_temporary_files_leaves_every_upload_and_original_whole(storage):
    """Even with every temporary object counted as old, uploads in progress and stored originals
    keep all they need: the in-progress upload still completes."""
    data = blob(6 * MiB, seed=22)
    in_progress = new_id()
    storage.begin(in_progress, ALG, sha(data), len(data))
    offset = 0
    while offset < 5 * MiB:  # on S3 this forms a multipart part: the multipart upload is in use
        offset = storage.append(in_progress, offset, io.BytesIO(data[offset:offset + MiB]), MiB)
    stored = blob(100_000, seed=23)
    storage.complete(upload(storage, stored, chunk=50_000))

    storage.sweep_temporary(datetime.now(timezone.utc) + timedelta(days=1))

    assert storage.offset(in_progress) == offset
    storage.append(in_progress, offset, io.BytesIO(data[offset:]), len(data))
    assert storage.complete(in_progress).size == len(data)
    with storage.open(ALG, sha(stored)) as fh:
        assert fh.read() == stored


def test_local_temporary_files_are_swept_by_age(tmp_path):
    storage = LocalStorage(tmp_path / "media")
    data = blob(200_000, seed=24)
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(data), len(data))
    storage.append(upload_id, 0, io.BytesIO(data[:100_000]), 100_000)
    tmp = tmp_path / "media" / "tmp"
    tmp.mkdir(exist_ok=True)
    old = [tmp / "assembling-dead", tmp_path / "media" / "uploads" / upload_id / ".incoming-dead"]
    young = [tmp / "assembling-busy", tmp_path / "media" / "uploads" / upload_id / ".incoming-busy"]
    for path in old + young:
        path.write_bytes(b"x" * 1000)
    for path in old:
        os.utime(path, (time.time() - 7 * 3600, time.time() - 7 * 3600))

    dry = storage.sweep_temporary(datetime.now(timezone.utc) - timedelta(hours=6), dry_run=True)
    assert (dry.files, dry.bytes) == (2, 2000) and all(p.exists() for p in old)
    swept = storage.sweep_temporary(datetime.now(timezone.utc) - timedelta(hours=6))
    assert (swept.files, swept.bytes) == (2, 2000)
    assert not any(p.exists() for p in old) and all(p.exists() for p in young)
    assert storage.offset(upload_id) == 100_000


def test_s3_orphaned_multipart_uploads_are_aborted_but_an_uploads_own_is_kept(s3_server):
    storage = s3_factory(s3_server)()
    data = blob(300_000, seed=25)
    upload_id = new_id()
    storage.begin(upload_id, ALG, sha(data), len(data))
    orphan = storage.client.create_multipart_upload(Bucket=storage.bucket, Key=storage._u(new_id(), "assembled"))
    swept = storage.sweep_temporary(datetime.now(timezone.utc) + timedelta(days=1))
    assert swept.files == 1
    pending = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=storage._k("uploads/"))
    assert {u["UploadId"] for u in pending.get("Uploads", [])} == {storage._meta(upload_id)["multipart"]}
    assert orphan["UploadId"] not in {u["UploadId"] for u in pending.get("Uploads", [])}
    offset = storage.append(upload_id, 0, io.BytesIO(data), len(data))
    assert storage.complete(upload_id).size == offset == len(data)


def test_probe_answers_on_a_working_store(storage):
    storage.probe(timeout=2.0)


def test_local_probe_fails_on_a_folder_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        LocalStorage(tmp_path / "file" / "media").probe()
