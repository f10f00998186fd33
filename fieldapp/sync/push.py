"""Applying pushed revisions: idempotent, conflict-detecting, signature-verified, per item.

Each item is answered on its own — created, duplicate (already had it), conflict (with the server's
head) or rejected (with a reason) — and a bad item never spoils the others: each runs in a savepoint.
Duplicates are impossible by construction: (record, revision) is unique in the database, a racing
insert that loses gets an IntegrityError, and the loser re-reads and answers duplicate or conflict.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from .. import db
from ..models import ACTIVITY_CHILD_TYPES, Case, CatalogueVersion, MediaRef, Revision, SyncedRecord, utcnow
from .changes import record_change
from .signing import NotCanonicalizable, b64url_decode, canonical_bytes, contains_float, verify

# camera_use: an officer took a body camera (and later returned it), logged on the phone (art. 7).
RECORD_TYPES = frozenset({"case", "activity", *ACTIVITY_CHILD_TYPES, "camera_use"})
# The fields of a revision the phone signs, in the envelope the server re-canonicalises.
SIGNED_FIELDS = ("record_id", "record_type", "revision", "parent", "parent_id", "catalogue_version", "author",
                 "device_id", "device_time", "reason", "payload", "media", "withdrawn_media")
MAX_BATCH = 100
_HASH = re.compile(r"^[0-9a-f]{64}$")
HASH_ALGORITHMS = frozenset({"sha-256"})


@dataclass
class ItemResult:
    record_id: str | None
    revision: int | None
    status: str  # created | duplicate | conflict | rejected
    error: str | None = None
    message: str | None = None
    head: dict | None = None
    missing_media: list = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"record_id": self.record_id, "revision": self.revision, "status": self.status}
        if self.error:
            out["error"], out["message"] = self.error, self.message
        if self.head is not None:
            out["head"] = self.head
        if self.status in ("created", "duplicate"):
            out["missing_media"] = self.missing_media
        return out


class Rejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _uuid(value, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise Rejected("bad_field", f"{name} must be a UUID") from None


INT32_MAX = 2**31 - 1  # the database columns are 32-bit integers


def _int(value, name: str, minimum: int = 0, optional: bool = False):
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= INT32_MAX:
        raise Rejected("bad_field", f"{name} must be an integer from {minimum} to {INT32_MAX}")
    return value


def _media_list(value, name: str) -> list[dict]:
    if not isinstance(value, list) or len(value) > 500:
        raise Rejected("bad_field", f"{name} must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise Rejected("bad_media", f"{name}: each item is an object")
        alg, digest, size, mime = item.get("alg"), item.get("hash"), item.get("size"), item.get("type")
        if alg not in HASH_ALGORITHMS or not isinstance(digest, str) or not _HASH.match(digest):
            raise Rejected("bad_media", f"{name}: hash must be sha-256 hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(mime, str) or len(mime) > 100:
            raise Rejected("bad_media", f"{name}: size and type are required")
        out.append({"alg": alg, "hash": digest, "size": size, "type": mime})
    return out


def validate(item, device_id: str, public_key) -> tuple[dict, bytes, str]:
    """Check an item's shape; return its signed envelope, the signature and the content hash."""
    if not isinstance(item, dict):
        raise Rejected("bad_item", "each item must be a JSON object")
    envelope = {
        "record_id": _uuid(item.get("record_id"), "record_id"),
        "record_type": item.get("record_type"),
        "revision": _int(item.get("revision"), "revision", 1),
        "parent": _int(item.get("parent"), "parent", 1, optional=True),
        "parent_id": None if item.get("parent_id") is None else _uuid(item.get("parent_id"), "parent_id"),
        "catalogue_version": _int(item.get("catalogue_version"), "catalogue_version", 1),
        "author": _uuid(item.get("author"), "author"),
        "device_id": _uuid(item.get("device_id"), "device_id"),
        "device_time": item.get("device_time"),
        "reason": item.get("reason"),
        "payload": item.get("payload"),
        "media": _media_list(item.get("media", []), "media"),
        "withdrawn_media": _media_list(item.get("withdrawn_media", []), "withdrawn_media"),
    }
    if envelope["record_type"] not in RECORD_TYPES:
        raise Rejected("bad_record_type", f"record_type must be one of {sorted(RECORD_TYPES)}")
    if not isinstance(envelope["device_time"], str) or len(envelope["device_time"]) > 40:
        raise Rejected("bad_field", "device_time must be an ISO 8601 string")
    if envelope["reason"] is not None and (not isinstance(envelope["reason"], str) or len(envelope["reason"]) > 2000):
        raise Rejected("bad_field", "reason must be a string of at most 2000 characters")
    if not isinstance(envelope["payload"], dict):
        raise Rejected("bad_field", "payload must be a JSON object")
    if envelope["record_type"] == "camera_use":
        _check_camera_use(envelope["payload"])
    if (envelope["parent"] is None) != (envelope["revision"] == 1) or (
            envelope["parent"] is not None and envelope["parent"] != envelope["revision"] - 1):
        raise Rejected("bad_field", "parent must be revision - 1 (none for revision 1)")
    if envelope["device_id"] != device_id:
        raise Rejected("wrong_device", "the item names another device than the batch")
    if contains_nul(envelope):
        raise Rejected("bad_text", "text may not contain NUL (U+0000) characters")
    if contains_float(envelope):
        raise Rejected("float_not_allowed", "signed records may not contain floating-point numbers")
    signature_text = item.get("signature")
    if not isinstance(signature_text, str) or not signature_text:
        raise Rejected("unsigned", "the revision is not signed")
    try:
        signature = b64url_decode(signature_text)
        canonical = canonical_bytes(envelope)
    except (ValueError, NotCanonicalizable) as exc:
        raise Rejected("bad_signature", f"signature or content cannot be read: {exc}") from None
    if not verify(public_key, signature, canonical):
        raise Rejected("bad_signature", "the signature does not match the content and the device key")
    return envelope, signature, hashlib.sha256(canonical).hexdigest()


