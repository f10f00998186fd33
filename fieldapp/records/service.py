"""Running the chain: sealing and checkpointing on a timer in every app process, on demand from
the CLI and the admin page, and the access events the views record."""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from flask import current_app

from .. import db
from ..models import AuditCheckpoint
from . import capture, checkpoints, keys, sealer

log = logging.getLogger(__name__)

CHECKPOINT_CHECK_S = 60


def accessed(action: str, what: str, **detail) -> None:
    """Record an access (a preview viewed, an original played, an export) — on a read path too: it
    writes in a transaction of its own there, with the write lock SQLite needs; on a writing path it
    joins the transaction in progress, which the caller commits."""
    with db.writing() as s:
        capture.accessed(s, action, what, **detail)


def settings():
    return current_app.config["FIELDAPP_SETTINGS"]


def private_key():
    return keys.load_or_create(settings().audit_key_file)


def public_key():
    return private_key().public_key()


def _timestamper():
    s = settings()
    if not s.tsa_url:
        return None
    from . import tsa

    def timestamp(statement: bytes) -> bytes | None:
        # The authority is outside our network and may be down: the checkpoint is still signed,
        # only without a token, and the next one tries again.
        try:
            return tsa.request_token(s.tsa_url, statement)
        except tsa.TimestampUnavailable as exc:
            log.warning("audit checkpoint signed without a timestamp: %s", exc)
            return None
    return timestamp


def seal_now() -> int:
    with capture.acting_as("system:sealer"):
        return sealer.seal_all(db.session())


def checkpoint_now(reason: str = "on demand") -> AuditCheckpoint | None:
    """Seal what can be sealed, re-check the chain since the last checkpoint, sign its head (and
    have it timestamped) — None if there is nothing new to sign. Raises ChainBroken rather than
    sign a chain that no longer holds. The chain is read without SQLite's write lock, and the
    authority is asked with no transaction open: writers never wait on either."""
    key = private_key()
    with capture.acting_as("system:checkpoint"):
        seal_now()
        with db.reading() as s:
            at_head, last = checkpoints.checked_head(s, key.public_key())
        if at_head.seq == 0 or (last is not None and last.seq == at_head.seq and reason == "daily"):
            return None
        row = checkpoints.signed(key, at_head, last, reason, _timestamper())
        with db.transaction() as s:
            s.add(row)
        return row


def tick(check_checkpoint: bool = True) -> None:
    """One pass of the timer: seal, and sign the daily checkpoint when one is due."""
    seal_now()
    if not check_checkpoint:
        return
    s = db.session()
    every = timedelta(hours=settings().audit_checkpoint_hours)
    due = checkpoints.due(s, every)
    s.commit()
    if due:
        checkpoint_now("daily")


class Ticker:
    """A daemon thread per app process (per pid: gunicorn forks after the app is built) that calls
    ``tick`` every ``interval`` seconds. Several processes tick; the sealer's lock lets one work."""

    def __init__(self, app, interval: float):
        self.app, self.interval = app, interval
        self.pid: int | None = None
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self.pid == os.getpid():
            return
        with self._lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.stop = threading.Event()
            threading.Thread(target=self._run, name="audit-sealer", daemon=True).start()

    def _run(self) -> None:
        last_checkpoint_check = 0.0
        while not self.stop.wait(self.interval):
            # Sealing is due every tick; whether a daily checkpoint is due, once a minute is plenty.
            check = time.monotonic() - last_checkpoint_check >= CHECKPOINT_CHECK_S
            try:
                with self.app.app_context():
                    tick(check_checkpoint=check)
                if check:
                    last_checkpoint_check = time.monotonic()
            except Exception:  # noqa: BLE001 — a failed pass (database restarting) is retried next tick
                log.exception("audit chain: sealing failed; trying again in %s s", self.interval)


def init_app(app) -> None:
    interval = app.config["FIELDAPP_SETTINGS"].audit_seal_seconds
    if interval <= 0:
        return
    ticker = Ticker(app, interval)
    app.extensions["fieldapp.audit_ticker"] = ticker
    app.before_request(ticker.ensure_running)
