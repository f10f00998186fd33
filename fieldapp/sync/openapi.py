"""The OpenAPI 3.0.3 description of the phone's JSON API (/api/v1/), served at /api/v1/openapi.json.

It describes the routes as they behave today. tests/api/test_openapi.py checks that every /api/v1
route is here and nothing else, and that real answers match the documented schemas;
tests/api/test_schemathesis.py fuzzes every operation against it.
"""
from __future__ import annotations

from typing import Any

from ..media.pipeline import FLAG_MESSAGES, PREVIEW_SIZES
from ..media.service import MAX_QUERY_ITEMS
from ..models import Role
from .push import HASH_ALGORITHMS, MAX_BATCH, RECORD_TYPES, SIGNED_FIELDS

OPENAPI_VERSION = "3.0.3"
API = "/api/v1"
JSON = "application/json"
OCTETS = "application/octet-stream"
MULTIPART = "multipart/form-data"

SHA256_HEX = "^[0-9a-f]{64}$"
BASE64URL = "^[A-Za-z0-9_-]*={0,2}$"
INT32_MAX = 2**31 - 1  # revision numbers, catalogue versions and heartbeat counts are 32-bit columns
INT64_MAX = 2**63 - 1

DESCRIPTION = """\
The JSON API the fieldapp phone app talks to: session probe, rules catalogue, open cases, the unit's
officers, device registration and heartbeat, the sync of signed record revisions (push) and server
changes (pull), and the media those revisions reference (resumable uploads of originals by hash, and
phone previews).

- Every body is JSON, except an upload chunk (raw bytes) and phone previews (multipart). Every error
  is an `Error`: `error` is a stable machine-readable code (the phone branches on it), `message` a
  human-readable explanation (absent on the generic `not_found`, `method_not_allowed` and
  `too_large` answers). Phones must ignore fields they do not know.
- Sign-in is by passkey in the browser, outside this API; the API then rides on the session cookie.
  Every POST and PUT also needs the CSRF token `GET /api/v1/session` hands out, in the `X-CSRFToken`
  header; without it the answer is 400 `csrf_failed`.
- Media are known by their hash (`alg` and lower-case hex `hash`). An original is uploaded in chunks
  at the offset the server holds (`POST /media/uploads`, `PUT /media/uploads/{upload_id}?offset=N`,
  `POST /media/uploads/{upload_id}/complete`); after a cut connection the phone asks for the offset
  and continues from there, on any server host.
- Collection stations (采集站) push body-camera footage with their own bearer token (`station`), never
  a session: the same resumable uploads under `/station/uploads`, then `POST /station/segments`
  with the manifest rows of the uploaded files.
- Signed revisions hold no floating-point number anywhere; integers stay within ±(2^53 - 1), and
  revision numbers and catalogue versions within 2^31 - 1.
"""

# Security requirements: public, a signed-in session, a signed-in session plus the CSRF header.
PUBLIC: list[dict] = []
SIGNED_IN = [{"session": []}]
SIGNED_IN_UNSAFE = [{"session": [], "csrf": []}]
STATION = [{"station": []}]  # a collection station's bearer token; no session, no CSRF


# ---- small builders --------------------------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


def string(description: str | None = None, **extra: Any) -> dict:
    return _described({"type": "string", **extra}, description)


# f.<txid>.<id> in the feed; r.<txid>.<id>.<c|v>.<key> inside a full resync (see sync/feed.py).
CURSOR_PATTERN = r"^(f\.[0-9]{1,19}\.[0-9]{1,19}|r\.[0-9]{1,19}\.[0-9]{1,19}\.[cv]\.([0-9a-f-]{1,36}|[0-9]{1,19}))$"


def integer(description: str | None = None, minimum: int | None = None, **extra: Any) -> dict:
    schema: dict = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    return _described(schema, description)


def uuid_string(description: str | None = None) -> dict:
    return string(description, format="uuid")


def date_time(description: str | None = None) -> dict:
    return string(description, format="date-time")


def array(items: dict, description: str | None = None, **extra: Any) -> dict:
    return _described({"type": "array", "items": items, **extra}, description)


def obj(properties: dict, required: tuple[str, ...] | list[str] = (), description: str | None = None,
        **extra: Any) -> dict:
    schema: dict = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return _described(schema, description)


def _described(schema: dict, description: str | None) -> dict:
    if description:
        schema["description"] = description
    return schema


