"""Routes of the passkey ceremonies, enrolment, the user's own passkeys and sessions."""
from __future__ import annotations

import ipaddress
import uuid

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select, update

from .. import db
from ..access import allow
from ..models import Enrollment, Passkey, User, utcnow
from ..safe_redirect import safe_next
from . import bp, ceremonies, enrollment, ratelimit
from .ceremonies import CeremonyError
from .errors import message
from .session import current_session_id, end_all_sessions, open_sessions, sign_in, sign_out

_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                       "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-IP")


def _settings():
    return current_app.config["FIELDAPP_SETTINGS"]


def error(code: str, status: int = 400):
    return jsonify(error=code, message=message(code)), status


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _safe_next(target: object) -> str:
    # Only paths on this origin: an attacker's link must not turn our sign-in into a redirect elsewhere.
    return safe_next(target, url_for("capture.home"))


def _ip_allowed() -> bool:
    settings = _settings()
    if not settings.rate_limit_enabled:
        return True
    key = f"signin-ip:{request.remote_addr}"
    return ratelimit.hit(key, settings.rate_limit_window_seconds) <= settings.signin_ip_limit


def _credential_key(credential_id: bytes) -> str:
    return f"signin-cred:{credential_id.hex()[:128]}"


# ---- sign in / out ---------------------------------------------------------------------------

@bp.get("/auth/signin")
@allow(public=True)
def signin_page():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/signin.html", next=_safe_next(request.args.get("next")),
                           demo=demo_signin_allowed())


@bp.post("/auth/signin/options")
@allow(public=True)
def signin_options():
    with db.transaction():
        if not _ip_allowed():
            return error("rate_limited", 429)
        options = ceremonies.authentication_options()
    return jsonify(options)


@bp.post("/auth/signin/verify")
@allow(public=True)
def signin_verify():
    body = _json_body()
    if body is None or not isinstance(body.get("credential"), dict):
        return error("bad_request")
    credential = body["credential"]
    settings = _settings()
    s = db.session()
    try:
        credential_key = _credential_key(ceremonies.credential_id_of(credential))
    except CeremonyError as exc:
        return error(exc.code)
    if settings.rate_limit_enabled:
        if not _ip_allowed():
            s.commit()
            return error("rate_limited", 429)
        failures = ratelimit.count(credential_key, settings.rate_limit_window_seconds)
        if failures >= settings.signin_credential_failure_limit:
            s.commit()
            return error("rate_limited", 429)
    try:
        passkey = ceremonies.verify_authentication(credential)
    except CeremonyError as exc:
        current_app.logger.info("sign-in refused: %s (%s)", exc.code, exc)
        # Keep the consumed challenge and count the failure even though sign-in failed.
        if settings.rate_limit_enabled:
            ratelimit.hit(credential_key, settings.rate_limit_window_seconds)
        s.commit()
        status = 403 if exc.code == "user_disabled" else 401
        return error(exc.code, status)
    s.commit()
    sign_in(passkey.user)
    return jsonify(ok=True, redirect=_safe_next(body.get("next")))


@bp.post("/auth/signout")
@allow(public=True)
def signout():
    sign_out()
    if request.is_json:
        return jsonify(ok=True, redirect=url_for("auth.signin_page"))
    return redirect(url_for("auth.signin_page"))


# ---- demo sign-in ----------------------------------------------------------------------------