def _check_camera_use(payload: dict) -> None:
    """A hand-out must say which camera and from when: the footage linker trusts these times."""
    serial = payload.get("camera_serial")
    if not isinstance(serial, str) or not serial.strip() or len(serial) > 40:
        raise Rejected("bad_field", "camera_use.camera_serial must be the camera's serial (at most 40 characters)")
    taken, returned = parse_time(payload.get("taken_at")), payload.get("returned_at")
    if taken is None:
        raise Rejected("bad_field", "camera_use.taken_at must be an ISO 8601 time with its UTC offset")
    if returned is not None and (parse_time(returned) is None or parse_time(returned) < taken):
        raise Rejected("bad_field", "camera_use.returned_at must be an ISO 8601 time after taken_at")


def _head_json(record: SyncedRecord | None) -> dict | None:
    if record is None:
        return None
    head = db.session().execute(
        select(Revision).where(Revision.record_id == record.id, Revision.revision == record.head_revision)
    ).scalar_one()
    return {"revision": head.revision, "content_hash": head.content_hash, "device_time": head.device_time,
            "payload": head.payload, "reason": head.reason}


def parse_time(text) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text, or None: phones' clocks say anything (year 1, 9999)."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


def contains_nul(value) -> bool:
    """PostgreSQL text cannot hold U+0000; no officer types it, so such content is refused."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


def _existing(record_id: uuid.UUID, revision: int) -> Revision | None:
    return db.session().execute(
        select(Revision).where(Revision.record_id == record_id, Revision.revision == revision)
    ).scalar_one_or_none()


def _answer_for_existing(existing: Revision, content_hash: str, envelope: dict, author: Author) -> ItemResult:
    if existing.content_hash == content_hash:
        return ItemResult(envelope["record_id"], envelope["revision"], "duplicate",
                          missing_media=existing.missing_media)
    return _conflict(envelope, author, db.session().get(SyncedRecord, existing.record_id), "revision_exists",
                     "the server holds other content for this revision")


def _conflict(envelope: dict, author: Author, record: SyncedRecord | None, code: str, message: str) -> ItemResult:
    """A conflict with the server's head, shown only to someone who may read the record; anyone
    else learns only that the id is taken (a record id is a random UUID: only a forger collides)."""
    if record is not None and not author.may_read(record):
        return ItemResult(envelope["record_id"], envelope["revision"], "rejected", "id_taken",
                          "this record id is taken")
    return ItemResult(envelope["record_id"], envelope["revision"], "conflict", code, message, head=_head_json(record))


def _apply_case_proposal(record_id: uuid.UUID, envelope: dict, author: Author) -> None:
    """A case opened on a phone becomes a server case; after that only the lead edits its header."""
    payload = envelope["payload"]
    s = db.session()
    case = s.get(Case, record_id)
    if case is None and envelope["revision"] == 1 and not payload.get("withdrawn"):
        s.add(Case(id=record_id, unit_id=author.unit_id, kind=str(payload.get("kind", ""))[:20],
                   case_number=(payload.get("case_number") or None) and str(payload["case_number"])[:60],
                   party_name=str(payload.get("party_name") or "")[:200] or "?",
                   party_credit_code=(payload.get("credit_code") or None) and str(payload["credit_code"])[:18],
                   party_address=(payload.get("address") or None) and str(payload["address"])[:300],
                   flags=[f for f in payload.get("flags", []) if isinstance(f, str)][:10],
                   linked_case_id=_linked_case(payload.get("linked_case_id"), author),
                   # a person's 居民身份证 number as written (GB 11643's check only warns)
                   party_id_number=(payload.get("party_id_number") or None) and str(payload["party_id_number"])[:18],
                   origin="phone", created_by=author.id))
        record_change("case", record_id, unit_id=author.unit_id)
    elif case is not None and payload.get("withdrawn") and case.origin == "phone":
        case.status = "withdrawn"
        record_change("case", record_id, unit_id=author.unit_id)


def _linked_case(value, author: Author) -> uuid.UUID | None:
    """The inspection a penalty case was opened from, if it is a case of the author's own unit."""
    try:
        case_id = uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
    case = db.session().get(Case, case_id) if case_id else None
    return case.id if case is not None and case.unit_id == author.unit_id else None


