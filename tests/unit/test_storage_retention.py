"""Retention in media storage (art. 26): legal holds, compliance retention, approved disposal and
the bucket set-up they need, on S3 (moto on loopback) and on the local folder.

Retention dates are read back with HeadObject: moto answers a hold and a retention there (as S3
does), but has no GetObjectRetention.
"""
from __future__ import annotations

import hashlib
import io
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fieldapp.media.storage import (
    LocalStorage,
    MediaNotFound,
    MediaStorage,
    S3Storage,
    derivative_key,
    original_key,
)
from fieldapp.media.storage.base import RetentionLocked, RetentionUnavailable, derivative_prefix

ALG = "sha-256"


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def store(storage, tmp_path: Path, data: bytes) -> str:
    """Store ``data`` as an original; its digest."""
    source = tmp_path / f"source-{uuid.uuid4().hex}"
    source.write_bytes(data)
    digest = sha(data)
    assert storage.put_original_file(ALG, digest, source)
    return digest


def read(storage, digest: str) -> bytes:
    with storage.open(ALG, digest) as reader:
        return reader.read()


# ---------------------------------------------------------------------------------------- fixtures


def new_s3(server, bucket: str | None = None) -> S3Storage:
    return S3Storage(
        bucket or f"retention-{uuid.uuid4().hex[:16]}",
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        prefix="media",
    )


@pytest.fixture
def s3(s3_server) -> S3Storage:
    """A bucket of its own, made by the app (so with object lock)."""
    storage = new_s3(s3_server)
    storage.ensure_bucket()
    return storage


@pytest.fixture
def plain_s3(s3_server) -> S3Storage:
    """A bucket made by somebody else, without object lock or versioning."""
    storage = new_s3(s3_server)
    storage.client.create_bucket(Bucket=storage.bucket)
    return storage


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def versions_of(storage: S3Storage, key: str) -> list[dict]:
    """Every version and delete marker stored under exactly ``key`` (or under a folder key)."""
    listing = storage.client.list_object_versions(Bucket=storage.bucket, Prefix=storage.prefix + key)
    wanted = storage.prefix + key
    return [
        item
        for item in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
        if item["Key"] == wanted or (key.endswith("/") and item["Key"].startswith(wanted))
    ]


def head(storage: S3Storage, key: str) -> dict:
    return storage.client.head_object(Bucket=storage.bucket, Key=storage.prefix + key)


# ------------------------------------------------------------------------------------------- S3


def test_both_backends_keep_the_retention_contract(s3, local):
    for storage in (s3, local):
        assert isinstance(storage, MediaStorage)
        for method in ("set_legal_hold", "retain_until", "dispose_original", "ensure_retention_setup"):
            assert callable(getattr(storage, method))


