"""Ceremonies and helpers the API tests share: JSON with CSRF, seeding, enrolment, sign-in."""
from __future__ import annotations

from dataclasses import dataclass

from fieldapp import db
from fieldapp.accounts import create_unit, create_user, find_unit, parse_roles
from fieldapp.auth import enrollment
from fieldapp.models import User
from tests.support.soft_authenticator import SoftAuthenticator

ORIGIN = "http://localhost"


def csrf_token(client) -> str:
    return client.get("/api/v1/session").get_json()["csrf_token"]


def post_json(client, url: str, body: dict | None = None, **kwargs):
    return client.post(url, json=body or {}, headers={"X-CSRFToken": csrf_token(client)}, **kwargs)


def post_form(client, url: str, data: dict | None = None, **kwargs):
    data = dict(data or {})
    data["csrf_token"] = csrf_token(client)
    return client.post(url, data=data, **kwargs)


@dataclass
class Seeded:
    user_id: object
    cert_no: str
    unit_code: str


def seed_user(app, name: str, cert_no: str, unit_code: str = "U1", roles: str = "officer") -> Seeded:
    with app.app_context():
        with db.transaction():
            unit = find_unit(unit_code) or create_unit(unit_code, f"单位 {unit_code}")
            user = create_user(name, cert_no, unit, parse_roles(roles))
        return Seeded(user.id, user.cert_no, unit_code)


def issue_code(app, user_id, hours: int = 24) -> str:
    with app.app_context():
        with db.transaction():
            user = db.session().get(User, user_id)
            return enrollment.issue(user, hours).code


def enroll(client, code: str, authenticator: SoftAuthenticator, origin: str = ORIGIN,
           label: str = "测试手机", attachment: str = "platform"):
    options = post_json(client, f"/enroll/{code}/options", {"attachment": attachment})
    assert options.status_code == 200, options.get_json()
    credential = authenticator.create(options.get_json(), origin)
    return post_json(client, f"/enroll/{code}/verify", {"credential": credential, "label": label}), credential


def signin_assertion(client, authenticator: SoftAuthenticator, origin: str = ORIGIN, credential_id=None) -> dict:
    options = post_json(client, "/auth/signin/options")
    assert options.status_code == 200, options.get_json()
    return authenticator.get(options.get_json(), origin, credential_id=credential_id)


def sign_in(client, authenticator: SoftAuthenticator, origin: str = ORIGIN, credential_id=None):
    assertion = signin_assertion(client, authenticator, origin, credential_id)
    return post_json(client, "/auth/signin/verify", {"credential": assertion}), assertion


def demo_sign_in(client, user_id) -> None:
    """Sign in through the demo route (the app must be made with demo=True): cheap for tests whose
    subject is not the passkey ceremony."""
    response = post_form(client, "/auth/demo", {"user_id": str(user_id)})
    assert response.status_code == 302, response.status_code


def run_cli(app, *args: str):
    """Run a `flask --app fieldapp …` command against this app. Through FlaskGroup, as the real
    command runs it: it pushes the app context the commands rely on (app.cli alone would not)."""
    from flask.cli import FlaskGroup

    flask_command = FlaskGroup(add_default_commands=False, load_dotenv=False)
    return app.test_cli_runner().invoke(flask_command, args=list(args))


def sync_push(client, body):
    return post_json(client, "/api/v1/sync/push", body)


def push_results(response) -> list[dict]:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]
