"""Retention's answers to domain events: when records arrive, an original is stored or footage is
linked, the classes of the objects concerned are worked out again (art. 26: the class follows the
facts). The store's object-lock mirror is brought up to date by ``flask retention-review``, which
also recomputes everything — what a failed handler missed is caught up there."""
from __future__ import annotations

from .. import events
from . import retention


@events.revisions_arrived.connect
def classify_after_push(_sender, record_ids) -> None:
    retention.recompute(retention.keys_of_records(record_ids))


@events.original_stored.connect
def classify_stored_original(_sender, alg, digest) -> None:
    retention.recompute([(alg, digest)])


@events.footage_linked.connect
def classify_linked_footage(_sender, case_ids) -> None:
    retention.recompute(retention.keys_of_cases(case_ids))


@events.footage_stored.connect
def classify_stored_footage(_sender, segment_ids) -> None:
    retention.recompute(retention.keys_of_segments(segment_ids))


@events.case_changed.connect
def classify_changed_case(_sender, case_ids) -> None:
    retention.recompute(retention.keys_of_cases(case_ids))
