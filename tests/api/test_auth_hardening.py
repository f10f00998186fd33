"""Sign-in cannot be turned into a redirect to another site, and signing out ends the session on
the server: a copy of the cookie is refused afterwards by every app instance, on both databases."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from fieldapp import db
from fieldapp.accounts import update_user
from fieldapp.auth.session import LAST_SEEN_RESOLUTION
from fieldapp.models import User, UserSession
from tests.support.appfactory import make_app
from tests.support.flows import (
    demo_sign_in,
    enroll,
    issue_code,
    post_form,
    post_json,
    seed_user,
    sign_in,
    signin_assertion,
)
from tests.support.soft_authenticator import SoftAuthenticator
from tests.unit.test_safe_redirect import HOSTILE_TARGETS, NOT_STRINGS, SAME_ORIGIN

SESSION_COOKIE = "fieldapp_session"
HOME = "/"


@pytest.fixture
def two_apps(db_url, tmp_path, monkeypatch):
    """Two app instances built from one configuration, as two hosts behind a load balancer."""
    monkeypatch.delenv("FIELDAPP_DEMO", raising=False)
    first = make_app(db_url, tmp_path / "var-a", demo=True)
    second = make_app(db_url, tmp_path / "var-b", demo=True)
    yield first, second
    for app in (first, second):
        app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def demo_app(two_apps):
    return two_apps[0]


def enrolled(app, cert_no="37030320001"):
    """A user with a passkey, and the client that enrolled it (signed in by the enrolment)."""
    seeded = seed_user(app, "张伟", cert_no)
    authenticator = SoftAuthenticator()
    client = app.test_client()
    response, _ = enroll(client, issue_code(app, seeded.user_id), authenticator)
    assert response.status_code == 200, response.get_json()
    return seeded, authenticator, client


def signed_in(client) -> bool:
    return client.get("/api/v1/session").get_json()["authenticated"] is True


def saved_cookie(client) -> str:
    return client.get_cookie(SESSION_COOKIE).value


def client_with_cookie(app, cookie: str):
    client = app.test_client()
    client.set_cookie(SESSION_COOKIE, cookie)
    return client


def assert_same_origin_location(location: str) -> None:
    parts = urlsplit(location)
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in parts.path and not parts.scheme and not parts.netloc, location


# ---- item 6: no open redirect after sign-in ---------------------------------------------------

def test_the_reported_tab_and_newline_targets_go_home(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320011")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    tab = client.get("/auth/signin?next=/%09/evil.example")
    assert tab.status_code == 302 and tab.headers["Location"] == HOME
    newline = client.get("/auth/signin?next=/%0a/evil.example")
    assert newline.status_code == 302 and newline.headers["Location"] == HOME


def test_no_hostile_next_leaves_the_origin_through_the_location_header(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320012")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    wrong = {}
    for target in HOSTILE_TARGETS:
        response = client.get("/auth/signin", query_string={"next": target})
        if response.status_code != 302 or response.headers["Location"] != HOME:
            wrong[target] = (response.status_code, response.headers.get("Location"))
    assert not wrong


def test_same_origin_targets_are_followed_through_the_location_header(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320013")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    for target, _ in SAME_ORIGIN:
        response = client.get("/auth/signin", query_string={"next": target})
        assert response.status_code == 302, target
        assert_same_origin_location(response.headers["Location"])
    kept = client.get("/auth/signin", query_string={"next": "/units?tab=1"})
    assert kept.headers["Location"] == "/units?tab=1"


def test_no_hostile_next_reaches_the_json_redirect_of_a_passkey_sign_in(demo_app):
    _, authenticator, client = enrolled(demo_app, "37030320014")
    wrong = {}
    for target in HOSTILE_TARGETS + NOT_STRINGS:
        assertion = signin_assertion(client, authenticator)
        response = post_json(client, "/auth/signin/verify", {"credential": assertion, "next": target})
        if response.status_code != 200 or response.get_json()["redirect"] != HOME:
            wrong[repr(target)] = (response.status_code, response.get_data(as_text=True)[:200])
    assert not wrong


def test_a_same_origin_next_is_handed_to_the_sign_in_page_as_a_browser_reads_it(demo_app):
    _, authenticator, client = enrolled(demo_app, "37030320015")
    assertion = signin_assertion(client, authenticator)
    response = post_json(client, "/auth/signin/verify", {"credential": assertion, "next": "/units\\1?x=\\"})
    assert response.status_code == 200 and response.get_json()["redirect"] == "/units/1?x=\\"


def test_the_sign_in_page_passes_on_only_a_safe_next(demo_app):
    client = demo_app.test_client()
    page = client.get("/auth/signin", query_string={"next": "/\t/evil.example"}).get_data(as_text=True)
    assert 'data-next="/"' in page and "evil.example" not in page
    kept = client.get("/auth/signin", query_string={"next": "/units"}).get_data(as_text=True)
    assert 'data-next="/units"' in kept


def test_the_language_switch_redirects_only_within_the_origin(demo_app):
    client = demo_app.test_client()
    wrong = {}
    for target in HOSTILE_TARGETS:
        response = post_form(client, "/lang", {"locale": "en", "next": target})
        if response.status_code != 302 or response.headers["Location"] != HOME:
            wrong[target] = (response.status_code, response.headers.get("Location"))
    assert not wrong
    kept = post_form(client, "/lang", {"locale": "zh_CN", "next": "/help"})
    assert kept.headers["Location"] == "/help"


# ---- item 7: signing out ends the session on the server ------------------------------------

def test_a_cookie_saved_before_sign_out_is_refused_afterwards_on_every_instance(two_apps):
    first, second = two_apps
    _, authenticator, client = enrolled(first, "37030320021")
    post_form(client, "/auth/signout")
    response, _ = sign_in(client, authenticator)
    assert response.status_code == 200
    cookie = saved_cookie(client)
    assert signed_in(client_with_cookie(first, cookie))
    assert signed_in(client_with_cookie(second, cookie))  # the same cookie works on both hosts

    assert post_form(client, "/auth/signout").status_code == 302
    assert not signed_in(client)
    for app in (first, second):
        replay = client_with_cookie(app, cookie)
        assert not signed_in(replay)
        assert replay.get("/").status_code == 302  # to the sign-in page


def test_a_demo_sign_in_opens_a_session_that_sign_out_ends(two_apps):
    first, second = two_apps
    seeded = seed_user(first, "张伟", "37030320022")
    client = first.test_client()
    demo_sign_in(client, seeded.user_id)
    cookie = saved_cookie(client)
    assert signed_in(client_with_cookie(second, cookie))
    post_form(client, "/auth/signout")
    assert not signed_in(client_with_cookie(first, cookie))
    assert not signed_in(client_with_cookie(second, cookie))


def test_a_json_sign_out_ends_the_session_too(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320023")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    cookie = saved_cookie(client)
    response = post_json(client, "/auth/signout")
    assert response.status_code == 200 and response.get_json()["redirect"] == "/auth/signin"
    assert not signed_in(client_with_cookie(demo_app, cookie))


def test_another_user_signing_in_on_the_same_browser_ends_the_previous_session(demo_app):
    zhang = seed_user(demo_app, "张伟", "37030320031")
    li = seed_user(demo_app, "李娜", "37030320032")
    client = demo_app.test_client()
    demo_sign_in(client, zhang.user_id)
    zhangs_cookie = saved_cookie(client)
    demo_sign_in(client, li.user_id)
    assert signed_in(client)
    assert not signed_in(client_with_cookie(demo_app, zhangs_cookie))


def test_signing_out_on_one_device_leaves_the_others_signed_in(two_apps):
    first, second = two_apps
    _, authenticator, phone = enrolled(first, "37030320024")
    laptop = second.test_client()
    response, _ = sign_in(laptop, authenticator)
    assert response.status_code == 200
    post_form(laptop, "/auth/signout")
    assert not signed_in(laptop)
    assert signed_in(phone)


def test_sign_out_everywhere_ends_a_session_held_by_another_client(two_apps):
    first, second = two_apps
    _, authenticator, phone = enrolled(first, "37030320025")
    phone_cookie = saved_cookie(phone)
    laptop = second.test_client()
    response, _ = sign_in(laptop, authenticator)
    assert response.status_code == 200

    page = laptop.get("/account/passkeys").get_data(as_text=True)
    assert page.count('data-testid="session"') == 2 and 'data-testid="signout-everywhere"' in page

    ended = post_form(laptop, "/account/sessions/end-all")
    assert ended.status_code == 302 and ended.headers["Location"] == "/auth/signin"
    assert 'class="flash flash-ok"' in laptop.get("/auth/signin").get_data(as_text=True)
    assert not signed_in(laptop)
    assert not signed_in(phone)
    assert not signed_in(client_with_cookie(second, phone_cookie))
    # Signing in again starts a fresh session that works.
    again, _ = sign_in(phone, authenticator)
    assert again.status_code == 200 and signed_in(phone)


def test_sign_out_everywhere_needs_its_csrf_token(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320026")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    assert client.post("/account/sessions/end-all").status_code == 400
    assert signed_in(client)


def test_disabling_a_user_still_ends_every_session(two_apps):
    first, second = two_apps
    seeded = seed_user(first, "张伟", "37030320027")
    phone, laptop = first.test_client(), second.test_client()
    demo_sign_in(phone, seeded.user_id)
    demo_sign_in(laptop, seeded.user_id)
    cookie = saved_cookie(phone)
    with first.app_context(), db.transaction():
        update_user(db.session().get(User, seeded.user_id), active=False)
    assert not signed_in(phone) and not signed_in(laptop)
    with first.app_context():
        still_open = db.session().execute(
            select(UserSession).where(UserSession.user_id == seeded.user_id, UserSession.ended_at.is_(None))
        ).scalars().all()
    assert still_open == []
    with first.app_context(), db.transaction():
        update_user(db.session().get(User, seeded.user_id), active=True)
    # Enabling the user again does not revive the old cookies.
    assert not signed_in(client_with_cookie(second, cookie))


def test_a_cookie_without_a_recorded_session_is_refused(demo_app):
    """A signed cookie naming the user, as every cookie did before sessions were recorded."""
    seeded = seed_user(demo_app, "张伟", "37030320028")
    with demo_app.app_context():
        epoch = db.session().get(User, seeded.user_id).session_epoch
    for token in (None, "never-issued"):
        client = demo_app.test_client()
        with client.session_transaction() as cookie_session:
            cookie_session["_user_id"] = f"{seeded.user_id}:{epoch}"
            cookie_session["_fresh"] = True
            if token:
                cookie_session["_session_token"] = token
        assert not signed_in(client)


def test_an_ordinary_request_does_not_write_and_activity_is_recorded_now_and_then(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320029")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)

    def last_seen():
        with demo_app.app_context():
            return db.session().execute(
                select(UserSession.last_seen_at).where(UserSession.user_id == seeded.user_id)
            ).scalar_one()

    first_seen = last_seen()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert last_seen() == first_seen

    long_ago = first_seen - LAST_SEEN_RESOLUTION - timedelta(minutes=1)
    with demo_app.app_context(), db.transaction():
        db.session().execute(update(UserSession).values(last_seen_at=long_ago))
    assert client.get("/").status_code == 200  # a GET, so on SQLite it must take the write lock
    assert last_seen() > long_ago + LAST_SEEN_RESOLUTION


def test_the_account_page_marks_this_device(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030320030")
    client, other = demo_app.test_client(), demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    demo_sign_in(other, seeded.user_id)
    page = client.get("/account/passkeys").get_data(as_text=True)
    assert page.count('data-testid="session"') == 2
    assert page.count('class="tag"') == 1


def test_a_session_ends_its_lifetime_after_sign_in_whatever_re_signed_the_cookie(demo_app):
    """The cookie is re-signed whenever the session changes (a flash message does); the lifetime
    still counts from sign-in, as the account page and the clean-up at sign-in count it."""
    seeded = seed_user(demo_app, "张伟", "37030320031")
    client = demo_app.test_client()
    demo_sign_in(client, seeded.user_id)
    assert signed_in(client)
    lifetime = demo_app.permanent_session_lifetime
    with demo_app.app_context(), db.transaction():
        row = db.session().execute(select(UserSession).where(UserSession.user_id == seeded.user_id)).scalar_one()
        row.created_at = row.created_at - lifetime - timedelta(minutes=1)
    assert not signed_in(client)