def demo_signin_allowed() -> bool:
    """Only with FIELDAPP_DEMO=1, from loopback, and with no proxy header at all.

    Behind a reverse proxy every request arrives from loopback; the forwarding headers are how we
    tell a proxied request apart, so their mere presence refuses the demo sign-in.
    """
    if not _settings().demo:
        return False
    if any(h in request.headers for h in _FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/auth/demo")
@allow(public=True)
def demo_page():
    if not demo_signin_allowed():
        abort(404)
    users = db.session().execute(
        select(User).where(User.active.is_(True)).order_by(User.cert_no)
    ).scalars().all()
    return render_template("auth/demo.html", users=users)


@bp.post("/auth/demo")
@allow(public=True)
def demo_signin():
    if not demo_signin_allowed():
        abort(404)
    try:
        user = db.session().get(User, uuid.UUID(request.form.get("user_id", "")))
    except ValueError:
        user = None
    if user is None or not user.active:
        abort(404)
    sign_in(user)
    return redirect(url_for("capture.home"))


# ---- enrolment with a one-time code ----------------------------------------------------------

def _enrollment_or_problem(code: str):
    found, problem = enrollment.find(code)
    return found, (f"code_{problem.value}" if problem else None)


@bp.get("/enroll/<code>")
@allow(public=True)
def enroll_page(code: str):
    found, problem = _enrollment_or_problem(code)
    if problem:
        status = 404 if problem == "code_unknown" else 410
        return render_template("auth/enroll_invalid.html", problem=message(problem)), status
    with db.write_transaction():  # a GET that writes: take SQLite's write lock up front
        enrollment.record_event(found, "opened", user_agent=request.user_agent.string)
    return render_template("auth/enroll.html", code=code, user=found.user)


@bp.post("/enroll/<code>/options")
@allow(public=True)
def enroll_options(code: str):
    body = _json_body() or {}
    with db.transaction():
        if not _ip_allowed():
            return error("rate_limited", 429)
        found, problem = _enrollment_or_problem(code)
        if problem:
            return error(problem, 404 if problem == "code_unknown" else 410)
        try:
            options = ceremonies.registration_options(
                found.user, body.get("attachment"), enrollment_id=found.id)
        except CeremonyError as exc:
            return error(exc.code)
    return jsonify(options)


@bp.post("/enroll/<code>/verify")
@allow(public=True)
def enroll_verify(code: str):
    body = _json_body()
    if body is None or not isinstance(body.get("credential"), dict):
        return error("bad_request")
    s = db.session()
    found, problem = _enrollment_or_problem(code)
    if problem:
        return error(problem, 404 if problem == "code_unknown" else 410)
    try:
        passkey, challenge = ceremonies.verify_registration(body["credential"], str(body.get("label", "")))
        if challenge.enrollment_id != found.id:
            raise CeremonyError("challenge_invalid", "challenge belongs to another enrolment")
    except CeremonyError as exc:
        s.rollback()
        enrollment.record_event(found, "failed", exc.code, str(exc), request.user_agent.string)
        s.commit()
        return error(exc.code)
    # Conditional update: two racing verifications of one code cannot both succeed.
    claimed = s.execute(
        update(Enrollment).where(Enrollment.id == found.id, Enrollment.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        s.rollback()
        return error("code_used", 410)
    enrollment.record_event(found, "succeeded", passkey.attachment or "", passkey.label,
                            request.user_agent.string)
    s.commit()
    sign_in(found.user)
    return jsonify(ok=True, redirect=url_for("capture.home"))


_REPORTABLE_OUTCOMES = {"capability", "failed"}


@bp.post("/enroll/<code>/events")
@allow(public=True)
def enroll_event(code: str):
    """The phone reports what it can do and why a ceremony failed, for the admin's failure list."""
    body = _json_body()
    if body is None or body.get("outcome") not in _REPORTABLE_OUTCOMES:
        return error("bad_request")
    with db.transaction():
        if not _ip_allowed():
            return error("rate_limited", 429)
        found, problem = _enrollment_or_problem(code)
        if found is None:
            return error("code_unknown", 404)
        enrollment.record_event(found, body["outcome"], str(body.get("reason", "")),
                                str(body.get("detail", "")), request.user_agent.string)
    return jsonify(ok=True)


# ---- the user's own passkeys -----------------------------------------------------------------

def _account_page(**extra):
    return render_template("account/passkeys.html", passkeys=current_user.passkeys,
                           sessions=open_sessions(current_user),
                           current_session_id=current_session_id(), **extra)


@bp.get("/account/passkeys")
@allow(signed_in=True)
def passkeys_page():
    return _account_page()


@bp.post("/account/passkeys/options")
@allow(signed_in=True)
def passkey_add_options():
    body = _json_body() or {}
    with db.transaction():
        try:
            options = ceremonies.registration_options(current_user, body.get("attachment"))
        except CeremonyError as exc:
            return error(exc.code)
    return jsonify(options)


@bp.post("/account/passkeys/verify")
@allow(signed_in=True)
def passkey_add_verify():
    body = _json_body()
    if body is None or not isinstance(body.get("credential"), dict):
        return error("bad_request")
    s = db.session()
    try:
        passkey, challenge = ceremonies.verify_registration(body["credential"], str(body.get("label", "")))
        if challenge.user_id != current_user.id or challenge.enrollment_id is not None:
            raise CeremonyError("challenge_invalid", "challenge issued to someone else")
    except CeremonyError as exc:
        s.rollback()
        return error(exc.code)
    s.commit()
    return jsonify(ok=True, id=str(passkey.id), label=passkey.label)


@bp.post("/account/passkeys/<uuid:passkey_id>/revoke")
@allow(signed_in=True)
def passkey_revoke(passkey_id: uuid.UUID):
    s = db.session()
    passkey = s.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != current_user.id or passkey.revoked_at is not None:
        abort(404)
    active = [p for p in current_user.passkeys if p.revoked_at is None]
    if len(active) <= 1:
        return _account_page(error=message("last_passkey")), 409
    passkey.revoked_at = utcnow()
    s.commit()
    return redirect(url_for("auth.passkeys_page"))


# ---- the user's sessions -----------------------------------------------------------------------

@bp.post("/account/sessions/end-all")
@allow(signed_in=True)
def signout_everywhere():
    """For a lost phone or a forgotten shared computer: every session ends, this one included."""
    with db.transaction():
        end_all_sessions(current_user._get_current_object())
    sign_out()
    flash(_("You are signed out on every device."), "ok")
    return redirect(url_for("auth.signin_page"))
