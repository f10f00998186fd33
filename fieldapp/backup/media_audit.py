"""The media audit (issue 19): every database row that says an object is stored has that object,
with the right hash; every object the store holds belongs to a row or to an upload in flight.

**What claims an object.** Rows that say an original is stored: ``media`` (``original_at`` set;
``size``), ``paper_scans`` (scans of signed paper; ``size``), ``footage_segments`` (footage is an
original like any other, with its own ``media`` row too; ``size``). Derivatives a row lists:
``media.previews`` (made by the pipeline), ``media.phone_preview_at`` (the phone's
``phone-preview``), ``footage_segments.previews`` (poster, preview). An **upload in flight** (its
state still in the store, its completion not yet recorded in ``media_uploads``) claims the
original and derivatives of its hash: the store holds them a moment before the database says so.

**Tombstones.** An approved disposal that was purged (``disposals.state = 'purged'``) stands in for
its object: the rows that name it are not "missing" their bytes, and bytes still there are reported
(``tombstoned_present``). One being purged (``'purging'``) may be half gone: nothing about it is
reported.

**What is reported.** ``missing`` (a row says stored, the store has nothing), ``corrupt`` (the
bytes do not hash to their key, their size is not the row's, or they cannot be read),
``missing_derivatives`` (listed, absent: a warning), ``orphans`` (held, claimed by nothing; listed,
never deleted), ``tombstoned_present``. Missing objects and corrupt ones fail the audit
(:attr:`AuditReport.ok`); the rest are for a person to look at.

**Cost.** One listing of the store into a dict (a few dozen bytes per object), one streamed query
per table (``yield_per``), then one read of each original in bounded chunks when re-hashing. No
query per row and no transaction open while bytes are read. What changed during the audit (an
upload completed, a disposal purged) is looked at again at the end, in batches, before it is
reported, so a busy server does not produce false alarms.

Nothing here writes: not the database, not the store.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from ..media.storage import ALGORITHMS, MediaNotFound, MediaStorage
from ..models import Disposal, FootageSegment, Media, MediaUpload, PaperScan

CAP = 1000
"""Findings kept per class (the totals count them all)."""
READ_BYTES = 1024 * 1024
"""Bytes per read when re-hashing: never more held in memory."""
YIELD_PER = 1000
"""Rows fetched per round trip by the streamed queries."""
BATCH = 400
"""Keys per query when something is looked at again (well under SQLite's bound-parameter limit)."""

PHONE_PREVIEW = "phone-preview"
TOMBSTONE_STATES = ("purging", "purged")

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``: phase "listing" (objects listed, total None), "rows" (rows
read, total None) or "hashing" (bytes read, total bytes to read)."""

Key = tuple[str, str]  # (alg, digest)


# ------------------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One problem: which object (``alg``, ``digest``, derivative ``name`` or None for the
    original), the row that claims it (``table``, ``row``: None for an orphan), what was
    expected and what was found."""

    alg: str
    digest: str
    name: str | None
    table: str | None
    row: str | None
    expected: str
    found: str

    @property
    def object(self) -> str:
        return f"{self.alg}:{self.digest}" + (f" {self.name}" if self.name else "")

    def to_json(self) -> dict:
        return {"alg": self.alg, "hash": self.digest, "derivative": self.name, "table": self.table,
                "row": self.row, "expected": self.expected, "found": self.found}

    def line(self) -> str:
        if self.table and self.row == f"{self.alg}:{self.digest}":  # a media row: its key is the object's
            where = f"{self.table} "
        elif self.table:
            where = f"{self.table} {self.row}: "
        else:
            where = ""
        return f"{where}{self.object}: expected {self.expected}, found {self.found}"


@dataclass
class Findings:
    """The first :data:`CAP` findings of one class, and how many there were in all."""

    items: list[Finding] = field(default_factory=list)
    total: int = 0
    cap: int = CAP

    def add(self, finding: Finding) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(finding)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.items)

    def to_json(self) -> dict:
        return {"total": self.total, "truncated": self.total > len(self.items),
                "items": [f.to_json() for f in self.items]}


