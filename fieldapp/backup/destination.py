"""Where backups go: a folder (a mounted disk at another site) or an S3 bucket at another site.

A destination holds names (``backups/<id>/manifest.json``, ``objects/originals/…``), written whole
or not at all: a folder writes to a temporary name and renames, S3 uploads in one operation (a
multipart upload that fails leaves no object). Objects are never overwritten: the content-addressed
media are the same bytes whoever writes them, so a later backup only adds.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse


class Destination(Protocol):
    label: str  # for logs and the backup_runs row: never credentials

    def names(self, prefix: str) -> Iterator[str]: ...

    def exists(self, name: str) -> bool: ...

    def write(self, name: str, source: BinaryIO) -> int:
        """Store ``source`` (read to its end) under ``name``; returns the bytes written."""
        ...

    def read(self, name: str) -> BinaryIO:
        """An open, readable stream of ``name``; FileNotFoundError when absent."""
        ...


class FolderDestination:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.label = str(self.root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents:
            raise ValueError(f"name outside the destination: {name!r}")
        return path

    def names(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return
        for folder, _dirs, files in os.walk(base):
            for leaf in files:
                if leaf.startswith(".tmp-"):
                    continue
                yield (Path(folder) / leaf).relative_to(self.root).as_posix()

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def write(self, name: str, source: BinaryIO) -> int:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
                written = out.tell()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def read(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")  # noqa: SIM115 - the caller closes it


class S3Destination:
    """A bucket (and prefix) at another site; credentials from FIELDAPP_BACKUP_S3_* settings."""

    def __init__(self, bucket: str, prefix: str, client) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/") + "/" if prefix.strip("/") else "", client
        self.label = f"s3://{bucket}/{self.prefix}"

    def names(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):]

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
            return True
        except Exception as exc:
            if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def write(self, name: str, source: BinaryIO) -> int:
        counted = _Counting(source)
        self.client.upload_fileobj(counted, self.bucket, self.prefix + name)
        return counted.count

    def read(self, name: str) -> BinaryIO:
        try:
            return _Body(self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"])
        except Exception as exc:
            if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(name) from exc
            raise


class _Body:
    """An S3 object's body as a closable stream usable in ``with``."""

    def __init__(self, body) -> None:
        self.body = body

    def read(self, size: int = -1) -> bytes:
        return self.body.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Counting:
    """A readable stream that counts what was read from it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.count = source, 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.count += len(data)
        return data


def open_destination(spec: str, settings=None) -> Destination:
    """``/path/to/folder`` or ``s3://bucket/prefix`` (endpoint and keys from the backup settings)."""
    if spec.startswith("s3://"):
        import boto3

        parsed = urlparse(spec)
        if not parsed.netloc:
            raise ValueError("an S3 destination names its bucket: s3://bucket/prefix")
        client = boto3.client(
            "s3", endpoint_url=getattr(settings, "backup_s3_endpoint", None) or None,
            region_name=getattr(settings, "backup_s3_region", None) or "us-east-1",
            aws_access_key_id=getattr(settings, "backup_s3_access_key", None) or None,
            aws_secret_access_key=getattr(settings, "backup_s3_secret_key", None) or None)
        return S3Destination(parsed.netloc, parsed.path, client)
    if "://" in spec:
        raise ValueError(f"a destination is a folder or s3://bucket/prefix, not {spec.split('://')[0]}://")
    return FolderDestination(Path(spec))
