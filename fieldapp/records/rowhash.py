"""The canonical content of a row, hashed the same way when the change is made and when it is checked.

Both sides read the row through the mapped table (``select(table)``), so the column types turn
stored values into the same Python values; this module then turns those into JSON deterministically.
Columns holding NULL are left out, so adding a nullable column to a table does not change the hash
of rows that never had it (a column added with a value must re-baseline its table in its migration).
"""
from __future__ import annotations

import base64
import enum
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal


def canonical_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, enum.Enum):
        return canonical_value(value.value)
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
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_key(values: Sequence) -> str:
    """The primary key as text: a JSON list of its column values, in the table's key order."""
    return _dumps([canonical_value(v) for v in values])


def row_digest(row: Mapping[str, object]) -> str:
    content = {name: canonical_value(v) for name, v in row.items() if v is not None}
    return hashlib.sha256(_dumps(content).encode()).hexdigest()
