"""The server's epoch: which history the database continues. A restore to an earlier point starts a
new epoch; phones that saw another offer again what they still hold (``capture/epoch.js``)."""
from __future__ import annotations

from sqlalchemy import select

from .. import db
from ..models import INSTALL_EPOCH, ServerEpoch


def current() -> dict:
    """The epoch as phones get it with every push, pull and session answer: its id, and for a
    restored database when and from which backup (so the phone can say what happened)."""
    row = db.session().execute(select(ServerEpoch).order_by(ServerEpoch.seq.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        return {"id": INSTALL_EPOCH, "since": None, "restored_from": None}
    return {"id": str(row.id), "since": row.started_at.isoformat(timespec="seconds"),
            "restored_from": {"backup_id": row.backup_id,
                              "taken_at": row.backup_taken_at.isoformat(timespec="seconds")}}
