"""Review pages (server-rendered, phone-first): records and the media files they show."""
from __future__ import annotations

import uuid

from flask import Response, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..access import allow, require_unit, visible_unit_ids
from ..media import storage as media_store
from ..media.service import first_referrer, media_storage
from ..records import retention, secrecy
from ..records import service as audit
from ..models import ACTIVITY_CHILD_TYPES, FootageSegment, Media, OriginalAccess, Revision, Role, SyncedRecord, User
from . import bp, download_names, original_links, ranges
from .media_state import media_of_head, pending_originals_by_record
from .roles import REVIEWERS

VARIANTS = frozenset({"thumb", "preview", "original"})
# Opening an original for review of one's own unit is a standing reason (art. 29's register
# starts here); any other reason is given with the request.
STANDING_REASON = "own_unit_review"


def _visible(stmt, unit_column):
    units = visible_unit_ids(current_user)
    return stmt if units is None else stmt.where(unit_column.in_(units))


@bp.get("/records")
@allow(*REVIEWERS)
def records_page():
    """The latest synced activities and steps of the units the reviewer may see."""
    stmt = _visible(select(SyncedRecord, User).join(User, User.id == SyncedRecord.author_id)
                    .where(SyncedRecord.record_type.in_(("activity", *ACTIVITY_CHILD_TYPES)))
                    .order_by(SyncedRecord.updated_at.desc()).limit(200), SyncedRecord.unit_id)
    rows = db.session().execute(stmt).all()
    pending = pending_originals_by_record([r.id for r, _ in rows])
    return render_template("review/records.html", rows=rows, pending=pending)


@bp.get("/records/<uuid:record_id>")
@allow(*REVIEWERS)
def record_page(record_id: uuid.UUID):
    s = db.session()
    record = s.get(SyncedRecord, record_id)
    if record is None:
        abort(404)
    require_unit(current_user, record.unit_id)
    secrecy.require_record(current_user, record)
    head = s.execute(select(Revision).where(Revision.record_id == record.id,
                                            Revision.revision == record.head_revision)).scalar_one()
    children = s.execute(select(SyncedRecord).where(SyncedRecord.parent_id == record.id)
                         .order_by(SyncedRecord.created_at)).scalars().all()
    author = s.get(User, record.author_id)
    return render_template("review/record.html", record=record, head=head, author=author,
                           media=media_of_head(record), children=children,
                           child_media={c.id: media_of_head(c) for c in children})


def _collecting_unit(alg: str, digest: str):
    """The unit of the officer who captured the file (see media.service.first_referrer), if the
    reviewer may see it; None otherwise. A hash named later by another unit grants that unit nothing."""
    # Body-camera footage belongs to its segment's unit, whatever a phone's record names later: a
    # hash named in another unit's record grants that unit nothing.
    unit_id = db.session().execute(select(FootageSegment.unit_id).where(FootageSegment.alg == alg,
                                                                         FootageSegment.hash == digest)).scalar()
    if unit_id is None:
        first = first_referrer(alg, digest)
        unit_id = first.unit_id if first is not None else None
    if unit_id is None:
        return None
    units = visible_unit_ids(current_user)
    if not (units is None or unit_id in units) or not secrecy.may_see_object(current_user, alg, digest):
        return None
    if retention.is_hidden(alg, digest):  # disposed (art. 26): offered to nobody, by any route
        abort(410)
    return unit_id


