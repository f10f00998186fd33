"""Nothing a ceremony or a limit needs lives in one process: two app instances on one database
behave as one, and sign-in limits protect a passkey without locking out an office behind one NAT."""
from __future__ import annotations

import pytest

from tests.support.appfactory import make_app
from tests.support.flows import enroll, issue_code, post_json, seed_user, sign_in, signin_assertion
from tests.support.soft_authenticator import SoftAuthenticator


@pytest.fixture
def two_apps(db_url, tmp_path):
    """Two independent app instances (as two gunicorn workers or hosts) on one database."""
    first = make_app(db_url, tmp_path / "var-a")
    second = make_app(db_url, tmp_path / "var-b")
    yield first, second
    for app in (first, second):
        app.extensions["fieldapp.engine"].dispose()


def test_a_passkey_ceremony_completes_across_two_app_instances(two_apps):
    first, second = two_apps
    seeded = seed_user(first, "张伟", "37030300011")
    code = issue_code(first, seeded.user_id)
    authenticator = SoftAuthenticator()
    client_a, client_b = first.test_client(), second.test_client()

    # Registration: options from instance A, verification on instance B.
    options = post_json(client_a, f"/enroll/{code}/options", {"attachment": "platform"}).get_json()
    credential = authenticator.create(options, "http://localhost")
    registered = post_json(client_b, f"/enroll/{code}/verify", {"credential": credential})
    assert registered.status_code == 200, registered.get_json()

    # Sign-in: options from B, assertion verified on A, and A's session works.
    fresh_a, fresh_b = first.test_client(), second.test_client()
    assertion = signin_assertion(fresh_b, authenticator)
    verified = post_json(fresh_a, "/auth/signin/verify", {"credential": assertion})
    assert verified.status_code == 200, verified.get_json()
    assert "张伟" in fresh_a.get("/").get_data(as_text=True)

    # The challenge is spent for both instances: a replay on B fails too.
    replay = post_json(fresh_b, "/auth/signin/verify", {"credential": assertion})
    assert replay.status_code == 401 and replay.get_json()["error"] == "challenge_invalid"


def test_failed_verifications_of_one_passkey_are_limited(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", signin_credential_failure_limit=3)
    client = app.test_client()
    seeded = seed_user(app, "李娜", "37030300012")
    authenticator = SoftAuthenticator()
    enroll(client, issue_code(app, seeded.user_id), authenticator)
    for _ in range(3):
        bad = signin_assertion(client, authenticator, origin="https://phish.example")
        assert post_json(client, "/auth/signin/verify", {"credential": bad}).status_code == 401
    # Even a valid assertion is now refused for this passkey, with a clear message.
    blocked, _ = sign_in(client, authenticator)
    assert blocked.status_code == 429
    assert blocked.get_json()["error"] == "rate_limited" and "稍等" in blocked.get_json()["message"]
    app.extensions["fieldapp.engine"].dispose()


def test_a_whole_office_behind_one_address_signs_in_at_shift_start(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var")
    officers = []
    for i in range(25):
        seeded = seed_user(app, f"队员{i}", f"3703030100{i:02d}")
        authenticator = SoftAuthenticator()
        response, _ = enroll(app.test_client(), issue_code(app, seeded.user_id), authenticator)
        assert response.status_code == 200
        officers.append(authenticator)
    # All from the test client's one address (127.0.0.1), as behind the office's NAT.
    for authenticator in officers:
        response, _ = sign_in(app.test_client(), authenticator)
        assert response.status_code == 200, response.get_json()
    app.extensions["fieldapp.engine"].dispose()


def test_one_address_flooding_sign_in_is_limited_when_on_and_not_when_off(db_url, tmp_path):
    limited = make_app(db_url, tmp_path / "var-a", signin_ip_limit=5)
    client = limited.test_client()
    statuses = [post_json(client, "/auth/signin/options").status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    # Another address is not affected by this one's flood.
    other = limited.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert post_json(other, "/auth/signin/options").status_code == 200

    unlimited = make_app(db_url, tmp_path / "var-b", signin_ip_limit=5, rate_limit_enabled=False)
    client = unlimited.test_client()
    assert all(post_json(client, "/auth/signin/options").status_code == 200 for _ in range(8))
    for app in (limited, unlimited):
        app.extensions["fieldapp.engine"].dispose()
