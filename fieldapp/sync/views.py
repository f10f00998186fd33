"""The phone's API: session probe, catalogue, cases, device registration, heartbeat, push, pull."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import abort, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select, tuple_

from .. import db, events
from ..access import allow, visible_unit_ids
from ..backup import epoch
from ..models import Case, Device, Media, MediaRef, Revision, Role, SyncedRecord, User, UserRole
from ..compliance import deadline_source
from ..rules import publication
from . import bp
from . import devices as device_service
from . import openapi
from ..media.service import stored_originals
from ..ops import metrics
from ..review.roles import REVIEWERS
from . import feed
from .pull import assigned_case_ids, pull_page
from .push import MAX_BATCH, Author, media_of, prepare, store_batch
from .signing import load_public_key


@bp.get("/session")
@allow(public=True)
def session_state():
    """Who is signed in, and a fresh CSRF token. The phone also uses it to probe for the server:
    ``navigator.onLine`` says only that some network exists, not that ours answers."""
    if not current_user.is_authenticated:
        return jsonify(authenticated=False, csrf_token=generate_csrf())
    return jsonify(
        authenticated=True,
        csrf_token=generate_csrf(),
        # Which history the database continues (a restore starts a new epoch), and for how many days
        # after their acknowledgement phones offer revisions again when it changes (capture/epoch.js).
        server_epoch=epoch.current(),
        resend_window_days=current_app.config["FIELDAPP_SETTINGS"].resend_window_days,
        user={
            "id": str(current_user.id),
            "name": current_user.name,
            "cert_no": current_user.cert_no,
            "unit": {"id": str(current_user.unit.id), "code": current_user.unit.code,
                     "name": current_user.unit.name},
            "roles": sorted(r.value for r in current_user.roles),
        },
    )


@bp.get("/openapi.json", endpoint="openapi")
@allow(public=True)
def openapi_document():
    """The API described for clients and tests (OpenAPI 3)."""
    return jsonify(openapi.spec_json())


@bp.get("/catalogue")
@allow(signed_in=True)
def catalogue_latest():
    current = publication.latest()
    if current is None or current.content.get("builtin_version") is None:
        with db.write_transaction():
            current = publication.ensure_published()
    return jsonify(current.content)


@bp.get("/catalogue/<int:version>")
@allow(signed_in=True)
def catalogue_version(version: int):
    row = publication.get_version(version) if version <= 2**31 - 1 else None
    if row is None:
        abort(404)
    return jsonify(row.content)


def desk_steps_of(case_ids) -> dict:
    """case id → the steps made at the desk for it (step type, time, who), oldest first."""
    ids = list(case_ids)
    if not ids:
        return {}
    rows = db.session().execute(
        select(SyncedRecord.id, SyncedRecord.case_id, Revision.payload, User.name)
        .join(Revision, (Revision.record_id == SyncedRecord.id) & (Revision.revision == SyncedRecord.head_revision))
        .join(User, User.id == SyncedRecord.author_id)
        .where(SyncedRecord.case_id.in_(ids), SyncedRecord.record_type == "step", SyncedRecord.parent_id.is_(None),
               SyncedRecord.withdrawn.is_(False))).all()
    out: dict = {}
    for record_id, case_id, payload, author in sorted(rows, key=lambda r: str((r[2] or {}).get("at") or "")):
        payload = payload or {}
        out.setdefault(case_id, []).append({"id": str(record_id), "step_type": payload.get("step_type"),
                                            "at": payload.get("at"), "author": author})
    return out


def case_json(case: Case, deadlines: list | None = None, desk: list | None = None) -> dict:
    return {
        "id": str(case.id), "unit_id": str(case.unit_id), "kind": case.kind, "case_number": case.case_number,
        "party_name": case.party_name, "party_credit_code": case.party_credit_code,
        "party_address": case.party_address, "flags": case.flags or [], "status": case.status,
        "origin": case.origin, "updated_at": case.updated_at.isoformat(),
        "linked_case_id": str(case.linked_case_id) if case.linked_case_id else None,
        # The case's running deadlines, so the phone warns of them offline from its last pull.
        "deadlines": deadlines or [],
        # Steps made at the desk (by anyone of the unit), so every phone sees how the case stands.
        "desk_steps": desk or [],
    }


@bp.get("/cases")
@allow(signed_in=True)
def open_cases():
    """The open cases of the units the user may see (their own unit for officers and leads)."""
    stmt = select(Case).where(Case.status == "open").order_by(Case.created_at.desc()).limit(500)
    visible = visible_unit_ids(current_user)
    if visible is not None:
        stmt = stmt.where(Case.unit_id.in_(visible))
    found = db.session().execute(stmt).scalars().all()
    running = deadline_source.running_deadlines(c.id for c in found)
    desk = desk_steps_of(c.id for c in found)
    return jsonify(cases=[case_json(c, running.get(c.id), desk.get(c.id)) for c in found])


@bp.get("/officers")
@allow(signed_in=True)
def unit_officers():
    """The enrolled officers of the caller's own unit (active users with the officer role), which
    the phone caches to pick who is present on site without a network. Never another unit's."""
    stmt = (select(User).join(UserRole, UserRole.user_id == User.id)
            .where(User.unit_id == current_user.unit_id, User.active.is_(True), UserRole.role == Role.OFFICER.value))
    # Sorted here, not by the database: the same order on SQLite and on PostgreSQL whatever its collation.
    users = sorted(db.session().execute(stmt).scalars().unique(), key=lambda u: (u.name, u.cert_no))
    return jsonify(officers=[{"id": str(u.id), "name": u.name, "cert_no": u.cert_no, "unit_name": u.unit.name}
                             for u in users])


