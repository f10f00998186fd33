"""Passkey enrolment, sign-in, management and their refusals, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from fieldapp import db
from fieldapp.accounts import update_user
from fieldapp.models import Enrollment, EnrollmentEvent, Passkey, User, utcnow
from tests.support.flows import enroll, issue_code, post_form, post_json, seed_user, sign_in, signin_assertion
from tests.support.soft_authenticator import SoftAuthenticator


def enrolled(app, client, cert_no="37030300001", roles="officer", unit="U1"):
    seeded = seed_user(app, "张伟", cert_no, unit, roles)
    authenticator = SoftAuthenticator()
    response, _ = enroll(client, issue_code(app, seeded.user_id), authenticator)
    assert response.status_code == 200, response.get_json()
    return seeded, authenticator


def test_enrol_sign_out_and_sign_in_again_reaches_the_units_home(app, client):
    seeded, authenticator = enrolled(app, client)
    home = client.get("/")
    assert home.status_code == 200 and "单位 U1" in home.get_data(as_text=True)

    post_form(client, "/auth/signout")
    assert client.get("/").status_code == 302  # to the sign-in page

    response, _ = sign_in(client, authenticator)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["redirect"] == "/"
    assert "张伟" in client.get("/").get_data(as_text=True)
    with app.app_context():
        passkey = db.session().execute(select(Passkey)).scalar_one()
        assert passkey.sign_count >= 1 and passkey.last_used_at is not None


def test_a_replayed_assertion_is_refused(app, client):
    _, authenticator = enrolled(app, client)
    post_form(client, "/auth/signout")
    first, assertion = sign_in(client, authenticator)
    assert first.status_code == 200
    post_form(client, "/auth/signout")
    replay = post_json(client, "/auth/signin/verify", {"credential": assertion})
    assert replay.status_code == 401
    assert replay.get_json()["error"] == "challenge_invalid"
    assert client.get("/").status_code == 302


def test_an_assertion_for_another_origin_is_refused(app, client):
    _, authenticator = enrolled(app, client)
    post_form(client, "/auth/signout")
    assertion = signin_assertion(client, authenticator, origin="https://phish.example")
    response = post_json(client, "/auth/signin/verify", {"credential": assertion})
    assert response.status_code == 401 and response.get_json()["error"] == "verification_failed"


def test_rp_id_comes_from_configuration_not_the_host_header(app, client):
    forged = {"Host": "evil.example"}
    token = client.get("/api/v1/session", headers=forged).get_json()["csrf_token"]
    response = client.post("/auth/signin/options", headers={**forged, "X-CSRFToken": token})
    assert response.status_code == 200
    assert response.get_json()["rpId"] == "localhost"


def test_used_expired_and_unknown_codes_are_refused_in_chinese(app, client):
    seeded = seed_user(app, "李娜", "37030300002")
    code = issue_code(app, seeded.user_id)
    ok, _ = enroll(client, code, SoftAuthenticator())
    assert ok.status_code == 200
    post_form(client, "/auth/signout")

    used = client.get(f"/enroll/{code}")
    assert used.status_code == 410 and "已被使用" in used.get_data(as_text=True)
    again = post_json(client, f"/enroll/{code}/options", {"attachment": "platform"})
    assert again.status_code == 410 and again.get_json()["error"] == "code_used"

    expired_code = issue_code(app, seeded.user_id)
    with app.app_context(), db.transaction():
        db.session().execute(update(Enrollment).where(Enrollment.used_at.is_(None))
                             .values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = client.get(f"/enroll/{expired_code}")
    assert expired.status_code == 410 and "已过期" in expired.get_data(as_text=True)

    unknown = client.get("/enroll/AAAAA-BBBBB-CCCCC-DDDDD")
    assert unknown.status_code == 404 and "无效" in unknown.get_data(as_text=True)


def test_a_code_verifies_only_once_even_with_two_options(app, client):
    seeded = seed_user(app, "李娜", "37030300003")
    code = issue_code(app, seeded.user_id)
    first_options = post_json(client, f"/enroll/{code}/options", {"attachment": "platform"}).get_json()
    second_options = post_json(client, f"/enroll/{code}/options", {"attachment": "platform"}).get_json()
    a, b = SoftAuthenticator(), SoftAuthenticator()
    ok = post_json(client, f"/enroll/{code}/verify", {"credential": a.create(first_options, "http://localhost")})
    assert ok.status_code == 200
    late = post_json(client, f"/enroll/{code}/verify", {"credential": b.create(second_options, "http://localhost")})
    assert late.status_code == 410
    with app.app_context():
        assert len(db.session().execute(select(Passkey)).scalars().all()) == 1


def test_second_passkey_then_revoke_one_and_it_stops_working(app, client):
    _, phone = enrolled(app, client)
    key = SoftAuthenticator()
    options = post_json(client, "/account/passkeys/options", {"attachment": "cross-platform"})
    assert options.status_code == 200
    added = post_json(client, "/account/passkeys/verify",
                      {"credential": key.create(options.get_json(), "http://localhost"), "label": "安全密钥"})
    assert added.status_code == 200, added.get_json()
    page = client.get("/account/passkeys").get_data(as_text=True)
    assert "测试手机" in page and "安全密钥" in page

    # Revoke the phone's passkey; the security key keeps working.
    with app.app_context():
        phone_row = db.session().execute(select(Passkey).where(Passkey.label == "测试手机")).scalar_one()
    assert post_form(client, f"/account/passkeys/{phone_row.id}/revoke").status_code == 302
    post_form(client, "/auth/signout")
    refused, _ = sign_in(client, phone)
    assert refused.status_code == 401 and refused.get_json()["error"] == "unknown_credential"
    accepted, _ = sign_in(client, key)
    assert accepted.status_code == 200


def test_the_last_passkey_cannot_be_revoked_by_its_owner(app, client):
    enrolled(app, client)
    with app.app_context():
        only = db.session().execute(select(Passkey)).scalar_one()
    response = post_form(client, f"/account/passkeys/{only.id}/revoke")
    assert response.status_code == 409
    with app.app_context():
        assert db.session().get(Passkey, only.id).revoked_at is None


def test_disabling_a_user_ends_their_session_at_once_and_refuses_sign_in(app, client):
    seeded, authenticator = enrolled(app, client)
    assert client.get("/").status_code == 200
    with app.app_context(), db.transaction():
        update_user(db.session().get(User, seeded.user_id), active=False)
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/session").get_json()["authenticated"] is False
    response, _ = sign_in(client, authenticator)
    assert response.status_code == 403 and response.get_json()["error"] == "user_disabled"


def test_enrolment_failures_reported_by_the_phone_reach_the_admin(app, client):
    seeded = seed_user(app, "赵敏", "37030300004")
    code = issue_code(app, seeded.user_id)
    client.get(f"/enroll/{code}")
    reported = post_json(client, f"/enroll/{code}/events",
                         {"outcome": "capability", "reason": "no_platform_authenticator"})
    assert reported.status_code == 200
    bad = post_json(client, f"/enroll/{code}/events", {"outcome": "succeeded"})
    assert bad.status_code == 400  # the phone cannot claim success
    with app.app_context():
        reasons = db.session().execute(select(EnrollmentEvent.reason)).scalars().all()
    assert "no_platform_authenticator" in reasons


def test_malformed_sign_in_bodies_get_clear_errors(app, client):
    for body in ({}, {"credential": "x"}, {"credential": {"id": "!!", "response": {}}}):
        response = post_json(client, "/auth/signin/verify", body)
        assert response.status_code in (400, 401)
        assert response.get_json()["error"] in {"bad_request", "malformed_credential", "challenge_invalid"}
        assert response.get_json()["message"]
    no_csrf = client.post("/auth/signin/verify", json={})
    assert no_csrf.status_code == 400 and no_csrf.get_json()["error"] == "csrf_failed"
