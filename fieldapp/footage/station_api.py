"""What a collection station sends over the API, checked: the segment rows for files whose
originals it uploaded. The rows are read by the same manifest parser
as an export folder's, and each file goes through :class:`.ingest.Admitter` like an import."""
from __future__ import annotations

import json

from sqlalchemy import select

from ..media import service as media_service
from ..media.service import MediaRefused, media_storage
from ..media.storage import validate_digest
from .. import db, events
from ..models import MediaUpload, Station, utcnow
from . import linker
from .digests import digest_stream
from .ingest import ALG, Admitter, Candidate, Refused, Report, verify_station_hashes
from .manifest import WARNING_CODES, parse_manifest_bytes

MAX_FILES = 500


def _files(body) -> list[dict]:
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise MediaRefused(400, "bad_request", f"send {{\"files\": [...]}} with 1 to {MAX_FILES} manifest rows, "
                                               "each with the sha256 of its uploaded original")
    return files


def register_segments(station: Station, body) -> Report:
    files = _files(body)
    hashes = {}
    for item in files:
        if isinstance(item, dict) and isinstance(item.get("file_name"), str):
            digest = item.get("sha256")
            try:
                validate_digest(ALG, digest)
            except (ValueError, TypeError):
                digest = None
            hashes.setdefault(item["file_name"], digest)
    manifest = parse_manifest_bytes(json.dumps({"files": files}).encode(), "json")
    report = Report(manifest="api", encoding="utf-8")
    for problem in manifest.problems:
        report.add("warning" if problem.code in WARNING_CODES else "skipped", problem.code, problem.message,
                   problem.file_name, problem.line)
    candidates = []
    store = media_storage()
    for row in manifest.rows:
        digest = hashes.get(row.file_name)
        # Only what this station uploaded itself: knowing a hash (another station's fresh upload, a
        # phone's original) must not let it claim the file for its unit.
        uploaded = db.session().execute(select(MediaUpload.id).where(
            MediaUpload.station_id == station.id, MediaUpload.alg == ALG, MediaUpload.hash == digest,
            MediaUpload.completed_at.is_not(None)).limit(1)).scalar() if digest else None
        db.session().commit()
        if uploaded is None or not store.exists(ALG, digest):
            report.add("skipped", "original_not_uploaded", f"{row.file_name}: no uploaded original has the sha256 "
                                                           f"{digest or '(missing)'}; upload it first", row.file_name,
                       row.line)
            continue
        with store.open(ALG, digest) as stream:
            digests = digest_stream(stream)
        try:
            if digests.sha256 != digest:
                raise Refused("hash_mismatch", f"{row.file_name}: the stored bytes do not match {digest}")
            verify_station_hashes(row, digests)
        except Refused as exc:
            report.add("skipped", exc.code, exc.message, row.file_name, row.line)
            continue
        candidates.append((row, digests))
    station_unit = station.unit_id
    admitter = Admitter(report, [row for row, _ in candidates], unit_code=None, station=station, source="station",
                        stored_path=True)
    for row, digests in candidates:
        # The container is read from a local path (a temporary copy when media live in S3).
        with media_service.original_file(store, ALG, digests.sha256) as path:
            admitter.admit(Candidate(row, path, digests))
    with db.transaction() as s:
        s.get(Station, station.id).last_used_at = utcnow()
    if report.stored:
        linker.relink_and_announce({station_unit}, min(r.started_at for r, _ in candidates),
                                   max(r.ended_at for r, _ in candidates))
        events.publish(events.footage_stored, segment_ids=set(report.stored))
    return report