def json_content(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": json_content(schema)}


def error_response(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def operation(operation_id: str, summary: str, responses: dict, *, security: list, tag: str,
              description: str | None = None, parameters: list | None = None, body: dict | None = None,
              body_type: str = JSON) -> dict:
    op: dict = {"operationId": operation_id, "summary": summary, "tags": [tag], "security": security}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    op["responses"] = responses
    return op


def errors(*statuses: int) -> dict:
    """The documented error answers of an operation, by status code."""
    names = {400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound",
             409: "Conflict", 413: "TooLarge"}
    return {str(status): error_response(names[status]) for status in statuses}


# ---- schemas ---------------------------------------------------------------------------------


def _error_schemas() -> dict:
    return {
        "Error": obj({
            "error": string("Stable machine-readable code, e.g. `unauthenticated`, `bad_request`, "
                            "`csrf_failed`, `bad_device`, `unknown_device`, `device_revoked`, `not_found`."),
            "message": string("Human-readable explanation (absent on the generic `not_found`, "
                              "`method_not_allowed` and `too_large` answers)."),
        }, required=["error"], description="Every error answer of the API."),
        "MediaError": obj({
            "error": string("Stable machine-readable code; see each operation's answers."),
            "message": string("Human-readable explanation, in English."),
            "message_zh": string("The same in Chinese (refusals of content: `empty`, `html`, `svg`, "
                                 "`script`, `unknown_type`)."),
            "offset": integer("`offset_mismatch`, `upload_incomplete`, `restart_upload`: the bytes the "
                              "server holds; continue from there.", 0, format="int64"),
            "expected": string("`hash_mismatch`: the declared hash."),
            "actual": string("`hash_mismatch`: the hash of the bytes received."),
            "max_bytes": integer("`too_large`: the largest file accepted.", 0, format="int64"),
            "chunk_max_bytes": integer("`chunk_too_large`: the largest chunk accepted.", 0, format="int64"),
        }, required=["error"], description="An error answer of the media operations: an `Error` with the "
                                           "figures the phone needs to carry on."),
    }


def _session_schemas() -> dict:
    unit = obj({"id": uuid_string(), "code": string(), "name": string()}, required=["id", "code", "name"])
    return {
        "SessionUser": obj({
            "id": uuid_string(),
            "name": string(),
            "cert_no": string("The officer's enforcement certificate number."),
            "unit": unit,
            "roles": array(string(enum=sorted(r.value for r in Role)), "Sorted role names."),
        }, required=["id", "name", "cert_no", "unit", "roles"]),
        "ServerEpoch": obj({
            "id": uuid_string("Which history the database continues; "
                              "`00000000-0000-0000-0000-000000000000` for a database never restored. "
                              "When it changes, the phone offers again what the server had acknowledged."),
            "since": nullable(date_time("When the restore that started this epoch was made.")),
            "restored_from": nullable(obj({
                "backup_id": string("The backup restored."),
                "taken_at": date_time("When that backup was taken."),
            }, required=["backup_id", "taken_at"])),
        }, required=["id", "since", "restored_from"],
            description="The server's epoch: a restore to an earlier point starts a new one."),
        "SessionState": obj({
            "authenticated": {"type": "boolean"},
            "csrf_token": string("Send it back in the `X-CSRFToken` header on every POST."),
            "user": ref("SessionUser"),
            "server_epoch": ref("ServerEpoch"),
            "resend_window_days": integer("After an epoch change, revisions acknowledged within this many "
                                          "days are offered again.", 0),
        }, required=["authenticated", "csrf_token"],
            description="`user`, `server_epoch` and `resend_window_days` are present only when "
                        "`authenticated` is true."),
    }


def _catalogue_schemas() -> dict:
    entry = obj({"id": string()}, required=["id"], description="One catalogue entry; see catalogue.toml.")
    sections = ("stages", "kinds", "step_types", "case_flags", "interruption_reasons", "service_relations",
                "findings")
    return {
        "Catalogue": obj({
            "version": integer("The published version (what revisions name as `catalogue_version`).", 1),
            "builtin_version": integer("Version of the built-in catalogue this publication is made from.", 1),
            "meta": obj({"title": string(), "title_en": string(), "scope_article": string()}),
            **{name: array(entry) for name in sections},
        }, required=["version", "kinds", "stages", "step_types"],
            description="The rules catalogue as published (loosely described: the phone caches it whole)."),
    }


def _case_schemas() -> dict:
    return {
        "Case": obj({
            "id": uuid_string(),
            "unit_id": uuid_string(),
            "kind": string("licensing | penalty | coercion | inspection"),
            "case_number": nullable(string("案号, often assigned later.")),
            "party_name": string(),
            "party_credit_code": nullable(string("Unified social credit code (18 characters).")),
            "party_address": nullable(string()),
            "flags": array(string(), "Catalogue case flags."),
            "status": string("open | closed | archived | withdrawn"),
            "origin": string("server | phone", enum=["server", "phone"]),
            "updated_at": date_time(),
            "linked_case_id": nullable(uuid_string("The inspection this penalty case was opened from on the spot.")),
            "desk_steps": array(obj({
                "id": uuid_string(), "step_type": nullable(string()), "at": nullable(string()), "author": string(),
            }, required=["id", "step_type", "at", "author"]), "Steps made at the desk for this case, oldest first."),
            "deadlines": array(obj({
                "key": string(), "rule_id": string("A rule of rules/deadlines.toml."),
                "label_zh": string(), "label_en": string(), "due_at": date_time(),
                "warn_from": date_time("When to start warning: the configured working days before the due day."),
            }, required=["key", "rule_id", "label_zh", "label_en", "due_at", "warn_from"]),
                "The case's running (unmet) deadlines."),
        }, required=["id", "unit_id", "kind", "case_number", "party_name", "party_credit_code", "party_address",
                     "flags", "status", "origin", "updated_at", "deadlines", "desk_steps"]),
        "CaseList": obj({"cases": array(ref("Case"))}, required=["cases"]),
    }


def _officer_schemas() -> dict:
    return {
        "Officer": obj({
            "id": uuid_string("The user's id (`user_id` in an activity's officers)."),
            "name": string(),
            "cert_no": string("执法证号, the enforcement certificate number."),
            "unit_name": string("The officer's unit."),
        }, required=["id", "name", "cert_no", "unit_name"]),
        "OfficerList": obj({"officers": array(ref("Officer"), "Sorted by name.")}, required=["officers"]),
    }


def _device_schemas() -> dict:
    return {
        "DeviceRegistration": obj({
            "device_id": uuid_string("Made on the phone."),
            "public_key": string("The device's ECDSA P-256 public key: SPKI DER, base64url (as WebCrypto "
                                 "exports it).", pattern=BASE64URL),
            "label": string("A name for the phone (kept to 120 characters)."),
        }, required=["device_id", "public_key"]),
        "DeviceRegistered": obj({"device_id": uuid_string(), "registered_at": date_time()},
                                required=["device_id", "registered_at"]),
        "Heartbeat": obj({
            "app_version": string("Kept to 40 characters."),
            "catalogue_version": integer(None, 0, maximum=INT32_MAX),
            "unsynced_items": integer(None, 0, maximum=INT32_MAX),
            "bytes_pending": integer(None, 0, maximum=INT64_MAX, format="int64"),
            "oldest_unsynced_at": date_time("With a time zone; otherwise ignored."),
            "sent_at": date_time("The phone's clock when sending; the server records the skew."),
            "reoffer": ref("Reoffer"),
        }, description="What is still on the phone. Every field is optional; a value of the wrong type "
                       "or out of range is ignored."),
        "Reoffer": obj({
            "epoch": string("The server epoch id the phone saw change.", minLength=1, maxLength=40),
            "at": date_time("When the phone offered again."),
            "revisions": integer("Revisions offered again.", 0, maximum=INT32_MAX),
            "beyond_window": integer("Acknowledged revisions older than the resend window, not offered "
                                     "again.", 0, maximum=INT32_MAX),
            "lost_originals": array(string(pattern=SHA256_HEX), "Originals the phone no longer holds "
                                    "(released after the server confirmed them): the server may lack them.",
                                    maxItems=500),
            "records": integer("Records those revisions belong to.", 0, maximum=INT32_MAX),
            "lost_originals_total": integer("How many originals are released in all (the list is kept to "
                                            "500).", 0, maximum=INT32_MAX),
        }, required=["epoch", "at", "revisions", "beyond_window", "lost_originals"],
            description="What the phone offered again after the server's epoch changed (a restore). A "
                        "malformed report is ignored; the heartbeat still succeeds."),
        "HeartbeatAck": obj({"ok": {"type": "boolean", "enum": [True]}, "server_time": date_time()},
                            required=["ok", "server_time"]),
    }


def _revision_item() -> dict:
    properties = {
        "record_id": uuid_string("Made on the phone."),
        "record_type": string(enum=sorted(RECORD_TYPES)),
        "revision": integer("1 for a new record, then parent + 1.", 1, maximum=INT32_MAX),
        "parent": nullable(integer("revision - 1; null for revision 1.", 1, maximum=INT32_MAX)),
        "parent_id": nullable(uuid_string("The record this one belongs to (activity of a step, case of an "
                                          "activity).")),
        "catalogue_version": integer("The catalogue version the record was made with.", 1, maximum=INT32_MAX),
        "author": uuid_string("The signed-in user's id."),
        "device_id": uuid_string("The device of the batch."),
        "device_time": string("The phone's clock when the revision was made, ISO 8601 (kept as written, not "
                              "checked).", format="date-time", maxLength=40),
        "reason": nullable(string("Why this revision was made (edits, withdrawals).", maxLength=2000)),
        "payload": {"type": "object", "description": "The record's content; no floating-point numbers."},
        "media": array(ref("MediaRef"), maxItems=500),
        "withdrawn_media": array(ref("MediaRef"), maxItems=500),
    }
    if tuple(properties) != SIGNED_FIELDS:
        raise RuntimeError("RevisionItem must describe exactly the signed fields, in order")
    properties["signature"] = string("ECDSA P-256/SHA-256 over the RFC 8785 canonical JSON of the signed "
                                     "fields; raw r‖s, base64url.", pattern=BASE64URL, minLength=1)
    return obj(properties, required=["record_id", "record_type", "revision", "catalogue_version", "author",
                                     "device_id", "device_time", "payload", "signature"],
               description="One immutable revision of a record, signed on the phone. `parent`, `parent_id` "
                           "and `reason` default to null, `media` and `withdrawn_media` to [] (and are "
                           "signed so).")


def _sync_schemas() -> dict:
    return {
        "MediaRef": obj({
            "alg": string(enum=sorted(HASH_ALGORITHMS)),
            "hash": string("SHA-256 of the bytes, lower-case hex.", pattern=SHA256_HEX),
            "size": integer("Bytes.", 0),
            "type": string("Media type, e.g. image/jpeg.", maxLength=100),
        }, required=["alg", "hash", "size", "type"]),
        "RevisionItem": _revision_item(),
        "PushRequest": obj({
            "device_id": uuid_string("A device registered to the signed-in user."),
            "items": array(ref("RevisionItem"), f"At most {MAX_BATCH}; each is answered on its own.",
                           maxItems=MAX_BATCH),
            "sent_at": date_time(),
            "heartbeat": ref("Heartbeat"),
        }, required=["device_id", "items"]),
        "RevisionHead": obj({
            "revision": integer(None, 1),
            "content_hash": string(pattern=SHA256_HEX),
            "device_time": string(),
            "payload": {"type": "object"},
            "reason": nullable(string()),
        }, required=["revision", "content_hash", "device_time", "payload", "reason"],
            description="The server's head revision of a record."),
        "PushResult": obj({
            "record_id": nullable(string("As sent (null when it was not a string).")),
            "revision": nullable(integer("As sent (null when it was not an integer).")),
            "status": string(enum=["created", "duplicate", "conflict", "rejected"]),
            "error": string("Why a conflict or rejection: `revision_exists`, `stale_parent`, `parent_missing`, "
                            "`bad_item`, `bad_field`, `bad_media`, `bad_record_type`, `wrong_device`, "
                            "`float_not_allowed`, `unsigned`, `bad_signature`, `not_author`, `not_owner`, "
                            "`unknown_catalogue_version`."),
            "message": string(),
            "head": ref("RevisionHead"),
            "missing_media": array(string(pattern=SHA256_HEX),
                                   "For created and duplicate: media hashes the server still lacks."),
        }, required=["record_id", "revision", "status"]),
        "PushResponse": obj({
            "server_time": date_time(),
            "clock_skew_seconds": nullable(integer("Server receipt time minus `sent_at` (kept within "
                                                   "±(2^31 - 1)); null without it.")),
            "server_epoch": ref("ServerEpoch"),
            "results": array(ref("PushResult"), "One per item, in order."),
        }, required=["server_time", "clock_skew_seconds", "server_epoch", "results"]),
        "PullResponse": obj({
            "cursor": string("Opaque: send it back as `cursor` next time.", pattern=CURSOR_PATTERN),
            "more": {"type": "boolean", "description": "More changes wait: pull again at once."},
            "full": {"type": "boolean", "description": "First page of a full resync: start the lists afresh."},
            "resync": {"type": "boolean", "description": "A page of a full resync (every open case, then "
                       "every review decision): keep it aside until `resync_complete`."},
            "resync_complete": {"type": "boolean", "description": "The last page of a full resync: its "
                                "lists replace what the phone held."},
            "catalogue_version": nullable(integer("The latest published catalogue version.", 1)),
            "cases": array(ref("Case")),
            "assignments": array(uuid_string(), "Every case assigned to the user."),
            "comments": array({"type": "object"}),
            "server_epoch": ref("ServerEpoch"),
        }, required=["cursor", "more", "full", "resync", "resync_complete", "catalogue_version", "cases",
                    "assignments", "comments", "server_epoch"]),
    }


def _media_schemas() -> dict:
    alg = string("Hash algorithm.", enum=sorted(HASH_ALGORITHMS))
    digest = string("The hash of the original's bytes, lower-case hex.", pattern=SHA256_HEX)
    key = obj({"alg": alg, "hash": digest}, required=["alg", "hash"])
    size = integer(None, 0, maximum=INT64_MAX, format="int64")
    return {
        "MediaLimits": obj({
            "algorithms": array(string(), "Hash algorithms the server knows."),
            "max_bytes": integer("Largest original accepted.", 1, format="int64"),
            "chunk_max_bytes": integer("Largest chunk accepted.", 1, format="int64"),
            "chunk_bytes": integer("The chunk size the phone should send.", 1, format="int64"),
            "preview_max_bytes": integer("Largest phone preview accepted.", 1, format="int64"),
            "preview_max_px": integer("Longest side of a phone preview, in pixels.", 1),
        }, required=["algorithms", "max_bytes", "chunk_max_bytes", "chunk_bytes", "preview_max_bytes",
                     "preview_max_px"]),
        "MediaKey": key,
        "MissingRequest": obj({"items": array(ref("MediaKey"), f"At most {MAX_QUERY_ITEMS}.",
                                              maxItems=MAX_QUERY_ITEMS)}, required=["items"]),
        "MissingMedia": obj({
            "missing": array(ref("MediaKey"), "Originals the server does not hold yet, in the order asked."),
            "previews_missing": array(ref("MediaKey"), "Of those, the ones with no preview at all either "
                                                       "(the phone may send its own first)."),
        }, required=["missing", "previews_missing"]),
        "UploadDeclaration": obj({
            "alg": alg, "hash": digest,
            "size": integer("The original's length in bytes (0 is refused: `empty`).", 0,
                            maximum=INT64_MAX, format="int64"),
            "type": string("The media type the phone believes it is (the server types by the bytes).",
                           maxLength=100),
        }, required=["alg", "hash", "size"]),
        "UploadStarted": obj({
            "status": string(enum=["uploading"]),
            "upload_id": uuid_string("Derived from the declaration: the same file gets the same upload, "
                                     "from any phone."),
            "offset": {**size, "description": "Bytes the server holds: send the next chunk from here."},
            "size": size,
            "chunk_bytes": integer("The chunk size to send.", 1, format="int64"),
        }, required=["status", "upload_id", "offset", "size", "chunk_bytes"]),
        "Media": obj({
            "alg": alg, "hash": digest,
            "size": nullable(size),
            "mime": nullable(string("The type the bytes show (never the declared one).")),
            "kind": nullable(string(enum=["image", "video", "audio"])),
            "original_stored": {"type": "boolean"},
            "previews": array(string(enum=sorted(PREVIEW_SIZES)), "Previews the server made."),
            "phone_preview": {"type": "boolean", "description": "The phone's own preview is held."},
            "width": nullable(integer(None, 0)),
            "height": nullable(integer(None, 0)),
            "frames": nullable(integer("Frames of a GIF, PNG or WebP: 1 for a still; null for other types or a "
                                       "GIF too large to count.", 1)),
            "flags": array(string(enum=sorted({*FLAG_MESSAGES, "pipeline_failed"})),
                           "What a person should know about the file (it is stored as received)."),
            "taken_at": nullable(date_time("From EXIF.")),
            "taken_at_zone_assumed": nullable({"type": "boolean",
                                               "description": "EXIF gave no offset: read as Asia/Shanghai."}),
        }, required=["alg", "hash", "size", "mime", "kind", "original_stored", "previews", "phone_preview",
                     "width", "height", "frames", "flags", "taken_at", "taken_at_zone_assumed"]),
        "MediaStored": obj({"status": string(enum=["stored"]), "media": ref("Media")},
                           required=["status", "media"]),
        "UploadOffset": obj({
            "upload_id": uuid_string(),
            "offset": {**size, "description": "Bytes the server holds."},
            "size": size,
        }, required=["upload_id", "offset", "size"]),
        "PreviewResults": obj({"results": array(obj({
            "alg": string("As named in the part."),
            "hash": string("As named in the part."),
            "status": string(enum=["stored", "rejected"]),
            "error": string("Why rejected: `bad_hash`, `not_referenced`, `preview_too_large`, "
                            "`bad_preview_type`, `bad_preview`, `empty`, `html`, `svg`, `script`, "
                            "`unknown_type`."),
            "message": string(),
        }, required=["alg", "hash", "status"]), "One per file part, in order.")}, required=["results"]),
    }


def _footage_schemas() -> dict:
    line = obj({
        "outcome": string(enum=["stored", "unchanged", "flagged", "skipped", "unlisted", "warning", "error"]),
        "code": string("Stable code: `stored`, `already_ingested`, `hash_mismatch`, `empty_file`, "
                       "`original_not_uploaded`, `camera_of_other_unit`, `not_media`, a manifest problem "
                       "(`missing_value`, `bad_time`, `impossible_times`, `bad_hash`, `path_in_name`, "
                       "`duplicate_row`, `zone_assumed`…), or the segment's flags joined by commas."),
        "message": string(), "file_name": string(), "line": integer(None, 0),
    }, required=["outcome", "code", "message"])
    return {
        "Camera": obj({
            "serial": string("产品序号 (GA/T 947)."), "label": string(),
            "carried_by": nullable(obj({"user_id": uuid_string(), "name": string(), "cert_no": string(),
                                        "since": date_time()}, required=["user_id", "name", "cert_no", "since"])),
        }, required=["serial", "label", "carried_by"]),
        "CameraList": obj({"cameras": array(ref("Camera"), "The caller's unit's active cameras, by serial.")},
                          required=["cameras"]),
        "FootageVisit": obj({
            "activity_id": uuid_string(), "case_id": nullable(uuid_string()),
            "arrived_at": nullable(string()),
            "state": string("`linked` (footage linked), `waiting` (the visit names a camera or a step was "
                            "declared recorded on one, and no footage is in), `none_expected`.",
                            enum=["linked", "waiting", "none_expected"]),
            "segments": integer(None, 0), "seconds": integer(None, 0),
        }, required=["activity_id", "case_id", "arrived_at", "state", "segments", "seconds"]),
        "FootageVisits": obj({"visits": array(ref("FootageVisit"), "The caller's own visits of the last 60 days.")},
                             required=["visits"]),
        "StationSegments": obj({"files": array(obj({
            "file_name": string(), "camera_serial": string(), "officer_no": string(), "unit_code": string(),
            "started_at": string("ISO 8601 with UTC offset (without one it is read as Asia/Shanghai, flagged)."),
            "ended_at": string(), "collected_at": string(), "md5": string(), "sm3": string(),
            "important": {"type": "boolean"},
            "sha256": string("The hash of the uploaded original.", pattern=SHA256_HEX),
        }, required=["file_name", "camera_serial", "started_at", "ended_at", "sha256"]), "1 to 500 rows.",
            minItems=1, maxItems=500)}, required=["files"]),
        "ImportReport": obj({
            "manifest": nullable(string()), "encoding": nullable(string()),
            "stored": integer(None, 0), "unchanged": integer(None, 0), "skipped": integer(None, 0),
            "linked_share": nullable({"type": "number"}), "lines": array(line),
        }, required=["stored", "unchanged", "skipped", "lines"]),
    }


def schemas() -> dict:
    return {**_error_schemas(), **_session_schemas(), **_catalogue_schemas(), **_case_schemas(),
            **_officer_schemas(), **_device_schemas(), **_sync_schemas(), **_media_schemas(), **_footage_schemas()}


def responses() -> dict:
    def error(description: str) -> dict:
        return {"description": description, "content": json_content(ref("Error"))}

    return {
        "BadRequest": error("Malformed request: `bad_request` (body is not the JSON object expected), "
                            "`csrf_failed` (missing or wrong X-CSRFToken), `bad_device`, `bad_cursor`."),
        "Unauthenticated": error("`unauthenticated`: no valid session; sign in first."),
        "Forbidden": error("`device_revoked` or `device_not_yours`."),
        "NotFound": error("`unknown_device` (register it first) or `not_found`."),
        "Conflict": error("`device_conflict`: the device id is registered with another key or user."),
        "TooLarge": error("`batch_too_large` (more than 100 items) or `too_large` (body over 2 MiB)."),
    }


def security_schemes() -> dict:
    return {
        "session": {"type": "apiKey", "in": "cookie", "name": "fieldapp_session",
                    "description": "The session cookie set by passkey (or demo) sign-in in the browser."},
        "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                 "description": "`csrf_token` from GET /api/v1/session; required on every POST and PUT."},
        "station": {"type": "http", "scheme": "bearer",
                    "description": "A collection station's token, issued by an admin, scoped to its unit and "
                                   "revocable. Unknown or revoked: 401 `station_unauthenticated`."},
    }


# ---- paths -----------------------------------------------------------------------------------


def _path_parameter(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def refusal(description: str) -> dict:
    return {"description": description, "content": json_content(ref("MediaError"))}


def _media_paths() -> dict:
    upload_id = _path_parameter("upload_id", uuid_string(), "The id `POST /media/uploads` answered.")
    offset = {"name": "offset", "in": "query", "required": True,
              "schema": integer(None, 0, maximum=INT64_MAX, format="int64"),
              "description": "The bytes the server holds (where this chunk starts)."}
    csrf = "`csrf_failed` (missing or wrong X-CSRFToken)"
    unknown = refusal("`unknown_upload`: no such upload (begin it again), or `not_found`.")
    content = "`html`, `svg`, `script`, `unknown_type`: the bytes are not a photo, video or recording."
    return {
        f"{API}/media/limits": {"get": operation(
            "getMediaLimits", "What the server accepts: hash algorithms, file, chunk and preview sizes",
            {"200": ok("The limits.", ref("MediaLimits")), **errors(401)},
            security=SIGNED_IN, tag="media")},
        f"{API}/media/missing": {"post": operation(
            "missingMedia", "Of these hashes, which originals (and previews) the server still needs",
            {"200": ok("What is missing.", ref("MissingMedia")),
             "400": refusal(f"`bad_request` (not a list of `{{alg, hash}}`), `bad_hash`, {csrf}."),
             **errors(401, 413)},
            security=SIGNED_IN_UNSAFE, tag="media", body=ref("MissingRequest"))},
        f"{API}/media/uploads": {"post": operation(
            "beginUpload", "Begin (or find again) the upload of an original",
            {"200": ok("The original is already stored: nothing to send.", ref("MediaStored")),
             "201": ok("Uploading: send chunks from `offset`.", ref("UploadStarted")),
             "400": refusal(f"`bad_request`, `bad_hash`, `bad_size`, `bad_type`, {csrf}."),
             **errors(401),
             "413": refusal("`too_large`: the file is over `max_bytes` (or the body over 2 MiB)."),
             "422": refusal("`empty`: a file of 0 bytes is not an original.")},
            security=SIGNED_IN_UNSAFE, tag="media", body=ref("UploadDeclaration"),
            description="Idempotent: the same declaration (alg, hash, size) always gets the same upload "
                        "and the offset the server holds, so a phone that lost the answer just asks again.")},
        f"{API}/media/uploads/{{upload_id}}": {
            "get": operation(
                "getUploadOffset", "The bytes the server holds of an upload",
                {"200": ok("The offset.", ref("UploadOffset")), **errors(401), "404": unknown},
                security=SIGNED_IN, tag="media", parameters=[upload_id],
                description="After a cut connection: continue from this offset."),
            "put": operation(
                "uploadChunk", "Send one chunk at the offset the server holds",
                {"200": ok("The chunk is stored (whole or not at all); the new offset.", ref("UploadOffset")),
                 "400": refusal(f"`bad_offset`, {csrf}."),
                 **errors(401),
                 "404": unknown,
                 "409": refusal("`offset_mismatch`: the server holds `offset` bytes; continue from there."),
                 "411": refusal("`length_required`: send Content-Length."),
                 "413": refusal("`too_large`/`chunk_too_large` (over `chunk_max_bytes`), "
                                "`past_declared_size` (beyond the declared size)."),
                 "415": refusal(f"{content} Judged from the first bytes; the upload is discarded.")},
                security=SIGNED_IN_UNSAFE, tag="media", parameters=[upload_id, offset],
                body={"type": "string", "format": "binary"}, body_type=OCTETS,
                description="The body is the chunk's raw bytes, with Content-Length. A chunk cut short "
                            "stores nothing; ask for the offset and send it again."),
        },
        f"{API}/media/uploads/{{upload_id}}/complete": {"post": operation(
            "completeUpload", "Verify the hash, store the original and make its previews",
            {"200": ok("Stored (answered the same when asked again).", ref("MediaStored")),
             "400": refusal(f"{csrf}."),
             **errors(401),
             "404": unknown,
             "409": refusal("`upload_incomplete` (the server holds `offset` bytes), `restart_upload` "
                            "(send the file again from byte 0)."),
             "415": refusal(f"{content} The upload is discarded."),
             "422": refusal("`hash_mismatch`: the bytes are not the declared hash; nothing is stored and "
                            "the upload is discarded.")},
            security=SIGNED_IN_UNSAFE, tag="media", parameters=[upload_id],
            description="The original is stored as received, whatever its state; a damaged or huge image "
                        "is stored and flagged, never refused.")},
        f"{API}/media/previews": {"post": operation(
            "sendPhonePreviews", "Send the phone's own previews, before the originals",
            {"200": ok("One result per file part.", ref("PreviewResults")),
             "400": refusal(f"{csrf}."),
             **errors(401),
             "413": refusal("`too_large`: the body is over 8 previews' worth.")},
            security=SIGNED_IN_UNSAFE, tag="media",
            body={"type": "object", "additionalProperties": {"type": "string", "format": "binary"},
                  "description": "Each file part is named `<alg>:<hash>` of the original it previews: a "
                                 "JPEG, PNG or WebP of at most `preview_max_px` pixels a side."},
            body_type=MULTIPART,
            description="Only the author of a pushed record referencing the hash may send its preview; "
                        "the first preview received stays.")},
    }


def paths() -> dict:
    device_id = _path_parameter("device_id", uuid_string(), "A device registered to the signed-in user.")
    version = _path_parameter("version", integer(None, 0), "A published catalogue version.")
    cursor = {"name": "cursor", "in": "query", "required": False,
              "schema": string(pattern=f"^(0|[0-9]{{1,19}}|{CURSOR_PATTERN[1:-1]})$", default="0"),
              "description": "The last cursor the phone received; 0 (the default) for a full resync. A bare "
                             "integer from an older release also starts a full resync."}
    return {
        f"{API}/session": {"get": operation(
            "getSession", "Who is signed in, and a fresh CSRF token", {"200": ok("The session.", ref("SessionState"))},
            security=PUBLIC, tag="session",
            description="Public. The phone also uses it to probe whether the server answers.")},
        f"{API}/openapi.json": {"get": operation(
            "getOpenAPI", "This document", {"200": ok("The OpenAPI document.", {"type": "object"})},
            security=PUBLIC, tag="meta")},
        f"{API}/catalogue": {"get": operation(
            "getCatalogue", "The latest published catalogue",
            {"200": ok("The catalogue (the built-in one is published on first request).", ref("Catalogue")),
             **errors(401)},
            security=SIGNED_IN, tag="catalogue")},
        f"{API}/catalogue/{{version}}": {"get": operation(
            "getCatalogueVersion", "One published catalogue version (every version is kept)",
            {"200": ok("The catalogue version.", ref("Catalogue")), **errors(401, 404)},
            security=SIGNED_IN, tag="catalogue", parameters=[version])},
        f"{API}/cases": {"get": operation(
            "listOpenCases", "Open cases of the units the user may see",
            {"200": ok("At most 500, newest first.", ref("CaseList")), **errors(401)},
            security=SIGNED_IN, tag="cases")},
        f"{API}/officers": {"get": operation(
            "listUnitOfficers", "The enrolled officers of the signed-in user's own unit",
            {"200": ok("Active users with the officer role in the caller's unit (never another unit's); the "
                       "phone caches them to choose who is present on site while offline.", ref("OfficerList")),
             **errors(401)},
            security=SIGNED_IN, tag="officers")},
        f"{API}/devices": {"post": operation(
            "registerDevice", "Register the phone's signing key under the signed-in user",
            {"200": ok("Already registered with this key (idempotent).", ref("DeviceRegistered")),
             "201": ok("Registered.", ref("DeviceRegistered")),
             **errors(400, 401, 403, 409, 413)},
            security=SIGNED_IN_UNSAFE, tag="devices", body=ref("DeviceRegistration"))},
        f"{API}/devices/{{device_id}}/heartbeat": {"post": operation(
            "deviceHeartbeat", "Report what is still on the phone",
            {"200": ok("Recorded.", ref("HeartbeatAck")), **errors(400, 401, 403, 404, 413)},
            security=SIGNED_IN_UNSAFE, tag="devices", parameters=[device_id], body=ref("Heartbeat"))},
        f"{API}/sync/push": {"post": operation(
            "pushRevisions", "Push signed revisions; each item is answered on its own",
            {"200": ok("Per-item results (a bad item never spoils the others).", ref("PushResponse")),
             **errors(400, 401, 403, 404, 413)},
            security=SIGNED_IN_UNSAFE, tag="sync", body=ref("PushRequest"),
            description="Idempotent: a revision already held is answered `duplicate`; other content for "
                        "the same record and revision is a `conflict` with the server's head.")},
        f"{API}/sync/pull": {"get": operation(
            "pullChanges", "What changed on the server since the phone's cursor",
            {"200": ok("Changes (or, for cursor 0, the full state).", ref("PullResponse")), **errors(400, 401)},
            security=SIGNED_IN, tag="sync", parameters=[cursor])},
        f"{API}/cameras": {"get": operation(
            "listUnitCameras", "The body cameras of the signed-in user's own unit, and who carries each",
            {"200": ok("By serial; the phone caches them to offer cameras on site and to log taking one.",
                       ref("CameraList")), **errors(401)},
            security=SIGNED_IN, tag="footage")},
        f"{API}/footage/visits": {"get": operation(
            "listMyFootageVisits", "Which of the caller's visits have body-camera footage, and which wait for it",
            {"200": ok("Newest first.", ref("FootageVisits")), **errors(401)},
            security=SIGNED_IN, tag="footage")},
        **_media_paths(),
        **_station_paths(),
    }


def _station_paths() -> dict:
    upload_id = _path_parameter("upload_id", uuid_string(), "The id `POST /station/uploads` answered.")
    offset = {"name": "offset", "in": "query", "required": True,
              "schema": integer(None, 0, maximum=INT64_MAX, format="int64"),
              "description": "The bytes the server holds (where this chunk starts)."}
    refused = {"401": refusal("`station_unauthenticated`: the token is unknown or revoked.")}
    unknown = refusal("`unknown_upload`: no such upload of this station (begin it again).")
    return {
        f"{API}/station/uploads": {"post": operation(
            "stationBeginUpload", "A station begins (or finds again) the upload of a footage file",
            {"200": ok("Already stored: nothing to send.", ref("MediaStored")),
             "201": ok("Uploading: send chunks from `offset`.", ref("UploadStarted")),
             "400": refusal("`bad_request`, `bad_hash`, `bad_size`, `bad_type`."), **refused,
             "413": refusal("`too_large`."), "422": refusal("`empty`.")},
            security=STATION, tag="station", body=ref("UploadDeclaration"))},
        f"{API}/station/uploads/{{upload_id}}": {
            "get": operation("stationUploadOffset", "The bytes the server holds of a station's upload",
                             {"200": ok("The offset.", ref("UploadOffset")), **refused, "404": unknown},
                             security=STATION, tag="station", parameters=[upload_id]),
            "put": operation("stationUploadChunk", "A station sends one chunk at the offset the server holds",
                             {"200": ok("The new offset.", ref("UploadOffset")), "400": refusal("`bad_offset`."),
                              **refused, "404": unknown, "409": refusal("`offset_mismatch`."),
                              "411": refusal("`length_required`."),
                              "413": refusal("`too_large`/`chunk_too_large`, `past_declared_size`."),
                              "415": refusal("The bytes are not a video or recording.")},
                             security=STATION, tag="station", parameters=[upload_id, offset],
                             body={"type": "string", "format": "binary"}, body_type=OCTETS),
        },
        f"{API}/station/uploads/{{upload_id}}/complete": {"post": operation(
            "stationCompleteUpload", "Verify the hash and store the original",
            {"200": ok("Stored.", ref("MediaStored")), **refused, "404": unknown,
             "409": refusal("`upload_incomplete`, `restart_upload`."), "415": refusal("Not a video or recording."),
             "422": refusal("`hash_mismatch`.")},
            security=STATION, tag="station", parameters=[upload_id])},
        f"{API}/station/segments": {"post": operation(
            "stationRegisterSegments", "Register uploaded footage files with their manifest rows",
            {"200": ok("The import report, a line per file; the same files again change nothing.",
                       ref("ImportReport")),
             "400": refusal("`bad_request`: not `{files: [...]}` with 1 to 500 rows."), **refused},
            security=STATION, tag="station", body=ref("StationSegments"),
            description="Every byte of each stored original is hashed again (SHA-256, SM3, MD5) and checked "
                        "against the station's hashes; the segment links to visits by camera and time.")},
    }


def build() -> dict:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "fieldapp phone API",
            "version": "1",
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in ("session", "meta", "catalogue", "cases", "officers", "devices", "sync", "media",
                                                    "footage", "station")],
        "paths": paths(),
        "components": {"schemas": schemas(), "responses": responses(), "securitySchemes": security_schemes()},
    }


SPEC: dict = build()


def spec_json() -> dict:
    """The document as served at GET /api/v1/openapi.json."""
    return SPEC