@dataclass
class Prepared:
    """An item whose shape and signature were checked: all the CPU work, done without a lock."""
    envelope: dict
    signature: bytes
    content_hash: str

    @cached_property
    def key(self) -> tuple[uuid.UUID, int]:  # looked up many times per item in a batch
        return uuid.UUID(self.envelope["record_id"]), self.envelope["revision"]


def prepare(item, device_id: str, public_key) -> Prepared | ItemResult:
    try:
        return Prepared(*validate(item, device_id, public_key))
    except Rejected as exc:
        record_id = item.get("record_id") if isinstance(item, dict) else None
        revision_no = item.get("revision") if isinstance(item, dict) else None
        return ItemResult(record_id if isinstance(record_id, str) else None,
                          revision_no if isinstance(revision_no, int) and not isinstance(revision_no, bool) else None,
                          "rejected", exc.code, exc.message)


@dataclass
class Author:
    id: uuid.UUID
    unit_id: uuid.UUID
    # Units whose records the pusher may read besides their own (a lead's unit); None means every
    # unit. A conflict shows the server's head only to someone who may read that record.
    readable_units: frozenset[uuid.UUID] | None = frozenset()

    def may_read(self, record: SyncedRecord | None) -> bool:
        if record is None:
            return False
        if record.author_id == self.id:
            return True
        return self.readable_units is None or record.unit_id in self.readable_units


