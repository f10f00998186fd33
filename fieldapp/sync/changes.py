"""The change log phones pull from: append one row whenever server-side data they cache changes."""
from __future__ import annotations

import uuid

from .. import db
from ..models import ChangeLog


def record_change(entity: str, entity_id, *, unit_id: uuid.UUID | None = None,
                  user_id: uuid.UUID | None = None) -> None:
    db.session().add(ChangeLog(entity=entity, entity_id=str(entity_id), unit_id=unit_id, user_id=user_id))
