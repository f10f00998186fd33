"""The admin's pages: units, users, roles, enrolment codes as link and QR code, revocation."""
from __future__ import annotations

import re

from sqlalchemy import select

from fieldapp import db
from fieldapp.models import Role, Unit, User
from tests.support.flows import enroll, issue_code, post_form, seed_user, sign_in
from tests.support.soft_authenticator import SoftAuthenticator


def admin_client(app):
    seeded = seed_user(app, "管理员", "ADMIN-1", "HQ", "admin")
    client = app.test_client()
    response, _ = enroll(client, issue_code(app, seeded.user_id), SoftAuthenticator())
    assert response.status_code == 200
    return client


def test_admin_creates_a_unit_and_a_user_with_roles(app):
    client = admin_client(app)
    assert post_form(client, "/admin/units", {"code": "LZ-QX", "name": "齐陵所"}).status_code == 302
    with app.app_context():
        unit = db.session().execute(select(Unit).where(Unit.code == "LZ-QX")).scalar_one()
    created = post_form(client, "/admin/users", {
        "name": "赵敏", "cert_no": "37030300201", "unit_id": str(unit.id), "roles": ["officer", "lead"]})
    assert created.status_code == 302
    with app.app_context():
        user = db.session().execute(select(User).where(User.cert_no == "37030300201")).scalar_one()
        assert user.roles == {Role.OFFICER, Role.LEAD} and user.unit_id == unit.id
    page = client.get("/admin/").get_data(as_text=True)
    assert "齐陵所" in page and "赵敏" in page


def test_bad_admin_input_is_explained_and_changes_nothing(app):
    client = admin_client(app)
    response = post_form(client, "/admin/units", {"code": "bad code!", "name": "x"}, follow_redirects=True)
    assert "unit code" in response.get_data(as_text=True)
    with app.app_context():
        unit_id = db.session().execute(select(Unit.id)).scalar_one()
    duplicate = post_form(client, "/admin/users", {"name": "又一个管理员", "cert_no": "ADMIN-1",
                                                   "unit_id": str(unit_id), "roles": ["officer"]},
                          follow_redirects=True)
    assert "already exists" in duplicate.get_data(as_text=True)
    with app.app_context():
        assert len(db.session().execute(select(User)).scalars().all()) == 1


def test_enrolment_code_is_shown_once_as_link_and_qr_code_and_works(app):
    client = admin_client(app)
    seeded = seed_user(app, "李娜", "37030300202", "HQ")
    page = post_form(client, f"/admin/users/{seeded.user_id}/enroll").get_data(as_text=True)
    assert "<svg" in page  # the QR code, inline
    link = re.search(r'href="(http://localhost/enroll/[A-Z0-9-]+)"', page).group(1)
    phone = app.test_client()
    assert phone.get(link.removeprefix("http://localhost")).status_code == 200
    code = link.rsplit("/", 1)[1]
    response, _ = enroll(phone, code, SoftAuthenticator())
    assert response.status_code == 200
    detail = client.get(f"/admin/users/{seeded.user_id}").get_data(as_text=True)
    assert "已使用" in detail and "测试手机" in detail


def test_admin_disabling_a_user_ends_their_session_at_once(app):
    client = admin_client(app)
    seeded = seed_user(app, "张伟", "37030300203", "HQ")
    officer = app.test_client()
    authenticator = SoftAuthenticator()
    enroll(officer, issue_code(app, seeded.user_id), authenticator)
    assert officer.get("/").status_code == 200
    with app.app_context():
        unit_id = db.session().get(User, seeded.user_id).unit_id
    post_form(client, f"/admin/users/{seeded.user_id}",
              {"name": "张伟", "unit_id": str(unit_id), "roles": ["officer"]})  # "active" unticked
    assert officer.get("/").status_code == 302
    refused, _ = sign_in(officer, authenticator)
    assert refused.status_code == 403


def test_admin_revokes_a_users_passkey(app):
    client = admin_client(app)
    seeded = seed_user(app, "张伟", "37030300204", "HQ")
    officer = app.test_client()
    authenticator = SoftAuthenticator()
    enroll(officer, issue_code(app, seeded.user_id), authenticator)
    with app.app_context():
        passkey = db.session().get(User, seeded.user_id).passkeys[0]
    post_form(client, f"/admin/users/{seeded.user_id}/passkeys/{passkey.id}/revoke")
    post_form(officer, "/auth/signout")
    refused, _ = sign_in(officer, authenticator)
    assert refused.status_code == 401 and refused.get_json()["error"] == "unknown_credential"
