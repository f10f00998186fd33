"""Who may do what: units, users, roles, passkeys and their enrolment."""
from __future__ import annotations

import enum
import uuid
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_id, utcnow


class Role(enum.StrEnum):
    OFFICER = "officer"              # 执法人员
    LEAD = "lead"                    # 科室/队/所负责人
    RECORDS_ADMIN = "records_admin"  # 音像记录管理员 (art. 29)
    SUPERVISOR = "supervisor"        # 政策法规科 (arts. 5, 32)
    DIVISION_HEAD = "division_head"  # 分管局负责人, for the units they oversee (art. 29)
    BUREAU_HEAD = "bureau_head"      # 主要负责人 (art. 29)
    ADMIN = "admin"                  # 系统管理员


class Unit(Base):
    """An enforcement unit (科室、队、所), the boundary of data isolation (art. 5)."""

    __tablename__ = "units"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # What kind of body the unit is, so art. 29 knows which leader approves its requests. NULL is an
    # enforcement unit (the rows stored before kinds existed keep their content hash).
    kind: Mapped[str | None] = mapped_column(String(20))  # None | policy | office | discipline | leadership
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="unit")

    @property
    def unit_kind(self) -> str:
        return self.kind or "enforcement"


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80))
    cert_no: Mapped[str] = mapped_column(String(40), unique=True)  # 执法证号
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped when the user is disabled or signs out everywhere: sessions carrying an older value
    # are rejected on their next request, in every worker, because it lives in the database.
    session_epoch: Mapped[int] = mapped_column(default=0)
    # The WebAuthn user handle: random, so it reveals nothing about the user.
    webauthn_handle: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="users", lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    oversight_rows: Mapped[list[DivisionOversight]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    passkeys: Mapped[list[Passkey]] = relationship(back_populates="user", order_by="Passkey.created_at")

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.role_rows)

    def set_roles(self, roles: set[Role] | frozenset[Role]) -> None:
        wanted = {Role(r) for r in roles}
        self.role_rows[:] = [r for r in self.role_rows if Role(r.role) in wanted]
        present = {Role(r.role) for r in self.role_rows}
        self.role_rows.extend(UserRole(role=r.value) for r in sorted(wanted - present))

    @property
    def is_active(self) -> bool:  # flask-login refuses to sign in inactive users
        return self.active

    def get_id(self) -> str:
        # The session carries the epoch too, so bumping it invalidates every session at once.
        return f"{self.id}:{self.session_epoch}"

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))

    @property
    def overseen_unit_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(o.unit_id for o in self.oversight_rows)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class DivisionOversight(Base):
    """Which units a 分管局负责人 oversees (art. 29 approvals go to the leader in charge)."""

    __tablename__ = "division_oversight"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)


class Passkey(Base):
    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(default=0)
    transports: Mapped[list] = mapped_column(JSON, default=list)
    attachment: Mapped[str | None] = mapped_column(String(20))  # platform | cross-platform
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backed_up: Mapped[bool] = mapped_column(default=False)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="passkeys")


class UserSession(Base):
    """One signed-in browser or phone: the server-side half of a session cookie.

    The cookie carries a random token; only its hash is stored, so a reader of the database cannot
    hijack a session. Signing out ends the row, and a cookie whose row is ended or unknown is
    refused on every worker and host, although its signature is still valid.
    """

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Refreshed at most every few minutes, never on each request (see auth.session).
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class Enrollment(Base):
    """A one-time code an admin gives a user to register their first passkey on their phone."""

    __tablename__ = "enrollments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    # Only a hash is stored: a database reader must not be able to enrol as somebody else.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    events: Mapped[list[EnrollmentEvent]] = relationship(order_by="EnrollmentEvent.at")


class EnrollmentEvent(Base):
    """What happened on the phone during an enrolment: so an admin can see why one failed."""

    __tablename__ = "enrollment_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrollments.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20))  # opened | capability | failed | succeeded
    reason: Mapped[str] = mapped_column(String(60), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class WebAuthnChallenge(Base):
    """Challenges live in the database so any worker or host can finish a ceremony another began."""

    __tablename__ = "webauthn_challenges"
    __table_args__ = (Index("ix_webauthn_challenges_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))  # register | authenticate
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    enrollment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    attachment: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RateLimitCounter(Base):
    """Fixed-window counters shared by every worker (kept in the database, not in memory)."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (UniqueConstraint("key", "window_start", name="uq_rate_limit_counters_key_window"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[int]  # unix seconds, start of the window
    count: Mapped[int] = mapped_column(default=0)
