"""Posters and small previews of footage for review, made after the import (never timed with it,
never blocking it). The original is only read; a file the decoder cannot read keeps its flag and
simply has no preview."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import select

from .. import db
from ..media.service import media_storage, original_file
from ..models import FootageSegment
from .probe import ProbeError, make_poster, make_preview

log = logging.getLogger(__name__)

POSTER, PREVIEW = "poster", "preview"


def make_previews(segment_ids: Iterable[uuid.UUID]) -> dict[str, int]:
    made = failed = 0
    ids = list(segment_ids)
    s = db.session()
    segments = list(s.execute(select(FootageSegment).where(FootageSegment.id.in_(ids))).scalars()) if ids else []
    s.commit()
    store = media_storage()
    for segment in segments:
        if {POSTER, PREVIEW} <= set(segment.previews or []):
            continue
        names, flags = [], list(segment.flags or [])
        try:
            with original_file(store, segment.alg, segment.hash) as path:
                store.put_derivative(segment.alg, segment.hash, POSTER, make_poster(path))
                names.append(POSTER)
                store.put_derivative(segment.alg, segment.hash, PREVIEW, make_preview(path))
                names.append(PREVIEW)
        except ProbeError as exc:
            log.info("no preview for %s: %s", segment.file_name, exc)
            flags.append("no_preview")
        except Exception:  # noqa: BLE001 — the original is evidence whatever its preview does
            log.exception("preview of %s failed", segment.file_name)
            flags.append("no_preview")
        with db.transaction() as s:
            row = s.get(FootageSegment, segment.id)
            row.previews, row.flags = names, list(dict.fromkeys(flags))
        made, failed = (made + 1, failed) if len(names) == 2 else (made, failed + 1)
    return {"made": made, "failed": failed}


def segments_without_previews() -> list[uuid.UUID]:
    """Segments whose poster or preview was never made (an import run with --no-previews, a station
    request cut before it made them), leaving out those the decoder already could not read."""
    rows = db.session().execute(select(FootageSegment.id, FootageSegment.previews, FootageSegment.flags)).all()
    db.session().commit()
    return [sid for sid, made, flags in rows
            if not {POSTER, PREVIEW} <= set(made or []) and "no_preview" not in (flags or [])]
