"""Media in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), reached with boto3, which is
imported only when an :class:`S3Storage` is made.

An upload's chunks are buffered as separate objects ``uploads/<id>/chunk-<start>`` until the chain
from the end of the last part holds at least 5 MiB (the S3 minimum part size); those chunks then
become the next multipart part (``UploadPart`` from the chunk bytes, no server-side copy), a part
record ``uploads/<id>/part-<n>-<start>-<length>`` is written and the chunk objects are deleted. The
chain reaching the declared size forms the last part, which may be smaller. (Which chunks form
which part is decided in :mod:`fieldapp.media.storage.uploads`.) A host that dies loses at most the
chunk it was receiving.

``complete`` completes the multipart upload into a staging object ``uploads/<id>/assembled`` and
reads it back to verify the hash (one GET of the whole file through the app host), then copies it
server-side to the content-addressed key (no bytes through the app host).

Retention (art. 26) is the bucket's object lock: a bucket made here has it, and with it versioning,
so a plain delete of a key only adds a delete marker over the versions that keep the bytes. Upload
state is deleted that way as before; what those deletes leave is cleared by the lifecycle rules of
``ensure_retention_setup``. Originals are left out of those rules on purpose: a stray delete of an
original stays undoable for good, and only ``dispose_original`` removes an original's versions.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO, Any, BinaryIO

from .base import (
    HashMismatch,
    MediaError,
    MediaNotFound,
    OffsetMismatch,
    RetentionLocked,
    RetentionUnavailable,
    StoredMedia,
    StoredObject,
    parse_object_key,
    Swept,
    UnknownUpload,
    UploadIncomplete,
    UploadState,
    _copy,
    _receive,
    algorithm,
    derivative_key,
    derivative_prefix,
    original_key,
    retention_deadline,
    validate_upload_id,
)
from .uploads import (
    MAX_PARTS,
    _canonical_upload_id,
    _chunk_name,
    _check_same,
    _declaration,
    _part_name,
    _S3Upload,
)

log = logging.getLogger(__name__)

class _ChainChanged(Exception):
    """A chunk vanished while forming a part: another host formed it first; read the state again."""


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


class S3Storage:
    """Media in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), reached with boto3."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        *,
        client: Any = None,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.region = region or "us-east-1"
        prefix = (prefix or "").strip("/")
        if prefix and any(part in {"", ".", ".."} for part in prefix.split("/")):
            raise ValueError("the S3 prefix has an empty, '.' or '..' segment")
        self.prefix = f"{prefix}/" if prefix else ""
        self._connection = {"region_name": self.region, "endpoint_url": endpoint_url or None,
                            "aws_access_key_id": access_key, "aws_secret_access_key": secret_key,
                            "addressing_style": "path" if endpoint_url else "auto"}
        self._injected_client = client is not None
        self._probe_clients: dict[float, Any] = {}
        if client is None:
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                # Checksums only where S3 requires them: several S3-compatible servers refuse the
                # newer default trailing checksums. Integrity is checked end to end by the hash.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            with _SESSION_LOCK:  # one session: its loaded service models are reused by each client
                global _SESSION
                if _SESSION is None:
                    _SESSION = boto3.session.Session()
                client = _SESSION.client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=endpoint_url or None,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret_key,
                    config=config,
                )
        self.client = client

    # -- helpers
    def _k(self, key: str) -> str:
        return self.prefix + key

    def _u(self, upload_id: str, leaf: str = "") -> str:
        return self._k(f"uploads/{validate_upload_id(upload_id)}/{leaf}")

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _is(self, exc: Exception, *codes: str) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and self._code(exc) in codes

    _NOT_FOUND = ("NoSuchKey", "404", "NotFound")
    _PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict")

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                return None
            raise

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            if batch:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )

    def _list(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix) :]] = item["Size"]
        return found

    def ensure_bucket(self) -> None:
        """Create the bucket when missing, with object lock so that retention can be enforced
        (deployments may instead create it with its policy; an existing bucket is left as it is:
        ``ensure_retention_setup`` checks it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:
            if not self._is(exc, "404", "NoSuchBucket", "NotFound"):
                raise
        # Object lock can be had for certain only at creation; it turns versioning on with it.
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except Exception as exc:
            if not self._is(exc, "BucketAlreadyOwnedByYou"):
                raise

    def _state(self, upload_id: str) -> _S3Upload:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._u(upload_id, "upload.json"))
            meta = json.loads(body["Body"].read())
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise UnknownUpload(f"no upload {upload_id}") from None
            raise
        return _S3Upload.from_listing(upload_id, meta, self._list(self._u(upload_id)))

    # -- uploads
    def begin(self, upload_id: str, alg: str, digest: str, size: int) -> None:
        wanted = _declaration(upload_id, alg, digest, size)
        try:
            _check_same(self._state(upload_id).meta, wanted)
            return
        except UnknownUpload:
            pass
        multipart = None
        if size > 0:
            multipart = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._u(upload_id, "assembled")
            )["UploadId"]
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._u(upload_id, "upload.json"),
                Body=json.dumps({**wanted, "multipart": multipart}).encode(),
                IfNoneMatch="*",
            )
        except Exception as exc:
            if not self._is(exc, *self._PRECONDITION):
                raise
            if multipart:  # another host began it at the same moment: use theirs
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._u(upload_id, "assembled"), UploadId=multipart
                )
            _check_same(self._state(upload_id).meta, wanted)

    def offset(self, upload_id: str) -> int:
        return self._state(upload_id).held

    def describe(self, upload_id: str) -> dict:
        """The upload's stored state, for operators and tests."""
        state = self._state(upload_id)
        return {
            **state.meta,
            "held": state.held,
            "completed": state.completed,
            "parts": [{"number": n, "start": s, "length": ln} for n, s, ln in state.parts],
            "buffered": [{"start": s, "length": ln} for s, ln in state.chunks],
        }

    def append(self, upload_id: str, expected_offset: int, stream: BinaryIO, max_bytes: int) -> int:
        state = self._state(upload_id)
        held = state.held
        if expected_offset != held:
            raise OffsetMismatch(held)
        with tempfile.TemporaryFile() as spool:
            received = _receive(stream, spool, max_bytes, state.size - held)
            if received == 0:
                return held
            spool.seek(0)
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._u(upload_id, _chunk_name(held)),
                    Body=spool,
                    ContentLength=received,
                    IfNoneMatch="*",
                )
            except Exception as exc:
                if self._is(exc, *self._PRECONDITION):
                    raise OffsetMismatch(self.offset(upload_id)) from None
                raise
            state.chunks.append((held, received))
            # The chunk is durable now; forming parts is deferred work that any later append or
            # complete redoes, so its failure must not fail this chunk.
            try:
                self._form_parts(upload_id, state, {held: spool})
            except Exception:
                log.warning("upload %s: forming a multipart part deferred", upload_id, exc_info=True)
        return held + received

    def _form_parts(self, upload_id: str, state: _S3Upload, local: dict[int, IO[bytes]]) -> _S3Upload:
        for _attempt in range(5):
            try:
                if state.stale_chunks:
                    self._delete([self._u(upload_id, _chunk_name(s)) for s in state.stale_chunks])
                    state.stale_chunks = []
                while (group := state.next_group()) is not None:
                    self._upload_part(upload_id, state, group, local)
                return state
            except _ChainChanged:
                state = self._state(upload_id)
        raise MediaError(f"upload {upload_id}: the chunk chain kept changing while forming parts")

    def _upload_part(
        self, upload_id: str, state: _S3Upload, group: list[tuple[int, int]], local: dict
    ) -> None:
        number = len(state.parts) + 1
        if number > MAX_PARTS:
            raise MediaError(f"upload {upload_id} needs more than {MAX_PARTS} parts")
        start, total = group[0][0], sum(length for _, length in group)
        with tempfile.TemporaryFile() as body:
            if len(group) == 1 and start in local:
                source: IO[bytes] = local[start]
            else:
                for chunk_start, length in group:
                    if chunk_start in local:
                        local[chunk_start].seek(0)
                        copied = _copy(local[chunk_start], body, limit=length)
                    else:
                        try:
                            obj = self.client.get_object(
                                Bucket=self.bucket, Key=self._u(upload_id, _chunk_name(chunk_start))
                            )
                        except Exception as exc:
                            if self._is(exc, *self._NOT_FOUND):
                                raise _ChainChanged from None
                            raise
                        with obj["Body"] as stream:
                            copied = _copy(stream, body)
                    if copied != length:
                        raise _ChainChanged
                source = body
            source.seek(0)
            etag = self.client.upload_part(
                Bucket=self.bucket,
                Key=self._u(upload_id, "assembled"),
                UploadId=state.meta["multipart"],
                PartNumber=number,
                Body=source,
                ContentLength=total,
            )["ETag"]
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._u(upload_id, _part_name(number, start, total)),
            Body=json.dumps({"etag": etag}).encode(),
        )
        self._delete([self._u(upload_id, _chunk_name(s)) for s, _ in group])
        state.parts.append((number, start, total))
        state.chunks = state.chunks[len(group) :]

    def complete(self, upload_id: str) -> StoredMedia:
        state = self._state(upload_id)
        alg, digest, size = state.meta["alg"], state.meta["digest"], state.size
        key = original_key(alg, digest)
        if state.completed:
            if self._head(self._k(key)) is not None:
                return StoredMedia(alg, digest, size, key, created=False)
            raise UnknownUpload(f"upload {upload_id} was completed but its original is gone")
        if state.held != size:
            raise UploadIncomplete(state.held, size)
        staging = self._u(upload_id, "assembled")
        try:
            if not state.assembled:
                if size == 0:
                    self.client.put_object(Bucket=self.bucket, Key=staging, Body=b"")
                else:
                    state = self._form_parts(upload_id, state, {})
                    self._complete_multipart(upload_id, state, staging)
            hasher = algorithm(alg).new()
            obj = self.client.get_object(Bucket=self.bucket, Key=staging)
            with obj["Body"] as stream:
                received = _copy(stream, None, hasher)
            actual = hasher.hexdigest()
            if actual != digest or received != size:
                self.abort(upload_id)
                raise HashMismatch(alg, digest, actual)
            created = False
            if self._head(self._k(key)) is None:
                from boto3.s3.transfer import TransferConfig

                # Server-side: no bytes pass through this host. One CopyObject up to 5 GiB.
                self.client.copy(
                    {"Bucket": self.bucket, "Key": staging},
                    self.bucket,
                    self._k(key),
                    Config=TransferConfig(
                        multipart_threshold=5 * 1024**3, multipart_chunksize=1024**3, use_threads=False
                    ),
                )
                created = True
        except HashMismatch:
            raise
        except Exception:
            # Staging, parts or chunks gone: another host completed this upload meanwhile (a
            # retried "complete" reaching a second host while the first still runs), after
            # verifying these same bytes, and removed them.
            if self._head(self._u(upload_id, "completed")) is not None and self._head(self._k(key)) is not None:
                return StoredMedia(alg, digest, size, key, created=False)
            raise
        self.client.put_object(Bucket=self.bucket, Key=self._u(upload_id, "completed"), Body=b"")
        leftovers = self._list(self._u(upload_id))
        self._delete(
            [self._u(upload_id, leaf) for leaf in leftovers if leaf not in {"upload.json", "completed"}]
        )
        return StoredMedia(alg, digest, size, key, created)

    def _complete_multipart(self, upload_id: str, state: _S3Upload, staging: str) -> None:
        multipart = state.meta["multipart"]
        etags: dict[int, tuple[str, int]] = {}
        try:
            for page in self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=staging, UploadId=multipart
            ):
                for part in page.get("Parts", []):
                    etags[part["PartNumber"]] = (part["ETag"], part["Size"])
            for number, _start, length in state.parts:
                if etags.get(number, ("", -1))[1] != length:
                    raise MediaError(f"upload {upload_id}: part {number} is not the recorded size")
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=staging,
                UploadId=multipart,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n][0]} for n, _, _ in state.parts]
                },
            )
        except Exception as exc:
            # Completed by an earlier attempt (or another host) that stopped before recording it.
            if self._is(exc, "NoSuchUpload") and self._head(staging) is not None:
                return
            raise

    def _meta(self, upload_id: str) -> dict | None:
        """The upload's declaration (upload.json), or None when there is none."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._u(upload_id, "upload.json"))
            return json.loads(body["Body"].read())
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                return None
            raise

    def abort(self, upload_id: str) -> None:
        # Only the declaration is read: an upload whose chunk records are inconsistent can still go.
        meta = self._meta(upload_id) or {}
        if meta.get("multipart"):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._u(upload_id, "assembled"), UploadId=meta["multipart"]
                )
            except Exception as exc:
                if not self._is(exc, "NoSuchUpload", *self._NOT_FOUND):
                    raise
        self._delete(list(self._u(upload_id, leaf) for leaf in self._list(self._u(upload_id))))

    # -- originals and derivatives
    def exists(self, alg: str, digest: str) -> bool:
        return self._head(self._k(original_key(alg, digest))) is not None

    def size(self, alg: str, digest: str) -> int:
        head = self._head(self._k(original_key(alg, digest)))
        if head is None:
            raise MediaNotFound(f"no {alg} {digest}")
        return int(head["ContentLength"])

    def open(self, alg: str, digest: str, start: int = 0) -> BinaryIO:
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(original_key(alg, digest)), **extra)[
                "Body"
            ]
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise MediaNotFound(f"no {alg} {digest}") from None
            raise

    def put_original_file(self, alg: str, digest: str, path: str | os.PathLike) -> bool:
        key = self._k(original_key(alg, digest))
        if self._head(key) is not None:
            return False
        # boto3's managed transfer reads the file part by part: one PutObject, or a multipart
        # upload for a large file. Either way the object appears under its key only when whole.
        # s3transfer cannot send If-None-Match, so, as in ``complete``, two hosts storing the same
        # original at once both write it: the same verified bytes, so the original never changes.
        self.client.upload_file(os.fspath(path), self.bucket, key)
        return True

    def staging_dir(self) -> Path:
        return Path(tempfile.gettempdir())

    def adopt_staged_original(self, alg: str, digest: str, staged: str | os.PathLike) -> bool:
        try:
            return self.put_original_file(alg, digest, staged)
        finally:
            os.unlink(staged)

    def put_derivative(self, alg: str, digest: str, name: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._k(derivative_key(alg, digest, name)), Body=bytes(data)
        )

    def get_derivative(self, alg: str, digest: str, name: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._k(derivative_key(alg, digest, name)))
        except Exception as exc:
            if self._is(exc, *self._NOT_FOUND):
                raise MediaNotFound(f"no {name} of {alg} {digest}") from None
            raise
        with obj["Body"] as body:
            return body.read()

    def probe(self, timeout: float = 2.0) -> None:
        """List at most one key under our uploads prefix, once, with connect and read timeouts of
        ``timeout`` and no retries: the app's own client retries with back-off for a minute or
        more against a dead endpoint. (A listing under our prefix, not a HEAD of the bucket: it
        needs exactly the permission the app uses, which a policy may grant for the prefix only.)"""
        self._probe_client(timeout).list_objects_v2(Bucket=self.bucket, Prefix=self._k("uploads/"), MaxKeys=1)

    # -- sweeping
    def objects(self) -> Iterator[StoredObject]:
        for top in ("originals/", "derivatives/"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._k(top)):
                for item in page.get("Contents", []):
                    found = parse_object_key(item["Key"][len(self.prefix):])
                    if found is not None:
                        yield StoredObject(found[0], found[1], found[2], item["Size"])

    def uploads(self) -> Iterator[UploadState]:
        base = self._k("uploads/")
        found: dict[str, tuple[bool, datetime]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                name, _, leaf = item["Key"][len(base):].partition("/")
                upload_id = _canonical_upload_id(name)
                if upload_id is None:
                    continue  # not ours: left alone
                completed, newest = found.get(upload_id, (False, item["LastModified"]))
                found[upload_id] = (completed or leaf == "completed", max(newest, item["LastModified"]))
        for upload_id, (completed, newest) in found.items():
            yield UploadState(upload_id, completed, newest)

    def sweep_temporary(self, older_than: datetime, dry_run: bool = False) -> Swept:
        """Multipart uploads no upload's declaration names: a host killed between creating one and
        writing upload.json, or a begin that lost a race and died before aborting its own. (A
        declared upload's multipart upload goes with the upload; the bucket has no other temporary
        objects: chunks are spooled in anonymous temporary files on the host.)"""
        swept = Swept()
        base = self._k("uploads/")
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=base):
            for pending in page.get("Uploads", []):
                name, _, leaf = pending["Key"][len(base):].partition("/")
                upload_id = _canonical_upload_id(name)
                if upload_id is None or leaf != "assembled" or pending["Initiated"] >= older_than:
                    continue
                if (self._meta(upload_id) or {}).get("multipart") == pending["UploadId"]:
                    continue
                if not dry_run:
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=pending["Key"],
                                                           UploadId=pending["UploadId"])
                    except Exception as exc:
                        if not self._is(exc, "NoSuchUpload", *self._NOT_FOUND):
                            raise
                swept.add(0)
        return swept

    # -- retention (art. 26): the bucket's object lock
    #
    # Lock state is read with HeadObject, which answers the legal hold and the retention of one
    # version in one request (given s3:GetObjectLegalHold and s3:GetObjectRetention, as the Get*
    # calls need). Should a policy hide them, S3 itself still refuses to delete or shorten, and
    # that refusal is mapped too.

    def _require_head(self, key: str, alg: str, digest: str) -> dict:
        head = self._head(key)
        if head is None:
            raise MediaNotFound(f"no {alg} {digest}")
        return head

    def _no_lock(self, exc: Exception) -> bool:
        """S3 refusing a hold or retention because the bucket has no object lock."""
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
        return self._is(exc, "ObjectLockConfigurationNotFoundError") or (
            self._is(exc, "InvalidRequest") and "lock" in message
        )

    def _unavailable(self) -> RetentionUnavailable:
        return RetentionUnavailable(
            f"bucket {self.bucket} has no object lock, so it cannot keep media against deletion: "
            "run ensure_retention_setup, or make the bucket again with object lock enabled"
        )

    def set_legal_hold(self, alg: str, digest: str, on: bool) -> bool:
        key = self._k(original_key(alg, digest))
        head = self._require_head(key, alg, digest)
        status = "ON" if on else "OFF"
        # The very version just found (not "whatever is current" a moment later).
        if not self._put_legal_hold(key, status, head.get("VersionId")):
            raise MediaNotFound(f"no {alg} {digest}")
        prefix = self._k(derivative_prefix(alg, digest))
        for leaf in self._list(prefix):
            self._put_legal_hold(prefix + leaf, status)  # one removed meanwhile needs no hold
        return True

    def _put_legal_hold(self, key: str, status: str, version_id: str | None = None) -> bool:
        """False when the key (or version) is gone."""
        try:
            self.client.put_object_legal_hold(
                Bucket=self.bucket, Key=key, LegalHold={"Status": status}, **_version(version_id)
            )
        except Exception as exc:
            if self._no_lock(exc):
                raise self._unavailable() from exc
            if self._is(exc, "NoSuchVersion", *self._NOT_FOUND):
                return False
            raise
        return True

    def retain_until(self, alg: str, digest: str, until: datetime) -> bool:
        until = retention_deadline(until)
        key = self._k(original_key(alg, digest))
        head = self._require_head(key, alg, digest)
        if until <= datetime.now(timezone.utc):
            return True  # the minimum has passed already: nothing left to keep it for
        mode, current = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        if current is not None and current >= until:
            if mode == "COMPLIANCE":
                return True  # already kept as long or longer: never shortened
            until = current  # a governance date is kept, made binding (compliance)
        try:
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=key,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
                **_version(head.get("VersionId")),
            )
        except Exception as exc:
            if self._no_lock(exc):
                raise self._unavailable() from exc
            if self._is(exc, "AccessDenied"):
                raise MediaError(
                    f"the store refused to keep {alg} {digest} until {until.isoformat()}: no "
                    "s3:PutObjectRetention permission, or a later retention this client cannot read"
                ) from exc
            raise
        return True

    def dispose_original(self, alg: str, digest: str) -> int:
        original = self._k(original_key(alg, digest))
        # Exact key: the listing's prefix would also match a longer key that is not ours.
        versions = [v for v in self._versions(original) if v["Key"] == original]
        derivatives = self._versions(self._k(derivative_prefix(alg, digest)))
        self._refuse_if_locked(alg, digest, versions + derivatives)
        # The original first, one version at a time, newest (the held one) first: should S3 refuse
        # what the check above could not see, it refuses before anything else is gone.
        freed = 0
        for item in versions:
            freed += self._delete_version(alg, digest, item, freed)
        return freed + self._delete_versions(alg, digest, derivatives, freed)

    def _delete_version(self, alg: str, digest: str, item: dict, freed_before: int) -> int:
        """Delete one exact version (or marker); the bytes freed, 0 when it was gone already."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=item["Key"], **_version(item["VersionId"]))
        except Exception as exc:
            if self._is(exc, "AccessDenied"):
                raise RetentionLocked(alg, digest, _REFUSED, deleted_nothing=freed_before == 0) from exc
            if self._is(exc, "NoSuchVersion", *self._NOT_FOUND):
                return 0  # removed meanwhile by another run of the same purge
            raise
        return item["Size"]

    def _versions(self, prefix: str) -> list[dict]:
        """Every version and delete marker under ``prefix``, each key's newest first."""
        found: list[dict] = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Versions", []):
                found.append({"Key": item["Key"], "VersionId": item.get("VersionId"), "Size": int(item["Size"]),
                              "marker": False, "latest": bool(item.get("IsLatest"))})
            for item in page.get("DeleteMarkers", []):
                found.append({"Key": item["Key"], "VersionId": item.get("VersionId"), "Size": 0,
                              "marker": True, "latest": bool(item.get("IsLatest"))})
        return sorted(found, key=lambda v: (v["Key"], not v["latest"]))  # stable: S3's order within

    def _refuse_if_locked(self, alg: str, digest: str, versions: list[dict]) -> None:
        """RetentionLocked, before anything is deleted, when a hold or an unexpired retention
        covers any version (a hold is per version: an older one may carry it)."""
        now = datetime.now(timezone.utc)
        derivatives = self._k(derivative_prefix(alg, digest))
        for item in versions:
            if item["marker"]:
                continue  # a delete marker holds no bytes and no lock
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=item["Key"], **_version(item["VersionId"]))
            except Exception as exc:
                if self._is(exc, "NoSuchVersion", *self._NOT_FOUND):
                    continue
                raise
            reason = _lock_reason(head, now)
            if reason:
                leaf = item["Key"][len(derivatives):]
                what = f"its {leaf}" if item["Key"].startswith(derivatives) else "the original"
                raise RetentionLocked(alg, digest, f"{what} is {reason}")

    def _delete_versions(self, alg: str, digest: str, versions: list[dict], freed_before: int) -> int:
        """Delete these exact versions and markers, in batches; the bytes freed."""
        freed = 0
        for start in range(0, len(versions), 1000):
            batch = versions[start : start + 1000]
            objects = [{"Key": v["Key"], **_version(v["VersionId"])} for v in batch]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            errors = [e for e in answer.get("Errors", []) if e.get("Code") not in ("NoSuchVersion", "NoSuchKey")]
            failed = {(e.get("Key"), e.get("VersionId")) for e in errors}
            for item, sent in zip(batch, objects, strict=True):
                if (sent["Key"], sent.get("VersionId")) not in failed:
                    freed += item["Size"]
            codes = {e.get("Code") for e in errors}
            if codes == {"AccessDenied"}:
                raise RetentionLocked(alg, digest, _REFUSED, deleted_nothing=freed_before + freed == 0)
            if codes:
                raise MediaError(f"disposing of {alg} {digest}: the store refused to delete "
                                 f"{sorted(failed)}: {sorted(codes)}")
        return freed

    def ensure_retention_setup(self, noncurrent_days: int = 30, upload_days: int = 7) -> None:
        for name, days in (("noncurrent_days", noncurrent_days), ("upload_days", upload_days)):
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(f"{name} is a whole number of days, at least 1")
        self._ensure_object_lock()
        self._ensure_lifecycle(noncurrent_days, upload_days)

    def _object_lock_enabled(self) -> bool:
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception as exc:
            if self._is(exc, "ObjectLockConfigurationNotFoundError"):
                return False
            raise
        return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def _ensure_object_lock(self) -> None:
        if self._object_lock_enabled():
            return  # object lock implies versioning, which can then never be suspended
        if self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") != "Enabled":
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        try:
            # No default retention rule: it would lock every upload chunk and state object too.
            self.client.put_object_lock_configuration(
                Bucket=self.bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
            )
        except Exception as exc:
            if not self._code(exc):
                raise  # not a refusal (a network error): say nothing about the bucket
            raise RetentionUnavailable(
                f"bucket {self.bucket} has no object lock and the store refused to turn it on "
                f"({self._code(exc)}): object lock can be relied on only from a bucket's creation; "
                "make a new bucket with object lock enabled and copy the media into it"
            ) from exc

    def _rule_id(self, name: str) -> str:
        return f"fieldapp:{self.prefix}{name}"

    def lifecycle_rules(self, noncurrent_days: int = 30, upload_days: int = 7) -> list[dict]:
        """The lifecycle rules ``ensure_retention_setup`` keeps on the bucket, for this prefix:

        - upload state (``uploads/``) expires ``upload_days`` after it was written, and its
          replaced or deleted versions ``noncurrent_days`` later (its delete markers with them);
        - a multipart upload not completed within ``upload_days`` is aborted (a killed host's);
        - replaced derivatives (a preview made again) go ``noncurrent_days`` after replacement.

        No rule touches ``originals/``: a noncurrent original is one somebody deleted by mistake
        (or a second identical write), and only an approved disposal may remove its bytes.
        """
        prefix = self.prefix

        def rule(name: str, under: str, **actions: Any) -> dict:
            return {"ID": self._rule_id(name), "Status": "Enabled", "Filter": {"Prefix": under}, **actions}

        return [
            rule("expire-uploads", prefix + "uploads/", Expiration={"Days": upload_days},
                 NoncurrentVersionExpiration={"NoncurrentDays": noncurrent_days}),
            rule("abort-multipart", prefix, AbortIncompleteMultipartUpload={"DaysAfterInitiation": upload_days}),
            rule("noncurrent-derivatives", prefix + "derivatives/", Expiration={"ExpiredObjectDeleteMarker": True},
                 NoncurrentVersionExpiration={"NoncurrentDays": noncurrent_days}),
        ]

    def _ensure_lifecycle(self, noncurrent_days: int, upload_days: int) -> None:
        # A bucket has one lifecycle configuration: keep the rules others put there, replace ours.
        wanted = self.lifecycle_rules(noncurrent_days, upload_days)
        ours = {r["ID"] for r in wanted}
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except Exception as exc:
            if not self._is(exc, "NoSuchLifecycleConfiguration"):
                raise
            rules = []
        kept = [r for r in rules if r.get("ID") not in ours]
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket, LifecycleConfiguration={"Rules": kept + wanted}
        )

    def _probe_client(self, timeout: float) -> Any:
        if self._injected_client:
            return self.client
        if timeout not in self._probe_clients:
            from botocore.config import Config

            connection = dict(self._connection)
            addressing = connection.pop("addressing_style")
            config = Config(signature_version="s3v4", s3={"addressing_style": addressing},
                            connect_timeout=timeout, read_timeout=timeout,
                            retries={"total_max_attempts": 1, "mode": "standard"})
            with _SESSION_LOCK:
                self._probe_clients[timeout] = _SESSION.client("s3", config=config, **connection)
        return self._probe_clients[timeout]


_REFUSED = "the store refused to delete it (object lock, or no permission to delete versions)"


def _version(version_id: str | None) -> dict:
    """The VersionId argument, left out where there is none ("null": an unversioned bucket)."""
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


def _lock_reason(head: dict, now: datetime) -> str | None:
    """Why this version cannot be deleted now, or None."""
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        return "under legal hold"
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode and until is not None and until > now:
        return f"under {mode.lower()} retention until {until.astimezone(timezone.utc).isoformat()}"
    return None
