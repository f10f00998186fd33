"""Bringing footage in: a station's export folder (``flask footage-import DIR``) or a file a station
pushed over the API. Both end in :func:`admit`, which stores nothing it has not verified.

What holds for every file, whichever way it came:

* every byte is hashed (SHA-256, SM3, MD5) and checked against the hashes the station wrote; a
  disagreement skips the file, it is never half-stored;
* identical bytes are one segment, so ingesting the same export twice changes nothing;
* the container is read (duration, start time) and a disagreement with the station is a flag on
  the segment, never silently resolved; a file the container reader cannot open is still evidence:
  stored, flagged, without a preview;
* no database transaction is open while bytes move (hashing, storing, probing).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from .. import db, events
from ..media.sniff import SNIFF_BYTES, UnsupportedMedia, sniff
from ..media.service import _insert, media_storage
from ..models import Camera, FootageLink, FootageSegment, Media, Station, Unit, utcnow
from . import linker
from .digests import Digests, stage_file, stage_files
from .manifest import WARNING_CODES, ManifestRow, find_manifest, read_manifest
from .probe import Probe, probe_video

log = logging.getLogger(__name__)

ALG = "sha-256"  # as media storage names it
# Container and station may disagree by this much before it is a flag (rounding, clock ticks).
DURATION_SLACK_S = 2.0
START_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class Line:
    """One line of the import report: what happened to a file or a manifest row, and why."""
    outcome: str  # stored | unchanged | flagged | skipped | unlisted | warning | error
    code: str
    message: str
    file_name: str | None = None
    line: int | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    stored: list[uuid.UUID] = field(default_factory=list)  # new segments
    unchanged: int = 0
    skipped: int = 0
    manifest: str | None = None
    encoding: str | None = None
    linked_share: float | None = None

    def add(self, outcome: str, code: str, message: str, file_name: str | None = None, line: int | None = None):
        self.lines.append(Line(outcome, code, message, file_name, line))
        if outcome in ("skipped", "error"):
            self.skipped += 1

    def to_json(self) -> dict:
        return {"manifest": self.manifest, "encoding": self.encoding, "stored": len(self.stored),
                "unchanged": self.unchanged, "skipped": self.skipped, "linked_share": self.linked_share,
                "lines": [ln.to_json() for ln in self.lines]}


@dataclass(frozen=True)
class Candidate:
    """A manifest row whose file was found and hashed, ready for :func:`admit`; ``staged`` is the
    copy written in the same read, which media storage adopts as the original."""
    row: ManifestRow
    path: Path
    digests: Digests
    staged: Path | None = None

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.unlink(missing_ok=True)


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# ----------------------------------------------------------------------------------- one file

def needs_md5(row: ManifestRow) -> bool:
    """The station's MD5 is checked when it is the only hash it gave: where it gave SM3 too, SM3
    (computed for every file anyway) already proves every byte, and MD5 would only cost CPU."""
    return bool(row.md5) and not row.sm3


def verify_station_hashes(row: ManifestRow, digests: Digests) -> None:
    if digests.size == 0:
        raise Refused("empty_file", f"{row.file_name} has 0 bytes: there is no footage to keep")
    for name, said, found in (("MD5", row.md5, digests.md5), ("SM3", row.sm3, digests.sm3)):
        if said and found is not None and said != found:
            raise Refused("hash_mismatch", f"{row.file_name}: the station's {name} {said} does not match "
                                           f"the file's {found}; the file was changed or damaged in the copy")


def _unit_for(row: ManifestRow, camera: Camera | None, units_by_code: dict[str, Unit],
              fallback: Unit | None, station: Station | None) -> tuple[uuid.UUID, list[str]]:
    flags = []
    named = units_by_code.get(row.unit_code) if row.unit_code else None
    if station is not None:
        if camera is not None and camera.unit_id != station.unit_id:
            raise Refused("camera_of_other_unit", f"camera {row.camera_serial} belongs to another unit; "
                                                  "this station may send only its own unit's footage")
        if named is not None and named.id != station.unit_id:
            flags.append("unit_mismatch")
        return station.unit_id, flags
    if camera is not None:
        if named is not None and named.id != camera.unit_id:
            flags.append("unit_mismatch")
        return camera.unit_id, flags
    unit = named or fallback
    if unit is None:
        raise Refused("unknown_unit", f"{row.file_name}: camera {row.camera_serial} is not registered and the "
                                      f"unit code {row.unit_code or '(none)'} is unknown; give --unit")
    return unit.id, flags


def container_flags(row: ManifestRow, probe: Probe) -> list[str]:
    flags = []
    if not probe.ok:
        flags.append("unreadable")
    if probe.truncated:
        flags.append("truncated")
    stated = (row.ended_at - row.started_at).total_seconds()
    if probe.duration_s is not None and abs(probe.duration_s - stated) > DURATION_SLACK_S:
        flags.append("duration_mismatch")
    if probe.started_at is not None and abs(probe.started_at - row.started_at) > START_SLACK:
        flags.append("start_mismatch")
    return flags


def _mime(path: Path) -> tuple[str, str]:
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    try:
        found = sniff(head)
    except UnsupportedMedia as exc:
        raise Refused("not_media", f"{path.name} is not a video or audio file ({exc.message_en})") from None
    return found.mime, found.kind


def admit(candidate: Candidate, *, camera: Camera | None, unit_id: uuid.UUID, flags: list[str],
          station: Station | None, source: str, stored_path: bool = False) -> FootageSegment:
    """Store one verified file and its segment. ``stored_path`` says the original is already in
    media storage (a station's completed upload): then only the segment row is written."""
    row, digests = candidate.row, candidate.digests
    mime, kind = _mime(candidate.path)
    probe = probe_video(candidate.path)
    flags = list(dict.fromkeys(flags + container_flags(row, probe)
                               + (["zone_assumed"] if row.zone_assumed else [])
                               + ([] if camera is not None else ["unregistered_camera"])))
    store = media_storage()
    if candidate.staged is None and not stored_path:
        # Only hashed so far (it looked like a file ingested before): copy it now and check the
        # copy, so a file the station rewrote meanwhile is never stored under another's hash.
        staged = stage_file(candidate.path, store.staging_dir(), md5=False)
        if staged.digests.sha256 != digests.sha256:
            staged.copy.unlink(missing_ok=True)
            raise Refused("changed_during_import", f"{row.file_name} changed while it was being imported; "
                                                   "import the folder again")
        candidate = Candidate(row, candidate.path, digests, staged.copy)
    if candidate.staged is not None:
        store.adopt_staged_original(ALG, digests.sha256, candidate.staged)
    now = utcnow()
    with db.transaction() as s:
        media = {"size": digests.size, "mime": mime, "kind": kind, "original_at": now, "flags": []}
        s.execute(_insert(Media.__table__).values(alg=ALG, hash=digests.sha256, created_at=now, previews=[], **media)
                  .on_conflict_do_update(index_elements=["alg", "hash"],
                                         set_={"original_at": func.coalesce(Media.__table__.c.original_at, now),
                                               "size": digests.size, "mime": mime, "kind": kind}))
        segment_id = uuid.uuid4()
        s.execute(_insert(FootageSegment.__table__).values(
            id=segment_id, alg=ALG, hash=digests.sha256, sm3=digests.sm3, size=digests.size, unit_id=unit_id,
            camera_serial=row.camera_serial, camera_id=camera.id if camera else None, officer_no=row.officer_no,
            unit_code=row.unit_code, file_name=row.file_name, started_at=row.started_at, ended_at=row.ended_at,
            collected_at=row.collected_at, ingested_at=now, station_id=station.id if station else None,
            source=source, station_md5=row.md5, station_sm3=row.sm3, important=row.important,
            container_duration_s=probe.duration_s, container_started_at=probe.started_at, flags=flags,
            probe_error=probe.error, previews=[], keep_reasons=["important"] if row.important else [],
        ).on_conflict_do_nothing(index_elements=["alg", "hash"]))
        segment = s.execute(select(FootageSegment).where(FootageSegment.alg == ALG,
                                                         FootageSegment.hash == digests.sha256)).scalar_one()
    return segment


# ----------------------------------------------------------------------------------- a folder

def _listed_files(folder: Path, manifest_path: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and p != manifest_path and not p.name.startswith(".")}


def _file_of(folder: Path, row: ManifestRow) -> Path | None:
    path = folder / row.file_name
    # The manifest names a file of this folder: never a link out of it.
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder.resolve():
        return None
    return path


def ingest_folder(folder: Path | str, *, unit_code: str | None = None, workers: int | None = None,
                  now: datetime | None = None) -> Report:
    """Ingest a station export folder: its manifest, then every file the manifest names."""
    folder = Path(folder)
    report = Report()
    try:
        manifest_path = find_manifest(folder)
    except ValueError as exc:
        report.add("error", "ambiguous_manifest", str(exc))
        return report
    if manifest_path is None:
        report.add("error", "no_manifest", f"{folder} holds no manifest (manifest.csv or manifest.json)")
        return report
    manifest = read_manifest(manifest_path) if now is None else read_manifest(manifest_path, now=now)
    report.manifest, report.encoding = manifest_path.name, manifest.encoding
    named = set()
    for problem in manifest.problems:
        kept = problem.code in WARNING_CODES
        report.add("warning" if kept else ("error" if problem.line is None else "skipped"), problem.code,
                   problem.message, problem.file_name, problem.line)
        if problem.file_name:
            named.add(problem.file_name)
    rows = []
    for row in manifest.rows:
        named.add(row.file_name)
        path = _file_of(folder, row)
        if path is None:
            report.add("skipped", "file_missing", f"{row.file_name} is named in the manifest but is not in the folder",
                       row.file_name, row.line)
        else:
            rows.append((row, path))
    for name in sorted(_listed_files(folder, manifest_path) - named):
        report.add("unlisted", "no_manifest_row", f"{name} is in the folder but the manifest has no row for it; "
                                                  "not ingested", name)
    admitter = Admitter(report, [row for row, _ in rows], unit_code=unit_code, station=None, source="import")
    if admitter.refused:
        return report
    settings = current_app.config["FIELDAPP_SETTINGS"]
    by_path = {path: row for row, path in rows}
    # A file already ingested (same name and size as a segment of the unit) is hashed to prove it
    # unchanged, not copied again: a second import of the same export writes nothing.
    seen = set(db.session().execute(select(FootageSegment.file_name, FootageSegment.size).where(
        FootageSegment.file_name.in_({row.file_name for row, _ in rows}))).all()) if rows else set()
    db.session().commit()
    jobs = [(path, (row.file_name, path.stat().st_size) not in seen, needs_md5(row)) for row, path in rows]
    results = stage_files(jobs, media_storage().staging_dir(), workers or settings.footage_hash_workers)
    try:
        for staged in results:  # each file stored as soon as it is staged and verified
            if isinstance(staged, tuple):
                path, error = staged
                row = by_path[path]
                report.add("skipped", "unreadable_file", f"{row.file_name} could not be read: {error.strerror}",
                           row.file_name, row.line)
                continue
            row = by_path[staged.source]
            candidate = Candidate(row, staged.source, staged.digests, staged.copy)
            try:
                verify_station_hashes(row, staged.digests)
            except Refused as exc:
                candidate.discard()
                report.add("skipped", exc.code, exc.message, row.file_name, row.line)
                continue
            admitter.admit(candidate)
    finally:
        for leftover in results:  # an error stopped the loop: no staged copy is left behind
            if not isinstance(leftover, tuple) and leftover.copy is not None:
                leftover.copy.unlink(missing_ok=True)
    link_stored(report)
    return report


def link_stored(report: Report) -> None:
    """Link what this import stored, and say which share of it linked with nobody's help."""
    if not report.stored:
        return
    s = db.session()
    stored = list(s.execute(select(FootageSegment).where(FootageSegment.id.in_(report.stored))).scalars())
    s.commit()
    for unit_id in {seg.unit_id for seg in stored}:
        mine = [seg for seg in stored if seg.unit_id == unit_id]
        linker.relink_and_announce({unit_id}, min(seg.started_at for seg in mine), max(seg.ended_at for seg in mine))
    events.publish(events.footage_stored, segment_ids=set(report.stored))
    linked = set(s.execute(select(FootageLink.segment_id).where(FootageLink.segment_id.in_(report.stored))
                           .distinct()).scalars())
    report.linked_share = round(len(linked) / len(stored), 4)


class Admitter:
    """Admits verified files one by one into one report: the cameras, units and hashes known are
    read once, before any byte moves, and no transaction is held while a file is stored."""

    def __init__(self, report: Report, rows: list[ManifestRow], *, unit_code: str | None, station: Station | None,
                 source: str, stored_path: bool = False):
        self.report, self.station, self.source, self.stored_path = report, station, source, stored_path
        s = db.session()
        self.cameras = {c.serial: c for c in s.execute(select(Camera).where(
            Camera.serial.in_({r.camera_serial for r in rows}))).scalars()} if rows else {}
        self.units = {u.code: u for u in s.execute(select(Unit)).scalars()}
        self.fallback = self.units.get(unit_code) if unit_code else None
        self.refused = bool(unit_code and self.fallback is None)
        if self.refused:
            report.add("error", "unknown_unit", f"no unit has the code {unit_code}")
        s.commit()

    def _known(self, digest: str) -> bool:
        s = db.session()
        found = s.execute(select(FootageSegment.id).where(FootageSegment.alg == ALG, FootageSegment.hash == digest)
                          ).scalar() is not None
        s.commit()
        return found

    def admit(self, candidate: Candidate) -> None:
        row, report = candidate.row, self.report
        if self._known(candidate.digests.sha256):
            candidate.discard()
            report.unchanged += 1
            report.add("unchanged", "already_ingested", f"{row.file_name} was ingested before; nothing changed",
                       row.file_name, row.line)
            return
        camera = self.cameras.get(row.camera_serial)
        try:
            unit_id, flags = _unit_for(row, camera, self.units, self.fallback, self.station)
            segment = admit(candidate, camera=camera, unit_id=unit_id, flags=flags, station=self.station,
                            source=self.source, stored_path=self.stored_path)
        except Refused as exc:
            candidate.discard()
            report.add("skipped", exc.code, exc.message, row.file_name, row.line)
            return
        except OSError as exc:
            candidate.discard()
            log.exception("storing %s failed", row.file_name)
            report.add("skipped", "storage_failed", f"{row.file_name} could not be stored: {exc}; run the import "
                                                    "again", row.file_name, row.line)
            return
        except BaseException:
            candidate.discard()
            raise
        report.stored.append(segment.id)
        outcome = "flagged" if segment.flags else "stored"
        report.add(outcome, ",".join(segment.flags) or "stored",
                   f"{row.file_name} stored" + (f"; flags: {', '.join(segment.flags)}" if segment.flags else ""),
                   row.file_name, row.line)
