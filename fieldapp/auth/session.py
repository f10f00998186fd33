"""flask-login wiring: sessions the server can end, on sign-out, everywhere, or by disabling a user.

Flask's cookie session is signed, not stored, so on its own a copy of the cookie keeps working
until it expires, whatever happened since. Each sign-in therefore opens a row in ``user_sessions``
and puts its random token in the cookie; the user loader accepts the cookie only while that row is
open. Signing out ends the row. Signing out everywhere and disabling a user end all of the user's
rows and bump ``session_epoch``, which the cookie carries too: a sign-in that read the user just
before the bump cannot open a session that outlives it.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from flask import current_app, g, request
from flask import session as flask_session
from flask_login import LoginManager, login_user, logout_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import db
from ..models import User, UserSession, utcnow
from ..records.capture import acting_as

login_manager = LoginManager()

SESSION_TOKEN_KEY = "_session_token"
TOKEN_BYTES = 32
# last_seen_at only informs the account page ("last active"); refreshing it at most this often
# keeps ordinary requests read-only, which matters for SQLite's single writer.
LAST_SEEN_RESOLUTION = timedelta(minutes=15)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_login_id(login_id: str) -> tuple[uuid.UUID, int] | None:
    """flask-login's id for us is "<user uuid>:<session epoch>" (see User.get_id)."""
    try:
        raw_id, raw_epoch = login_id.split(":", 1)
        return uuid.UUID(raw_id), int(raw_epoch)
    except (AttributeError, ValueError, TypeError):
        return None


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    parsed = _parse_login_id(login_id)
    token = flask_session.get(SESSION_TOKEN_KEY)
    if parsed is None or not isinstance(token, str):
        return None  # also every cookie issued before sessions were recorded
    user_id, epoch = parsed
    # One lookup by the unique token hash, joined to the user by primary key.
    found = db.session().execute(
        select(User, UserSession)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.token_hash == hash_token(token),
            UserSession.ended_at.is_(None),
            # The lifetime counts from sign-in, whatever re-signed the cookie since (a flash
            # message does): the account page and the clean-up at sign-in count the same way.
            UserSession.created_at > utcnow() - current_app.permanent_session_lifetime,
            User.id == user_id,
            User.session_epoch == epoch,
            User.active.is_(True),
        )
    ).one_or_none()
    if found is None:
        return None
    user, user_session = found
    _note_current_session(user_session)
    return user


def _note_current_session(user_session: UserSession) -> None:
    g.user_session_id = user_session.id
    if user_session.last_seen_at < utcnow() - LAST_SEEN_RESOLUTION:
        g.stale_user_session_id = user_session.id


def current_session_id() -> uuid.UUID | None:
    """The row of the browser making this request, once the user has been loaded or signed in."""
    return g.get("user_session_id")


def sign_in(user: User) -> None:
    # The session row is written before login_user: the audit chain credits the sign-in to the user.
    with acting_as(f"user:{user.id}"):
        token = _open_session(user, replacing=flask_session.get(SESSION_TOKEN_KEY))
    flask_session.clear()  # nothing from before sign-in is carried into the new session
    flask_session.permanent = True
    flask_session[SESSION_TOKEN_KEY] = token
    login_user(user)
    # Mint the CSRF token now, in the same response. Otherwise the page and the requests it fires at
    # once (sync probe, service worker) each mint one into their own copy of the cookie session, the
    # last Set-Cookie wins, and the page's forms carry a token the browser no longer has.
    generate_csrf()


def _open_session(user: User, replacing: object) -> str:
    """Record a new session of ``user`` and return the token its cookie will carry.

    ``replacing`` is the token this browser held until now (another user signed in on a shared
    computer, say): that session ends, so no saved copy of the old cookie outlives the switch.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    with db.transaction() as s:
        _end_session(s, replacing)
        # A row older than the cookie's lifetime can never be presented again: clear the user's
        # old rows here instead of in a separate job.
        s.execute(delete(UserSession).where(
            UserSession.user_id == user.id,
            UserSession.created_at < now - current_app.permanent_session_lifetime,
        ))
        row = UserSession(user_id=user.id, token_hash=hash_token(token),
                          user_agent=request.user_agent.string[:300], created_at=now, last_seen_at=now)
        s.add(row)
    g.user_session_id = row.id
    return token


def sign_out() -> None:
    """End this browser's session on the server, then forget it in the cookie."""
    with db.transaction() as s:
        _end_session(s, flask_session.pop(SESSION_TOKEN_KEY, None))
    logout_user()


def _end_session(s: Session, token: object) -> None:
    if not isinstance(token, str):
        return
    s.execute(
        update(UserSession)
        .where(UserSession.token_hash == hash_token(token), UserSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def end_all_sessions(user: User) -> None:
    """End every session of ``user`` on every device; the caller commits."""
    user.session_epoch += 1
    db.session().execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def open_sessions(user: User) -> list[UserSession]:
    """The user's sessions that a cookie can still use, most recently active first."""
    cutoff = utcnow() - current_app.permanent_session_lifetime
    return list(db.session().execute(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None),
               UserSession.created_at > cutoff)
        .order_by(UserSession.last_seen_at.desc())
    ).scalars())


def _refresh_last_seen(exc: BaseException | None) -> None:
    """Record activity of a session whose last_seen_at is stale, after the request's own work.

    Done at teardown so that it can never commit a view's unfinished work: whatever the view left
    uncommitted is rolled back here, exactly as closing the session would. The write takes SQLite's
    lock up front (a GET otherwise reads in a deferred transaction).
    """
    session_id = g.pop("stale_user_session_id", None)
    if session_id is None or exc is not None:
        return
    try:
        db.session().rollback()
        with db.write_transaction() as s:
            s.execute(
                update(UserSession)
                .where(UserSession.id == session_id,
                       UserSession.last_seen_at < utcnow() - LAST_SEEN_RESOLUTION)
                .values(last_seen_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    except SQLAlchemyError:
        # The response is already built; a lost "last active" time is not worth failing it.
        current_app.logger.warning("could not record session activity", exc_info=True)


def init_app(app) -> None:
    login_manager.init_app(app)
    # The server-side session row is our revocation; IPs change on phones, so no IP binding.
    login_manager.session_protection = None
    app.teardown_request(_refresh_last_seen)
