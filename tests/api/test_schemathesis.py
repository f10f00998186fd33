"""Schemathesis over every operation of the phone's API, signed in, on SQLite and on PostgreSQL.

Requests are generated from the OpenAPI document the app serves (valid ones, and invalid ones where an
operation has inputs), sent straight to the WSGI app with an officer's session cookie and CSRF token
so they reach the handlers, and no answer may be a server error. Plain generation would stop at the
first refusal (an unknown device, a missing signature), so part of the generated requests is brought
closer to real phones: heartbeats and pushes name the officer's registered device, pushed items are
re-signed with its key, and registrations carry a real public key; everything else stays generated.

The run is reproducible (derandomize=True, no example database) and budgeted: EXAMPLES below is sized
so the whole file takes 45-60 s per database backend on a 2-core machine once the app has no known
server error left (today the operations in KNOWN_BUGS stop at their first one, so it is quicker).

Requests at the edges that were or still are server errors run first, as explicit examples. For the
operations in KNOWN_BUGS (app bugs, reported, not fixed here) that makes the test fail whatever the
random generation happens to hit; it is marked xfail(strict=True) on the backends concerned, so once
the bug is fixed the test passes, strict xfail turns that into a failure, and the entry must go.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from fieldapp import db
from fieldapp.footage import register
from fieldapp.models import User
from fieldapp.sync.openapi import SPEC
from fieldapp.sync.push import SIGNED_FIELDS
from fieldapp.sync.signing import NotCanonicalizable
from tests.api.test_openapi import api_app
from tests.support.flows import csrf_token, demo_sign_in, post_json, seed_user
from tests.support.soft_device import SoftDevice

API = "/api/v1"

# Generated requests per operation and generation mode (valid, invalid); each enriched variant
# (see strategies()) counts as a mode of its own. Operations without inputs exhaust after one request.
EXAMPLES = {
    f"GET {API}/session": 5,
    f"GET {API}/openapi.json": 5,
    f"GET {API}/catalogue": 5,
    f"GET {API}/cases": 5,
    f"GET {API}/officers": 5,
    f"GET {API}/catalogue/{{version}}": 150,
    f"GET {API}/sync/pull": 250,
    f"POST {API}/devices": 250,
    f"POST {API}/devices/{{device_id}}/heartbeat": 150,
    f"POST {API}/sync/push": 60,
    f"GET {API}/media/limits": 5,
    f"POST {API}/media/missing": 50,
    f"POST {API}/media/uploads": 80,
    f"GET {API}/media/uploads/{{upload_id}}": 25,
    f"PUT {API}/media/uploads/{{upload_id}}": 60,
    f"POST {API}/media/uploads/{{upload_id}}/complete": 25,
    f"POST {API}/media/previews": 50,
    f"GET {API}/cameras": 5,
    f"GET {API}/footage/visits": 5,
    # A collection station's own API, with its bearer token (the session cookie is ignored there).
    f"POST {API}/station/uploads": 60,
    f"GET {API}/station/uploads/{{upload_id}}": 20,
    f"PUT {API}/station/uploads/{{upload_id}}": 40,
    f"POST {API}/station/uploads/{{upload_id}}/complete": 20,
    f"POST {API}/station/segments": 150,
}


@dataclass
class Officer:
    """A signed-in officer with a registered phone, as seen by generated requests."""

    user_id: str
    cookie: str
    csrf: str
    device: SoftDevice
    catalogue_version: int
    upload_id: str = ""  # an upload the officer began (half sent)
    media_hash: str = ""  # a hash a record the officer pushed references (previews may name it)
    station_token: str = ""  # the unit's collection station (its routes read only this header)

    @property
    def headers(self) -> dict:
        return {"X-CSRFToken": self.csrf, **({"Authorization": f"Bearer {self.station_token}"}
                                              if self.station_token else {})}

    @property
    def cookies(self) -> dict:
        return {"fieldapp_session": self.cookie}


HUGE = 2**63  # beyond SQLite's INTEGER and PostgreSQL's bigint (2**31 is beyond PostgreSQL's integer)
BOTH, POSTGRESQL = frozenset({"sqlite", "postgresql"}), frozenset({"postgresql"})
YEAR_1 = "0001-01-01T00:00:00+01:00"  # valid ISO 8601, but before datetime.min once converted to UTC


@dataclass(frozen=True)
class KnownBug:
    reason: str
    backends: frozenset[str]


# App bugs: operations that answer some valid request with a server error today, on these backends
# (the requests are among edge_requests below). Not fixed here; each names the bug.
KNOWN_BUGS: dict[str, KnownBug] = {}  # none left: each former entry now runs as an edge example


def edge_requests(label: str, officer: Officer) -> list[dict]:
    """Requests at the edges that were or still are server errors, as keyword arguments of
    APIOperation.Case. They run first, as explicit examples: regressions for the fixed ones, and
    for KNOWN_BUGS a failure that does not depend on what random generation happens to hit."""
    device = officer.device
    mine = {"device_id": device.device_id}
    upload = {"upload_id": officer.upload_id}
    return {
        f"GET {API}/catalogue/{{version}}": [{"path_parameters": {"version": 2**31}},
                                            {"path_parameters": {"version": HUGE}}],
        f"GET {API}/sync/pull": [{"query": {"cursor": HUGE}}],
        f"POST {API}/devices/{{device_id}}/heartbeat": [{"path_parameters": mine, "body": body} for body in (
            {"unsynced_items": HUGE}, {"catalogue_version": 2**31}, {"bytes_pending": HUGE},
            {"sent_at": "2100-01-01T00:00:00Z"}, {"sent_at": "1950-01-01T00:00:00Z"},
            {"oldest_unsynced_at": YEAR_1}, {"app_version": "1.0\x00"})],
        f"POST {API}/sync/push": [{"body": body} for body in (
            device.batch(heartbeat={"unsynced_items": HUGE}, sent_at="2100-01-01T00:00:00Z"),
            device.batch(device.revision(device_time=YEAR_1)),
            device.batch(heartbeat={"oldest_unsynced_at": YEAR_1}),
            device.batch(device.revision(reason="\x00")),
            device.batch(device.revision(record_type="case", payload={"kind": "inspection", "party_name": "\x00"})))],
        f"POST {API}/devices": [{"body": {"device_id": str(uuid.uuid4()), "label": "手机\x00",
                                          "public_key": SoftDevice(author=officer.user_id).public_key_b64}}],
        f"POST {API}/media/uploads": [{"body": {"alg": "sha-256", "hash": "ab" * 32, "size": 10, "type": kind}}
                                      for kind in ("image/jpeg\x00", "\x00")],
        f"PUT {API}/media/uploads/{{upload_id}}": [
            {"path_parameters": upload, "query": {"offset": HUGE}, "body": b"\xff\xd8\xff"}],
        f"POST {API}/media/previews": [{"body": {name: b"\xff\xd8\xff"}} for name in (
            f"sha-256:{officer.media_hash}\r", "\r\n", f"sha-256:{officer.media_hash}")],
    }.get(label, [])


@pytest.fixture
def fuzzed(db_url, tmp_path):
    app = api_app(db_url, tmp_path / "var")
    client = app.test_client()
    seeded = seed_user(app, "张伟", "C-1", "ZF1")
    demo_sign_in(client, seeded.user_id)
    version = client.get(f"{API}/catalogue").get_json()["version"]
    device = SoftDevice(author=str(seeded.user_id), catalogue_version=version)
    registered = post_json(client, f"{API}/devices", {"device_id": device.device_id,
                                                      "public_key": device.public_key_b64})
    assert registered.status_code == 201, registered.get_json()
    officer = Officer(str(seeded.user_id), client.get_cookie("fieldapp_session").value, csrf_token(client),
                      device, version)
    officer.upload_id, officer.media_hash = _an_upload_and_a_referenced_hash(client, officer)
    with app.app_context(), db.transaction():
        unit_id = db.session().get(User, seeded.user_id).unit_id
        officer.station_token = register.issue_station(unit_id, "一号采集站", False, None)[1]
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    yield app, schema, officer
    app.extensions["fieldapp.engine"].dispose()


def _an_upload_and_a_referenced_hash(client, officer: Officer) -> tuple[str, str]:
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    began = post_json(client, f"{API}/media/uploads", {"alg": "sha-256", "hash": hashlib.sha256(photo).hexdigest(),
                                                       "size": len(photo), "type": "image/jpeg"})
    upload_id = began.get_json()["upload_id"]
    chunk = client.put(f"{API}/media/uploads/{upload_id}?offset=0", data=photo[:1000], headers=officer.headers,
                       content_type="application/octet-stream")
    assert chunk.status_code == 200, chunk.get_json()
    referenced = hashlib.sha256(b"a photo on the phone").hexdigest()
    item = officer.device.revision(media=[{"alg": "sha-256", "hash": referenced, "size": 20, "type": "image/jpeg"}])
    assert post_json(client, f"{API}/sync/push", officer.device.batch(item)).status_code == 200
    return upload_id, referenced


# ---- bringing generated requests closer to a real phone --------------------------------------------


def _with_body(case, body):
    case.body = body
    return case


def on_my_device(officer: Officer):
    """A push that names the officer's registered device (the rest stays as generated)."""
    def enrich(case):
        if isinstance(case.body, dict):
            return _with_body(case, {**case.body, "device_id": officer.device.device_id})
        return case
    return enrich