def store_batch(prepared: list[Prepared | ItemResult], author: Author, device_id: uuid.UUID,
                skew_seconds: int | None, skew_threshold: int, known_media: set[str]) -> list[ItemResult]:
    """Store the prepared items in one transaction. Lookups every item needs (published catalogue
    versions, revisions already held) are made once per batch, and new records — most of any push —
    are claimed and written with one statement each for the whole batch; the rest go one by one."""
    s = db.session()
    prepared = _refuse_other_units_cases_and_records(prepared, author)
    prepared = _refuse_unexplained_changes_to_archived_cases(prepared)
    prepared = _refuse_unexplained_withdrawals(prepared)
    published = set(s.execute(select(CatalogueVersion.version)).scalars())
    keys = [p.key for p in prepared if isinstance(p, Prepared)]
    held = {}
    if keys:
        rows = s.execute(select(Revision).where(tuple_(Revision.record_id, Revision.revision).in_(keys))).scalars()
        held = {(r.record_id, r.revision): r for r in rows}
    answered = _store_new_records(
        [p for p in prepared if isinstance(p, Prepared) and p.key not in held and p.key[1] == 1
         and p.envelope["author"] == str(author.id) and p.envelope["catalogue_version"] in published],
        author, device_id, skew_seconds, skew_threshold, known_media)
    results = []
    stored_here: dict[tuple, tuple[Prepared, ItemResult]] = {}
    for item in prepared:
        if isinstance(item, ItemResult):
            results.append(item)
        elif item.key in held:
            results.append(_answer_for_existing(held[item.key], item.content_hash, item.envelope, author))
        elif item.envelope["author"] != str(author.id):
            results.append(ItemResult(item.envelope["record_id"], item.key[1], "rejected", "not_author",
                                      "records are owned by their author; this revision names someone else"))
        elif item.key in stored_here:
            # The same (record, revision) again in this batch: the answer must be true of what the
            # first one stored — duplicate if the content is the same, a conflict if not.
            results.append(_answer_for_repeat(item, *stored_here[item.key], author))
        elif item.key in answered and answered[item.key][0] is item:
            stored_here[item.key] = answered[item.key]
            results.append(answered[item.key][1])
        else:
            result = _store_one(item, author, device_id, skew_seconds, skew_threshold, known_media, published)
            if result.status == "created":
                stored_here[item.key] = (item, result)
            results.append(result)
    _announce_desk_steps([item for item, result in zip(prepared, results, strict=True)
                          if isinstance(item, Prepared) and result.status == "created"], author)
    return results


def _announce_desk_steps(created: list[Prepared], author: Author) -> None:
    """A step made at the desk belongs to its case, not to a visit: the case goes back into the
    feed so every phone of the unit sees it on the case (record ids stay with their authors)."""
    for case_id in sorted({_case_of(p.envelope) for p in created if p.envelope["record_type"] == "step"
                           and not p.envelope["parent_id"]} - {None}):
        record_change("case", case_id, unit_id=author.unit_id)


def _answer_for_repeat(item: Prepared, first: Prepared, first_result: ItemResult, author: Author) -> ItemResult:
    if item.content_hash == first.content_hash:
        return ItemResult(item.envelope["record_id"], item.key[1], "duplicate",
                          missing_media=list(first_result.missing_media))
    return _conflict(item.envelope, author, db.session().get(SyncedRecord, item.key[0]), "revision_exists",
                     "the server holds other content for this revision")


def _refuse_other_units_cases_and_records(prepared: list, author: Author) -> list:
    """Unit isolation on the way in: a record may belong only to a case of its author's unit and
    sit only under a record of that unit, whatever ids the phone names."""
    items = [p for p in prepared if isinstance(p, Prepared)]
    if not items:
        return prepared
    s = db.session()
    parents = {uuid.UUID(p.envelope["parent_id"]) for p in items if p.envelope["parent_id"]}
    cases = {c for c in (_case_of(p.envelope) for p in items) if c}
    foreign_parents = set(s.execute(select(SyncedRecord.id).where(
        SyncedRecord.id.in_(parents), SyncedRecord.unit_id != author.unit_id)).scalars()) if parents else set()
    foreign_cases = set(s.execute(select(Case.id).where(
        Case.id.in_(cases), Case.unit_id != author.unit_id)).scalars()) if cases else set()
    if not foreign_parents and not foreign_cases:
        return prepared

    def refused(p: Prepared) -> ItemResult | None:
        if p.envelope["parent_id"] and uuid.UUID(p.envelope["parent_id"]) in foreign_parents:
            return ItemResult(p.envelope["record_id"], p.envelope["revision"], "rejected", "bad_parent",
                              "the parent record belongs to another unit")
        if _case_of(p.envelope) in foreign_cases:
            return ItemResult(p.envelope["record_id"], p.envelope["revision"], "rejected", "bad_case",
                              "the case belongs to another unit")
        return None

    return [(refused(p) or p) if isinstance(p, Prepared) else p for p in prepared]


