"""Footage routes: the phone's camera list and footage state, the collection stations' API, the
camera register, the unlinked-footage queue and playing a segment. Thin: the rules are in
:mod:`.register`, :mod:`.ingest`, :mod:`.linker` and :mod:`.status`."""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..access import allow, require_unit, visible_unit_ids
from ..compliance.facts import parse_time
from ..media import service as media_service
from ..media import storage as media_store
from ..media.service import MediaRefused, Uploader, media_storage
from ..records import retention, secrecy
from ..records import service as audit
from ..models import Camera, CameraHandout, FootageLink, FootageSegment, OriginalAccess, Role, Station, SyncedRecord, Unit, User, utcnow
from ..review import original_links
from ..review.roles import REVIEWERS
from ..security import csrf
from . import labels, linker, previews, register, station_api, status
from .register import RegisterError

bp = Blueprint("footage", __name__)
bp.add_app_template_global(labels.footage_flag, "footage_flag")

REGISTER_KEEPERS = (Role.RECORDS_ADMIN, Role.ADMIN)
LINKERS = (Role.LEAD, Role.RECORDS_ADMIN)
VISITS_DAYS = 60
# Reviewing one's own unit's footage is a standing reason to open it (as for phone originals).
STANDING_REASON = "own_unit_review"


# ----------------------------------------------------------------------------------- phone API

@bp.get("/api/v1/cameras")
@allow(signed_in=True)
def unit_cameras():
    """The unit's body cameras by serial and who carries each now: the phone caches this to offer
    cameras when a visit starts and to log taking and returning one, without a network."""
    cameras = [c for c in register.unit_cameras(current_user.unit_id) if c.active]
    carried = register.carried_now([c.id for c in cameras])
    return jsonify(cameras=[{
        "serial": c.serial, "label": c.label,
        "carried_by": ({"user_id": str(carried[c.id][1].id), "name": carried[c.id][1].name,
                        "cert_no": carried[c.id][1].cert_no, "since": carried[c.id][0].taken_at.isoformat()}
                       if c.id in carried else None)} for c in cameras])


@bp.get("/api/v1/footage/visits")
@allow(signed_in=True)
def my_visits():
    """The caller's own visits of the last 60 days: footage linked, still waiting, or none expected."""
    since = utcnow() - timedelta(days=VISITS_DAYS)
    return jsonify(visits=status.officer_visits(current_user.id, current_user.unit_id, since))


# ----------------------------------------------------------------------------------- station API

@bp.errorhandler(MediaRefused)
def _refused(exc: MediaRefused):
    return jsonify(exc.to_json()), exc.status


def _raise_station_chunk_limit():
    """A station's chunk may be larger than the app-wide request limit, as a phone's may: raised
    before anything reads the body, and only for a valid station token."""
    if request.endpoint != "footage.station_chunk":
        return
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and register.station_for_token(header[7:].strip()) is not None:
        request.max_content_length = media_service.limits().chunk_max_bytes


@bp.record_once
def _install_body_limit(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _raise_station_chunk_limit)


def _uploader() -> Uploader:
    return Uploader(station_id=g.station.id)


@bp.post("/api/v1/station/uploads")
@allow(station=True)
@csrf.exempt
def station_begin():
    """Begin (or find again) a resumable upload, exactly as a phone does: {alg, hash, size, type}."""
    answer = media_service.begin(_uploader(), request.get_json(silent=True))
    return jsonify(answer), (200 if answer["status"] == "stored" else 201)


@bp.get("/api/v1/station/uploads/<uuid:upload_id>")
@allow(station=True)
def station_offset(upload_id):
    return jsonify(media_service.offset(_uploader(), upload_id))


@bp.put("/api/v1/station/uploads/<uuid:upload_id>")
@allow(station=True)
@csrf.exempt
def station_chunk(upload_id):
    at, length = media_service.chunk_position(request.args.get("offset"), request.content_length)
    return jsonify(media_service.append(_uploader(), upload_id, at, request.stream, length))


@bp.post("/api/v1/station/uploads/<uuid:upload_id>/complete")
@allow(station=True)
@csrf.exempt
def station_complete(upload_id):
    return jsonify(media_service.complete(_uploader(), upload_id))


@bp.post("/api/v1/station/segments")
@allow(station=True)
@csrf.exempt
def station_segments():
    """Register files whose originals were uploaded: {"files": [manifest rows, each with its sha256]}.
    Answered per file with the import report's lines; the same files again change nothing."""
    report = station_api.register_segments(g.station, request.get_json(silent=True))
    previews.make_previews(report.stored)  # after storing and linking: a failure here loses nothing
    return jsonify(report.to_json()), 200


