"""`flask verify`: does what the database and the media store hold still match what the chain says?

Five parts, each reporting what it checked and every fault by name:
1. the chain — every sealed event links to the one before and still hashes to its hash; events not
   yet sealed are pending, not faults;
2. the checkpoints — each is signed by the trusted key and names a head the chain still reaches;
3. the rows — every row of every covered table stands as its latest event left it: a row changed
   since is *edited*, a row no event made is *inserted*, a row an event made and no event deleted
   but now missing is *deleted*;
4. the revisions — each still carries its device's valid signature (``sync/verification.py``);
5. the media — stored originals re-hashed (all, or a random sample).
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import AuditCheckpoint, AuditEvent, Base, Disposal, Media, utcnow
from . import checkpoints as cp
from .chain import ChainWalk, Sealed
from .capture import CHANGE
from .coverage import COVERED
from .rowhash import content_columns, row_digest, row_key
from .sealer import stored_text

_PAGE = 50_000


@dataclass
class Fault:
    part: str       # chain | checkpoint | row | revision | media
    what: str       # the event, checkpoint, table/key, revision or file it concerns
    problem: str


@dataclass
class Report:
    sealed: int = 0
    pending: int = 0
    checkpoints: int = 0
    rows: int = 0
    revisions: int = 0
    media_checked: int = 0
    media_total: int = 0
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def add(self, part: str, what: str, problem: str) -> None:
        self.faults.append(Fault(part, what, problem))


# ------------------------------------------------------------------------------ 1. the chain

def sealed_events(s: Session, page: int = _PAGE, after: int = 0) -> Iterator[Sealed]:
    t = AuditEvent.__table__
    cols = (t.c.seq, t.c.id, t.c.at, t.c.actor, t.c.action, t.c.tbl, t.c.row_key, t.c.row_hash,
            stored_text(t.c.detail), t.c.prev_hash, t.c.hash)
    while True:
        rows = s.execute(select(*cols).where(t.c.seq > after).order_by(t.c.seq).limit(page)).all()
        for r in rows:
            yield Sealed(*r)
        if len(rows) < page:
            return
        after = rows[-1].seq


def check_chain(s: Session, report: Report) -> dict[int, str]:
    """Walk the chain; return the hash the chain reaches at each position a checkpoint names."""
    wanted = set(s.execute(select(AuditCheckpoint.seq)).scalars())
    reached: dict[int, str] = {}
    walk = ChainWalk()
    for event in sealed_events(s):
        fault = walk.step(event)
        if fault:
            report.add("chain", f"event {fault.event_id} (seq {fault.seq})", fault.problem)
        if event.seq in wanted:
            reached[event.seq] = walk.computed
    report.sealed = walk.count
    report.pending = s.execute(select(func.count()).select_from(AuditEvent)
                               .where(AuditEvent.seq.is_(None))).scalar_one()
    return reached


# ------------------------------------------------------------------------- 2. checkpoints

def check_checkpoints(s: Session, report: Report, reached: dict[int, str], trusted_public, tsa_check=None,
                      every: timedelta | None = None) -> None:
    """Each checkpoint: signed by the trusted key, linked to the one before it, met by the chain.
    Then: is any sealed event older than the checkpoint cadence left without a signature (the
    latest checkpoints removed, or checkpointing stopped)?"""
    from . import keys
    trusted_id = keys.key_id(trusted_public)
    previous: tuple[int, str] | None = None
    for row in s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars():
        report.checkpoints += 1
        name = f"checkpoint {row.id} (seq {row.seq})"
        try:
            stated = cp.parse(row.statement)
        except (ValueError, KeyError, TypeError):
            report.add("checkpoint", name, "its signed statement cannot be read")
            continue
        if stated.key != trusted_id:
            report.add("checkpoint", name, "signed with a key other than the trusted one")
            continue
        if not cp.signature_holds(trusted_public, row.statement, row.signature):
            report.add("checkpoint", name, "the signature does not match the statement: the checkpoint was altered")
            continue
        if (stated.seq, stated.head) != (row.seq, row.head_hash):
            report.add("checkpoint", name, "its columns differ from what was signed")
        if stated.previous != previous:
            report.add("checkpoint", name, "the checkpoint it names as the one before it is missing: "
                                           "checkpoints were removed")
        previous = (stated.seq, stated.head)
        chain_hash = reached.get(stated.seq)
        if chain_hash is None:
            report.add("checkpoint", name, f"the chain no longer reaches position {stated.seq}: events were removed")
        elif chain_hash != stated.head:
            report.add("checkpoint", name, f"the chain at position {stated.seq} no longer has the signed hash: "
                                           "events before it were changed, removed or re-linked")
        if row.tsa_token is not None and tsa_check is not None:
            problem = tsa_check(row.statement, row.tsa_token)
            if problem:
                report.add("checkpoint", name, f"timestamp token: {problem}")
    _check_coverage_by_signatures(s, report, previous[0] if previous else 0, every)


def _check_coverage_by_signatures(s: Session, report: Report, signed_up_to: int, every: timedelta | None) -> None:
    events = AuditEvent.__table__
    unsigned, oldest = s.execute(select(func.count(), func.min(events.c.at))
                                 .where(events.c.seq > signed_up_to)).one()
    if unsigned:
        report.notes.append(f"{unsigned} sealed events after the last checkpoint (position {signed_up_to}) are "
                            "linked but not signed yet; the next checkpoint signs them")
    if unsigned and every is not None and oldest is not None and _aware(oldest) < utcnow() - every - CADENCE_GRACE:
        report.add("checkpoint", f"after position {signed_up_to}",
                   f"events sealed since {_aware(oldest).isoformat(timespec='seconds')} are covered by no checkpoint, "
                   f"although one is signed every {every}: checkpoints were removed, or checkpointing stopped")
    pending_since = s.execute(select(func.min(events.c.at)).where(events.c.seq.is_(None))).scalar_one()
    if pending_since is not None and _aware(pending_since) < utcnow() - STALE_PENDING:
        report.notes.append(f"events have waited to be sealed since {_aware(pending_since).isoformat(timespec='seconds')}: "
                            "the sealer is not running, or a long transaction holds the horizon back")


CADENCE_GRACE = timedelta(hours=1)
STALE_PENDING = timedelta(minutes=5)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------- 3. rows

def check_rows(s: Session, report: Report, tables: list[str] | None = None) -> None:
    for name in sorted(tables or COVERED):
        table = Base.metadata.tables[name]
        latest = latest_row_hashes(s, name)
        pk = list(table.primary_key.columns)
        content = content_columns(table, s.get_bind().dialect.name)
        for row in s.execute(select(*pk, *content)):
            report.rows += 1
            key = row_key(row[:len(pk)])
            row = dict(zip(row._fields[len(pk):], row[len(pk):], strict=True))
            if key not in latest:
                report.add("row", f"{name} {key}", "inserted: no event records this row")
                continue
            expected = latest.pop(key)
            if expected is None:
                report.add("row", f"{name} {key}", "inserted: the chain records this row as deleted")
            elif row_digest(row) != expected:
                report.add("row", f"{name} {key}", "edited: its content differs from what the chain last recorded")
        for key, digest in latest.items():
            if digest is not None:
                report.add("row", f"{name} {key}", "deleted: the chain records this row, the table no longer has it")


def latest_row_hashes(s: Session, table_name: str) -> dict[str, str | None]:
    """Each row's content hash as the table's latest event about it left it (None: deleted)."""
    events = AuditEvent.__table__
    latest: dict[str, str | None] = {}
    for action, key, digest, detail in s.execute(
            select(events.c.action, events.c.row_key, events.c.row_hash, events.c.detail)
            .where(events.c.tbl == table_name).order_by(events.c.id)):
        if action == CHANGE:
            for values, row_hash, _ in detail["rows"]:
                latest[row_key(values)] = row_hash
        else:  # a baseline written when the chain began
            latest[key] = digest
    return latest


# ---------------------------------------------------------------------------- 4. revisions

def check_revisions(report: Report) -> None:
    from ..sync.verification import Finding, check_all
    for outcome in check_all():
        if isinstance(outcome, Finding):
            report.add("revision", f"record {outcome.record_id} revision {outcome.revision}", outcome.problem)
        else:
            report.revisions = outcome


# -------------------------------------------------------------------------------- 5. media

def check_media(s: Session, report: Report, store, sample: int | None = None, seed: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> None:
    # A purged object's bytes were removed by an approved disposal (art. 26); its tombstone stands in
    # for it. Any other original missing from the store is a fault: nothing else may delete one.
    purged = select(Disposal.id).where(Disposal.alg == Media.alg, Disposal.hash == Media.hash,
                                       Disposal.state.in_(("purging", "purged")))
    stored = s.execute(select(Media.alg, Media.hash, Media.size).where(Media.original_at.is_not(None), ~purged.exists())
                       .order_by(Media.alg, Media.hash)).all()
    report.media_total = len(stored)
    chosen = stored if sample is None or sample >= len(stored) else random.Random(seed).sample(stored, sample)
    total_bytes = sum(m.size or 0 for m in chosen)
    done = 0
    for m in chosen:
        report.media_checked += 1
        name = f"{m.alg}:{m.hash}"
        try:
            digest, size = _rehash(store, m.alg, m.hash, lambda n: progress and progress(n, total_bytes))
        except LookupError:
            report.add("media", name, "the original is missing from the media store")
            continue
        except OSError as exc:
            report.add("media", name, f"the original cannot be read: {exc}")
            continue
        done += size
        if digest != m.hash:
            report.add("media", name, "the stored bytes no longer have this hash: the file was changed")
        elif m.size is not None and size != m.size:
            report.add("media", name, f"the stored file has {size} bytes, the record says {m.size}")


def _rehash(store, alg: str, digest: str, advanced) -> tuple[str, int]:
    if alg != "sha-256":
        raise OSError(f"cannot re-hash {alg}")
    h = hashlib.sha256()
    size = 0
    with store.open(alg, digest) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
            advanced(len(chunk))
    return h.hexdigest(), size


def verify(s: Session, *, trusted_public, store=None, media_sample: int | None = None, check_media_files: bool = True,
           seed: int | None = None, progress=None, tsa_check=None, revisions: bool = True,
           checkpoint_every: timedelta | None = None) -> Report:
    report = Report()
    reached = check_chain(s, report)
    check_checkpoints(s, report, reached, trusted_public, tsa_check, checkpoint_every)
    check_rows(s, report)
    s.expunge_all()
    if revisions:
        check_revisions(report)
    if check_media_files and store is not None:
        check_media(s, report, store, media_sample, seed, progress)
    return report
