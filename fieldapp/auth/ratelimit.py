"""Fixed-window rate limits whose counts live in the database, so every worker and host shares them.

Sign-in is limited on two keys: per source address with a high ceiling (a whole office behind one NAT
address must still sign in at the start of a shift) and per credential for failed verifications
(the signature of a targeted attack on one officer's passkey). Redis would be the next step when
scaled out; the interface (``hit``/``count``) stays the same.
"""
from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import db
from ..models import RateLimitCounter


def _window(window_seconds: int) -> int:
    now = int(time.time())
    return now - now % window_seconds


def hit(key: str, window_seconds: int) -> int:
    """Count one event for ``key`` in the current window and return the window's count."""
    s = db.session()
    window = _window(window_seconds)
    # Old windows of this key are dead weight; the (key, window_start) index makes this cheap.
    s.execute(delete(RateLimitCounter).where(
        RateLimitCounter.key == key, RateLimitCounter.window_start < window))
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateLimitCounter).values(key=key, window_start=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"count": RateLimitCounter.count + 1},
    ).returning(RateLimitCounter.count)
    return s.execute(stmt).scalar_one()


def count(key: str, window_seconds: int) -> int:
    s = db.session()
    value = s.execute(
        select(RateLimitCounter.count).where(
            RateLimitCounter.key == key, RateLimitCounter.window_start == _window(window_seconds)
        )
    ).scalar_one_or_none()
    return value or 0