def signed_by_my_device(officer: Officer):
    """A push from the officer's device whose object items are made coherent and signed with its key."""
    def sign(item):
        if not isinstance(item, dict):
            return item
        revision = item.get("revision")
        revision = revision if isinstance(revision, int) and not isinstance(revision, bool) and revision >= 1 else 1
        item = {**item, "author": officer.user_id, "device_id": officer.device.device_id, "revision": revision,
                "parent": None if revision == 1 else revision - 1, "catalogue_version": officer.catalogue_version}
        envelope = {name: item.get(name, [] if name in ("media", "withdrawn_media") else None)
                    for name in SIGNED_FIELDS}
        try:
            return {**item, "signature": officer.device.sign(envelope)}
        except NotCanonicalizable:
            return item  # a float or the like: the server must refuse it, signed or not

    def enrich(case):
        if isinstance(case.body, dict) and isinstance(case.body.get("items"), list):
            return _with_body(case, {**case.body, "device_id": officer.device.device_id,
                                     "items": [sign(item) for item in case.body["items"]]})
        return case
    return enrich


def with_a_real_key(officer: Officer):
    """A registration with a real P-256 public key (device id and label as generated)."""
    def enrich(case):
        if isinstance(case.body, dict):
            return _with_body(case, {**case.body, "public_key": SoftDevice(author=officer.user_id).public_key_b64})
        return case
    return enrich


