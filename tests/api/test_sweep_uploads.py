"""Sweeping uploads by age (`flask --app fieldapp sweep-uploads`), on both media backends and both
databases: abandoned uploads, completed uploads' leftover state and a killed host's temporary
files go; live uploads, stored originals and recent temporary files stay.

Ages are made with a cut: what is made before the cut is old, what is made after it (1.5 s later,
past the one-second resolution of S3's LastModified) is young, and the sweep runs as if it were
the cut plus the age limit.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.media import sweep
from fieldapp.media.storage import LocalStorage, S3Storage, storage_from_settings
from fieldapp.models import MediaUploadChunk
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, demo_sign_in, run_cli, seed_user

API = "/api/v1/media"
ALG = "sha-256"
CHUNK = 64 * 1024
AGE = timedelta(hours=48)


def photo(seed: int, size: int = 200_000) -> bytes:
    rng = random.Random(seed)
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 48), rng.randbytes(64 * 48 * 3)).save(out, "JPEG")
    head = out.getvalue()
    return head + rng.randbytes(size - len(head))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def storage_settings(backend, request, tmp_path) -> dict:
    if backend == "local":
        return {"media_backend": "local", "media_dir": tmp_path / "media"}
    server = request.getfixturevalue("s3_server")
    bucket, prefix = f"fieldapp-{uuid.uuid4().hex[:16]}", f"t{uuid.uuid4().hex[:8]}/media"
    S3Storage(bucket, endpoint_url=server.endpoint_url, region=server.region, access_key=server.access_key,
              secret_key=server.secret_key, prefix=prefix).ensure_bucket()
    return {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint": server.endpoint_url,
            "s3_region": server.region, "s3_access_key": server.access_key, "s3_secret_key": server.secret_key,
            "s3_prefix": prefix}


@dataclass
class Host:
    """A signed-in phone's view of one app, and the app's store as another host sees it."""

    app: Flask
    client: object
    csrf: str
    host_tmp: Path

    @property
    def store(self):
        return storage_from_settings(self.app.config["FIELDAPP_SETTINGS"])

    def begin(self, data: bytes):
        return self.client.post(f"{API}/uploads", json={"alg": ALG, "hash": sha(data), "size": len(data),
                                                        "type": "image/jpeg"}, headers={"X-CSRFToken": self.csrf})

    def put(self, upload_id: str, offset: int, data: bytes):
        return self.client.put(f"{API}/uploads/{upload_id}?offset={offset}", data=data,
                               content_type="application/octet-stream", headers={"X-CSRFToken": self.csrf})

    def offset(self, upload_id: str):
        return self.client.get(f"{API}/uploads/{upload_id}")

    def complete(self, upload_id: str):
        return self.client.post(f"{API}/uploads/{upload_id}/complete", headers={"X-CSRFToken": self.csrf})

    def started(self, data: bytes, chunks: int = 1) -> str:
        """An upload begun with its first ``chunks`` chunks sent."""
        begun = self.begin(data)
        assert begun.status_code == 201, begun.get_json()
        upload_id = begun.get_json()["upload_id"]
        for n in range(chunks):
            sent = self.put(upload_id, n * CHUNK, data[n * CHUNK:(n + 1) * CHUNK])
            assert sent.status_code == 200, sent.get_json()
        return upload_id

    def finish(self, upload_id: str, data: bytes, offset: int) -> None:
        while offset < len(data):
            sent = self.put(upload_id, offset, data[offset:offset + CHUNK])
            assert sent.status_code == 200, sent.get_json()
            offset = sent.get_json()["offset"]
        done = self.complete(upload_id)
        assert done.status_code == 200 and done.get_json()["status"] == "stored", done.get_json()

    def uploaded(self, data: bytes) -> str:
        upload_id = self.started(data, chunks=0)
        self.finish(upload_id, data, 0)
        return upload_id

    def held(self) -> set[str]:
        return {state.upload_id for state in self.store.uploads()}

    def original(self, data: bytes) -> bytes | None:
        store = self.store
        if not store.exists(ALG, sha(data)):
            return None
        with store.open(ALG, sha(data)) as fh:
            return fh.read()

    def chunk_rows(self, upload_id: str) -> int:
        with self.app.app_context():
            return db.session().execute(select(func.count()).select_from(MediaUploadChunk).where(
                MediaUploadChunk.upload_id == uuid.UUID(upload_id))).scalar_one()

    def sweep(self, now: datetime, **ages) -> sweep.SweepReport:
        limits = {"abandon_after": AGE, "completed_after": AGE, "temp_after": AGE, **ages}
        with self.app.app_context():
            return sweep.sweep(self.store, now=now, host_temp_dir=self.host_tmp, **limits)

    # -- what a host killed mid-work leaves behind
    def leave_leftovers(self, live_upload_id: str, tag: str) -> list:
        """Temporary files of interrupted work; returns handles for ``still_there``."""
        left: list = []
        original_copy = self.host_tmp / f"fieldapp-original-{tag}"
        original_copy.write_bytes(b"\0" * 4096)
        left.append(original_copy)
        store = self.store
        if isinstance(store, LocalStorage):
            (store.root / "tmp").mkdir(parents=True, exist_ok=True)
            for path in (store.root / "tmp" / f"assembling-{tag}",
                         store.root / "uploads" / live_upload_id / f".incoming-{tag}"):
                path.write_bytes(b"\1" * 8192)
                left.append(path)
        elif tag == "old":
            # A begin that died before writing upload.json. (Only an old one: moto reports every
            # multipart upload as initiated in 2010, so a young one cannot be made.)
            orphan_id = str(uuid.uuid4())
            pending = store.client.create_multipart_upload(Bucket=store.bucket, Key=store._u(orphan_id, "assembled"))
            left.append(("multipart", pending["UploadId"]))
        return left

    def still_there(self, handle) -> bool:
        if isinstance(handle, Path):
            return handle.exists()
        store = self.store
        pending = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store._k("uploads/"))
        return handle[1] in {u["UploadId"] for u in pending.get("Uploads", [])}


@pytest.fixture
def host(db_url, tmp_path, storage_settings, monkeypatch):
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(host_tmp))  # the host's temporary folder
    app = make_app(db_url, tmp_path / "var", demo=True, **storage_settings)
    seeded = seed_user(app, "张伟", "C-1", "ZF1")
    client = app.test_client()
    demo_sign_in(client, seeded.user_id)
    yield Host(app, client, csrf_token(client), host_tmp)
    app.extensions["fieldapp.engine"].dispose()


def cut_in_time() -> datetime:
    cut = datetime.now(timezone.utc)
    time.sleep(1.5)
    return cut


def test_old_state_goes_and_live_uploads_originals_and_recent_files_stay(host):
    abandoned_data, completed_data, live_data = photo(1), photo(2), photo(3)
    abandoned = host.started(abandoned_data)
    completed = host.uploaded(completed_data)
    live = host.started(live_data, chunks=0)  # begun long ago, and still being added to
    old = host.leave_leftovers(live, "old")
    cut = cut_in_time()
    sent = host.put(live, 0, live_data[:CHUNK])
    assert sent.status_code == 200, sent.get_json()
    young = host.leave_leftovers(live, "young")
    assert {abandoned, completed, live} <= host.held()

    report = host.sweep(now=cut + AGE)

    assert (report.abandoned, report.completed, report.failed) == (1, 1, 0), report
    assert report.temporary.files == len(old), report
    assert host.held() == {live}
    assert not any(host.still_there(h) for h in old)
    assert all(host.still_there(h) for h in young)
    # The abandoned upload is gone with its record of chunks; its phone begins it again from 0.
    assert host.offset(abandoned).status_code == 404
    assert host.chunk_rows(abandoned) == 0
    again = host.begin(abandoned_data)
    assert again.status_code == 201 and again.get_json()["offset"] == 0
    # The completed upload's original is untouched, and the phone is still answered "stored".
    assert host.original(completed_data) == completed_data
    assert host.complete(completed).get_json()["status"] == "stored"
    assert host.begin(completed_data).get_json()["status"] == "stored"
    assert host.chunk_rows(completed) > 0  # how it arrived stays on record
    # The live upload continues where it was.
    assert host.offset(live).get_json()["offset"] == CHUNK
    host.finish(live, live_data, CHUNK)
    assert host.original(live_data) == live_data


def test_completed_state_goes_early_only_once_the_database_records_the_completion(host):
    recorded_data, unrecorded_data, abandoned_data = photo(4), photo(5), photo(6)
    host.uploaded(recorded_data)
    # A host died between storing the original and recording it: the state answers a retry.
    unrecorded = str(uuid.uuid4())
    store = host.store
    store.begin(unrecorded, ALG, sha(unrecorded_data), len(unrecorded_data))
    store.append(unrecorded, 0, io.BytesIO(unrecorded_data), len(unrecorded_data))
    store.complete(unrecorded)
    abandoned = host.started(abandoned_data)
    cut = datetime.now(timezone.utc)

    soon = host.sweep(now=cut + timedelta(hours=1), completed_after=timedelta(hours=1))
    assert (soon.completed, soon.abandoned) == (1, 0), soon
    assert host.held() == {unrecorded, abandoned}

    later = host.sweep(now=cut + AGE + timedelta(hours=1), completed_after=timedelta(hours=1))
    assert (later.completed, later.abandoned) == (1, 1), later
    assert host.held() == set()
    for data in (recorded_data, unrecorded_data):
        assert host.original(data) == data


def test_a_dry_run_removes_nothing(host):
    abandoned = host.started(photo(7))
    old = host.leave_leftovers(abandoned, "old")
    cut = datetime.now(timezone.utc)
    with host.app.app_context():
        report = sweep.sweep(host.store, abandon_after=AGE, completed_after=AGE, temp_after=AGE,
                             now=cut + 2 * AGE, host_temp_dir=host.host_tmp, dry_run=True)
    assert report.abandoned == 1 and report.temporary.files == len(old)
    assert host.held() == {abandoned}
    assert all(host.still_there(h) for h in old)


def test_the_sweep_uploads_command(host):
    abandoned = host.started(photo(8))
    completed_data = photo(9)
    completed = host.uploaded(completed_data)
    old = host.leave_leftovers(abandoned, "old")
    time.sleep(1.1)  # S3 ages have a resolution of one second
    now = ("--abandon-hours", "0", "--completed-hours", "0", "--temp-hours", "0")

    dry = run_cli(host.app, "sweep-uploads", "--dry-run", *now)
    assert dry.exit_code == 0, dry.output
    assert f"would remove 1 abandoned uploads, the state of 1 completed uploads, {len(old)} temporary files" \
        in dry.output
    assert host.held() == {abandoned, completed}

    result = run_cli(host.app, "sweep-uploads", *now)
    assert result.exit_code == 0, (result.output, result.exception)
    # (A spool inside an upload's folder goes with the upload, so fewer files than the dry run's.)
    assert "removed 1 abandoned uploads, the state of 1 completed uploads, " in result.output
    assert host.held() == set()
    assert not any(host.still_there(h) for h in old)
    assert host.original(completed_data) == completed_data
    assert host.complete(completed).get_json()["status"] == "stored"
    assert os.listdir(host.host_tmp) == []