# ----------------------------------------------------------------------------------- register

def _keeper_units() -> list[Unit]:
    s = db.session()
    if current_user.has_role(Role.ADMIN):
        return list(s.execute(select(Unit).order_by(Unit.code)).scalars())
    return [current_user.unit]


def _unit_from_form() -> uuid.UUID:
    try:
        unit_id = uuid.UUID(request.form.get("unit_id", ""))
    except ValueError:
        unit_id = current_user.unit_id
    if unit_id not in {u.id for u in _keeper_units()}:
        abort(404)
    return unit_id


@bp.get("/footage/cameras")
@allow(*REGISTER_KEEPERS)
def cameras_page():
    s = db.session()
    units = _keeper_units()
    unit_ids = [u.id for u in units]
    cameras = list(s.execute(select(Camera).where(Camera.unit_id.in_(unit_ids)).order_by(Camera.serial)).scalars())
    handouts = s.execute(select(CameraHandout, Camera, User).join(Camera, Camera.id == CameraHandout.camera_id)
                         .join(User, User.id == CameraHandout.user_id).where(Camera.unit_id.in_(unit_ids))
                         .order_by(CameraHandout.taken_at.desc()).limit(200)).all()
    officers = list(s.execute(select(User).where(User.unit_id.in_(unit_ids), User.active.is_(True))
                              .order_by(User.name)).scalars())
    stations = list(s.execute(select(Station).where(Station.unit_id.in_(unit_ids))
                              .order_by(Station.created_at)).scalars()) if current_user.has_role(Role.ADMIN) else []
    return render_template("footage/cameras.html", units=units, cameras=cameras, handouts=handouts,
                           officers=officers, stations=stations, carried=register.carried_now([c.id for c in cameras]),
                           unregistered=register.unregistered_phone_handouts(unit_ids))


def _back(message: str | None = None, error: str | None = None):
    if message:
        flash(message, "ok")
    if error:
        flash(error, "error")
    return redirect(url_for("footage.cameras_page"), 303)


@bp.post("/footage/cameras")
@allow(*REGISTER_KEEPERS)
def camera_add():
    try:
        with db.transaction():
            camera = register.add_camera(_unit_from_form(), request.form.get("serial", ""),
                                         request.form.get("label", ""), current_user.id)
    except RegisterError as exc:
        return _back(error=exc.message)
    with db.transaction():
        linker.relink(camera.unit_id)  # footage that arrived before its camera was registered
    return _back(_("Camera %(serial)s registered.", serial=camera.serial))


def _camera_or_404(camera_id) -> Camera:
    camera = db.session().get(Camera, camera_id)
    if camera is None or camera.unit_id not in {u.id for u in _keeper_units()}:
        abort(404)
    return camera


@bp.post("/footage/handouts")
@allow(*REGISTER_KEEPERS)
def handout_add():
    try:
        camera = _camera_or_404(uuid.UUID(request.form.get("camera_id", "")))
        user = db.session().get(User, uuid.UUID(request.form.get("user_id", "")))
    except ValueError:
        return _back(error=_("Choose a camera and an officer."))
    taken = parse_time(request.form.get("taken_at", ""))
    returned_text = request.form.get("returned_at", "").strip()
    returned = parse_time(returned_text) if returned_text else None
    if user is None or taken is None or (returned_text and returned is None):
        return _back(error=_("Give the officer and the times with their UTC offset."))
    try:
        with db.transaction():
            register.hand_out(camera, user, taken, returned, current_user.id)
            cases = linker.relink(camera.unit_id, taken, returned)
    except RegisterError as exc:
        return _back(error=exc.message)
    linker.announce(cases)
    return _back(_("Hand-out of %(serial)s to %(name)s recorded.", serial=camera.serial, name=user.name))


@bp.post("/footage/handouts/<uuid:handout_id>/return")
@allow(*REGISTER_KEEPERS)
def handout_return(handout_id):
    s = db.session()
    handout = s.get(CameraHandout, handout_id)
    if handout is None:
        abort(404)
    camera = _camera_or_404(handout.camera_id)
    returned = parse_time(request.form.get("returned_at", "")) or utcnow()
    try:
        with db.transaction():
            register.return_camera(handout, returned)
            # Everything after the hand-out began may have been linked through it: no end.
            cases = linker.relink(camera.unit_id, handout.taken_at, None)
    except RegisterError as exc:
        return _back(error=exc.message)
    linker.announce(cases)
    return _back(_("Return of %(serial)s recorded.", serial=camera.serial))