def _refuse_unexplained_changes_to_archived_cases(prepared: list) -> list:
    """An archived case is frozen: later changes come only as revisions that say why."""
    candidates = [p for p in prepared if isinstance(p, Prepared) and not (p.envelope["reason"] or "").strip()]
    if not candidates:
        return prepared
    s = db.session()
    parents = {uuid.UUID(p.envelope["parent_id"]) for p in candidates if p.envelope["parent_id"]}
    parent_case = dict(s.execute(select(SyncedRecord.id, SyncedRecord.case_id).where(SyncedRecord.id.in_(parents)))
                       .all()) if parents else {}

    def case_of(p: Prepared):
        return _case_of(p.envelope) or (parent_case.get(uuid.UUID(p.envelope["parent_id"]))
                                        if p.envelope["parent_id"] else None)

    cases = {c for c in map(case_of, candidates) if c}
    archived = set(s.execute(select(Case.id).where(Case.id.in_(cases), Case.archived_at.is_not(None))).scalars()) \
        if cases else set()
    if not archived:
        return prepared
    return [ItemResult(p.envelope["record_id"], p.envelope["revision"], "rejected", "archived_case_needs_reason",
                       "the case is archived: a change needs a reason (revision.reason)")
            if isinstance(p, Prepared) and p in candidates and case_of(p) in archived else p for p in prepared]


def _refuse_unexplained_withdrawals(prepared: list) -> list:
    """Art. 30 (不得删改): a record the server already holds is withdrawn only by a revision that
    says why; it then stays on the timeline, struck through, with who and why."""
    candidates = [p for p in prepared if isinstance(p, Prepared) and p.envelope["payload"].get("withdrawn")
                  and p.key[1] > 1 and not (p.envelope["reason"] or "").strip()]
    if not candidates:
        return prepared
    live = dict(db.session().execute(select(SyncedRecord.id, SyncedRecord.head_revision).where(
        SyncedRecord.id.in_({p.key[0] for p in candidates}), SyncedRecord.withdrawn.is_(False))).all())
    refused = {id(p) for p in candidates if p.key[0] in live and live[p.key[0]] < p.key[1]}
    return [ItemResult(p.envelope["record_id"], p.envelope["revision"], "rejected", "withdrawal_needs_reason",
                       "the record is already on the server: withdrawing it needs a reason (revision.reason)")
            if id(p) in refused else p for p in prepared]


def _store_new_records(candidates: list[Prepared], author: Author, device_id: uuid.UUID, skew_seconds: int | None,
                       skew_threshold: int, known_media: set[str]) -> dict[tuple, tuple[Prepared, ItemResult]]:
    """Claim the ids of new records with one INSERT … ON CONFLICT DO NOTHING RETURNING, then write
    the claimed records' first revisions in one executemany. An id another push holds already is
    left out of the answer and goes through the one-by-one path."""
    if not candidates:
        return {}
    s = db.session()
    now = utcnow()
    by_id = {}
    for item in candidates:
        by_id.setdefault(item.key[0], item)  # the same record twice in a batch: the first claims it
    # One multi-row INSERT: RETURNING names exactly the ids this push now owns. Rows go in id order
    # so that two pushes racing for overlapping records wait on each other in the same order
    # (PostgreSQL would otherwise detect a deadlock and fail one of them).
    rows = [_record_row(by_id[record_id], author, now) for record_id in sorted(by_id)]
    # Executed as "executemany" with RETURNING: SQLAlchemy batches the rows into multi-row INSERTs
    # itself and caches the compiled statement, where .values(rows) compiled anew for every batch.
    claimed = set(s.execute(_claim_record(s), rows).scalars())
    mine = [item for record_id, item in by_id.items() if record_id in claimed]
    if not mine:
        return {}
    missing = {item.key: _missing_media(item.envelope, known_media) for item in mine}
    s.execute(Revision.__table__.insert(), [
        _revision_row(item, author, device_id, now, skew_seconds, skew_threshold, missing[item.key]) for item in mine])
    _insert_media_refs([row for item in mine for row in _media_ref_rows(item, author, known_media)])
    for item in mine:
        if item.envelope["record_type"] == "case":
            _apply_case_proposal(item.key[0], item.envelope, author)
    s.flush()
    return {item.key: (item, ItemResult(item.envelope["record_id"], 1, "created", missing_media=missing[item.key]))
            for item in mine}