def test_the_app_makes_its_bucket_with_object_lock_and_versioning(s3):
    assert s3.client.get_bucket_versioning(Bucket=s3.bucket)["Status"] == "Enabled"
    lock = s3.client.get_object_lock_configuration(Bucket=s3.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert "Rule" not in lock  # no default retention: upload chunks must stay deletable
    s3.ensure_bucket()  # an existing bucket is tolerated


def test_a_held_original_cannot_be_disposed_until_the_hold_is_lifted(s3, tmp_path):
    data = blob(70_000, seed=1)
    digest = store(s3, tmp_path, data)
    key = original_key(ALG, digest)

    assert s3.set_legal_hold(ALG, digest, True) is True
    assert head(s3, key)["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(RetentionLocked, match="legal hold") as refused:
        s3.dispose_original(ALG, digest)
    assert refused.value.deleted_nothing and "nothing of it was deleted" in str(refused.value)
    assert read(s3, digest) == data
    # Nor can anyone with delete rights remove the held version directly: the bucket refuses.
    (version,) = versions_of(s3, key)
    with pytest.raises(Exception, match="AccessDenied"):
        s3.client.delete_object(Bucket=s3.bucket, Key=s3.prefix + key, VersionId=version["VersionId"])

    assert s3.set_legal_hold(ALG, digest, False) is True
    assert head(s3, key)["ObjectLockLegalHoldStatus"] == "OFF"
    assert s3.dispose_original(ALG, digest) == len(data)
    assert not s3.exists(ALG, digest)
    assert versions_of(s3, key) == []  # no version and no delete marker keeps anything


def test_a_hold_covers_the_derivatives_too(s3, tmp_path):
    digest = store(s3, tmp_path, blob(5_000, seed=2))
    s3.put_derivative(ALG, digest, "thumb", b"thumb")
    s3.set_legal_hold(ALG, digest, True)
    assert head(s3, derivative_key(ALG, digest, "thumb"))["ObjectLockLegalHoldStatus"] == "ON"

    # A hold left on a derivative alone still stops the disposal, before the original goes.
    s3.set_legal_hold(ALG, digest, False)
    s3.client.put_object_legal_hold(Bucket=s3.bucket, Key=s3.prefix + derivative_key(ALG, digest, "thumb"),
                                    LegalHold={"Status": "ON"})
    with pytest.raises(RetentionLocked, match="its thumb is under legal hold"):
        s3.dispose_original(ALG, digest)
    assert s3.exists(ALG, digest) and s3.get_derivative(ALG, digest, "thumb") == b"thumb"


def test_the_stores_own_refusal_is_a_retention_lock_too(s3, tmp_path, monkeypatch):
    """A policy may hide the lock state from this client; S3 then refuses the delete itself
    (AccessDenied), and the original goes first, so its derivatives are not lost either."""
    data = blob(8_000, seed=9)
    digest = store(s3, tmp_path, data)
    s3.put_derivative(ALG, digest, "thumb", b"t")
    s3.set_legal_hold(ALG, digest, True)
    monkeypatch.setattr(s3, "_refuse_if_locked", lambda *args: None)

    with pytest.raises(RetentionLocked, match="the store refused") as refused:
        s3.dispose_original(ALG, digest)
    assert refused.value.deleted_nothing
    assert read(s3, digest) == data and s3.get_derivative(ALG, digest, "thumb") == b"t"


def test_compliance_retention_blocks_disposal_and_is_never_shortened(s3, tmp_path):
    data = blob(9_000, seed=3)
    digest = store(s3, tmp_path, data)
    key = original_key(ALG, digest)
    later = (utcnow() + timedelta(days=183)).replace(microsecond=0)

    assert s3.retain_until(ALG, digest, later) is True
    stored = head(s3, key)
    assert stored["ObjectLockMode"] == "COMPLIANCE" and stored["ObjectLockRetainUntilDate"] == later
    with pytest.raises(RetentionLocked, match="compliance retention until"):
        s3.dispose_original(ALG, digest)
    assert read(s3, digest) == data

    # An earlier date keeps the later one (moto itself would let it be shortened).
    assert s3.retain_until(ALG, digest, later - timedelta(days=30)) is True
    assert head(s3, key)["ObjectLockRetainUntilDate"] == later
    # A later one extends it.
    assert s3.retain_until(ALG, digest, later + timedelta(days=1)) is True
    assert head(s3, key)["ObjectLockRetainUntilDate"] == later + timedelta(days=1)

    with pytest.raises(ValueError, match="aware"):
        s3.retain_until(ALG, digest, datetime(2030, 1, 1))


def test_a_retention_that_has_passed_lets_the_approved_disposal_through(s3, tmp_path):
    data = blob(3_000, seed=4)
    digest = store(s3, tmp_path, data)
    until = utcnow() + timedelta(seconds=1.2)
    assert s3.retain_until(ALG, digest, until) is True
    with pytest.raises(RetentionLocked):
        s3.dispose_original(ALG, digest)
    time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 0.1)
    assert s3.dispose_original(ALG, digest) == len(data)
    # A date already past asks nothing of the store.
    assert s3.retain_until(ALG, store(s3, tmp_path, b"other"), utcnow() - timedelta(days=1)) is True


def test_disposal_removes_every_derivative_and_every_old_version(s3, tmp_path):
    data = blob(20_000, seed=5)
    digest = store(s3, tmp_path, data)
    key = original_key(ALG, digest)
    s3.put_derivative(ALG, digest, "preview", b"p" * 100)
    s3.put_derivative(ALG, digest, "preview", b"P" * 120)  # made again: the old version stays
    s3.put_derivative(ALG, digest, "thumb", b"t" * 10)
    # A second identical write (two hosts storing it at once) and a stray delete: the bytes are
    # in noncurrent versions behind a delete marker, out of sight but not gone.
    s3.client.put_object(Bucket=s3.bucket, Key=s3.prefix + key, Body=data)
    s3.client.delete_object(Bucket=s3.bucket, Key=s3.prefix + key)
    assert not s3.exists(ALG, digest)
    assert len(versions_of(s3, key)) == 3
    neighbour = store(s3, tmp_path, blob(1_000, seed=6))
    s3.put_derivative(ALG, neighbour, "thumb", b"n")

    assert s3.dispose_original(ALG, digest) == 2 * len(data) + 100 + 120 + 10
    assert versions_of(s3, key) == []
    assert versions_of(s3, derivative_prefix(ALG, digest)) == []
    with pytest.raises(MediaNotFound):
        s3.get_derivative(ALG, digest, "preview")
    assert s3.exists(ALG, neighbour) and s3.get_derivative(ALG, neighbour, "thumb") == b"n"


def test_disposing_of_what_is_not_stored_frees_nothing(s3, tmp_path):
    assert s3.dispose_original(ALG, sha(b"never stored")) == 0
    digest = store(s3, tmp_path, b"once")
    assert s3.dispose_original(ALG, digest) == 4
    assert s3.dispose_original(ALG, digest) == 0  # a retried purge


def test_holding_or_retaining_a_missing_original_is_not_found(s3):
    missing = sha(b"missing")
    with pytest.raises(MediaNotFound):
        s3.set_legal_hold(ALG, missing, True)
    with pytest.raises(MediaNotFound):
        s3.retain_until(ALG, missing, utcnow() + timedelta(days=1))


def test_retention_setup_sets_the_lifecycle_rules_once_and_keeps_others(s3):
    foreign = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 90}}
    s3.client.put_bucket_lifecycle_configuration(Bucket=s3.bucket, LifecycleConfiguration={"Rules": [foreign]})

    s3.ensure_retention_setup(noncurrent_days=30, upload_days=7)
    s3.ensure_retention_setup(noncurrent_days=30, upload_days=7)
    rules = {r["ID"]: r for r in s3.client.get_bucket_lifecycle_configuration(Bucket=s3.bucket)["Rules"]}

    assert set(rules) == {"logs", "fieldapp:media/expire-uploads", "fieldapp:media/abort-multipart",
                          "fieldapp:media/noncurrent-derivatives"}
    uploads, multipart, derivatives = (rules[f"fieldapp:media/{n}"] for n in
                                       ("expire-uploads", "abort-multipart", "noncurrent-derivatives"))
    assert uploads["Filter"] == {"Prefix": "media/uploads/"} and uploads["Expiration"] == {"Days": 7}
    assert uploads["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert multipart["Filter"] == {"Prefix": "media/"}
    assert multipart["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert set(multipart) == {"ID", "Status", "Filter", "AbortIncompleteMultipartUpload"}
    assert derivatives["Filter"] == {"Prefix": "media/derivatives/"}
    assert derivatives["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert all(r["Status"] == "Enabled" for r in rules.values())
    # No rule expires anything of an original: only an approved disposal removes its bytes.
    for rule in rules.values():
        if "media/originals/x".startswith(rule["Filter"].get("Prefix", "")):
            assert "Expiration" not in rule and "NoncurrentVersionExpiration" not in rule

    s3.ensure_retention_setup(noncurrent_days=60, upload_days=3)  # new figures replace ours
    again = {r["ID"]: r for r in s3.client.get_bucket_lifecycle_configuration(Bucket=s3.bucket)["Rules"]}
    assert len(again) == 4 and again["logs"]["Expiration"] == {"Days": 90}
    assert again["fieldapp:media/expire-uploads"]["Expiration"] == {"Days": 3}
    assert again["fieldapp:media/noncurrent-derivatives"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 60


def test_retention_setup_turns_object_lock_on_for_an_empty_bucket(plain_s3, tmp_path):
    plain_s3.ensure_retention_setup()
    assert plain_s3.client.get_bucket_versioning(Bucket=plain_s3.bucket)["Status"] == "Enabled"
    lock = plain_s3.client.get_object_lock_configuration(Bucket=plain_s3.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    digest = store(plain_s3, tmp_path, b"footage")
    assert plain_s3.set_legal_hold(ALG, digest, True) is True
    with pytest.raises(RetentionLocked):
        plain_s3.dispose_original(ALG, digest)


def test_a_bucket_without_object_lock_is_refused_loudly(plain_s3, tmp_path):
    digest = store(plain_s3, tmp_path, b"footage")
    with pytest.raises(RetentionUnavailable, match="no object lock"):
        plain_s3.set_legal_hold(ALG, digest, True)
    with pytest.raises(RetentionUnavailable, match="no object lock"):
        plain_s3.retain_until(ALG, digest, utcnow() + timedelta(days=1))
    # moto, like S3 before November 2023, turns object lock on only for an empty bucket.
    with pytest.raises(RetentionUnavailable, match="new bucket with object lock"):
        plain_s3.ensure_retention_setup()
    # Disposal still works on such a bucket (nothing can be locked there).
    assert plain_s3.dispose_original(ALG, digest) == len(b"footage")
    assert not plain_s3.exists(ALG, digest)


def test_retention_requests_carry_the_checksum_s3_requires(s3, tmp_path):
    """The client computes checksums only where S3 requires them; these calls are such, so the
    checksum must be there (S3 refuses them without Content-MD5 or an x-amz-checksum)."""
    sent: dict[str, dict] = {}

    def record(request, event_name, **_):
        sent[event_name.rsplit(".", 1)[-1]] = {k.lower(): v for k, v in request.headers.items()}

    s3.client.meta.events.register("before-send.s3", record)
    digest = store(s3, tmp_path, b"footage")
    s3.set_legal_hold(ALG, digest, True)
    s3.set_legal_hold(ALG, digest, False)
    s3.retain_until(ALG, digest, utcnow() + timedelta(seconds=1))
    s3.ensure_retention_setup()
    for operation in ("PutObjectLegalHold", "PutObjectRetention", "PutBucketLifecycleConfiguration"):
        headers = sent[operation]
        assert "content-md5" in headers or any(k.startswith("x-amz-checksum-") for k in headers), operation


def test_uploads_still_work_on_a_versioned_bucket(s3):
    data = blob(4_000, seed=7)
    digest = sha(data)
    upload_id = str(uuid.uuid4())
    s3.begin(upload_id, ALG, digest, len(data))
    s3.append(upload_id, 0, io.BytesIO(data), len(data))
    assert s3.complete(upload_id).created is True
    # The chunk's delete left a delete marker; listings and the upload's state do not see it.
    markers = s3.client.list_object_versions(Bucket=s3.bucket, Prefix=s3.prefix + "uploads/").get("DeleteMarkers", [])
    assert markers
    assert {u.upload_id: u.completed for u in s3.uploads()} == {upload_id: True}
    assert s3.offset(upload_id) == len(data)

    # Create-if-absent still sees a stored original, and again stores one disposed of.
    staged = s3.staging_dir() / f"staged-{uuid.uuid4().hex}"
    staged.write_bytes(data)
    assert s3.adopt_staged_original(ALG, digest, staged) is False and not staged.exists()
    assert s3.dispose_original(ALG, digest) == len(data)
    again = s3.staging_dir() / f"staged-{uuid.uuid4().hex}"
    again.write_bytes(data)
    assert s3.adopt_staged_original(ALG, digest, again) is True
    assert read(s3, digest) == data and len(versions_of(s3, original_key(ALG, digest))) == 1

    s3.abort(upload_id)
    assert list(s3.uploads()) == []
    # An orphaned multipart upload (a killed host's) is still swept.
    orphan = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=s3.prefix + f"uploads/{uuid.uuid4()}/assembled")
    assert s3.sweep_temporary(utcnow() + timedelta(minutes=1)).files == 1
    pending = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert orphan["UploadId"] not in {p["UploadId"] for p in pending}


# ---------------------------------------------------------------------------------------- local


def test_local_has_no_retention_control_but_keeps_the_contract(local, tmp_path):
    digest = store(local, tmp_path, b"footage")
    assert local.set_legal_hold(ALG, digest, True) is False
    assert local.retain_until(ALG, digest, utcnow() + timedelta(days=183)) is False
    assert local.ensure_retention_setup() is None
    assert read(local, digest) == b"footage"
    with pytest.raises(MediaNotFound):
        local.set_legal_hold(ALG, sha(b"missing"), True)
    with pytest.raises(MediaNotFound):
        local.retain_until(ALG, sha(b"missing"), utcnow() + timedelta(days=1))
    with pytest.raises(ValueError, match="aware"):
        local.retain_until(ALG, digest, datetime(2030, 1, 1))


def test_local_disposal_removes_the_file_and_its_derivatives(local, tmp_path):
    data = blob(12_345, seed=8)
    digest = store(local, tmp_path, data)
    local.put_derivative(ALG, digest, "preview", b"p" * 100)
    local.put_derivative(ALG, digest, "thumb", b"t" * 10)
    neighbour = store(local, tmp_path, b"neighbour")
    local.put_derivative(ALG, neighbour, "thumb", b"n")

    assert local.dispose_original(ALG, digest) == len(data) + 110
    assert not local.exists(ALG, digest)
    assert not (local.root / original_key(ALG, digest)).exists()
    assert not (local.root / derivative_prefix(ALG, digest)).exists()
    with pytest.raises(MediaNotFound):
        local.get_derivative(ALG, digest, "thumb")
    assert local.dispose_original(ALG, digest) == 0
    assert local.dispose_original(ALG, sha(b"never stored")) == 0
    assert read(local, neighbour) == b"neighbour" and local.get_derivative(ALG, neighbour, "thumb") == b"n"
