"""Domain events: published where something happened, handled where it matters.

The sync protocol stores revisions and media; it does not know that leads review them, that the
compliance engine re-checks their cases, or — as the work ahead adds them — that footage is linked
or the audit chain extended. It publishes an event and each of those subscribes (Flask's own
``blinker`` signals). ``publish`` runs every handler in its own transaction after the publisher's
has committed: a failing handler is logged, never undoes what was stored and never stops the
others; the periodic ``compliance-check`` catches up on what it missed.

Handlers are subscribed by importing their modules (``subscribe_all``), so the list of who listens
is in one place.
"""
from __future__ import annotations

import logging

from blinker import Namespace, Signal

from . import db

log = logging.getLogger(__name__)

_events = Namespace()

# New revisions were stored (keyword: record_ids, the ids of the records that got one).
revisions_arrived = _events.signal("revisions-arrived")
# An original file was stored and verified (keywords: alg, digest).
original_stored = _events.signal("original-stored")
# Body-camera footage was linked to (or unlinked from) activities of these cases (keyword: case_ids).
footage_linked = _events.signal("footage-linked")
# Body-camera footage segments were stored (keyword: segment_ids), linked or not.
footage_stored = _events.signal("footage-stored")
# A lead changed what a case is (a stage done, its marks) (keyword: case_ids).
case_changed = _events.signal("case-changed")


def publish(event: Signal, **payload) -> None:
    from .records.capture import acting_as
    for handler in list(event.receivers_for(None)):
        try:
            # What a handler changes is the system's reaction, not the publishing user's act.
            with acting_as(f"system:{event.name}"), db.transaction():
                handler(None, **payload)
        except Exception:  # noqa: BLE001 — what was published is stored; a handler's failure is its own
            log.exception("handler %s of %s failed", getattr(handler, "__qualname__", handler), event.name)


def subscribe_all() -> None:
    """Import the modules whose handlers subscribe (idempotent: a handler connects once)."""
    from .compliance import subscribers  # noqa: F401
    from .footage import subscribers as footage_subscribers  # noqa: F401
    from .media import subscribers as media_subscribers  # noqa: F401
    from .records import subscribers as records_subscribers  # noqa: F401
    from .review import workflow  # noqa: F401