def _record_row(item: Prepared, author: Author, now) -> dict:
    envelope = item.envelope
    return {"id": item.key[0], "record_type": envelope["record_type"], "author_id": author.id,
            "unit_id": author.unit_id, "head_revision": 1,
            "parent_id": uuid.UUID(envelope["parent_id"]) if envelope["parent_id"] else None,
            "case_id": _case_of(envelope), "withdrawn": bool(envelope["payload"].get("withdrawn")),
            "created_at": now, "updated_at": now}


def _store_one(item: Prepared, author: Author, device_id: uuid.UUID, skew_seconds: int | None,
               skew_threshold: int, known_media: set[str], published: set[int]) -> ItemResult:
    envelope, content_hash = item.envelope, item.content_hash
    s = db.session()
    rid, rev = item.key
    if envelope["catalogue_version"] not in published:
        return ItemResult(envelope["record_id"], rev, "rejected", "unknown_catalogue_version",
                          f"catalogue version {envelope['catalogue_version']} was never published")

    # Core statements, not ORM objects: this is the hot path of every push, and the unit of work's
    # flushes cost more than the inserts themselves.
    records, revisions = SyncedRecord.__table__, Revision.__table__
    now = utcnow()
    if rev == 1:
        # The common case, a new record: claim its id with one INSERT … ON CONFLICT DO NOTHING. If we
        # got it, nobody else can hold this record's revisions, so the revision goes straight in.
        claimed = s.execute(_claim_record(s), _record_row(item, author, now)).first()
        if claimed is not None:
            missing = _missing_media(envelope, known_media)
            s.execute(revisions.insert(), _revision_row(item, author, device_id, now, skew_seconds, skew_threshold, missing))
            _insert_media_refs(_media_ref_rows(item, author, known_media))
            if envelope["record_type"] == "case":
                _apply_case_proposal(rid, envelope, author)
                s.flush()
            return ItemResult(envelope["record_id"], rev, "created", missing_media=missing)
    savepoint = s.begin_nested()
    try:
        record = s.execute(select(records.c.author_id, records.c.record_type, records.c.head_revision)
                           .where(records.c.id == rid).with_for_update()).first()
        if record is None:  # revision 1 would have claimed it above: this one builds on nothing we hold
            savepoint.rollback()
            return ItemResult(envelope["record_id"], rev, "conflict", "parent_missing",
                              "the server does not have the revision this one builds on", head=None)
        else:
            # With the record locked, look again: a concurrent push of this very revision may have
            # committed between our first look and the lock.
            existing = _existing(rid, rev)
            if existing is not None:
                savepoint.rollback()
                return _answer_for_existing(existing, content_hash, envelope, author)
            if record.author_id != author.id or record.record_type != envelope["record_type"]:
                savepoint.rollback()
                return ItemResult(envelope["record_id"], rev, "rejected", "not_owner",
                                  "this record belongs to another author or has another type")
            if envelope["parent"] != record.head_revision:
                answer = _conflict(envelope, author, s.get(SyncedRecord, rid), "stale_parent",
                                   "the server's head is another revision; resolve on top of it")
                savepoint.rollback()
                return answer
            s.execute(records.update().where(records.c.id == rid).values(
                head_revision=rev, withdrawn=bool(envelope["payload"].get("withdrawn")), updated_at=now))
        missing = _missing_media(envelope, known_media)
        s.execute(revisions.insert(), _revision_row(item, author, device_id, now, skew_seconds, skew_threshold, missing))
        _insert_media_refs(_media_ref_rows(item, author, known_media))
        if envelope["record_type"] == "case":
            _apply_case_proposal(rid, envelope, author)
            s.flush()
        savepoint.commit()
    except IntegrityError:
        # Another request stored this revision (or created this record) first: answer from its row.
        savepoint.rollback()
        existing = _existing(rid, rev)
        if existing is not None:
            return _answer_for_existing(existing, content_hash, envelope, author)
        return _conflict(envelope, author, s.get(SyncedRecord, rid), "stale_parent",
                         "the record changed while this revision was applied")
    return ItemResult(envelope["record_id"], rev, "created", missing_media=missing)


