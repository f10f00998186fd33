"""Art. 26 for stored objects: the facts behind each object's retention class, recomputing it when
they change, holds, the disposal list, approved disposal, recovery and the purge.

Retention is decided per content-addressed object (an original in media storage), over every
record that refers to it — photos through revisions' media references, footage through its segment
and the activities it is linked to — so an object shared by records of two cases is kept as long as
the longer of them requires. The rules themselves are data (``rules/records.toml``) read by the
pure :func:`fieldapp.rules.records_rules.retention`.

Disposal is the only way media bytes leave fieldapp: :func:`purge_due` is the only caller of the
storage's ``dispose_original`` (``tests/unit/test_disposal_is_the_only_delete.py`` keeps it so).
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from .. import db
from ..models import (ACTIVITY_CHILD_TYPES, Case, CaseStage, Disposal, EvidenceUse, FootageLink, FootageSegment, Media, MediaRef,
                      RetentionHold, RetentionState, Revision, Role, SyncedRecord, User, utcnow)
from ..rules import records_rules
from ..rules.records_rules import HELD, PERMANENT, SIX_MONTHS

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (alg, hash)
HIDDEN_STATES = ("disposed", "purging", "purged")  # bytes no longer offered to anyone
ACTIVE_STATES = ("proposed", *HIDDEN_STATES)  # at most one such disposal per object (a partial unique index)


UNDER_WAY = "该文件已在处置流程中 / A disposal of this file is already under way"


class DisposalRefused(ValueError):
    """A disposal step the rules do not allow now; the message says why (Chinese / English)."""


# ------------------------------------------------------------------------------------ facts


@dataclass
class ObjectFacts:
    unit_id: uuid.UUID | None = None
    captured_at: datetime | None = None
    facts: set[str] = field(default_factory=set)
    case_ids: set[uuid.UUID] = field(default_factory=set)
    holds: set[str] = field(default_factory=set)

    def seen(self, unit_id, at: datetime | None) -> None:
        # The six months run from the latest record that took the object in: a record made today
        # with bytes first captured last year keeps them six months from today (the longest wins).
        self.unit_id = self.unit_id or unit_id
        if at is not None and (self.captured_at is None or at > self.captured_at):
            self.captured_at = at


def _decision_step_types() -> frozenset[str]:
    from ..compliance import engine
    return frozenset(s["id"] for s in engine.catalogue_content().get("step_types", []) if s.get("stage") == "decision")


def gather(keys: Iterable[Key] | None = None) -> dict[Key, ObjectFacts]:
    """The facts of every stored object (or of ``keys``): who collected it, when it was captured,
    and what holds for the records referring to it."""
    s = db.session()
    wanted = set(keys) if keys is not None else None
    found: dict[Key, ObjectFacts] = defaultdict(ObjectFacts)

    def where(alg_col, hash_col):
        if wanted is None:
            return True
        return or_(*[and_(alg_col == a, hash_col == h) for a, h in wanted]) if wanted else False

    # Photos and clips, through the records whose revisions refer to them.
    record_of: dict[Key, set[uuid.UUID]] = defaultdict(set)
    for alg, digest, record_id, unit_id in s.execute(select(MediaRef.alg, MediaRef.hash, MediaRef.record_id,
                                                            MediaRef.unit_id).where(where(MediaRef.alg, MediaRef.hash))):
        record_of[(alg, digest)].add(record_id)
        found[(alg, digest)].seen(unit_id, None)
    media_times = {}
    if record_of:
        for alg, digest, taken_at, created_at in s.execute(select(Media.alg, Media.hash, Media.taken_at, Media.created_at)
                                                           .where(where(Media.alg, Media.hash))):
            media_times[(alg, digest)] = taken_at or created_at
    records = {}
    all_records = {r for ids in record_of.values() for r in ids}
    for chunk in _chunks(sorted(all_records)):
        for row in s.execute(select(SyncedRecord.id, SyncedRecord.record_type, SyncedRecord.parent_id,
                                    SyncedRecord.case_id, SyncedRecord.created_at).where(SyncedRecord.id.in_(chunk))):
            records[row.id] = row
    activity_of = {rid: (row.parent_id if row.record_type in ACTIVITY_CHILD_TYPES else rid)
                   for rid, row in records.items()}
    obstructed = _obstructed_activities({a for a in activity_of.values() if a})
    for key, ids in record_of.items():
        facts = found[key]
        for rid in ids:
            row = records.get(rid)
            if row is None:
                continue
            facts.seen(None, row.created_at)
            if row.case_id:
                facts.case_ids.add(row.case_id)
            if activity_of.get(rid) in obstructed:
                facts.facts.add("interruption:obstruction")
        if key in media_times and media_times[key] is not None:
            facts.seen(None, media_times[key])

    # Body-camera footage: the segment, its marks and the cases it is linked to.
    segments = list(s.execute(select(FootageSegment.id, FootageSegment.alg, FootageSegment.hash, FootageSegment.unit_id,
                                     FootageSegment.started_at, FootageSegment.keep_reasons)
                              .where(where(FootageSegment.alg, FootageSegment.hash))))
    by_segment = {}
    for row in segments:
        key = (row.alg, row.hash)
        found[key].seen(row.unit_id, row.started_at)
        found[key].facts |= {f"segment:{r}" for r in (row.keep_reasons or []) if r in ("important", "obstruction")}
        by_segment[row.id] = key
    for chunk in _chunks(sorted(by_segment)):
        for segment_id, case_id in s.execute(select(FootageLink.segment_id, FootageLink.case_id)
                                             .where(FootageLink.segment_id.in_(chunk))):
            if case_id:
                found[by_segment[segment_id]].case_ids.add(case_id)

    _case_facts(found)
    for alg, digest in s.execute(select(EvidenceUse.alg, EvidenceUse.hash).where(where(EvidenceUse.alg, EvidenceUse.hash))):
        if (alg, digest) in found:
            found[(alg, digest)].facts.add("evidence_use")
    _holds(found)
    return {k: v for k, v in found.items() if v.captured_at is not None}


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _obstructed_activities(activity_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    if not activity_ids:
        return set()
    s = db.session()
    obstructed = set()
    for chunk in _chunks(sorted(activity_ids)):
        rows = s.execute(select(SyncedRecord.parent_id, Revision.payload).join(Revision, and_(
            Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
            .where(SyncedRecord.parent_id.in_(chunk), SyncedRecord.record_type == "interruption",
                   SyncedRecord.withdrawn.is_(False)))
        obstructed |= {parent for parent, payload in rows if (payload or {}).get("reason") == "obstruction"}
    return obstructed


def _case_facts(found: dict[Key, ObjectFacts]) -> None:
    case_ids = {c for f in found.values() for c in f.case_ids}
    if not case_ids:
        return
    s = db.session()
    per_case: dict[uuid.UUID, set[str]] = defaultdict(set)
    decision_types = _decision_step_types()
    for chunk in _chunks(sorted(case_ids)):
        for case in s.execute(select(Case.id, Case.flags, Case.significance).where(Case.id.in_(chunk))):
            per_case[case.id] |= {f"case_flag:{f}" for f in (case.flags or [])}
            per_case[case.id] |= {f"case_mark:{m}" for m in (case.significance or [])}
        for (case_id,) in s.execute(select(CaseStage.case_id).where(CaseStage.case_id.in_(chunk),
                                                                    CaseStage.stage == "decision")):
            per_case[case_id].add("case_decided")
        if decision_types:
            for case_id, payload in s.execute(select(SyncedRecord.case_id, Revision.payload).join(Revision, and_(
                    Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
                    .where(SyncedRecord.case_id.in_(chunk), SyncedRecord.record_type == "step",
                           SyncedRecord.withdrawn.is_(False))):
                if (payload or {}).get("step_type") in decision_types:
                    per_case[case_id].add("case_decided")
        for (case_id,) in s.execute(select(RetentionHold.case_id).where(
                RetentionHold.case_id.in_(chunk), RetentionHold.released_at.is_(None))):
            per_case[case_id].add("hold:case")
    for facts in found.values():
        for case_id in facts.case_ids:
            case_facts = per_case.get(case_id, set())
            facts.facts |= {f for f in case_facts if not f.startswith("hold:")}
            if "hold:case" in case_facts:
                facts.holds.add("case")


def _holds(found: dict[Key, ObjectFacts]) -> None:
    for alg, digest in db.session().execute(select(RetentionHold.alg, RetentionHold.hash).where(
            RetentionHold.kind == "legal", RetentionHold.alg.is_not(None), RetentionHold.released_at.is_(None))):
        if (alg, digest) in found:
            found[(alg, digest)].holds.add("legal")


# ------------------------------------------------------------------------------------ recompute


@dataclass(frozen=True)
class Change:
    key: Key
    klass: str
    keep_until: datetime | None


def recompute(keys: Iterable[Key] | None = None) -> list[Change]:
    """Work out the class of each object (every object when ``keys`` is None) and store what
    changed, in the caller's transaction. Returns the changes, for the storage's holds."""
    s = db.session()
    rules = records_rules.builtin()
    facts = gather(keys)
    present = {(r.alg, r.hash): r for r in s.execute(select(RetentionState).where(
        or_(*[and_(RetentionState.alg == a, RetentionState.hash == h) for a, h in facts]) if facts else False)).scalars()}
    changes = []
    now = utcnow()
    for key, f in facts.items():
        decided = records_rules.retention(f.captured_at, frozenset(f.facts), frozenset(f.holds), rules)
        reasons = [r.as_json() for r in decided.reasons]
        row = present.get(key)
        if row is None:
            s.add(RetentionState(alg=key[0], hash=key[1], unit_id=f.unit_id, klass=decided.klass,
                                 captured_at=f.captured_at, keep_until=decided.keep_until, reasons=reasons,
                                 computed_at=now))
        elif (row.klass, row.keep_until, row.reasons, row.captured_at) == (decided.klass, decided.keep_until, reasons,
                                                                           f.captured_at):
            continue
        else:
            row.klass, row.keep_until, row.reasons, row.captured_at = decided.klass, decided.keep_until, reasons, f.captured_at
            row.unit_id, row.computed_at = row.unit_id or f.unit_id, now
        changes.append(Change(key, decided.klass, decided.keep_until))
    return changes


def _mirror_text(klass: str, keep_until: datetime | None) -> str:
    return f"{klass}:{keep_until.isoformat() if keep_until else ''}"


def apply_to_storage(changes: Iterable[Change]) -> None:
    """Mirror classes in the store where it can enforce them (S3 object lock): a legal hold on
    permanent and held objects, compliance-mode retention for the six-month minimum only — so an
    approved disposal stays possible once that date has passed. Called with no transaction open:
    a store that does not answer leaves the database right, and the next review mirrors again
    whatever the store was not told (``RetentionState.mirrored``)."""
    from ..media.service import media_storage
    store = media_storage()
    told = []
    for change in changes:
        try:
            if change.klass in (PERMANENT, HELD):
                store.set_legal_hold(*change.key, True)
            else:
                store.set_legal_hold(*change.key, False)
                if change.keep_until is not None:
                    store.retain_until(*change.key, change.keep_until)
        except Exception:  # noqa: BLE001 — bytes absent yet, or the store unreachable: next review
            log.warning("retention of %s:%s not mirrored in the store", *change.key, exc_info=True)
            continue
        told.append(change)
    if told:
        with db.transaction() as s:
            for change in told:
                row = s.get(RetentionState, change.key)
                if row is not None and (row.klass, row.keep_until) == (change.klass, change.keep_until):
                    row.mirrored = _mirror_text(change.klass, change.keep_until)


def unmirrored() -> list[Change]:
    """States the store has not been told yet (new, changed, or a store that did not answer)."""
    rows = db.session().execute(select(RetentionState.alg, RetentionState.hash, RetentionState.klass,
                                       RetentionState.keep_until, RetentionState.mirrored)).all()
    return [Change((a, h), k, until) for a, h, k, until, mirrored in rows if mirrored != _mirror_text(k, until)]


def recompute_and_apply(keys: Iterable[Key] | None = None) -> list[Change]:
    with db.transaction():
        changes = recompute(keys)
    with db.reading():
        pending = unmirrored()
    apply_to_storage(pending)
    return changes


def keys_of_records(record_ids: Iterable[uuid.UUID]) -> set[Key]:
    """The objects whose class these records may change: their own media; for an interruption every
    photo and footage of its activity (one for obstruction keeps them all, art. 26 (二)); for a
    decision step every object of its case (art. 26 (一))."""
    ids = list(record_ids)
    keys: set[Key] = set()
    s = db.session()
    decision_types = None
    for chunk in _chunks(sorted(ids)):
        keys |= {(a, h) for a, h in s.execute(select(MediaRef.alg, MediaRef.hash).where(MediaRef.record_id.in_(chunk)))}
        steps = s.execute(select(SyncedRecord.case_id, Revision.payload).join(Revision, and_(
            Revision.record_id == SyncedRecord.id, Revision.revision == SyncedRecord.head_revision))
            .where(SyncedRecord.id.in_(chunk), SyncedRecord.record_type == "step")).all()
        if steps:
            decision_types = decision_types if decision_types is not None else _decision_step_types()
            decided = {case_id for case_id, payload in steps
                       if case_id and (payload or {}).get("step_type") in decision_types}
            if decided:
                keys |= keys_of_cases(decided)
        parents = {p for (p,) in s.execute(select(SyncedRecord.parent_id).where(
            SyncedRecord.id.in_(chunk), SyncedRecord.record_type == "interruption")) if p}
        if parents:
            siblings = [r for (r,) in s.execute(select(SyncedRecord.id).where(
                or_(SyncedRecord.parent_id.in_(parents), SyncedRecord.id.in_(parents))))]
            for sub in _chunks(sorted(siblings)):
                keys |= {(a, h) for a, h in s.execute(select(MediaRef.alg, MediaRef.hash).where(MediaRef.record_id.in_(sub)))}
            keys |= {(a, h) for a, h in s.execute(select(FootageSegment.alg, FootageSegment.hash).join(
                FootageLink, FootageLink.segment_id == FootageSegment.id).where(FootageLink.activity_id.in_(parents)))}
    return keys


def keys_of_segments(segment_ids: Iterable[uuid.UUID]) -> set[Key]:
    ids = sorted(set(segment_ids))
    keys: set[Key] = set()
    for chunk in _chunks(ids):
        keys |= {(a, h) for a, h in db.session().execute(select(FootageSegment.alg, FootageSegment.hash).where(
            FootageSegment.id.in_(chunk)))}
    return keys


def keys_of_cases(case_ids: Iterable[uuid.UUID]) -> set[Key]:
    ids = sorted({c for c in case_ids if c})
    keys: set[Key] = set()
    s = db.session()
    for chunk in _chunks(ids):
        records = [r for (r,) in s.execute(select(SyncedRecord.id).where(SyncedRecord.case_id.in_(chunk)))]
        for sub in _chunks(sorted(records)):
            keys |= {(a, h) for a, h in s.execute(select(MediaRef.alg, MediaRef.hash).where(MediaRef.record_id.in_(sub)))}
        keys |= {(a, h) for a, h in s.execute(select(FootageSegment.alg, FootageSegment.hash).join(
            FootageLink, FootageLink.segment_id == FootageSegment.id).where(FootageLink.case_id.in_(chunk)))}
    return keys


# ------------------------------------------------------------------------------------ holds


def place_hold(by: User, *, kind: str, reason: str, case: Case | None = None, key: Key | None = None,
               unit_id: uuid.UUID) -> RetentionHold:
    reason = (reason or "").strip()
    if kind not in records_rules.builtin().holds:
        raise DisposalRefused(f"未知的保全类别 / unknown hold kind {kind!r}")
    if not reason:
        raise DisposalRefused("请说明保全理由 / Say why the records are held")
    if (kind == "case") != (case is not None) or (kind == "legal") != (key is not None):
        raise DisposalRefused("案件保全针对案件，法律保全针对单个文件 / A case hold names a case, a legal hold one file")
    hold = RetentionHold(kind=kind, case_id=case.id if case else None, alg=key[0] if key else None,
                         hash=key[1] if key else None, unit_id=unit_id, reason=reason[:2000], placed_by=by.id)
    db.session().add(hold)
    db.session().flush()
    return hold


def release_hold(hold: RetentionHold, by: User) -> None:
    if hold.released_at is not None:
        raise DisposalRefused("该保全已解除 / This hold was already released")
    hold.released_at, hold.released_by = utcnow(), by.id


def keys_of_hold(hold: RetentionHold) -> set[Key]:
    return keys_of_cases([hold.case_id]) if hold.kind == "case" else {(hold.alg, hold.hash)}


# ------------------------------------------------------------------------------------ disposal


def disposal_of(key: Key) -> Disposal | None:
    """The disposal in progress or done for this object (None: none, or withdrawn / recovered)."""
    return db.session().execute(select(Disposal).where(
        Disposal.alg == key[0], Disposal.hash == key[1], Disposal.state.in_(ACTIVE_STATES))
        .order_by(Disposal.id).limit(1)).scalar_one_or_none()


def is_hidden(alg: str, digest: str) -> bool:
    """Disposed (recoverable, but offered to nobody) or purged: no preview, original or copy."""
    return db.session().execute(select(Disposal.id).where(
        Disposal.alg == alg, Disposal.hash == digest, Disposal.state.in_(HIDDEN_STATES)).limit(1)).first() is not None


def due(unit_ids: frozenset[uuid.UUID] | None, now: datetime | None = None) -> list[RetentionState]:
    """The disposal list: objects past their six months, held by nothing, with no disposal begun."""
    now = now or utcnow()
    stmt = select(RetentionState).where(RetentionState.klass == SIX_MONTHS, RetentionState.keep_until <= now)
    if unit_ids is not None:
        stmt = stmt.where(RetentionState.unit_id.in_(unit_ids))
    begun = select(Disposal.id).where(Disposal.alg == RetentionState.alg, Disposal.hash == RetentionState.hash,
                                      Disposal.state.in_(ACTIVE_STATES))
    return list(db.session().execute(stmt.where(~begun.exists()).order_by(RetentionState.keep_until)).scalars())


def _still_due(key: Key, now: datetime) -> RetentionState:
    """Facts may have changed since the item was listed: decide again before anything is hidden."""
    recompute([key])
    state = db.session().get(RetentionState, key)
    if state is None or state.klass != SIX_MONTHS or state.keep_until is None or state.keep_until > now:
        why = "；".join(r["article"] for r in (state.reasons if state else []) if r["rule"] != "minimum") or "—"
        raise DisposalRefused(f"该文件尚未到期或须永久保存（{why}）/ This file is not past its retention date, "
                              f"or must be kept permanently")
    return state


def propose(key: Key, by: User, note: str = "") -> Disposal:
    """The records administrator lists an object for disposal and signs as the first approver."""
    if Role.RECORDS_ADMIN not in by.roles:
        raise DisposalRefused("只有音像记录管理员可以提出处置 / Only the records administrator proposes a disposal")
    now = utcnow()
    state = _still_due(key, now)
    if state.unit_id is None or state.unit_id != by.unit_id:
        raise DisposalRefused("只能处置本单位采集的文件 / Only your own unit's files")
    if disposal_of(key) is not None:
        raise DisposalRefused(UNDER_WAY)
    media = db.session().get(Media, key)
    disposal = Disposal(alg=key[0], hash=key[1], unit_id=state.unit_id, size=media.size if media else None,
                        klass=state.klass, keep_until=state.keep_until, reasons=state.reasons, state="proposed",
                        records_admin_id=by.id, records_admin_at=now, note=(note or "").strip()[:2000])
    try:
        with db.session().begin_nested():  # two administrators at once: the unique index lets one through
            db.session().add(disposal)
    except IntegrityError:
        raise DisposalRefused(UNDER_WAY) from None
    return disposal


def approve(disposal: Disposal, by: User) -> Disposal:
    """The division head over the collecting unit approves: with both approvals the object is
    hidden at once and recoverable for seven days; the purge removes its bytes after that."""
    if disposal.state != "proposed":
        raise DisposalRefused("该处置不在待批准状态 / This disposal is not awaiting approval")
    if Role.DIVISION_HEAD not in by.roles or disposal.unit_id not in by.overseen_unit_ids:
        raise DisposalRefused("须由分管该执法机构的局负责人批准 / The division head over the collecting unit approves")
    if by.id == disposal.records_admin_id:
        raise DisposalRefused("提出人不能同时批准 / The proposer cannot also approve")
    now = utcnow()
    state = _still_due((disposal.alg, disposal.hash), now)
    disposal.klass, disposal.reasons = state.klass, state.reasons
    disposal.division_head_id, disposal.division_head_at = by.id, now
    disposal.state, disposal.disposed_at = "disposed", now
    disposal.recoverable_until = now + timedelta(days=records_rules.builtin().recoverable_days)
    return disposal


def withdraw(disposal: Disposal, by: User) -> None:
    if disposal.state != "proposed":
        raise DisposalRefused("只有待批准的处置可以撤回 / Only a disposal awaiting approval can be withdrawn")
    disposal.state, disposal.note = "withdrawn", (disposal.note + f"\n撤回 / withdrawn by {by.name}").strip()


def recover(disposal: Disposal, by: User, now: datetime | None = None) -> None:
    now = now or utcnow()
    if disposal.state != "disposed":
        raise DisposalRefused("只有已处置且未清除的文件可以恢复 / Only a disposed file not yet purged can be recovered")
    if disposal.recoverable_until is not None and disposal.recoverable_until <= now:
        raise DisposalRefused("恢复期已过，文件已不可恢复 / The 7 days to recover it have passed")
    if not (by.has_role(Role.RECORDS_ADMIN) and by.unit_id == disposal.unit_id) and not (
            by.has_role(Role.DIVISION_HEAD) and disposal.unit_id in by.overseen_unit_ids):
        raise DisposalRefused("只有管理员或分管局负责人可以恢复 / The records administrator or the division head recovers")
    disposal.state, disposal.recovered_by, disposal.recovered_at = "recovered", by.id, now


def purge_due(now: datetime | None = None) -> list[Disposal]:
    """Remove the bytes of disposals past their seven days; each row stays as the tombstone.

    Each one is decided again under a row lock and marked ``purging`` before a byte goes, so a
    recovery, a hold, a new fact or a second purger running at the same moment either wins before
    the mark (and nothing is deleted) or finds the mark (and leaves it alone)."""
    from ..media.service import media_storage
    now = now or utcnow()
    with db.reading() as s:
        ids = [d.id for d in s.execute(select(Disposal).where(
            Disposal.state.in_(("disposed", "purging")), Disposal.recoverable_until <= now)).scalars()]
    purged = []
    store = media_storage()
    for disposal_id in ids:
        with db.reading() as s:
            row = s.get(Disposal, disposal_id)
            state, key = row.state, (row.alg, row.hash)
        if state not in ("disposed", "purging") or (state == "disposed" and not _decide_purge(disposal_id, now)):
            continue
        # The bytes go before the row says so: a failure leaves the row "purging", finished next time.
        store.dispose_original(*key)
        with db.transaction() as s:
            disposal = s.get(Disposal, disposal_id, with_for_update=True)
            disposal.state, disposal.purged_at = "purged", utcnow()
            purged.append(disposal)
    return purged


def _decide_purge(disposal_id, now: datetime) -> bool:
    """Under the row's lock: still due and held by nothing? Then mark it ``purging``."""
    with db.transaction() as s:
        disposal = s.get(Disposal, disposal_id, with_for_update=True)
        if disposal.state != "disposed":
            return False
        key = (disposal.alg, disposal.hash)
        recompute([key])
        state = s.get(RetentionState, key)
        if state is None or state.klass != SIX_MONTHS or state.keep_until is None or state.keep_until > now:
            disposal.state = "recovered"
            disposal.note = (disposal.note + "\n清除前复核：须继续保存 / kept: a rule, a hold or a new record "
                                              "now keeps it").strip()
            return False
        disposal.state = "purging"
        return True
