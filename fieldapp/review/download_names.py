"""The name a downloaded original is saved under: case, record, time, hash — e.g.
``鲁临市监罚〔2026〕12号-留置送达-20261204-1625-3f2a9c1d.jpg`` — so that a folder of downloads
files itself. The hash prefix ties the file to the register, which keeps the whole hash.

Browsers take ``filename*`` (RFC 6266/5987, UTF-8) when they can; ``filename`` is the ASCII
fallback for the others (case short id, record type code).
"""
from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

from flask_babel import force_locale
from sqlalchemy import select

from .. import db
from ..i18n import local_time
from ..models import Case, MediaRef, Revision, SyncedRecord
from .labels import record_type_label

_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f]+')
# Types mimetypes names oddly (".jpe") or not at all.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
              "video/mp4": ".mp4", "video/quicktime": ".mov", "audio/mp4": ".m4a", "audio/mpeg": ".mp3",
              "audio/amr": ".amr", "video/3gpp": ".3gp"}


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:60]


def extension(mime: str | None) -> str:
    return EXTENSIONS.get(mime or "") or mimetypes.guess_extension(mime or "") or ""


def original_names(media) -> tuple[str, str]:
    """(ASCII name, Chinese name) for an original, from the first record that referenced it."""
    s = db.session()
    row = s.execute(select(SyncedRecord).join(Revision, Revision.record_id == SyncedRecord.id)
                    .join(MediaRef, (MediaRef.record_id == Revision.record_id) & (MediaRef.revision == Revision.revision))
                    .where(MediaRef.alg == media.alg, MediaRef.hash == media.hash)
                    .order_by(Revision.received_at, Revision.seq).limit(1)).scalar()
    case = None
    if row is not None:
        case_id = row.case_id or (s.get(SyncedRecord, row.parent_id).case_id if row.parent_id and
                                  s.get(SyncedRecord, row.parent_id) else None)
        case = s.get(Case, case_id) if case_id else None
    when = local_time(media.taken_at or media.original_at, "%Y%m%d-%H%M")
    short = str(case.id)[:8] if case else "nocase"
    record_type = row.record_type if row else "media"
    ext, digest = extension(media.mime), media.hash[:8]
    ascii_case = case.case_number if case and case.case_number and case.case_number.isascii() else short
    ascii_name = "-".join(p for p in (_safe(ascii_case), record_type, when, digest) if p) + ext
    with force_locale("zh_CN"):  # the register and the bureau's folders are in Chinese
        kind = record_type_label(record_type) if row else "原件"
    label = (case.case_number or f"{case.party_name}-{short}") if case else "未归属案件"
    chinese = "-".join(p for p in (_safe(label), _safe(kind), when, digest) if p) + ext
    return ascii_name, chinese


def content_disposition(ascii_name: str, chinese: str) -> str:
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(chinese, safe='')}"
