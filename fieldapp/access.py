"""The one place that decides who may call which route, and which units' data they may see.

Every view declares its policy with ``@allow(...)``; a ``before_request`` hook enforces it. A view
without a policy is refused for everybody (deny by default), and the route-matrix test fails, so a
new route cannot ship unguarded by accident.

Unit isolation (art. 5: each unit records its own acts): officers, leads and records administrators
see their own unit; a division head (分管局负责人) also the units they oversee; the policy section
(政策法规科), the bureau head and the admin see every unit. A resource of a unit the user may not see
answers 404, so its existence is not revealed.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, abort, current_app, g, jsonify, redirect, request, url_for
from flask_login import current_user

from .models import Role

ALL_ROLES = frozenset(Role)
EVERY_UNIT_ROLES = frozenset({Role.SUPERVISOR, Role.BUREAU_HEAD, Role.ADMIN})


@dataclass(frozen=True)
class Policy:
    public: bool = False
    roles: frozenset[Role] = frozenset()  # empty with public=False: any signed-in user
    station: bool = False  # a collection station's bearer token, never a user session

    def permits(self, user) -> bool:
        if self.station:
            return g.get("station") is not None
        if self.public:
            return True
        if not user.is_authenticated:
            return False
        return not self.roles or bool(user.roles & self.roles)


def allow(*roles: Role, public: bool = False, signed_in: bool = False, station: bool = False) -> Callable:
    """Declare who may call a view: ``@allow(public=True)``, ``@allow(signed_in=True)``, roles, or
    ``@allow(station=True)`` (a collection station's token; users are refused)."""
    if public and (roles or signed_in):
        raise ValueError("a public route takes no roles")
    if station and (public or roles or signed_in):
        raise ValueError("a station route admits stations only")
    if not (public or signed_in or roles or station):
        raise ValueError("say who may call this route")
    policy = Policy(public=public, roles=frozenset(roles), station=station)

    def mark(view):
        view.access_policy = policy
        return view

    return mark


def policy_for(app: Flask, endpoint: str | None) -> Policy | None:
    view = app.view_functions.get(endpoint or "")
    return getattr(view, "access_policy", None)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or (
        request.accept_mimetypes.best == "application/json"
    )


def enforce() -> None:
    if request.endpoint is None:  # 404/405 from routing: let Flask answer
        return None
    policy = policy_for(current_app, request.endpoint)
    if policy is None:
        current_app.logger.error("route %s has no access policy; refused", request.endpoint)
        abort(403)
    if policy.station:
        return _enforce_station()
    if policy.permits(current_user):
        return None
    if not current_user.is_authenticated:
        if _wants_json():
            return jsonify(error="unauthenticated", message="请先登录 / Sign in first"), 401
        return redirect(url_for("auth.signin_page", next=request.full_path.rstrip("?")))
    abort(403)


def _enforce_station():
    from .footage.register import station_for_token

    header = request.headers.get("Authorization", "")
    station = station_for_token(header[7:].strip()) if header.startswith("Bearer ") else None
    if station is None:
        return jsonify(error="station_unauthenticated",
                       message="采集站令牌无效或已吊销 / The station token is unknown or revoked"), 401
    g.station = station
    return None


def visible_unit_ids(user) -> frozenset[uuid.UUID] | None:
    """The units whose data the user may see; None means every unit."""
    if user.roles & EVERY_UNIT_ROLES:
        return None
    units = {user.unit_id}
    if Role.DIVISION_HEAD in user.roles:
        units |= user.overseen_unit_ids
    return frozenset(units)


def can_see_unit(user, unit_id: uuid.UUID) -> bool:
    visible = visible_unit_ids(user)
    return visible is None or unit_id in visible


def require_unit(user, unit_id: uuid.UUID) -> None:
    if not can_see_unit(user, unit_id):
        abort(404)


def init_app(app: Flask) -> None:
    app.before_request(enforce)


def role_label(role: Role) -> str:
    from flask_babel import gettext as _

    labels = {
        Role.OFFICER: _("Officer"),
        Role.LEAD: _("Team lead"),
        Role.RECORDS_ADMIN: _("Records administrator"),
        Role.SUPERVISOR: _("Policy section"),
        Role.DIVISION_HEAD: _("Bureau leader in charge"),
        Role.BUREAU_HEAD: _("Bureau head"),
        Role.ADMIN: _("System admin"),
    }
    return labels[Role(role)]