@bp.post("/footage/stations")
@allow(Role.ADMIN)
def station_issue():
    try:
        with db.transaction():
            station, token = register.issue_station(_unit_from_form(), request.form.get("name", ""),
                                                    request.form.get("part_of_storage") == "on", current_user.id)
    except RegisterError as exc:
        return _back(error=exc.message)
    # The token is shown once, on this answer only: it is stored as a hash.
    return render_template("footage/station_token.html", station=station, token=token), 201


@bp.post("/footage/stations/<uuid:station_id>/revoke")
@allow(Role.ADMIN)
def station_revoke(station_id):
    with db.transaction() as s:
        station = s.get(Station, station_id)
        if station is None:
            abort(404)
        register.revoke_station(station, current_user.id)
    return _back(_("Station %(name)s revoked: its token is refused from now on.", name=station.name))


# ----------------------------------------------------------------------------------- leads

@bp.get("/footage/queue")
@allow(*REVIEWERS)
def queue_page():
    found = status.queue(visible_unit_ids(current_user))
    return render_template("footage/queue.html", queue=found, may_link=current_user.has_role(*LINKERS))


def _segment_or_404(segment_id) -> FootageSegment:
    segment = db.session().get(FootageSegment, segment_id)
    if segment is None:
        abort(404)
    require_unit(current_user, segment.unit_id)
    if not secrecy.may_see_object(current_user, segment.alg, segment.hash):
        abort(404)
    if retention.is_hidden(segment.alg, segment.hash):  # disposed (art. 26)
        abort(410)
    return segment


@bp.post("/footage/segments/<uuid:segment_id>/link")
@allow(*LINKERS)
def segment_link(segment_id):
    """One tap: link an unlinked segment to the activity the lead chose from the suggestions."""
    segment = _segment_or_404(segment_id)
    try:
        activity = db.session().get(SyncedRecord, uuid.UUID(request.form.get("activity_id", "")))
    except ValueError:
        activity = None
    if activity is None or activity.record_type != "activity" or activity.unit_id != segment.unit_id:
        flash(_("Choose a visit of the same unit."), "error")
        return redirect(url_for("footage.queue_page"), 303)
    with db.transaction() as s:
        if s.get(FootageLink, (segment.id, activity.id)) is None:
            s.add(FootageLink(segment_id=segment.id, activity_id=activity.id, case_id=activity.case_id,
                              basis=linker.LEAD, linked_by=current_user.id))
    linker.announce({activity.case_id} - {None})
    flash(_("Footage %(name)s linked.", name=segment.file_name), "ok")
    return redirect(url_for("footage.queue_page"), 303)


@bp.get("/footage/segments/<uuid:segment_id>/<any(poster, preview):variant>")
@allow(*REVIEWERS)
def segment_derivative(segment_id, variant):
    segment = _segment_or_404(segment_id)
    if variant not in (segment.previews or []):
        abort(404)
    try:
        data = media_storage().get_derivative(segment.alg, segment.hash, variant)
    except media_store.MediaNotFound:
        abort(404)
    audit.accessed("preview", f"{segment.alg}:{segment.hash}", variant=variant, segment=str(segment.id))
    return data, 200, {"Content-Type": "image/jpeg" if variant == "poster" else "video/mp4",
                       "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}


@bp.post("/footage/segments/<uuid:segment_id>/open")
@allow(*REVIEWERS)
def segment_open(segment_id):
    """Playing footage opens an original: registered (who, which, when, why) before a byte is sent,
    then a short-lived link that answers byte ranges, so the player seeks without registering again."""
    segment = _segment_or_404(segment_id)
    if not (segment.unit_id == current_user.unit_id and current_user.has_role(Role.LEAD, Role.RECORDS_ADMIN)):
        # Art. 29: anyone but the collecting unit's lead and records administrator views footage
        # through an approved grant, as a marked copy — never the original.
        return jsonify(error="grant_required", message=_(
            "Only the collecting unit's lead and records administrator open its originals. To view or copy this "
            "recording, ask that unit's records administrator to register your request.")), 403
    with db.transaction() as s:
        access = OriginalAccess(user_id=current_user.id, alg=segment.alg, hash=segment.hash, unit_id=segment.unit_id,
                                reason=STANDING_REASON)
        s.add(access)
    link = original_links.issue(current_user.id, segment.alg, segment.hash, access.id)
    return jsonify(url=url_for("review.original_bytes", alg=segment.alg, digest=segment.hash, token=link))
