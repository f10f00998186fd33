"""Choosing the media backend from the app's settings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import MediaStorage
from .local import LocalStorage
from .s3 import S3Storage


def storage_from_settings(settings: Any) -> MediaStorage:
    """The backend named by ``settings.media_backend`` ("local", the default, or "s3")."""
    backend = (getattr(settings, "media_backend", None) or "local").strip().lower()
    if backend == "local":
        media_dir = getattr(settings, "media_dir", None)
        if media_dir is None:
            media_dir = Path(getattr(settings, "var_dir", "var")) / "media"
        return LocalStorage(Path(media_dir))
    if backend == "s3":
        bucket = getattr(settings, "s3_bucket", None)
        if not bucket:
            raise ValueError("media_backend 's3' needs s3_bucket")
        return S3Storage(
            bucket=bucket,
            endpoint_url=getattr(settings, "s3_endpoint", None) or None,
            region=getattr(settings, "s3_region", None) or "us-east-1",
            access_key=getattr(settings, "s3_access_key", None) or None,
            secret_key=getattr(settings, "s3_secret_key", None) or None,
            prefix=getattr(settings, "s3_prefix", "") or "",
        )
    raise ValueError(f"unknown media_backend {backend!r}: 'local' or 's3'")
