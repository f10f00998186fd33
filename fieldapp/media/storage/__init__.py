"""Where media bytes live: content-addressed originals, their derivatives and resumable uploads.

One interface (:class:`MediaStorage`), two backends chosen by configuration
(:func:`storage_from_settings`): a local folder (:class:`LocalStorage`, the default) and
S3-compatible object storage (:class:`S3Storage`, boto3, endpoint configurable).

- :mod:`.base`: the interface, its results and errors, validation and the content-addressed keys;
- :mod:`.uploads`: the state of a resumable upload, apart from where its bytes are kept;
- :mod:`.local`, :mod:`.s3`: the two backends;
- :mod:`.factory`: the backend the settings name.

Everything callers use is imported from here, not from the modules.
"""
from __future__ import annotations

from .base import (
    ALGORITHMS,
    BUFFER_SIZE,
    DERIVATIVE_NAMES,
    Algorithm,
    HashMismatch,
    MediaError,
    MediaNotFound,
    MediaStorage,
    OffsetMismatch,
    RetentionLocked,
    RetentionUnavailable,
    StoredMedia,
    StoredObject,
    Swept,
    UnknownUpload,
    UploadConflict,
    UploadIncomplete,
    UploadState,
    UploadTooLarge,
    algorithm,
    derivative_key,
    original_key,
    validate_derivative,
    parse_object_key,
    validate_digest,
    validate_upload_id,
)
from .factory import storage_from_settings
from .local import LocalStorage
from .s3 import S3Storage
from .uploads import MAX_PARTS, MIN_PART_SIZE

__all__ = [
    "ALGORITHMS",
    "BUFFER_SIZE",
    "DERIVATIVE_NAMES",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "Algorithm",
    "HashMismatch",
    "LocalStorage",
    "MediaError",
    "MediaNotFound",
    "MediaStorage",
    "OffsetMismatch",
    "RetentionLocked",
    "RetentionUnavailable",
    "S3Storage",
    "StoredMedia",
    "StoredObject",
    "Swept",
    "UnknownUpload",
    "UploadConflict",
    "UploadIncomplete",
    "UploadState",
    "UploadTooLarge",
    "algorithm",
    "derivative_key",
    "original_key",
    "parse_object_key",
    "storage_from_settings",
    "validate_derivative",
    "validate_digest",
    "validate_upload_id",
]