def previews_of_my_media(officer: Officer):
    """Previews whose parts name the hash a pushed record of the officer references."""
    def enrich(case):
        if isinstance(case.body, dict) and case.body:
            names = [f"sha-256:{officer.media_hash}", *case.body][: len(case.body)]
            return _with_body(case, dict(zip(names, case.body.values(), strict=True)))
        return case
    return enrich


def strategies(operation, officer: Officer) -> list:
    """Every strategy for one operation: valid and (if it has inputs) invalid requests, plus the
    enriched variants of valid ones; the session cookie and CSRF header are fixed on all of them."""
    label = f"{operation.method.upper()} {operation.path}"
    spec = SPEC["paths"][operation.path][operation.method.lower()]
    fixed = {"headers": officer.headers, "cookies": officer.cookies}
    modes = [GenerationMode.POSITIVE]
    if spec.get("parameters") or spec.get("requestBody"):
        modes.append(GenerationMode.NEGATIVE)
    found = [operation.as_strategy(generation_mode=mode, **fixed) for mode in modes]
    positive = found[0]
    if label == f"POST {API}/devices/{{device_id}}/heartbeat":
        mine = {"device_id": officer.device.device_id}
        found += [operation.as_strategy(generation_mode=mode, path_parameters=mine, **fixed) for mode in modes]
    elif label == f"POST {API}/sync/push":
        found += [positive.map(on_my_device(officer)), positive.map(signed_by_my_device(officer))]
    elif label == f"POST {API}/devices":
        found.append(positive.map(with_a_real_key(officer)))
    elif "{upload_id}" in operation.path:
        mine = {"upload_id": officer.upload_id}
        found += [operation.as_strategy(generation_mode=mode, path_parameters=mine, **fixed) for mode in modes]
    elif label == f"POST {API}/media/previews":
        found.append(positive.map(previews_of_my_media(officer)))
    return found


# ---- the run ---------------------------------------------------------------------------------------


def _operations() -> list[str]:
    return [f"{method.upper()} {path}" for path, item in SPEC["paths"].items() for method in item]


def test_the_budget_names_every_operation():
    assert set(EXAMPLES) == set(_operations())


@pytest.mark.slow
@pytest.mark.parametrize("label", _operations())
def test_no_generated_request_gets_a_server_error(fuzzed, label, request, capsys):
    app, schema, officer = fuzzed
    backend = request.node.callspec.params["db_url"]
    bug = KNOWN_BUGS.get(label)
    if bug is not None and backend in bug.backends:
        request.applymarker(pytest.mark.xfail(strict=True, reason=bug.reason))
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    variants = strategies(operation, officer)
    statuses: Counter = Counter()
    started = time.perf_counter()

    def call(case):
        response = case.call(headers=officer.headers, cookies=officer.cookies)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error], headers=officer.headers)

    for known in edge_requests(label, officer):
        call = example(case=operation.Case(headers=officer.headers, cookies=officer.cookies, **known))(call)
    call = settings(max_examples=EXAMPLES[label] * len(variants), deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate), print_blob=False, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])(given(case=st.one_of(variants))(call))

    try:
        call()
    finally:
        with capsys.disabled():
            print(f"\n  schemathesis {label} [{backend}]: {sum(statuses.values())} calls in "
                  f"{time.perf_counter() - started:.1f}s, statuses {dict(sorted(statuses.items()))}")
    assert statuses, "no request was made"
