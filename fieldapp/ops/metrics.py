"""Prometheus metrics at ``GET /metrics``, for the internal network only (README "Metrics and what
to watch").

Two kinds of figures:

- **Counted in the process** as things happen: requests by route (the URL rule, never the raw path,
  so ids do not make a series each), push outcomes, upload bytes and states. Under gunicorn every
  worker counts its own; with ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it) the
  counts live in files there and a scrape of any worker sums every worker's, including workers
  that have exited since. Without it (tests, ``flask run``) they live in the default registry.
- **Read from the database** when scraped (``DatabaseCollector``): open findings, feed delay,
  backup age, uploads in flight. Each scrape reads them in one short read-only transaction of a
  handful of small queries; they are the same from every host (aggregate them with ``max``).

The endpoint answers only clients in ``FIELDAPP_METRICS_ALLOW`` (CIDRs; loopback and private
ranges by default), by the address the app already trusts: the peer's, or the one
``FIELDAPP_TRUSTED_PROXIES`` proxies vouch for. Anybody else is told 404, as for a page that does
not exist. A request carrying ``X-Forwarded-For`` while no proxy is trusted came through a proxy
the app was not told about: its peer address says nothing about the client, so it is refused too.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, Response, abort, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .. import db
from ..access import allow
from . import bp

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")  # an error code as the app writes them

PUSH_OUTCOMES = ("created", "duplicate", "conflict", "rejected")
UPLOAD_STATES = ("begun", "resumed", "already_stored", "completed", "refused", "discarded")
# Seconds; up to 10 minutes, as long as completing a large upload may take behind nginx.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 600)

# ---- counted in the process ----------------------------------------------------------------------

HTTP_REQUESTS = Counter("fieldapp_http_requests", "Requests answered, by URL rule, method and status.",
                        ["route", "method", "status"])
HTTP_REQUEST_SECONDS = Histogram("fieldapp_http_request_seconds",
                                 "Time from receiving a request until the server closed its response, "
                                 "by URL rule and method.", ["route", "method"], buckets=LATENCY_BUCKETS)
PUSH_ITEMS = Counter("fieldapp_push_items", "Revisions phones pushed, by the answer each got.", ["outcome"])
PUSH_ITEM_ERRORS = Counter("fieldapp_push_item_errors", "Conflicting and rejected pushed revisions, by error code.",
                           ["outcome", "error"])
UPLOAD_BYTES = Counter("fieldapp_upload_bytes", "Bytes of originals received in upload chunks and stored.")
UPLOADS = Counter("fieldapp_uploads", "Upload steps: begun (new), resumed (begun again), already_stored (nothing "
                  "to send), completed, refused (any refusal of begin, chunk or complete), discarded (bytes dropped).",
                  ["state"])
UPLOAD_REFUSALS = Counter("fieldapp_upload_refusals", "Refused upload requests (begin, chunk, complete), by code.",
                          ["code"])

for _outcome in PUSH_OUTCOMES:  # every series exists from the start, so rate() sees its first increase
    PUSH_ITEMS.labels(_outcome)
for _state in UPLOAD_STATES:
    UPLOADS.labels(_state)


def _code_label(code: object) -> str:
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "other"


def observe_request(environ: dict, status: str, seconds: float) -> None:
    """Called by the request log's middleware once per request, when the server closed the response."""
    from .request_log import ROUTE_KEY

    route = environ.get(ROUTE_KEY) or UNMATCHED
    method = environ.get("REQUEST_METHOD", "")
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(route, method, status if status.isdigit() else "none").inc()
    HTTP_REQUEST_SECONDS.labels(route, method).observe(seconds)


def count_push(results: Iterable) -> None:
    """The answers of one committed push (``sync.push.ItemResult``)."""
    for result in results:
        outcome = result.status if result.status in PUSH_OUTCOMES else "rejected"
        PUSH_ITEMS.labels(outcome).inc()
        if outcome in ("conflict", "rejected"):
            PUSH_ITEM_ERRORS.labels(outcome, _code_label(result.error)).inc()


def upload_state(state: str) -> None:
    UPLOADS.labels(state).inc()


def upload_bytes(n: int) -> None:
    if n > 0:
        UPLOAD_BYTES.inc(n)


