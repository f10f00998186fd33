"""Every route × every role × own/other unit, generated from app.url_map.

A route that is not listed in ROUTES fails this test: whoever adds a route must say here who may
call it, and the test then proves the app enforces exactly that (401/redirect for anonymous users,
403 for a missing role, 404 for another unit's resource).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.accounts import create_unit, create_user, parse_roles, update_user
from fieldapp.auth import enrollment
from fieldapp.models import Passkey, Role
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token

PUBLIC = "public"
SIGNED_IN = "signed_in"
STATION = "station"  # a collection station's bearer token: every user session is refused
R = Role


REVIEWERS = frozenset({R.LEAD, R.SUPERVISOR, R.DIVISION_HEAD, R.BUREAU_HEAD, R.RECORDS_ADMIN})
DECIDERS = frozenset({R.LEAD})


@dataclass(frozen=True)
class Access:
    who: str | frozenset[Role]
    unit_scoped: bool = False  # the URL names a unit: other units' data answers 404


ROUTES: dict[str, Access] = {
    "static": Access(PUBLIC),
    "ops.healthz": Access(PUBLIC),
    "ops.livez": Access(PUBLIC),
    "ops.metrics": Access(PUBLIC),  # no sign-in; answered only to FIELDAPP_METRICS_ALLOW (test client: 127.0.0.1)
    "ops.manifest": Access(PUBLIC),
    "ops.service_worker": Access(PUBLIC),
    "ops.set_language": Access(PUBLIC),
    "capture.help_page": Access(PUBLIC),
    "sync.session_state": Access(PUBLIC),
    "sync.openapi": Access(PUBLIC),
    "auth.signin_page": Access(PUBLIC),
    "auth.signin_options": Access(PUBLIC),
    "auth.signin_verify": Access(PUBLIC),
    "auth.signout": Access(PUBLIC),
    "auth.demo_page": Access(PUBLIC),
    "auth.demo_signin": Access(PUBLIC),
    "auth.enroll_page": Access(PUBLIC),
    "auth.enroll_options": Access(PUBLIC),
    "auth.enroll_verify": Access(PUBLIC),
    "auth.enroll_event": Access(PUBLIC),
    "capture.home": Access(SIGNED_IN),
    "sync.catalogue_latest": Access(SIGNED_IN),
    "sync.catalogue_version": Access(SIGNED_IN),
    "sync.open_cases": Access(SIGNED_IN),
    "sync.unit_officers": Access(SIGNED_IN),
    "sync.register_device": Access(SIGNED_IN),
    "sync.heartbeat": Access(SIGNED_IN),
    "sync.push": Access(SIGNED_IN),
    "sync.pull": Access(SIGNED_IN),
    "sync.media_limits": Access(SIGNED_IN),
    "sync.media_missing": Access(SIGNED_IN),
    "sync.begin_upload": Access(SIGNED_IN),
    "sync.upload_offset": Access(SIGNED_IN),
    "sync.upload_chunk": Access(SIGNED_IN),
    "sync.complete_upload": Access(SIGNED_IN),
    "sync.phone_previews": Access(SIGNED_IN),
    "capture.units": Access(SIGNED_IN),
    "capture.unit_page": Access(SIGNED_IN, unit_scoped=True),
    "auth.passkeys_page": Access(SIGNED_IN),
    "auth.passkey_add_options": Access(SIGNED_IN),
    "auth.passkey_add_verify": Access(SIGNED_IN),
    "auth.passkey_revoke": Access(SIGNED_IN),
    "auth.signout_everywhere": Access(SIGNED_IN),
    "admin.index": Access(frozenset({R.ADMIN})),
    "admin.enrollment_problems": Access(frozenset({R.ADMIN})),
    "admin.unit_create": Access(frozenset({R.ADMIN})),
    "admin.user_create": Access(frozenset({R.ADMIN})),
    "admin.user_detail": Access(frozenset({R.ADMIN})),
    "admin.user_update": Access(frozenset({R.ADMIN})),
    "admin.user_enroll": Access(frozenset({R.ADMIN})),
    "admin.passkey_revoke": Access(frozenset({R.ADMIN})),
    "admin.catalogue_page": Access(frozenset({R.ADMIN})),
    "admin.catalogue_add_step": Access(frozenset({R.ADMIN})),
    "admin.devices_page": Access(frozenset({R.ADMIN})),
    "admin.device_revoke": Access(frozenset({R.ADMIN})),
    "admin.import_unsynced": Access(frozenset({R.ADMIN})),
    "admin.calendar_page": Access(frozenset({R.ADMIN})),
    "admin.calendar_load": Access(frozenset({R.ADMIN})),
    "admin.audit_page": Access(frozenset({R.ADMIN})),
    "admin.audit_checkpoint": Access(frozenset({R.ADMIN})),
    # Review: everybody who reviews reads; only a lead decides for their unit.
    "review.pending_page": Access(REVIEWERS),
    "review.queue_page": Access(REVIEWERS),
    "review.cases_page": Access(REVIEWERS),
    "review.case_page": Access(REVIEWERS),
    "review.findings_page": Access(REVIEWERS),
    "review.deadlines_page": Access(REVIEWERS),
    "review.reports_page": Access(REVIEWERS),
    "review.records_page": Access(REVIEWERS),
    "review.record_page": Access(REVIEWERS),
    "review.media_file": Access(REVIEWERS),
    "review.open_original": Access(REVIEWERS),
    "review.original_bytes": Access(REVIEWERS),
    "review.create_case": Access(DECIDERS),
    "review.import_cases": Access(DECIDERS),
    "review.assign": Access(DECIDERS),
    "review.unassign": Access(DECIDERS),
    "review.stage_done": Access(DECIDERS),
    "review.act_ended": Access(DECIDERS),
    "review.archive": Access(DECIDERS),
    "review.decide": Access(DECIDERS),
    "review.accept_exception": Access(DECIDERS),
    "review.acknowledge_report": Access(DECIDERS),
    # Body-camera footage: the phone's camera list and footage state; the stations' own API; the
    # register kept by the records administrator (stations by the admin); the leads' queue.
    "footage.unit_cameras": Access(SIGNED_IN),
    "footage.my_visits": Access(SIGNED_IN),
    "footage.station_begin": Access(STATION),
    "footage.station_offset": Access(STATION),
    "footage.station_chunk": Access(STATION),
    "footage.station_complete": Access(STATION),
    "footage.station_segments": Access(STATION),
    "footage.cameras_page": Access(frozenset({R.RECORDS_ADMIN, R.ADMIN})),
    "footage.camera_add": Access(frozenset({R.RECORDS_ADMIN, R.ADMIN})),
    "footage.handout_add": Access(frozenset({R.RECORDS_ADMIN, R.ADMIN})),
    "footage.handout_return": Access(frozenset({R.RECORDS_ADMIN, R.ADMIN})),
    "footage.station_issue": Access(frozenset({R.ADMIN})),
    "footage.station_revoke": Access(frozenset({R.ADMIN})),
    "footage.queue_page": Access(REVIEWERS),
    "records.register_page": Access(frozenset({R.RECORDS_ADMIN, R.LEAD, R.DIVISION_HEAD, R.BUREAU_HEAD, R.SUPERVISOR})),
    "records.grant_register": Access(frozenset({R.RECORDS_ADMIN})),
    "records.grant_page": Access(SIGNED_IN),
    "records.my_grants": Access(SIGNED_IN),
    "documents.package_build": Access(frozenset({R.RECORDS_ADMIN})),
    "paper.verify_code": Access(PUBLIC),
    "paper.record_document": Access(REVIEWERS),
    "paper.case_document": Access(frozenset({R.LEAD, R.RECORDS_ADMIN})),
    "paper.document_pdf": Access(REVIEWERS),
    "paper.document_page": Access(REVIEWERS),
    "paper.upload_scan": Access(frozenset({R.OFFICER, R.LEAD, R.RECORDS_ADMIN})),
    "paper.scan_file": Access(REVIEWERS),
    "documents.package_page": Access(frozenset({R.RECORDS_ADMIN, R.LEAD})),
    "documents.package_file": Access(frozenset({R.RECORDS_ADMIN})),
    "records.grant_decide": Access(frozenset({R.LEAD, R.DIVISION_HEAD, R.BUREAU_HEAD})),
    "records.grant_revoke": Access(frozenset({R.RECORDS_ADMIN})),
    "records.grant_view": Access(SIGNED_IN),
    "records.grant_copy": Access(frozenset({R.RECORDS_ADMIN})),
    "records.retention_page": Access(frozenset({R.RECORDS_ADMIN, R.DIVISION_HEAD, R.LEAD})),
    "backups.backups_page": Access(frozenset({R.RECORDS_ADMIN, R.LEAD})),
    "records.disposal_propose": Access(frozenset({R.RECORDS_ADMIN})),
    "records.disposal_approve": Access(frozenset({R.DIVISION_HEAD})),
    "records.disposal_withdraw": Access(frozenset({R.RECORDS_ADMIN})),
    "records.disposal_recover": Access(frozenset({R.RECORDS_ADMIN, R.DIVISION_HEAD})),
    "records.hold_place": Access(frozenset({R.RECORDS_ADMIN, R.LEAD})),
    "records.hold_release": Access(frozenset({R.RECORDS_ADMIN, R.LEAD})),
    "records.case_marks": Access(frozenset({R.LEAD})),
    "footage.segment_link": Access(frozenset({R.LEAD, R.RECORDS_ADMIN})),
    "footage.segment_derivative": Access(REVIEWERS),
    "footage.segment_open": Access(REVIEWERS),
    # Statistics (art. 32): the policy section and the bureau's leaders, each lead for their unit.
    "statistics.index": Access(frozenset({R.SUPERVISOR, R.DIVISION_HEAD, R.BUREAU_HEAD, R.LEAD})),
    "statistics.drill": Access(frozenset({R.SUPERVISOR, R.DIVISION_HEAD, R.BUREAU_HEAD, R.LEAD})),
    "statistics.export_xlsx": Access(frozenset({R.SUPERVISOR, R.DIVISION_HEAD, R.BUREAU_HEAD, R.LEAD})),
    "statistics.refresh": Access(frozenset({R.SUPERVISOR})),
}

# Who sees which unit's data (art. 5 and art. 29's leaders).
SEES_EVERY_UNIT = {R.SUPERVISOR, R.BUREAU_HEAD, R.ADMIN}


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role | None  # None: not signed in
    oversees_other_unit: bool = False


ACTORS = [Actor("anonymous", None)] + [Actor(r.value, r) for r in Role] + [
    Actor("division_head_of_other_unit", R.DIVISION_HEAD, oversees_other_unit=True)
]


@pytest.fixture
def world(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    with app.app_context(), db.transaction():
        own = create_unit("OWN", "本单位")
        other = create_unit("OTHER", "其他单位")
        users = {}
        for actor in ACTORS[1:]:
            user = create_user(actor.name, f"C-{actor.name}", own, {actor.role})
            if actor.oversees_other_unit:
                update_user(user, overseen_units=[other])
            users[actor.name] = user.id
        target = create_user("他人", "C-target", other, parse_roles("officer"))
        db.session().add(Passkey(user_id=target.id, credential_id=secrets.token_bytes(32),
                                 public_key=b"\x00", label="x"))
        db.session().flush()
        passkey_id = db.session().execute(select(Passkey.id)).scalar_one()
        code = enrollment.issue(target, 24).code
        ids = {"own_unit": own.id, "other_unit": other.id, "target_user": target.id,
               "passkey": passkey_id, "code": code}
    yield app, users, ids
    app.extensions["fieldapp.engine"].dispose()


def url_variants(rule, ids) -> list[tuple[str, str]]:
    """(variant, url) pairs: unit-scoped rules once for the own and once for another unit."""
    values = {"user_id": ids["target_user"], "passkey_id": ids["passkey"], "code": ids["code"],
              "filename": "css/app.css", "version": 1,
              "device_id": ids["passkey"], "upload_id": ids["passkey"], "record_id": ids["passkey"],
              "case_id": ids["passkey"], "activity_id": ids["passkey"], "finding_id": ids["passkey"],
              "alg": "sha-256", "digest": "ab" * 32, "variant": "preview", "token": "not-a-link",
              "segment_id": ids["passkey"], "handout_id": ids["passkey"], "station_id": ids["passkey"],
              "grant_id": ids["passkey"], "disposal_id": ids["passkey"], "hold_id": ids["passkey"],
              "package_id": ids["passkey"], "name": "x.zip", "document_id": ids["passkey"], "kind": "photo_sheet",
              "scan_id": ids["passkey"]}
    if rule.endpoint == "paper.case_document":
        values["kind"] = "file_index"
    values = {k: v for k, v in values.items() if k in rule.arguments}
    if "unit_id" in rule.arguments:
        return [(variant, rule.build({**values, "unit_id": ids[f"{variant}_unit"]})[1])
                for variant in ("own", "other")]
    return [("own", rule.build(values)[1])]


def expected_outcome(access: Access, actor: Actor, variant: str) -> str:
    if access.who == PUBLIC:
        return "allowed"
    if access.who == STATION or actor.role is None:
        return "sign_in"
    if access.who != SIGNED_IN and actor.role not in access.who:
        return "forbidden"
    if access.unit_scoped and variant == "other":
        visible = actor.role in SEES_EVERY_UNIT or actor.oversees_other_unit
        return "allowed" if visible else "not_found"
    return "allowed"


def request_as(app, users, actor: Actor, method: str, url: str):
    client = app.test_client()
    if actor.role is not None:
        token = csrf_token(client)
        signed_in = client.post("/auth/demo", data={"csrf_token": token, "user_id": str(users[actor.name])})
        assert signed_in.status_code == 302
    token = csrf_token(client)
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token})


def test_every_route_has_an_access_rule(world):
    app, _, _ = world
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = sorted(endpoints - ROUTES.keys())
    assert not missing, f"routes without an access rule in this test: {missing}"
    stale = sorted(ROUTES.keys() - endpoints)
    assert not stale, f"rules for routes that no longer exist: {stale}"


def test_every_route_answers_every_role_as_its_rule_says(world):
    app, users, ids = world
    failures = []
    checked = 0
    for rule in app.url_map.iter_rules():
        access = ROUTES[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for variant, url in url_variants(rule, ids):
                for actor in ACTORS:
                    expected = expected_outcome(access, actor, variant)
                    response = request_as(app, users, actor, method, url)
                    status = response.status_code
                    location = response.headers.get("Location", "")
                    # A refused request is sent to sign in with next=; signing out lands there without.
                    actual = (
                        "sign_in" if status == 401 or (status == 302 and "/auth/signin" in location
                                                      and rule.endpoint not in {"auth.signout"}
                                                      and "next=" in location)
                        else "forbidden" if status == 403
                        else "not_found" if status == 404 and expected == "not_found"
                        else "allowed" if status not in (401, 403) else f"status {status}"
                    )
                    checked += 1
                    if actual != expected:
                        failures.append(f"{method} {url} as {actor.name}: expected {expected}, got {status} {location}")
    assert checked > 200
    assert not failures, "\n".join(failures)


def test_division_head_sees_only_units_they_oversee(world):
    app, users, ids = world
    head = Actor("division_head", R.DIVISION_HEAD)
    assert request_as(app, users, head, "GET", f"/units/{ids['other_unit']}").status_code == 404
    overseer = Actor("division_head_of_other_unit", R.DIVISION_HEAD, oversees_other_unit=True)
    page = request_as(app, users, overseer, "GET", f"/units/{ids['other_unit']}")
    assert page.status_code == 200 and "他人" in page.get_data(as_text=True)
    listing = request_as(app, users, head, "GET", "/units").get_data(as_text=True)
    assert "本单位" in listing and "其他单位" not in listing


def test_a_view_without_a_policy_is_refused_for_everybody(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var")
    app.add_url_rule("/unguarded", "unguarded", lambda: "secret")
    response = app.test_client().get("/unguarded")
    assert response.status_code == 403 and b"secret" not in response.data
    app.extensions["fieldapp.engine"].dispose()
