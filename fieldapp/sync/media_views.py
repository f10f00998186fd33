"""The media half of the phone's API: limits, which hashes are missing, resumable uploads of
originals in chunks, and the phones' previews. The rules live in :mod:`fieldapp.media.service`."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ..access import allow
from ..media import service
from ..media.service import MediaRefused
from . import bp


@bp.errorhandler(MediaRefused)
def _refused(exc: MediaRefused):
    """Every refusal of the media service, as a clear answer with a machine-readable code."""
    return jsonify(exc.to_json()), exc.status


def _raise_body_limit():
    """Chunks and previews may be larger than the app-wide request limit (2 MiB). The limit is
    raised for these two endpoints before anything touches the body: the CSRF check, the app's
    first before-request hook, reads ``request.form``, which applies the limit in force then."""
    # The endpoint first: this hook runs for every request, and asking who the user is loads them
    # from the database (a health probe or a static file must not).
    if request.endpoint not in {"sync.upload_chunk", "sync.phone_previews"}:
        return
    if not current_user.is_authenticated:  # a stranger's body is refused at the app-wide limit
        return
    if request.endpoint == "sync.upload_chunk":
        request.max_content_length = service.limits().chunk_max_bytes
    else:
        request.max_content_length = service.limits().preview_max_bytes * 8


@bp.record_once
def _install_body_limit(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _raise_body_limit)


@bp.get("/media/limits")
@allow(signed_in=True)
def media_limits():
    """What the server accepts: hash algorithms, file, chunk and preview sizes."""
    return jsonify(service.limits().to_json())


@bp.post("/media/missing")
@allow(signed_in=True)
def media_missing():
    body = request.get_json(silent=True)
    return jsonify(service.missing(body.get("items") if isinstance(body, dict) else None))


@bp.post("/media/uploads")
@allow(signed_in=True)
def begin_upload():
    answer = service.begin(current_user.id, request.get_json(silent=True))
    return jsonify(answer), (200 if answer["status"] == "stored" else 201)


@bp.get("/media/uploads/<uuid:upload_id>")
@allow(signed_in=True)
def upload_offset(upload_id):
    return jsonify(service.offset(current_user.id, upload_id))


@bp.put("/media/uploads/<uuid:upload_id>")
@allow(signed_in=True)
def upload_chunk(upload_id):
    """One chunk at ``?offset=N`` (the bytes the server holds), streamed to storage."""
    at, length = service.chunk_position(request.args.get("offset"), request.content_length)
    return jsonify(service.append(current_user.id, upload_id, at, request.stream, length))


@bp.post("/media/uploads/<uuid:upload_id>/complete")
@allow(signed_in=True)
def complete_upload(upload_id):
    return jsonify(service.complete(current_user.id, upload_id))


@bp.post("/media/previews")
@allow(signed_in=True)
def phone_previews():
    """Several previews in one multipart request (one round trip on a slow link); each part is
    named ``<alg>:<hash>``. Answered per item."""
    return jsonify(results=service.accept_phone_previews(current_user.id, request.files))