def counts_upload_refusals(step: Callable) -> Callable:
    """Wrap an upload step (``media.service.begin``/``append``/``complete``): a refusal (an exception
    with a string ``code``, i.e. ``MediaRefused``) is counted, and raised on unchanged."""
    @functools.wraps(step)
    def counted(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                UPLOADS.labels("refused").inc()
                UPLOAD_REFUSALS.labels(_code_label(code)).inc()
            raise
    return counted


# ---- read from the database when scraped ---------------------------------------------------------

@dataclass
class Figures:
    findings_open: dict[str, int] = field(default_factory=dict)  # by severity
    findings_open_blocking: int = 0
    oldest_blocking_opened: datetime | None = None
    feed_delay_seconds: float = 0.0
    backup_finished: datetime | None = None
    backup_last_run_ok: bool | None = None  # None: no run recorded
    uploads_in_flight: int = 0
    oldest_upload_activity: datetime | None = None


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite keeps UTC, naive


def _age(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else max(0.0, (now - _aware(moment)).total_seconds())


def read_figures(s: Session, now: datetime) -> Figures:
    """The database's figures, in the caller's (read-only) transaction."""
    from ..models import BackupRun, ChangeLog, Finding, MediaUpload, MediaUploadChunk
    from ..rules.catalogue import SEVERITIES
    from ..sync import feed

    figures = Figures(findings_open={severity: 0 for severity in SEVERITIES})
    rows = s.execute(select(Finding.severity, Finding.blocks_archiving, func.count(), func.min(Finding.opened_at))
                     .where(Finding.resolved_at.is_(None))
                     .group_by(Finding.severity, Finding.blocks_archiving)).all()
    for severity, blocking, count, oldest in rows:
        figures.findings_open[severity] = figures.findings_open.get(severity, 0) + count
        if blocking:
            figures.findings_open_blocking += count
            oldest = _aware(oldest)
            if figures.oldest_blocking_opened is None or oldest < figures.oldest_blocking_opened:
                figures.oldest_blocking_opened = oldest

    # Feed delay (decision record 009): the age of the oldest committed change the pull feed may not
    # serve yet, because a transaction older than it is still running. On SQLite the single writer
    # commits in order and every committed change is servable at once: always 0.
    if s.get_bind().dialect.name == "postgresql":
        end = feed.stable_end(s)
        oldest_unservable = s.execute(select(func.min(ChangeLog.at)).where(
            ChangeLog.txid > end.txid, ChangeLog.entity.in_(feed.FEED_ENTITIES))).scalar_one()
        figures.feed_delay_seconds = _age(oldest_unservable, now)

    # A backup is a run that finished (its manifest written), even one that had to skip objects;
    # a run that failed has no finished_at. Whether the newest run went wholly well is apart.
    figures.backup_finished = _aware(s.execute(select(func.max(BackupRun.finished_at)).where(
        BackupRun.finished_at.is_not(None))).scalar_one())
    newest = s.execute(select(BackupRun.finished_at, BackupRun.error)
                       .order_by(BackupRun.started_at.desc()).limit(1)).first()
    if newest is not None:
        figures.backup_last_run_ok = newest.finished_at is not None and newest.error is None

    # In flight: bytes received, not completed, not discarded (a discarded upload loses its head).
    # Its last activity is its newest chunk (the sweeper abandons uploads idle for 48 h).
    last_chunk = (select(func.max(MediaUploadChunk.at)).where(MediaUploadChunk.upload_id == MediaUpload.id)
                  .correlate(MediaUpload).scalar_subquery())
    in_flight = (select(last_chunk.label("last_at"))
                 .where(MediaUpload.completed_at.is_(None), MediaUpload.head.is_not(None)).subquery())
    count, oldest = s.execute(select(func.count(), func.min(in_flight.c.last_at))).one()
    figures.uploads_in_flight = count
    figures.oldest_upload_activity = _aware(oldest)
    return figures


def _gauge(name: str, documentation: str, value: float | None = None, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels) or None)
    if value is not None:
        family.add_metric([], value)
    return family


class DatabaseCollector(Collector):
    """Gauges read from the app's database at scrape time. A database that does not answer gives
    ``fieldapp_metrics_database_up 0`` and no database gauges, never a failed scrape."""

    STATEMENT_TIMEOUT_MS = 5000

    def __init__(self, app: Flask):
        self.app = app

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are not claimed up front: nothing else registers these

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        now = datetime.now(UTC)
        try:
            with self.app.app_context(), db.reading() as s:
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text(f"SET LOCAL statement_timeout = {self.STATEMENT_TIMEOUT_MS}"))
                figures = read_figures(s, now)
        except Exception as exc:  # noqa: BLE001 — the process's own metrics must still be served
            log.warning("metrics: database figures unavailable: %s", exc)
            figures = None
        yield _gauge("fieldapp_metrics_database_up", "1 if the database figures below could be read.",
                     0 if figures is None else 1)
        yield _gauge("fieldapp_metrics_database_seconds", "Time taken to read the database figures.",
                     round(time.perf_counter() - started, 6))
        if figures is None:
            return
        findings = _gauge("fieldapp_findings_open", "Open (unresolved) compliance findings, by severity.",
                          labels=["severity"])
        for severity, count in sorted(figures.findings_open.items()):
            findings.add_metric([severity], count)
        yield findings
        yield _gauge("fieldapp_findings_open_blocking", "Open findings that block archiving their case "
                     "(a lead's accepted exception is not subtracted).", figures.findings_open_blocking)
        yield _gauge("fieldapp_findings_oldest_open_blocking_seconds",
                     "Age of the oldest open finding that blocks archiving; 0 when there is none.",
                     _age(figures.oldest_blocking_opened, now))
        yield _gauge("fieldapp_feed_delay_seconds",
                     "Age of the oldest committed case/assignment/review change the pull feed cannot serve yet "
                     "(a longer-running transaction holds its horizon back); 0 when none waits.",
                     figures.feed_delay_seconds)
        yield _gauge("fieldapp_backup_age_seconds",
                     "Time since the newest successful backup finished; +Inf when none was ever taken.",
                     math.inf if figures.backup_finished is None else _age(figures.backup_finished, now))
        if figures.backup_last_run_ok is not None:
            yield _gauge("fieldapp_backup_last_run_ok", "1 if the newest backup run finished without an error; "
                         "0 if it failed or skipped objects; absent before the first run.",
                         1 if figures.backup_last_run_ok else 0)
        yield _gauge("fieldapp_uploads_in_flight", "Uploads with bytes received, not completed nor discarded.",
                     figures.uploads_in_flight)
        yield _gauge("fieldapp_uploads_oldest_idle_seconds",
                     "Time since the most idle upload in flight last received a chunk; 0 when none is in flight.",
                     _age(figures.oldest_upload_activity, now))


