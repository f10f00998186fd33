"""Importing a phone's "export unsynced records" file: for a phone that broke or cannot sync.

The file holds revisions exactly as the phone signed them. Each is verified with the key its device
registered and stored by the same code as a push, so an import and a later normal sync of the same
revisions meet as duplicates, never as copies.
"""
from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .. import db
from ..models import Device, User
from .push import Author, ItemResult, prepare, store_batch
from .signing import BadPublicKey, load_public_key

FORMAT = "fieldapp-unsynced-export"


class ImportError_(ValueError):
    """The file is not an export this server can read; the message says why."""


@dataclass
class ImportSummary:
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{k} {self.counts[k]}" for k in ("created", "duplicate", "conflict", "rejected") if self.counts[k]]
        return ", ".join(parts) or "nothing to import"


def import_export(data, skew_threshold: int) -> ImportSummary:
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != 1:
        raise ImportError_("not a fieldapp export file (format fieldapp-unsynced-export, version 1)")
    revisions = data.get("revisions")
    if not isinstance(revisions, list):
        raise ImportError_("the file has no list of revisions")
    by_device: dict[str, list] = defaultdict(list)
    summary = ImportSummary()
    for item in revisions:
        device_id = item.get("device_id") if isinstance(item, dict) else None
        by_device[str(device_id)].append(item)
    s = db.session()
    for device_id, items in by_device.items():
        try:
            device = s.get(Device, uuid.UUID(device_id))
        except ValueError:
            device = None
        if device is None:
            summary.counts["rejected"] += len(items)
            summary.problems.append(f"device {device_id}: not registered on this server")
            continue
        user = s.get(User, device.user_id)
        try:
            public_key = load_public_key(device.public_key)
        except BadPublicKey:
            summary.counts["rejected"] += len(items)
            continue
        # The phone's own order: a record's revisions in sequence, so parents come first.
        items.sort(key=lambda i: (str(i.get("record_id")), i.get("revision") if isinstance(i.get("revision"), int) else 0))
        prepared = [prepare({k: v for k, v in item.items() if k != "key"} if isinstance(item, dict) else item,
                            device_id, public_key) for item in items]
        results: list[ItemResult] = store_batch(prepared, Author(user.id, user.unit_id), device.id, None,
                                                skew_threshold, set())
        for result in results:
            summary.counts[result.status] += 1
            if result.status in ("conflict", "rejected"):
                summary.problems.append(f"{result.record_id} #{result.revision}: {result.status} {result.error}")
    s.commit()
    return summary
