"""The compliance engine's answers to domain events: re-check the cases a push or an arriving
original touched (see fieldapp/events.py)."""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select

from .. import db, events
from ..models import Case, MediaRef, SyncedRecord
from . import engine


def cases_of_records(record_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The cases the records belong to, directly or through their activity (interruptions name
    only their activity)."""
    s = db.session()
    records = s.execute(select(SyncedRecord.case_id, SyncedRecord.parent_id)
                        .where(SyncedRecord.id.in_(list(record_ids)))).all()
    cases = {case_id for case_id, _ in records if case_id}
    parents = {parent for case_id, parent in records if not case_id and parent}
    if parents:
        cases |= set(s.execute(select(SyncedRecord.case_id).where(SyncedRecord.id.in_(parents),
                                                                  SyncedRecord.case_id.is_not(None))).scalars())
    return cases


def _refresh_locked(case_ids: set[uuid.UUID]) -> None:
    if not case_ids:
        return
    # Lock the cases in id order so two phones syncing one visit evaluate it one after the other
    # instead of colliding on the same new finding rows.
    db.session().execute(select(Case.id).where(Case.id.in_(sorted(case_ids))).order_by(Case.id).with_for_update()).all()
    engine.refresh_cases(case_ids)


@events.revisions_arrived.connect
def recheck_after_push(_sender, record_ids) -> None:
    _refresh_locked(cases_of_records(dict.fromkeys(record_ids)))


@events.original_stored.connect
def recheck_after_original(_sender, alg: str, digest: str) -> None:
    """An original arriving may meet art. 25's storage deadline."""
    cases = db.session().execute(select(SyncedRecord.case_id).join(MediaRef, MediaRef.record_id == SyncedRecord.id)
                                 .where(MediaRef.alg == alg, MediaRef.hash == digest).distinct()).scalars().all()
    _refresh_locked({c for c in cases if c})


@events.footage_linked.connect
def recheck_after_footage(_sender, case_ids) -> None:
    """Footage arriving answers "was it recorded", and its gaps are art. 9's."""
    _refresh_locked(set(case_ids))
