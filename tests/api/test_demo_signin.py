"""The demo sign-in: only with FIELDAPP_DEMO on, only from loopback, only without proxy headers."""
from __future__ import annotations

import pytest

from fieldapp import db
from fieldapp.accounts import update_user
from fieldapp.models import User
from tests.support.appfactory import make_app
from tests.support.flows import post_form, seed_user

FORWARDING_HEADERS = {
    "Forwarded": "for=127.0.0.1;proto=https",
    "X-Forwarded-For": "127.0.0.1",
    "X-Forwarded-Host": "localhost",
    "X-Forwarded-Proto": "https",
    "X-Real-IP": "127.0.0.1",
}
DEMO_LINK = 'href="/auth/demo"'


@pytest.fixture
def build(db_url, tmp_path, monkeypatch):
    """make_app with overrides; FIELDAPP_DEMO from the developer's shell must not leak in."""
    monkeypatch.delenv("FIELDAPP_DEMO", raising=False)
    apps = []

    def _build(**overrides):
        app = make_app(db_url, tmp_path / f"var{len(apps)}", **overrides)
        apps.append(app)
        return app

    yield _build
    for app in apps:
        app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def demo_app(build):
    return build(demo=True)


def signed_in(client, **kwargs) -> bool:
    return client.get("/api/v1/session", **kwargs).get_json()["authenticated"] is True


def demo_signin(client, user_id, **kwargs):
    return post_form(client, "/auth/demo", {"user_id": str(user_id)}, **kwargs)


def test_off_by_default(build):
    app = build()
    seeded = seed_user(app, "张伟", "37030319001")
    client = app.test_client()
    assert client.get("/auth/demo").status_code == 404
    assert demo_signin(client, seeded.user_id).status_code == 404
    assert not signed_in(client)
    assert DEMO_LINK not in client.get("/auth/signin").get_data(as_text=True)


def test_on_from_loopback_lists_users_and_signs_in(demo_app):
    zhang = seed_user(demo_app, "张伟", "37030319001", "U1")
    seed_user(demo_app, "赵敏", "37030319021", "U2")
    client = demo_app.test_client()
    page = client.get("/auth/demo")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "张伟" in text and "赵敏" in text

    response = demo_signin(client, zhang.user_id)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "张伟" in home.get_data(as_text=True)


def test_ipv6_loopback_is_allowed(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030319001")
    client = demo_app.test_client()
    v6 = {"environ_base": {"REMOTE_ADDR": "::1"}}
    assert client.get("/auth/demo", **v6).status_code == 200
    assert demo_signin(client, seeded.user_id, **v6).status_code == 302
    assert signed_in(client, **v6)


@pytest.mark.parametrize("header", sorted(FORWARDING_HEADERS))
def test_any_forwarding_header_refuses_it(demo_app, header):
    seeded = seed_user(demo_app, "张伟", "37030319001")
    client = demo_app.test_client()
    forwarded = {header: FORWARDING_HEADERS[header]}
    assert client.get("/auth/demo", headers=forwarded).status_code == 404
    assert demo_signin(client, seeded.user_id, headers=forwarded).status_code == 404
    assert not signed_in(client)
    assert client.get("/").status_code == 302
    assert DEMO_LINK not in client.get("/auth/signin", headers=forwarded).get_data(as_text=True)


def test_a_non_loopback_address_is_refused(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030319001")
    client = demo_app.test_client()
    remote = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    assert client.get("/auth/demo", **remote).status_code == 404
    assert demo_signin(client, seeded.user_id, **remote).status_code == 404
    assert not signed_in(client, **remote)
    assert DEMO_LINK not in client.get("/auth/signin", **remote).get_data(as_text=True)


def test_a_trusted_proxy_cannot_turn_a_remote_request_into_a_loopback_one(build):
    """Behind a proxy everything arrives from 127.0.0.1; the forwarding header still refuses it."""
    app = build(demo=True, trusted_proxies=1)
    seeded = seed_user(app, "张伟", "37030319001")
    client = app.test_client()
    for claimed in ("127.0.0.1", "203.0.113.9"):
        headers = {"X-Forwarded-For": claimed}
        assert client.get("/auth/demo", headers=headers).status_code == 404
        assert demo_signin(client, seeded.user_id, headers=headers).status_code == 404
    assert not signed_in(client)


def test_the_sign_in_page_offers_the_demo_link_only_when_it_works(demo_app):
    client = demo_app.test_client()
    page = client.get("/auth/signin").get_data(as_text=True)
    assert DEMO_LINK in page
    assert client.get("/auth/demo").status_code == 200


def test_a_disabled_user_is_neither_listed_nor_signed_in(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030319001")
    seed_user(demo_app, "李娜", "37030319002")
    with demo_app.app_context(), db.transaction():
        update_user(db.session().get(User, seeded.user_id), active=False)
    client = demo_app.test_client()
    text = client.get("/auth/demo").get_data(as_text=True)
    assert "李娜" in text and "张伟" not in text
    assert demo_signin(client, seeded.user_id).status_code == 404
    assert not signed_in(client)


def test_the_demo_form_needs_its_csrf_token(demo_app):
    seeded = seed_user(demo_app, "张伟", "37030319001")
    client = demo_app.test_client()
    assert client.post("/auth/demo", data={"user_id": str(seeded.user_id)}).status_code == 400
    assert not signed_in(client)
