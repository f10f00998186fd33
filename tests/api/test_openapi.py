"""The OpenAPI document of the phone's API: valid, complete, and true to what the server answers.

Every /api/v1 route is documented and nothing else is; a realistic session (sign-in, device, push of
created/duplicate/conflict/rejected items, pull, heartbeat, every refusal) is checked answer by answer
against the documented schema of its status code, on SQLite and on PostgreSQL, and every documented
status of every operation must have been seen at least once, so the document promises no answer the
server never gives.
"""
from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import jsonify
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT4
from sqlalchemy import update

from fieldapp import db
from fieldapp.access import Policy
from fieldapp.models import Device, MediaUpload, utcnow
from fieldapp.sync import openapi
from fieldapp.sync.openapi import SPEC
from fieldapp.sync.push import MAX_BATCH, SIGNED_FIELDS
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, demo_sign_in, seed_user
from tests.support.soft_device import SoftDevice

API = "/api/v1"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ---- helpers shared with test_schemathesis.py ----------------------------------------------------


def serve_openapi(app) -> None:
    """Serve the document at GET /api/v1/openapi.json unless the app already does (the real route)."""
    path = f"{API}/openapi.json"
    if "sync.openapi" in app.view_functions or any(rule.rule == path for rule in app.url_map.iter_rules()):
        return

    def view():
        return jsonify(openapi.spec_json())

    view.access_policy = Policy(public=True)
    app.add_url_rule(path, "sync.openapi", view, methods=["GET"])


def api_app(database_url: str, var_dir):
    app = make_app(database_url, var_dir, demo=True)
    serve_openapi(app)
    return app


def documented_operations() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in METHODS}


def flask_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every /api/v1 route, with Flask's <uuid:device_id> written {device_id}."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(f"{API}/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


_SPEC_URI = "urn:fieldapp:openapi"
_REGISTRY = Registry().with_resource(_SPEC_URI, DRAFT4.create_resource(SPEC))
_FORMATS = FormatChecker()  # every format jsonschema knows, uuid and date-time included


