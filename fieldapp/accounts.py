"""Creating and changing units and users: shared by the admin pages and the CLI."""
from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import select

from . import db
from .auth.session import end_all_sessions
from .models import DivisionOversight, Role, Unit, User


class AccountError(ValueError):
    """Bad input for a unit or user; the message is shown to the admin as it is."""


_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def parse_roles(raw: str | list[str]) -> set[Role]:
    items = raw.split(",") if isinstance(raw, str) else raw
    roles = set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            roles.add(Role(item))
        except ValueError:
            raise AccountError(f"unknown role {item!r}; known: {', '.join(r.value for r in Role)}") from None
    return roles


def find_unit(code_or_id: str) -> Unit | None:
    s = db.session()
    unit = s.execute(select(Unit).where(Unit.code == code_or_id)).scalar_one_or_none()
    if unit is None:
        try:
            unit = s.get(Unit, uuid.UUID(code_or_id))
        except ValueError:
            return None
    return unit


def find_user(cert_no_or_id: str) -> User | None:
    s = db.session()
    user = s.execute(select(User).where(User.cert_no == cert_no_or_id)).scalar_one_or_none()
    if user is None:
        try:
            user = s.get(User, uuid.UUID(cert_no_or_id))
        except ValueError:
            return None
    return user


def create_unit(code: str, name: str, kind: str | None = None) -> Unit:
    """A unit; ``kind`` says which paragraph of art. 29 its requests fall under (None or
    "enforcement": an enforcement unit; policy | office | discipline | leadership)."""
    from .rules.records_rules import ENFORCEMENT, UNIT_KINDS
    code, name = code.strip(), name.strip()
    kind = (kind or "").strip() or None
    if kind is not None and kind not in UNIT_KINDS:
        raise AccountError(f"unit kind: one of {', '.join(UNIT_KINDS)}")
    if not _CODE_RE.match(code):
        raise AccountError("unit code: 1–32 letters, digits, '-' or '_'")
    if not name:
        raise AccountError("unit name is required")
    if find_unit(code) is not None:
        raise AccountError(f"unit {code} already exists")
    unit = Unit(code=code, name=name[:120], kind=None if kind in (None, ENFORCEMENT) else kind)
    db.session().add(unit)
    db.session().flush()
    return unit


def create_user(name: str, cert_no: str, unit: Unit, roles: set[Role]) -> User:
    name, cert_no = name.strip(), cert_no.strip()
    if not name:
        raise AccountError("name is required")
    if not cert_no or len(cert_no) > 40:
        raise AccountError("enforcement certificate number (执法证号) is required, at most 40 characters")
    if not roles:
        raise AccountError("give the user at least one role")
    if db.session().execute(select(User.id).where(User.cert_no == cert_no)).first():
        raise AccountError(f"a user with certificate number {cert_no} already exists")
    user = User(name=name[:80], cert_no=cert_no, unit=unit, webauthn_handle=secrets.token_bytes(32))
    user.set_roles(roles)
    db.session().add(user)
    db.session().flush()
    from .statistics import history  # the unit history statistics attribute records by (art. 32)
    history.open_first(user)
    return user


def update_user(user: User, *, name: str | None = None, unit: Unit | None = None,
                roles: set[Role] | None = None, active: bool | None = None,
                overseen_units: list[Unit] | None = None) -> None:
    if name is not None:
        if not name.strip():
            raise AccountError("name is required")
        user.name = name.strip()[:80]
    if unit is not None and unit.id != user.unit_id:
        from .statistics import history  # close the open stretch, open one in the new unit
        history.move(user, unit.id)
    if roles is not None:
        if not roles:
            raise AccountError("give the user at least one role")
        user.set_roles(roles)
    if overseen_units is not None:
        user.oversight_rows[:] = [DivisionOversight(unit_id=u.id) for u in overseen_units]
    if active is not None and active != user.active:
        user.active = active
        if not active:
            end_all_sessions(user)  # disabling ends the user's sessions at once, on every worker