@bp.get("/media/<alg>/<digest>/<variant>")
@allow(*REVIEWERS)
def media_file(alg: str, digest: str, variant: str):
    """A media file of a record the reviewer may see: a preview (the server's, else the phone's),
    a thumbnail, or the original as stored. Others' media answer 404, like missing ones."""
    try:
        media_store.validate_digest(alg, digest)
    except ValueError:
        abort(404)
    collecting_unit = _collecting_unit(alg, digest) if variant in VARIANTS else None
    if collecting_unit is None:
        abort(404)
    media = db.session().get(Media, (alg, digest))
    if media is None:
        abort(404)
    store = media_storage()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if variant == "original":
        # Opening an original is registered (art. 29), so it is never a side effect of a GET that
        # any site can trigger: this page only offers the button that POSTs the request.
        if media.original_at is None:
            abort(404)
        return _ask_to_open(alg, digest, media, collecting_unit)
    names = [variant, "phone-preview"] if variant in (media.previews or []) else ["phone-preview"]
    for name in names:
        if name == "phone-preview" and media.phone_preview_at is None:
            continue
        try:
            data = store.get_derivative(alg, digest, name)
        except media_store.MediaNotFound:
            continue
        audit.accessed("preview", f"{alg}:{digest}", variant=name)
        return Response(data, mimetype="image/jpeg" if name != "phone-preview" else _image_type(data), headers=headers)
    abort(404)


def may_open_with_standing_reason(collecting_unit) -> bool:
    """Art. 29: the collecting unit's own lead and records administrator open its originals in one
    tap, reviewing being their standing reason. Anyone else — the policy section, the bureau's
    leaders, another unit — goes through the records administrator and an approved grant, which
    shows marked copies, never the original."""
    return collecting_unit == current_user.unit_id and current_user.has_role(Role.LEAD, Role.RECORDS_ADMIN)


def _ask_to_open(alg: str, digest: str, media: Media, collecting_unit, error: str | None = None):
    if not may_open_with_standing_reason(collecting_unit):
        return render_template("review/original_reason.html", alg=alg, digest=digest, media=media,
                               needs_grant=True), 403
    return render_template("review/original_reason.html", alg=alg, digest=digest, media=media,
                           needs_grant=False, error=error), (400 if error else 200)


@bp.post("/media/<alg>/<digest>/original")
@allow(*REVIEWERS)
def open_original(alg: str, digest: str):
    """Register the opening (who, which, when, why), then hand this user a short-lived link to
    the bytes. The form carries the CSRF token, so another site cannot open originals in a
    reviewer's name."""
    try:
        media_store.validate_digest(alg, digest)
    except ValueError:
        abort(404)
    collecting_unit = _collecting_unit(alg, digest)
    media = db.session().get(Media, (alg, digest)) if collecting_unit is not None else None
    if media is None or media.original_at is None:
        abort(404)
    if not may_open_with_standing_reason(collecting_unit):
        return _ask_to_open(alg, digest, media, collecting_unit)
    with db.transaction() as s:  # registered before a byte is sent
        access = OriginalAccess(user_id=current_user.id, alg=alg, hash=digest, unit_id=collecting_unit,
                                reason=STANDING_REASON)
        s.add(access)
    link = original_links.issue(current_user.id, alg, digest, access.id)
    return redirect(url_for("review.original_bytes", alg=alg, digest=digest, token=link), 303)


@bp.get("/media/<alg>/<digest>/original/<token>")
@allow(*REVIEWERS)
def original_bytes(alg: str, digest: str, token: str):
    """The original's bytes through a link made for this user by an opening just registered;
    byte ranges too, so a <video> can seek in footage without registering again."""
    # The link proves this user opened it; visibility is judged again on every request, so a
    # reviewer moved out of the unit loses access at once, not when the link expires.
    collecting_unit = _collecting_unit(alg, digest)
    if not original_links.valid(token, current_user.id, alg, digest) or collecting_unit is None:
        abort(404)
    if not may_open_with_standing_reason(collecting_unit):
        abort(403)
    media = db.session().get(Media, (alg, digest))
    if media is None or media.original_at is None:
        abort(404)
    # Every play or download is in the chain, each seek of a player too (a range of the same link).
    audit.accessed("original", f"{alg}:{digest}", range=request.headers.get("Range", "")[:60] or "whole")
    return ranges.stream(media_storage(), alg, digest, media.size, media.mime or "application/octet-stream",
                         disposition=download_names.content_disposition(*download_names.original_names(media)))


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"