def _pointer(*parts: str) -> str:
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def response_validator(method: str, path: str, status: int) -> OAS30Validator:
    """A validator for the JSON body of ``status`` from the operation, with every $ref resolved in SPEC.

    OAS30Validator understands OpenAPI 3.0's ``nullable``; the registry holds the whole document, so
    ``#/components/...`` references resolve wherever they occur.
    """
    responses = SPEC["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which is not documented"
    location: tuple[str, ...] = ("paths", path, method.lower(), "responses", str(status))
    target = responses[str(status)]
    if "$ref" in target:
        location = tuple(target["$ref"].removeprefix("#/").split("/"))
    schema = {"$ref": f"{_SPEC_URI}#/{_pointer(*location, 'content', 'application/json', 'schema')}"}
    return OAS30Validator(schema, registry=_REGISTRY, format_checker=_FORMATS)


@dataclass
class Conformance:
    """Checks each answer against the document and remembers which (operation, status) were seen."""

    seen: set[tuple[str, str, int]] = field(default_factory=set)

    def check(self, response, method: str, path: str, status: int | None = None):
        if status is not None:
            assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
        assert response.mimetype == "application/json", response.mimetype
        body = response.get_json()
        errors = sorted(response_validator(method, path, response.status_code).iter_errors(body), key=str)
        assert not errors, f"{method} {path} {response.status_code}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
        self.seen.add((method.upper(), path, response.status_code))
        return body


def documented_statuses(prefix: str = API) -> Iterator[tuple[str, str, int]]:
    for method, path in documented_operations():
        if path.startswith(prefix):
            for status in SPEC["paths"][path][method.lower()]["responses"]:
                yield method, path, int(status)


MEDIA = f"{API}/media/"
STATION = f"{API}/station/"  # answers checked in tests/api/test_station_api.py


# ---- the document itself ---------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_0():
    assert SPEC["openapi"] == "3.0.3" and SPEC["servers"] == [{"url": "/"}]
    validate_spec(SPEC)
    assert openapi.spec_json() == SPEC
    json.dumps(SPEC)  # plain JSON all the way down


def test_every_api_route_is_documented_and_nothing_else(sqlite_url, tmp_path):
    app = api_app(sqlite_url, tmp_path / "var")
    try:
        assert flask_routes(app) == documented_operations()
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_a_revision_item_documents_exactly_the_signed_fields_and_the_signature():
    item = SPEC["components"]["schemas"]["RevisionItem"]
    assert list(item["properties"]) == [*SIGNED_FIELDS, "signature"]
    assert set(item["required"]) <= set(item["properties"])
    media = SPEC["components"]["schemas"]["MediaRef"]["properties"]
    assert media["alg"]["enum"] == ["sha-256"] and media["hash"]["pattern"] == "^[0-9a-f]{64}$"
    push = SPEC["components"]["schemas"]["PushResult"]["properties"]
    assert push["status"]["enum"] == ["created", "duplicate", "conflict", "rejected"]


def test_every_operation_says_who_may_call_it():
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie", "name": "fieldapp_session"}
    assert schemes["csrf"] == {**schemes["csrf"], "type": "apiKey", "in": "header", "name": "X-CSRFToken"}
    for method, path in documented_operations():
        security = SPEC["paths"][path][method.lower()]["security"]
        if path in (f"{API}/session", f"{API}/openapi.json"):
            assert security == []
        elif path.startswith(f"{API}/station/"):
            assert security == [{"station": []}]  # a station's token: no session, no CSRF
        elif method in ("POST", "PUT"):
            assert security == [{"session": [], "csrf": []}]
        else:
            assert security == [{"session": []}]


# ---- real answers against the document -------------------------------------------------------------


@pytest.fixture
def api(db_url, tmp_path):
    app = api_app(db_url, tmp_path / "var")
    yield app
    app.extensions["fieldapp.engine"].dispose()


def signed_in_client(app, name: str, cert_no: str, unit: str = "ZF1"):
    seeded = seed_user(app, name, cert_no, unit)
    client = app.test_client()
    demo_sign_in(client, seeded.user_id)
    return client, seeded


def post(client, url: str, body=None, *, data=None, content_type: str | None = None):
    headers = {"X-CSRFToken": csrf_token(client)}
    if data is not None:
        return client.post(url, data=data, content_type=content_type or "application/json", headers=headers)
    return client.post(url, json=body, headers=headers)


def revoke(app, device: SoftDevice) -> None:
    with app.app_context(), db.transaction():
        db.session().execute(update(Device).where(Device.id == uuid.UUID(device.device_id)).values(revoked_at=utcnow()))


def test_real_answers_match_the_documented_schemas(api):
    app, seen = api, Conformance()
    check = seen.check
    anonymous = app.test_client()
    officer, seeded = signed_in_client(app, "张伟", "C-1")
    colleague, colleague_seeded = signed_in_client(app, "李娜", "C-2")
    session, catalogue, catalogue_v = f"{API}/session", f"{API}/catalogue", f"{API}/catalogue/{{version}}"
    cases, devices, heartbeat = f"{API}/cases", f"{API}/devices", f"{API}/devices/{{device_id}}/heartbeat"
    push, pull, document = f"{API}/sync/push", f"{API}/sync/pull", f"{API}/openapi.json"

    # Public: the session probe (both shapes) and the document itself.
    assert check(anonymous.get(session), "GET", session, 200) == {**anonymous.get(session).get_json(),
                                                                  "authenticated": False}
    me = check(officer.get(session), "GET", session, 200)
    assert me["authenticated"] and me["user"]["roles"] == ["officer"]
    assert check(anonymous.get(document), "GET", document, 200) == json.loads(json.dumps(SPEC))

    # Catalogue and cases.
    latest = check(officer.get(catalogue), "GET", catalogue, 200)
    assert check(officer.get(f"{API}/catalogue/{latest['version']}"), "GET", catalogue_v, 200) == latest
    assert check(officer.get(f"{API}/catalogue/999"), "GET", catalogue_v, 404)["error"] == "not_found"
    assert check(anonymous.get(catalogue), "GET", catalogue, 401)["error"] == "unauthenticated"
    check(anonymous.get(f"{API}/catalogue/1"), "GET", catalogue_v, 401)
    assert check(officer.get(cases), "GET", cases, 200) == {"cases": []}
    check(anonymous.get(cases), "GET", cases, 401)
    officers = f"{API}/officers"
    assert [o["cert_no"] for o in check(officer.get(officers), "GET", officers, 200)["officers"]] == ["C-1", "C-2"]
    assert check(anonymous.get(officers), "GET", officers, 401)["error"] == "unauthenticated"

    # Devices: registration, its idempotence and every refusal.
    phone = SoftDevice(author=str(seeded.user_id), catalogue_version=latest["version"])
    registration = {"device_id": phone.device_id, "public_key": phone.public_key_b64, "label": "测试手机"}
    assert check(post(officer, devices, registration), "POST", devices, 201)["device_id"] == phone.device_id
    check(post(officer, devices, registration), "POST", devices, 200)
    other_key = SoftDevice(author=phone.author, device_id=phone.device_id)
    clash = {"device_id": phone.device_id, "public_key": other_key.public_key_b64}
    assert check(post(officer, devices, clash), "POST", devices, 409)["error"] == "device_conflict"
    garbage = {"device_id": str(uuid.uuid4()), "public_key": "bm90IGEga2V5"}
    assert check(post(officer, devices, garbage), "POST", devices, 400)["error"] == "bad_device"
    assert check(post(officer, devices, ["not", "an", "object"]), "POST", devices, 400)["error"] == "bad_request"
    no_csrf = officer.post(devices, json=registration)
    assert check(no_csrf, "POST", devices, 400)["error"] == "csrf_failed"
    assert check(post(anonymous, devices, registration), "POST", devices, 401)["error"] == "unauthenticated"
    oversized = post(officer, devices, data=b'{"label": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert check(oversized, "POST", devices, 413)["error"] == "too_large"
    lost = SoftDevice(author=phone.author, catalogue_version=latest["version"])
    lost_registration = {"device_id": lost.device_id, "public_key": lost.public_key_b64}
    check(post(officer, devices, lost_registration), "POST", devices, 201)
    revoke(app, lost)
    assert check(post(officer, devices, lost_registration), "POST", devices, 403)["error"] == "device_revoked"
    theirs = SoftDevice(author=str(colleague_seeded.user_id), catalogue_version=latest["version"])
    check(post(colleague, devices, {"device_id": theirs.device_id, "public_key": theirs.public_key_b64}),
          "POST", devices, 201)

    # Heartbeat.
    beat = {"app_version": "0.1.0", "catalogue_version": latest["version"], "unsynced_items": 3,
            "bytes_pending": 12_345, "oldest_unsynced_at": "2026-11-27T01:00:00Z", "sent_at": "2026-11-27T02:00:00Z"}
    mine = f"{API}/devices/{phone.device_id}/heartbeat"
    assert check(post(officer, mine, beat), "POST", heartbeat, 200)["ok"] is True
    assert check(post(officer, mine, [1, 2]), "POST", heartbeat, 400)["error"] == "bad_request"
    unknown = f"{API}/devices/{uuid.uuid4()}/heartbeat"
    assert check(post(officer, unknown, beat), "POST", heartbeat, 404)["error"] == "unknown_device"
    not_mine = f"{API}/devices/{theirs.device_id}/heartbeat"
    assert check(post(officer, not_mine, beat), "POST", heartbeat, 403)["error"] == "device_not_yours"
    revoked_beat = post(officer, f"{API}/devices/{lost.device_id}/heartbeat", beat)
    assert check(revoked_beat, "POST", heartbeat, 403)["error"] == "device_revoked"
    check(post(anonymous, mine, beat), "POST", heartbeat, 401)
    check(post(officer, mine, data=b"[" + b"0," * (1024 * 1024) + b"0]"), "POST", heartbeat, 413)

    # Push: created (with media still missing), duplicate, both kinds of conflict, rejected.
    media = [{"alg": "sha-256", "hash": "ab" * 32, "size": 2048, "type": "image/jpeg"}]
    case_item = phone.revision(record_type="case", payload={
        "kind": "inspection", "party_name": "现场新建超市", "credit_code": None, "address": None,
        "case_number": None, "flags": []})
    step = phone.revision(parent_id=case_item["record_id"], media=media, payload={"case_id": case_item["record_id"]})
    first = check(post(officer, push, phone.batch(case_item, step, heartbeat={"unsynced_items": 2})),
                  "POST", push, 200)
    assert [r["status"] for r in first["results"]] == ["created", "created"]
    assert first["results"][1]["missing_media"] == ["ab" * 32]
    rival = phone.revision(record_id=step["record_id"], payload={"notes": "另一版本"})
    gap = phone.revision(record_id=step["record_id"], revision=3, payload={"notes": "跳过第二版"})
    orphan = phone.revision(revision=2, payload={"notes": "第一版从未同步"})
    unsigned = {**phone.revision(), "signature": ""}
    tampered = {**phone.revision(payload={"notes": "签名后被改"}), "payload": {"notes": "被篡改"}}
    second = check(post(officer, push, phone.batch(step, rival, gap, orphan, unsigned, tampered, "not an object",
                                                  {**phone.revision(), "revision": "one"})),
                   "POST", push, 200)
    assert [(r["status"], r.get("error")) for r in second["results"]] == [
        ("duplicate", None), ("conflict", "revision_exists"), ("conflict", "stale_parent"),
        ("conflict", "parent_missing"), ("rejected", "unsigned"), ("rejected", "bad_signature"),
        ("rejected", "bad_item"), ("rejected", "bad_field")]
    assert [r.get("head", {}).get("revision") for r in second["results"][1:4]] == [1, 1, None]
    assert second["results"][-1]["revision"] is None
    assert check(post(officer, push, {"items": "x"}), "POST", push, 400)["error"] == "bad_request"
    assert check(post(officer, push, {"device_id": "x", "items": []}), "POST", push, 400)["error"] == "bad_device"
    too_many = phone.batch(*[phone.revision() for _ in range(MAX_BATCH + 1)])
    assert check(post(officer, push, too_many), "POST", push, 413)["error"] == "batch_too_large"
    stranger = SoftDevice(author=phone.author)
    assert check(post(officer, push, stranger.batch()), "POST", push, 404)["error"] == "unknown_device"
    assert check(post(officer, push, theirs.batch()), "POST", push, 403)["error"] == "device_not_yours"
    assert check(post(officer, push, lost.batch(lost.revision())), "POST", push, 403)["error"] == "device_revoked"
    check(post(anonymous, push, phone.batch()), "POST", push, 401)

    # Pull: a full resync in pages (cases, then review decisions), then changes since a cursor; a
    # bare integer from an older release starts a resync; a bad cursor; and the open cases list.
    full = check(colleague.get(f"{pull}?cursor=0"), "GET", pull, 200)
    assert full["full"] and full["resync"] and full["more"]
    assert [c["party_name"] for c in full["cases"]] == ["现场新建超市"]
    assert check(colleague.get(pull), "GET", pull, 200)["full"] is True
    last = check(colleague.get(f"{pull}?cursor={full['cursor']}"), "GET", pull, 200)
    assert last["resync_complete"] and last["cursor"].startswith("f.")
    since = check(colleague.get(f"{pull}?cursor={last['cursor']}"), "GET", pull, 200)
    assert since == {**since, "full": False, "resync": False, "cases": [], "cursor": last["cursor"]}
    assert check(colleague.get(f"{pull}?cursor=1"), "GET", pull, 200)["full"] is True
    assert check(colleague.get(f"{pull}?cursor=-1"), "GET", pull, 400)["error"] == "bad_cursor"
    check(colleague.get(f"{pull}?cursor=abc"), "GET", pull, 400)
    check(anonymous.get(pull), "GET", pull, 401)
    listed = check(colleague.get(cases), "GET", cases, 200)["cases"]
    assert [c["origin"] for c in listed] == ["phone"]

    # Body cameras of the unit, and the officer's footage state.
    cameras, visits = f"{API}/cameras", f"{API}/footage/visits"
    assert check(officer.get(cameras), "GET", cameras, 200) == {"cameras": []}
    check(anonymous.get(cameras), "GET", cameras, 401)
    assert check(officer.get(visits), "GET", visits, 200) == {"visits": []}
    check(anonymous.get(visits), "GET", visits, 401)

    # Every answer the document promises was given at least once (media and stations: in their tests).
    assert {s for s in documented_statuses() if not s[1].startswith((MEDIA, STATION))} - seen.seen == set()


def test_a_rejected_item_with_a_boolean_revision_gets_revision_null_as_documented(api):
    # Python's bool is an int: a `revision: true` was once echoed back as the revision number.
    officer, seeded = signed_in_client(api, "张伟", "C-1")
    version = officer.get(f"{API}/catalogue").get_json()["version"]
    phone = SoftDevice(author=str(seeded.user_id), catalogue_version=version)
    post(officer, f"{API}/devices", {"device_id": phone.device_id, "public_key": phone.public_key_b64})
    answer = post(officer, f"{API}/sync/push", phone.batch({**phone.revision(), "revision": True}))
    result = Conformance().check(answer, "POST", f"{API}/sync/push", 200)["results"][0]
    assert (result["status"], result["error"], result["revision"]) == ("rejected", "bad_field", None)


def test_media_answers_match_the_documented_schemas(db_url, tmp_path):
    from tests.api.test_media_api import noise_jpeg, sha, solid_jpeg

    # A small preview limit, so that a body over it (8 previews' worth) costs little to send.
    app = make_app(db_url, tmp_path / "var", demo=True, media_preview_max_bytes=64 * 1024)
    serve_openapi(app)
    seen = Conformance()
    check = seen.check
    anonymous = app.test_client()
    officer, seeded = signed_in_client(app, "张伟", "C-1")
    tokens = {}

    def csrf(client) -> dict:
        if id(client) not in tokens:
            tokens[id(client)] = csrf_token(client)
        return {"X-CSRFToken": tokens[id(client)]}
    limits, missing, uploads = f"{API}/media/limits", f"{API}/media/missing", f"{API}/media/uploads"
    upload, complete, previews = (f"{API}/media/uploads/{{upload_id}}", f"{API}/media/uploads/{{upload_id}}/complete",
                                  f"{API}/media/previews")
    photo = noise_jpeg(200, 150)
    digest = sha(photo)
    declaration = {"alg": "sha-256", "hash": digest, "size": len(photo), "type": "image/jpeg"}

    def put(client, upload_id, offset, data):
        return client.put(f"{API}/media/uploads/{upload_id}?offset={offset}", data=data,
                          content_type="application/octet-stream", headers=csrf(client))

    def done(client, upload_id, headers=None):
        return client.post(f"{API}/media/uploads/{upload_id}/complete",
                           headers=csrf(client) if headers is None else headers)

    def begun(data: bytes) -> str:
        body = {"alg": "sha-256", "hash": sha(data), "size": len(data), "type": "image/jpeg"}
        return check(post(officer, uploads, body), "POST", uploads, 201)["upload_id"]

    def set_head(upload_id: str, head: bytes | None) -> None:
        with app.app_context(), db.transaction():
            db.session().execute(update(MediaUpload).where(MediaUpload.id == uuid.UUID(upload_id)).values(head=head))

    try:
        # Limits and the missing-media question.
        assert check(officer.get(limits), "GET", limits, 200)["algorithms"] == ["sha-256"]
        check(anonymous.get(limits), "GET", limits, 401)
        key = {"alg": "sha-256", "hash": digest}
        assert check(post(officer, missing, {"items": [key]}), "POST", missing, 200)["missing"] == [key]
        assert check(post(officer, missing, {"items": "x"}), "POST", missing, 400)["error"] == "bad_request"
        assert check(post(officer, missing, {"items": [{"alg": "sha-256", "hash": "X"}]}), "POST", missing,
                     400)["error"] == "bad_hash"
        check(post(anonymous, missing, {"items": []}), "POST", missing, 401)
        check(post(officer, missing, data=b'{"items": [' + b'{},' * (1024 * 1024) + b'{}]}'), "POST", missing, 413)

        # Begin, chunks, offset, completion.
        started = check(post(officer, uploads, declaration), "POST", uploads, 201)
        upload_id = started["upload_id"]
        assert check(post(officer, uploads, {**declaration, "size": 0}), "POST", uploads, 422)["error"] == "empty"
        assert check(post(officer, uploads, {**declaration, "hash": "X"}), "POST", uploads, 400)["error"] == "bad_hash"
        check(post(officer, uploads, {**declaration, "size": 2**62}), "POST", uploads, 413)
        check(post(anonymous, uploads, declaration), "POST", uploads, 401)
        assert check(put(officer, upload_id, 0, photo[:1000]), "PUT", upload, 200)["offset"] == 1000
        assert check(put(officer, upload_id, 5, photo[5:10]), "PUT", upload, 409)["offset"] == 1000
        assert check(put(officer, upload_id, "x", b"1"), "PUT", upload, 400)["error"] == "bad_offset"
        assert check(put(officer, upload_id, 1000, b""), "PUT", upload, 411)["error"] == "length_required"
        assert check(put(officer, upload_id, 1000, photo[1000:] + b"!"), "PUT", upload,
                     413)["error"] == "past_declared_size"
        assert check(put(officer, uuid.uuid4(), 0, b"1"), "PUT", upload, 404)["error"] == "unknown_upload"
        check(put(anonymous, upload_id, 1000, b"1"), "PUT", upload, 401)
        assert check(officer.get(f"{uploads}/{upload_id}"), "GET", upload, 200)["offset"] == 1000
        check(officer.get(f"{uploads}/{uuid.uuid4()}"), "GET", upload, 404)
        check(anonymous.get(f"{uploads}/{upload_id}"), "GET", upload, 401)
        assert check(done(officer, upload_id), "POST", complete, 409)["error"] == "upload_incomplete"
        check(put(officer, upload_id, 1000, photo[1000:]), "PUT", upload, 200)
        check(done(anonymous, upload_id), "POST", complete, 401)
        check(done(officer, upload_id, headers={}), "POST", complete, 400)
        stored = check(done(officer, upload_id), "POST", complete, 200)
        assert stored["media"]["mime"] == "image/jpeg" and stored["media"]["previews"] == ["preview", "thumb"]
        assert check(post(officer, uploads, declaration), "POST", uploads, 200)["status"] == "stored"
        check(done(officer, uuid.uuid4()), "POST", complete, 404)

        # Refusals of content, of bytes that are not the declared hash, and uploads to start again.
        page = b"<html><body><script>alert(1)</script></body></html>"
        assert check(put(officer, begun(page), 0, page), "PUT", upload, 415)["error"] == "html"
        claimed = noise_jpeg(64, 48, seed=1)
        upload_id = begun(claimed)
        sent = bytearray(claimed)
        sent[-10] ^= 0x01
        put(officer, upload_id, 0, bytes(sent))
        assert check(done(officer, upload_id), "POST", complete, 422)["error"] == "hash_mismatch"
        # A host died after storing the first chunk and before recording it: start again from 0.
        upload_id = begun(noise_jpeg(64, 48, seed=3))
        put(officer, upload_id, 0, noise_jpeg(64, 48, seed=3))
        set_head(upload_id, None)
        restart = check(done(officer, upload_id), "POST", complete, 409)
        assert (restart["error"], restart["offset"]) == ("restart_upload", 0)
        # A head recorded too short to judge (its later chunks landed on another host before it was
        # recorded): never refused on a guess — the phone starts again.
        spaced = b"  " + page
        upload_id = begun(spaced)
        put(officer, upload_id, 0, spaced[:2])
        set_head(upload_id, None)
        put(officer, upload_id, 2, spaced[2:])
        set_head(upload_id, spaced[:2])
        assert check(done(officer, upload_id), "POST", complete, 409)["error"] == "restart_upload"
        # The head recorded is markup: refused at completion too.
        photo = noise_jpeg(64, 48, seed=4)
        upload_id = begun(photo)
        put(officer, upload_id, 0, photo)
        set_head(upload_id, (page * (len(photo) // len(page) + 1))[:len(photo)])
        assert check(done(officer, upload_id), "POST", complete, 415)["error"] == "html"

        # Phone previews: per item, the author of a referencing record only.
        phone = SoftDevice(author=str(seeded.user_id), catalogue_version=latest_catalogue(officer))
        post(officer, f"{API}/devices", {"device_id": phone.device_id, "public_key": phone.public_key_b64})
        other = noise_jpeg(64, 48, seed=4)
        media = [{"alg": "sha-256", "hash": sha(other), "size": len(other), "type": "image/jpeg"}]
        post(officer, f"{API}/sync/push", phone.batch(phone.revision(media=media)))
        parts = {f"sha-256:{sha(other)}": (io.BytesIO(solid_jpeg((9, 9, 9))), "p.jpg"),
                 f"sha-256:{digest}": (io.BytesIO(solid_jpeg((9, 9, 9))), "p.jpg")}
        answer = check(officer.post(previews, data=parts, headers=csrf(officer)), "POST", previews, 200)
        assert [(r["status"], r.get("error")) for r in answer["results"]] == [("stored", None),
                                                                             ("rejected", "not_referenced")]
        check(officer.post(previews, data={}), "POST", previews, 400)
        check(anonymous.post(previews, data={}, headers=csrf(anonymous)), "POST", previews, 401)
        big = {f"sha-256:{sha(other)}": (io.BytesIO(b"\xff" * (8 * 64 * 1024 + 1)), "p.jpg")}
        check(officer.post(previews, data=big, headers=csrf(officer)), "POST", previews, 413)

        assert set(documented_statuses(MEDIA)) - seen.seen == set()
    finally:
        app.extensions["fieldapp.engine"].dispose()


def latest_catalogue(client) -> int:
    return client.get(f"{API}/catalogue").get_json()["version"]