# ---- devices, push and pull ------------------------------------------------------------------


def api_error(code: str, message: str, status: int):
    return jsonify(error=code, message=message), status


def _json_object():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _skew_seconds(sent_at) -> int | None:
    """Server receipt time minus the phone's clock at sending; None when the phone did not say."""
    if not isinstance(sent_at, str):
        return None
    try:
        phone = datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if phone.tzinfo is None:
        return None
    skew = round((datetime.now(UTC) - phone).total_seconds())
    # A clock reset to year 1 or 9999 is still a phone with evidence on it; keep the figure storable.
    return max(-(2**31 - 1), min(2**31 - 1, skew))


@bp.post("/devices")
@allow(signed_in=True)
def register_device():
    body = _json_object()
    if body is None:
        return api_error("bad_request", "expected a JSON object", 400)
    try:
        with db.transaction():
            device, created = device_service.register(
                current_user, body.get("device_id"), body.get("public_key"), str(body.get("label") or ""),
                request.user_agent.string)
    except device_service.DeviceError as exc:
        return api_error(exc.code, exc.message, exc.status)
    return jsonify(device_id=str(device.id), registered_at=device.registered_at.isoformat()), (201 if created else 200)


@bp.post("/devices/<uuid:device_id>/heartbeat")
@allow(signed_in=True)
def heartbeat(device_id):
    body = _json_object()
    if body is None:
        return api_error("bad_request", "expected a JSON object", 400)
    try:
        with db.transaction():
            device = device_service.usable_device(current_user, device_id)
            device_service.apply_heartbeat(device, device_service.parse_heartbeat(body),
                                           _skew_seconds(body.get("sent_at")))
    except device_service.DeviceError as exc:
        return api_error(exc.code, exc.message, exc.status)
    return jsonify(ok=True, server_time=datetime.now(UTC).isoformat())


