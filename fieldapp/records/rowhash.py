"""The canonical content of a row, hashed the same way when the change is made and when it is checked.

Both sides read the row's columns as the database driver returns them (``content_columns``: no
type processing, JSON as its stored text), and this module turns those values into JSON
deterministically (sorted keys, no spaces, UTF-8) with JSON's own encoder: it runs at every commit.
Columns holding NULL are left out, so adding a nullable column to a table does not change the hash
of rows that never had it (a column added with a value must write events in its migration).
"""
from __future__ import annotations

import base64
import enum
import functools
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal


def _plain(value):
    """What JSON cannot say itself, said as a string (called by the encoder for those values only)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"no canonical form for {type(value).__name__}")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def canonical_json(value) -> str:
    return _ENCODER.encode(value)


def plain_key(values: Sequence) -> list:
    """The primary key as JSON values (what an event lists); ``row_key`` of it equals ``row_key`` of
    the typed values."""
    return [v if v is None or isinstance(v, (str, int, float)) else _plain(v) for v in values]


def row_key(values: Sequence) -> str:
    """The primary key as text: a JSON list of its column values, in the table's key order."""
    return _ENCODER.encode(list(values))


def row_digest(row: Mapping[str, object]) -> str:
    content = {name: v for name, v in row.items() if v is not None}
    return hashlib.sha256(_ENCODER.encode(content).encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def content_columns(table, dialect_name: str) -> tuple:
    """The columns to hash, read as the database driver returns them — no type processing, which
    is most of the cost of reading a row back at every commit. JSON is read as its stored text (on
    PostgreSQL ``json`` keeps the text it was given), so it is never parsed only to be re-encoded.
    Both the commit hook and ``verify`` read rows this way, so their hashes agree by construction."""
    from sqlalchemy import JSON, Text, cast, type_coerce
    from sqlalchemy.types import NullType

    columns = []
    for column in table.columns:
        if isinstance(column.type, JSON) and dialect_name == "postgresql":
            columns.append(cast(column, Text).label(column.name))
        else:
            columns.append(type_coerce(column, NullType()).label(column.name))
    return tuple(columns)