@dataclass
class AuditReport:
    rehash: bool = True
    missing: Findings = field(default_factory=Findings)
    corrupt: Findings = field(default_factory=Findings)
    missing_derivatives: Findings = field(default_factory=Findings)
    orphans: Findings = field(default_factory=Findings)
    tombstoned_present: Findings = field(default_factory=Findings)
    originals_listed: int = 0
    derivatives_listed: int = 0
    rows_checked: dict[str, int] = field(default_factory=dict)
    tombstones: int = 0
    uploads_in_flight: int = 0
    originals_hashed: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing missing, nothing corrupt (orphans and missing derivatives do not fail it)."""
        return self.missing.total == 0 and self.corrupt.total == 0

    @property
    def objects_listed(self) -> int:
        return self.originals_listed + self.derivatives_listed

    def to_json(self) -> dict:
        return {"ok": self.ok, "rehash": self.rehash,
                "objects": {"originals": self.originals_listed, "derivatives": self.derivatives_listed},
                "rows_checked": dict(self.rows_checked), "tombstones": self.tombstones,
                "uploads_in_flight": self.uploads_in_flight, "originals_hashed": self.originals_hashed,
                "bytes_read": self.bytes_read, "seconds": round(self.seconds, 3),
                "missing": self.missing.to_json(), "corrupt": self.corrupt.to_json(),
                "missing_derivatives": self.missing_derivatives.to_json(), "orphans": self.orphans.to_json(),
                "tombstoned_present": self.tombstoned_present.to_json()}


# ------------------------------------------------------------------------------------ the audit


class _Held:
    """What the store holds of one hash, and who claims it: compact, one per hash listed."""

    __slots__ = ("size", "derivatives", "original_claimed", "derivatives_claimed", "claimant")

    def __init__(self) -> None:
        self.size: int | None = None  # the original's size; None: no original listed
        self.derivatives: dict[str, int] | None = None
        self.original_claimed = False
        self.derivatives_claimed = False
        self.claimant: tuple[str, str] | None = None  # (table, row) of the first row claiming the original


@dataclass(frozen=True)
class _Expected:
    """A row that says an object (an original, or the derivative ``name``) is stored."""

    key: Key
    name: str | None
    table: str
    row: str
    size: int | None


class _Audit:
    def __init__(self, store: MediaStorage, session: Session, rehash: bool, progress: Progress | None):
        self.store, self.session, self.progress = store, session, progress
        self.report = AuditReport(rehash=rehash)
        self.held: dict[Key, _Held] = {}
        self.tombs: dict[Key, tuple[str, str]] = {}  # key -> ("purging" | "purged", disposal id)
        self.rows_read = 0
        self.expected_absent: list[_Expected] = []  # candidates, looked at again before reporting
        self.vanished: list[Key] = []  # listed, then gone when read

    # -- 1. the store
    def list_store(self) -> None:
        report, held = self.report, self.held
        for n, obj in enumerate(self.store.objects(), 1):
            entry = held.get((obj.alg, obj.digest))
            if entry is None:
                entry = held[(obj.alg, obj.digest)] = _Held()
            if obj.name is None:
                entry.size = obj.size
                report.originals_listed += 1
            else:
                if entry.derivatives is None:
                    entry.derivatives = {}
                entry.derivatives[obj.name] = obj.size
                report.derivatives_listed += 1
            if self.progress and n % 1000 == 0:
                self.progress("listing", n, None)

    # -- 2. the database
    def _stream(self, stmt) -> Iterator[Any]:
        for row in self.session.execute(stmt.execution_options(yield_per=YIELD_PER)):
            yield row
            self.rows_read += 1
            if self.progress and self.rows_read % 1000 == 0:
                self.progress("rows", self.rows_read, None)

    def read_rows(self) -> None:
        s, report = self.session, self.report
        for disposal_id, alg, digest, state in s.execute(
                select(Disposal.id, Disposal.alg, Disposal.hash, Disposal.state)
                .where(Disposal.state.in_(TOMBSTONE_STATES))):
            if self.tombs.get((alg, digest), ("",))[0] != "purged":  # one at most (a unique index); purged wins
                self.tombs[(alg, digest)] = (state, str(disposal_id))
        report.tombstones = len(self.tombs)
        self._claim_uploads_in_flight()

        report.rows_checked["media"] = 0
        for r in self._stream(select(Media.alg, Media.hash, Media.size, Media.original_at, Media.previews,
                                     Media.phone_preview_at)):
            report.rows_checked["media"] += 1
            key, row = (r.alg, r.hash), f"{r.alg}:{r.hash}"
            entry = self.held.get(key)
            if entry is not None:
                entry.derivatives_claimed = True  # a media row owns every derivative of its hash
            if r.original_at is not None:
                self._expect_original(key, "media", row, r.size)
            names = list(r.previews or [])
            if r.phone_preview_at is not None:
                names.append(PHONE_PREVIEW)
            self._expect_derivatives(key, names, "media", row)

        report.rows_checked["paper_scans"] = 0
        for r in self._stream(select(PaperScan.id, PaperScan.alg, PaperScan.hash, PaperScan.size)):
            report.rows_checked["paper_scans"] += 1
            self._expect_original((r.alg, r.hash), "paper_scans", str(r.id), r.size)

        report.rows_checked["footage_segments"] = 0
        for r in self._stream(select(FootageSegment.id, FootageSegment.alg, FootageSegment.hash, FootageSegment.size,
                                     FootageSegment.previews)):
            report.rows_checked["footage_segments"] += 1
            key, row = (r.alg, r.hash), str(r.id)
            entry = self.held.get(key)
            if entry is not None:
                entry.derivatives_claimed = True
            self._expect_original(key, "footage_segments", row, r.size)
            self._expect_derivatives(key, list(r.previews or []), "footage_segments", row)
        s.commit()  # no read snapshot held while the bytes are read

    def _claim_uploads_in_flight(self) -> None:
        ids = []
        for state in self.store.uploads():
            try:
                ids.append(uuid.UUID(state.upload_id))
            except ValueError:
                continue
        in_flight = 0
        for batch in _batches(ids):
            for upload_id, alg, digest in self.session.execute(
                    select(MediaUpload.id, MediaUpload.alg, MediaUpload.hash)
                    .where(MediaUpload.id.in_(batch), MediaUpload.completed_at.is_(None))):
                in_flight += 1
                entry = self.held.get((alg, digest))
                if entry is not None:
                    entry.derivatives_claimed = True  # the pipeline's previews come before the row
                    if entry.size is not None and not entry.original_claimed:
                        entry.original_claimed = True
                        entry.claimant = ("media_uploads", str(upload_id))
        self.report.uploads_in_flight = in_flight

    def _expect_original(self, key: Key, table: str, row: str, size: int | None) -> None:
        entry = self.held.get(key)
        if entry is None or entry.size is None:
            if key not in self.tombs:
                self.expected_absent.append(_Expected(key, None, table, row, size))
            return
        entry.original_claimed = True
        if entry.claimant is None or entry.claimant[0] == "media_uploads":
            entry.claimant = (table, row)
        if size is not None and size != entry.size:
            self.report.corrupt.add(Finding(key[0], key[1], None, table, row, f"{size} bytes", f"{entry.size} bytes"))

    def _expect_derivatives(self, key: Key, names: Iterable[str], table: str, row: str) -> None:
        if key in self.tombs:
            return
        entry = self.held.get(key)
        have = (entry.derivatives or {}) if entry is not None else {}
        for name in dict.fromkeys(names):
            if name not in have:
                self.expected_absent.append(_Expected(key, name, table, row, None))

    # -- 3. the bytes
    def rehash_originals(self) -> None:
        report = self.report
        todo = [(key, entry) for key, entry in self.held.items() if entry.size is not None]
        total = sum(entry.size for _, entry in todo)
        for key, entry in todo:
            alg = ALGORITHMS[key[0]]
            hasher, read = alg.new(), 0
            try:
                with self.store.open(*key) as reader:
                    while chunk := reader.read(READ_BYTES):
                        hasher.update(chunk)
                        read += len(chunk)
                        report.bytes_read += len(chunk)
                        if self.progress:
                            self.progress("hashing", report.bytes_read, total)
            except MediaNotFound:
                self.vanished.append(key)
                continue
            except Exception as exc:  # noqa: BLE001 — an unreadable original is reported, the audit goes on
                table, row = entry.claimant or (None, None)
                report.corrupt.add(Finding(key[0], key[1], None, table, row, "readable bytes",
                                           f"a read error ({type(exc).__name__}: {exc})"))
                continue
            report.originals_hashed += 1
            actual = hasher.hexdigest()
            if actual != key[1]:
                table, row = entry.claimant or (None, None)
                report.corrupt.add(Finding(key[0], key[1], None, table, row, f"{alg.name} {key[1]}",
                                           f"{alg.name} {actual} ({read} bytes)"))

    # -- 4. looked at again, then reported
    def report_absent(self) -> None:
        """Rows whose object was not listed: still absent now, and not purged meanwhile?"""
        candidates = self.expected_absent
        vanished = set(self.vanished)
        if vanished:  # listed, then gone when read: missing for each row that claims them
            candidates = candidates + self._rows_claiming(vanished)
        if not candidates:
            return
        purged_now = self._tombstoned({c.key for c in candidates})
        self.session.commit()
        present: dict[tuple[Key, str | None], bool] = {}
        for c in candidates:
            if c.key in purged_now:
                continue
            probe = (c.key, c.name)
            if probe not in present:
                present[probe] = self._present_now(c.key, c.name)
            if present[probe]:
                continue  # stored during the audit
            what = self.report.missing if c.name is None else self.report.missing_derivatives
            expected = "stored" + (f" ({c.size} bytes)" if c.size is not None else "")
            found = "gone while the audit ran" if c.key in vanished else "absent"
            what.add(Finding(c.key[0], c.key[1], c.name, c.table, c.row, expected, found))

    def _present_now(self, key: Key, name: str | None) -> bool:
        try:
            if name is None:
                return self.store.exists(*key)
            self.store.get_derivative(key[0], key[1], name)
            return True
        except MediaNotFound:
            return False

    def _rows_claiming(self, keys: set[Key]) -> list[_Expected]:
        found: list[_Expected] = []
        for batch in _batches(sorted(keys)):
            for r in self.session.execute(select(Media.alg, Media.hash, Media.size).where(
                    tuple_(Media.alg, Media.hash).in_(batch), Media.original_at.is_not(None))):
                found.append(_Expected((r.alg, r.hash), None, "media", f"{r.alg}:{r.hash}", r.size))
            for r in self.session.execute(select(PaperScan.id, PaperScan.alg, PaperScan.hash, PaperScan.size).where(
                    tuple_(PaperScan.alg, PaperScan.hash).in_(batch))):
                found.append(_Expected((r.alg, r.hash), None, "paper_scans", str(r.id), r.size))
            for r in self.session.execute(select(FootageSegment.id, FootageSegment.alg, FootageSegment.hash,
                                                 FootageSegment.size).where(
                    tuple_(FootageSegment.alg, FootageSegment.hash).in_(batch))):
                found.append(_Expected((r.alg, r.hash), None, "footage_segments", str(r.id), r.size))
        return found

    def _tombstoned(self, keys: set[Key]) -> set[Key]:
        out = {k for k in keys if k in self.tombs}
        rest = sorted(keys - out)
        for batch in _batches(rest):
            out |= {(alg, digest) for alg, digest in self.session.execute(
                select(Disposal.alg, Disposal.hash).where(tuple_(Disposal.alg, Disposal.hash).in_(batch),
                                                          Disposal.state.in_(TOMBSTONE_STATES)))}
        return out

    def report_unclaimed(self) -> None:
        """Orphans and purged objects still held. An orphan is looked at again (a row written since
        the rows were read claims it now) before it is reported; nothing is deleted."""
        originals: list[Key] = []
        derivatives: list[Key] = []
        vanished = set(self.vanished)
        for key, entry in self.held.items():
            tomb, disposal_id = self.tombs.get(key, (None, None))
            if tomb == "purging":
                continue  # half gone, and the purge finishes it
            if tomb == "purged":
                if entry.size is not None and key not in vanished:
                    self.report.tombstoned_present.add(Finding(key[0], key[1], None, "disposals", disposal_id,
                                                               "purged (absent)", f"present ({entry.size} bytes)"))
                for name, size in sorted((entry.derivatives or {}).items()):
                    self.report.tombstoned_present.add(Finding(key[0], key[1], name, "disposals", disposal_id,
                                                               "purged (absent)", f"present ({size} bytes)"))
                continue
            if entry.size is not None and not entry.original_claimed and key not in vanished:
                originals.append(key)
            if entry.derivatives and not entry.derivatives_claimed:
                derivatives.append(key)
        if not originals and not derivatives:
            return
        claimed_originals, claimed_derivatives = self._claimed_now(set(originals) | set(derivatives))
        self.session.commit()
        for key in originals:
            if key not in claimed_originals:
                self.report.orphans.add(Finding(key[0], key[1], None, None, None, "a row that claims it",
                                                f"none ({self.held[key].size} bytes)"))
        for key in derivatives:
            if key not in claimed_derivatives:
                for name, size in sorted(self.held[key].derivatives.items()):
                    self.report.orphans.add(Finding(key[0], key[1], name, None, None,
                                                    "a media row for its original", f"none ({size} bytes)"))

    def _claimed_now(self, keys: set[Key]) -> tuple[set[Key], set[Key]]:
        originals: set[Key] = set()
        derivatives: set[Key] = set()
        for batch in _batches(sorted(keys)):
            for alg, digest, original_at in self.session.execute(select(Media.alg, Media.hash, Media.original_at)
                                                                 .where(tuple_(Media.alg, Media.hash).in_(batch))):
                derivatives.add((alg, digest))
                if original_at is not None:
                    originals.add((alg, digest))
            for model in (PaperScan, FootageSegment):
                originals |= {(a, d) for a, d in self.session.execute(
                    select(model.alg, model.hash).where(tuple_(model.alg, model.hash).in_(batch)))}
        return originals, derivatives


def _batches(items: list) -> Iterator[list]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def audit(store: MediaStorage, session: Session, *, rehash: bool = True, progress: Progress | None = None) -> AuditReport:
    """Audit ``store`` against the rows read through ``session`` (see the module's description).

    ``rehash`` False checks existence and sizes only. Run it in a transaction that only reads
    (``db.reading()``): the session is committed between the steps, so no snapshot is held while
    the bytes are read. ``progress(phase, done, total)`` is called as the work advances."""
    started = time.monotonic()
    run = _Audit(store, session, rehash, progress)
    run.list_store()
    run.read_rows()
    if rehash:
        run.rehash_originals()
    run.report_absent()
    run.report_unclaimed()
    run.report.seconds = time.monotonic() - started
    return run.report


# ------------------------------------------------------------------------------------ the summary

SHOWN_PER_CLASS = 50


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # not reached


def summary_lines(report: AuditReport, shown: int = SHOWN_PER_CLASS) -> list[str]:
    """A short English summary: what was checked, then each problem with table, key, expected and
    found (the first ``shown`` of each class)."""
    rows = ", ".join(f"{table} {n}" for table, n in report.rows_checked.items())
    lines = [f"media audit: {report.originals_listed} originals and {report.derivatives_listed} derivatives held; "
             f"rows checked: {rows}; {report.tombstones} tombstones, {report.uploads_in_flight} uploads in flight"]
    if report.rehash:
        lines.append(f"re-hashed {report.originals_hashed} originals, {human_bytes(report.bytes_read)} read "
                     f"in {report.seconds:.1f} s")
    else:
        lines.append(f"existence and sizes only (no re-hash), {report.seconds:.1f} s")
    classes = (("MISSING", report.missing, "a row says stored, the store has nothing"),
               ("CORRUPT", report.corrupt, "wrong hash, wrong size or unreadable"),
               ("missing derivatives", report.missing_derivatives, "listed but absent; a warning"),
               ("orphans", report.orphans, "held, claimed by no row; left in place"),
               ("purged but still present", report.tombstoned_present, "a purged disposal's bytes are still held"))
    for title, findings, meaning in classes:
        if not findings.total:
            continue
        lines.append(f"{title}: {findings.total} ({meaning})")
        lines.extend(f"  {f.line()}" for f in findings.items[:shown])
        if findings.total > shown:
            lines.append(f"  … and {findings.total - shown} more (--json lists up to {findings.cap})")
    lines.append("OK: nothing missing or corrupt" if report.ok
                 else f"FAILED: {report.missing.total} missing, {report.corrupt.total} corrupt")
    return lines
