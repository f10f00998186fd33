"""Readiness checks: can this host serve requests — its database and its media store both answer?

Each check gives a short verdict ("ok", "unreachable", "timeout") and how long it took; details
go to the log, never into the answer (whoever polls it need not learn connection strings).

The media store is probed through the storage interface (a write to the local folder, a HEAD of
the bucket) in a helper thread, waited for at most ``timeout`` seconds: a dead S3 endpoint or a
hung network mount must make the host unready within seconds, not after the S3 client's retries or
never. At most one probe per app is in flight: checks arriving meanwhile share its outcome, and
while a probe hangs they answer "timeout" instead of piling up threads behind it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import text

from .. import db

log = logging.getLogger(__name__)
_PROBE_KEY = "fieldapp.media_probe"


@dataclass(frozen=True)
class Check:
    verdict: str
    ms: float

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> Check:
    started = time.perf_counter()
    try:
        db.session().execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure makes us unready
        log.error("readiness: database unreachable: %s", exc)
        return Check("unreachable", _elapsed_ms(started))
    return Check("ok", _elapsed_ms(started))


class _Probe:
    """One run of the store's probe in a daemon thread (a hung probe must not keep the process
    from exiting), and its outcome once it returns."""

    def __init__(self, store, timeout: float):
        self.started = time.monotonic()
        self.done = threading.Event()
        self.error: BaseException | None = None
        threading.Thread(target=self._run, args=(store, timeout), name="media-probe", daemon=True).start()

    def _run(self, store, timeout: float) -> None:
        try:
            store.probe(timeout)
        except BaseException as exc:  # noqa: BLE001 — reported by the waiting request
            self.error = exc
        finally:
            self.done.set()


class _MediaProbe:
    """The media probes of one app: checks arriving while a probe runs wait for that one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: _Probe | None = None

    def run(self, store, timeout: float) -> Check:
        started = time.perf_counter()
        with self._lock:
            probe = self._current
            if probe is None or probe.done.is_set():
                probe = self._current = _Probe(store, timeout)
        remaining = probe.started + timeout - time.monotonic()
        if not probe.done.wait(max(remaining, 0)):
            log.error("readiness: media store did not answer within %.1f s", timeout)
            return Check("timeout", _elapsed_ms(started))
        if probe.error is not None:
            log.error("readiness: media store unreachable: %s", probe.error)
            return Check("unreachable", _elapsed_ms(started))
        return Check("ok", _elapsed_ms(started))


def check_media(timeout: float) -> Check:
    from ..media.service import media_storage

    started = time.perf_counter()
    try:
        store = media_storage()
    except Exception as exc:  # noqa: BLE001 - a store that cannot even be configured
        log.error("readiness: media store not configured: %s", exc)
        return Check("unreachable", _elapsed_ms(started))
    probe = current_app.extensions.get(_PROBE_KEY) or current_app.extensions.setdefault(_PROBE_KEY, _MediaProbe())
    return probe.run(store, timeout)