@bp.post("/sync/push")
@allow(signed_in=True)
def push():
    body = _json_object()
    if body is None or not isinstance(body.get("items"), list):
        return api_error("bad_request", "expected {device_id, items: [...]} as JSON", 400)
    if len(body["items"]) > MAX_BATCH:
        return api_error("batch_too_large", f"at most {MAX_BATCH} items per batch", 413)
    settings = current_app.config["FIELDAPP_SETTINGS"]
    skew = _skew_seconds(body.get("sent_at"))
    s = db.session()
    try:
        device = device_service.usable_device(current_user, body.get("device_id"))
    except device_service.DeviceError as exc:
        s.rollback()
        return api_error(exc.code, exc.message, exc.status)
    device_id, public_key = device.id, load_public_key(device.public_key)
    author = Author(current_user.id, current_user.unit_id, _readable_units(current_user))
    # Signature checks are the costly part and need no database: do them outside any transaction,
    # so that on SQLite the single write lock is held only while rows are written.
    s.commit()
    prepared = [prepare(item, str(device_id), public_key) for item in body["items"]]
    known_media = {digest for _alg, digest in stored_originals(media_of(prepared))}
    results = store_batch(prepared, author, device_id, skew, settings.clock_skew_seconds, known_media)
    for result in results:  # a duplicate's list was taken at first receipt: answer with today's
        result.missing_media = [h for h in result.missing_media if h not in known_media]
    # An original completed by another request while this push ran (PostgreSQL): its references
    # made here must not stay "pending" for ever.
    refs = MediaRef.__table__
    s.execute(refs.update().where(refs.c.original_stored.is_(False),
                                  tuple_(refs.c.alg, refs.c.hash).in_(
                                      select(Media.alg, Media.hash).where(Media.original_at.is_not(None),
                                                                          tuple_(Media.alg, Media.hash).in_(
                                                                              media_of(prepared) or [("", "")]))))
              .values(original_stored=True))
    device = s.get(Device, device_id)
    device_service.apply_heartbeat(device, device_service.parse_heartbeat(body.get("heartbeat")), skew)
    server_epoch = epoch.current()  # the history these answers were written in
    s.commit()
    metrics.count_push(results)
    created = [uuid.UUID(r.record_id) for r in results if r.status == "created"]
    if created:  # review, compliance and whatever follows subscribe; the protocol knows none of them
        events.publish(events.revisions_arrived, record_ids=created)
    return jsonify(server_time=datetime.now(UTC).isoformat(), clock_skew_seconds=skew,
                   server_epoch=server_epoch, results=[r.to_json() for r in results])


def _readable_units(user):
    """Units whose records this user may read beside their own: a reviewer's units, else none."""
    return visible_unit_ids(user) if user.roles & frozenset(REVIEWERS) else frozenset()


@bp.get("/sync/pull")
@allow(signed_in=True)
def pull():
    """What changed on the server since the phone's cursor: cases of its units, the cases assigned
    to the user, and review decisions on the user's activities. Cursor 0 (or a cursor from before
    feed positions) starts a full resync, served in pages."""
    try:
        cursor = feed.parse_cursor(request.args.get("cursor"))
    except feed.BadCursor as exc:
        return api_error("bad_cursor", str(exc), 400)
    s = db.session()
    page = pull_page(s, current_user, cursor)
    assigned = assigned_case_ids(s, current_user)
    latest_catalogue = publication.latest()
    running = deadline_source.running_deadlines(c.id for c in page.cases)
    desk = desk_steps_of(c.id for c in page.cases)
    return jsonify(cursor=page.cursor.text(), more=page.more, full=page.full, resync=page.resync,
                   resync_complete=page.resync_complete, server_epoch=epoch.current(),
                   catalogue_version=latest_catalogue.version if latest_catalogue else None,
                   cases=[{**case_json(c, running.get(c.id), desk.get(c.id)), "assigned_to_me": c.id in assigned}
                          for c in page.cases],
                   assignments=sorted(str(c) for c in assigned),
                   comments=[{"id": e.id, "record_id": str(e.record_id), "action": e.action, "comment": e.comment,
                              "at": e.at.isoformat()} for e in page.reviews])