def _claim_record(s):
    records = SyncedRecord.__table__
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(records).on_conflict_do_nothing(index_elements=[records.c.id]).returning(records.c.id)


def _media_ref_rows(item: Prepared, author: Author, known_media: set[str]) -> list[dict]:
    """A revision's live media (withdrawn ones are no longer part of the record)."""
    withdrawn = {(m["alg"], m["hash"]) for m in item.envelope["withdrawn_media"]}
    pairs = dict.fromkeys((m["alg"], m["hash"]) for m in item.envelope["media"])
    return [{"record_id": item.key[0], "revision": item.key[1], "alg": alg, "hash": digest,
             "unit_id": author.unit_id, "author_id": author.id, "original_stored": digest in known_media}
            for alg, digest in pairs if (alg, digest) not in withdrawn]


def _insert_media_refs(rows: list[dict]) -> None:
    if rows:
        db.session().execute(MediaRef.__table__.insert(), rows)


def media_of(prepared: list) -> list[tuple[str, str]]:
    """Every (alg, hash) the valid items of a batch reference."""
    return list(dict.fromkeys((m["alg"], m["hash"]) for p in prepared if isinstance(p, Prepared)
                              for m in p.envelope["media"]))


def _missing_media(envelope: dict, known_media: set[str]) -> list[str]:
    withdrawn = {m["hash"] for m in envelope["withdrawn_media"]}
    return sorted({m["hash"] for m in envelope["media"]} - withdrawn - known_media)


def _revision_row(item: Prepared, author: Author, device_id: uuid.UUID, now, skew_seconds: int | None,
                  skew_threshold: int, missing: list[str]) -> dict:
    """The revisions row, as parameters apart from the statement: it is compiled once and cached."""
    envelope = item.envelope
    return dict(
        record_id=item.key[0], revision=item.key[1], parent=envelope["parent"], record_type=envelope["record_type"],
        parent_id=uuid.UUID(envelope["parent_id"]) if envelope["parent_id"] else None,
        catalogue_version=envelope["catalogue_version"], author_id=author.id, device_id=device_id,
        device_time=envelope["device_time"], device_time_parsed=parse_time(envelope["device_time"]),
        received_at=now, clock_skew_seconds=skew_seconds,
        clock_skew_flag=skew_seconds is not None and abs(skew_seconds) > skew_threshold,
        reason=envelope["reason"], payload=envelope["payload"], media=envelope["media"],
        withdrawn_media=envelope["withdrawn_media"], content_hash=item.content_hash, signature=item.signature,
        missing_media=missing)


def _case_of(envelope: dict) -> uuid.UUID | None:
    payload = envelope["payload"]
    if envelope["record_type"] == "case":
        return uuid.UUID(envelope["record_id"])
    candidate = payload.get("case_id") or (envelope["parent_id"] if envelope["record_type"] == "activity" else None)
    try:
        return uuid.UUID(str(candidate)) if candidate else None
    except ValueError:
        return None