# ---- the endpoint ----------------------------------------------------------------------------------

class _DefaultRegistry(Collector):
    """The default registry's metrics (this process's counters, process and Python figures)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(database: Collector | None = None) -> CollectorRegistry:
    """What a scrape serves: every worker's counters (multiprocess mode) or this process's, and
    the database gauges when given."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    if database is not None:
        registry.register(database)
    return registry


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``FIELDAPP_METRICS_ALLOW``: comma-separated addresses or CIDR networks (empty: nobody)."""
    networks = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"FIELDAPP_METRICS_ALLOW: {part!r} is not an address or CIDR network") from exc
    return tuple(networks)


@dataclass(frozen=True)
class Endpoint:
    enabled: bool
    networks: tuple[Network, ...]
    trusted_proxies: int
    registry: CollectorRegistry

    def admits(self, address: str | None, forwarded: bool) -> bool:
        if not self.enabled or (forwarded and self.trusted_proxies == 0):
            return False
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


EXTENSION = "fieldapp.metrics"


def init_app(app: Flask, settings) -> None:
    app.extensions[EXTENSION] = Endpoint(
        enabled=settings.metrics, networks=parse_networks(settings.metrics_allow),
        trusted_proxies=settings.trusted_proxies, registry=scrape_registry(DatabaseCollector(app)))


@bp.get("/metrics")
@allow(public=True)  # no session: Prometheus does not sign in. Restricted by address instead.
def metrics():
    endpoint: Endpoint = current_app.extensions[EXTENSION]
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if not endpoint.admits(request.remote_addr, forwarded):
        abort(404)
    response = Response(generate_latest(endpoint.registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response.headers["Cache-Control"] = "no-store"
    return response
