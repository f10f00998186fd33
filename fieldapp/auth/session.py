"""flask-login wiring: sessions that end everywhere at once when the user is disabled."""
from __future__ import annotations

import uuid

from flask import session as flask_session
from flask_login import LoginManager, login_user
from flask_wtf.csrf import generate_csrf

from .. import db
from ..models import User

login_manager = LoginManager()


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    # The id is "<uuid>:<epoch>"; a session minted before the last epoch bump is dead.
    try:
        raw_id, raw_epoch = session_id.split(":", 1)
        user = db.session().get(User, uuid.UUID(raw_id))
        epoch = int(raw_epoch)
    except (ValueError, TypeError):
        return None
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return user


def sign_in(user: User) -> None:
    flask_session.clear()  # nothing from before sign-in is carried into the new session
    flask_session.permanent = True
    login_user(user)
    # Mint the CSRF token now, in the same response. Otherwise the page and the requests it fires at
    # once (sync probe, service worker) each mint one into their own copy of the cookie session, the
    # last Set-Cookie wins, and the page's forms carry a token the browser no longer has.
    generate_csrf()


def end_all_sessions(user: User) -> None:
    user.session_epoch += 1


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = None  # the epoch check is our revocation; IPs change on phones
