"""Each officer's unit history: who was in which unit when. A record counts for the unit its
author belonged to at the record's time, not the unit they are in today."""
from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from .. import db
from ..models import User, UserUnitHistory, utcnow

# A user's first stretch begins here: nobody's earlier units are known (migration 0020 does the same).
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def open_first(user: User) -> None:
    """The first stretch of a new user, in the caller's transaction."""
    db.session().add(UserUnitHistory(user_id=user.id, unit_id=user.unit_id, from_at=SINCE))


def move(user: User, unit_id: uuid.UUID, at: datetime | None = None) -> None:
    """Move ``user`` to ``unit_id`` from ``at`` (now): closes the open stretch and opens the next one,
    in the caller's transaction, with the user's unit itself."""
    at = at or utcnow()
    s = db.session()
    if user.unit_id == unit_id:
        return
    open_rows = s.execute(select(UserUnitHistory).where(UserUnitHistory.user_id == user.id,
                                                        UserUnitHistory.to_at.is_(None))).scalars().all()
    for row in open_rows:
        row.to_at = max(at, row.from_at)
    if not open_rows:  # a user made before the history existed and not migrated: their unit until now
        s.add(UserUnitHistory(user_id=user.id, unit_id=user.unit_id, from_at=SINCE, to_at=at))
    s.add(UserUnitHistory(user_id=user.id, unit_id=unit_id, from_at=at))
    user.unit_id = unit_id
    s.flush()
    s.expire(user, ["unit"])


class Where:
    """The unit history of many users, loaded once: ``unit_at(user, t)``. Without a stretch that
    covers ``t`` the user's present unit answers."""

    def __init__(self, rows: Iterable[tuple[uuid.UUID, uuid.UUID, datetime, datetime | None]],
                 present: dict[uuid.UUID, uuid.UUID]):
        self._present = present
        self._spans: dict[uuid.UUID, list[tuple[datetime, datetime | None, uuid.UUID]]] = {}
        for user_id, unit_id, from_at, to_at in rows:
            self._spans.setdefault(user_id, []).append((from_at, to_at, unit_id))
        self._starts = {}
        for user_id, spans in self._spans.items():
            spans.sort(key=lambda s: s[0])
            self._starts[user_id] = [s[0] for s in spans]

    def unit_at(self, user_id: uuid.UUID, at: datetime | None) -> uuid.UUID | None:
        spans = self._spans.get(user_id)
        if spans and at is not None:
            i = bisect.bisect_right(self._starts[user_id], at) - 1
            if i >= 0:
                from_at, to_at, unit_id = spans[i]
                if to_at is None or at < to_at:
                    return unit_id
        return self._present.get(user_id)


def load() -> Where:
    s = db.session()
    rows = s.execute(select(UserUnitHistory.user_id, UserUnitHistory.unit_id, UserUnitHistory.from_at,
                            UserUnitHistory.to_at)).all()
    present = dict(s.execute(select(User.id, User.unit_id)).all())
    return Where(rows, present)
