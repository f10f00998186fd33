"""Configuration from environment variables with the FIELDAPP_ prefix.

Every setting has a safe default for the embedded mode (SQLite file and a local media folder under
``./var``).  Security-relevant values (RP ID, allowed origins) come only from here, never from the
request's Host header, because a forged Host must not change which origin a passkey is bound to.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"FIELDAPP_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return default if raw is None else int(raw)


def _env_opt_int(name: str) -> int | None:
    raw = _env(name)
    return None if raw is None or not raw.strip() else int(raw)


# The request body limit of every route but chunk uploads and preview batches (media_views raise it).
MAX_CONTENT_LENGTH = 2 * 1024 * 1024


def _load_secret_key(var_dir: Path) -> str:
    """Use FIELDAPP_SECRET_KEY, or a random key persisted under var/ so that all workers share it.

    A key generated per process would make each gunicorn worker reject the others' session cookies.
    """
    configured = _env("SECRET_KEY")
    if configured:
        return configured
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        candidate = secrets.token_urlsafe(48)
        # O_EXCL: when two workers start together exactly one writes the key, the other reads it.
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(candidate)
    return key_file.read_text().strip()


@dataclass
class Settings:
    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", "var")).resolve())
    database_url: str | None = field(default_factory=lambda: _env("DATABASE_URL"))
    media_dir: Path | None = None
    rp_id: str = field(default_factory=lambda: _env("RP_ID", "localhost"))
    rp_name: str = field(default_factory=lambda: _env("RP_NAME", "临淄区市场监管执法记录"))
    origins: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            o.strip().rstrip("/") for o in _env("ORIGINS", "http://localhost:8000").split(",") if o.strip()
        )
    )
    demo: bool = field(default_factory=lambda: _env_bool("DEMO", False))
    cookie_secure: bool = field(default_factory=lambda: _env_bool("COOKIE_SECURE", True))
    session_hours: int = field(default_factory=lambda: _env_int("SESSION_HOURS", 12))
    enrollment_hours: int = field(default_factory=lambda: _env_int("ENROLLMENT_HOURS", 24))
    challenge_seconds: int = field(default_factory=lambda: _env_int("CHALLENGE_SECONDS", 300))
    rate_limit_enabled: bool = field(default_factory=lambda: _env_bool("RATE_LIMIT", True))
    # Per source address: generous, so that a whole office behind one NAT address signs in freely.
    signin_ip_limit: int = field(default_factory=lambda: _env_int("SIGNIN_IP_LIMIT", 600))
    # Per credential: failed verifications of one passkey, the signal of a targeted attack.
    signin_credential_failure_limit: int = field(
        default_factory=lambda: _env_int("SIGNIN_CREDENTIAL_FAILURE_LIMIT", 10)
    )
    rate_limit_window_seconds: int = field(default_factory=lambda: _env_int("RATE_LIMIT_WINDOW", 600))
    # How many reverse proxies in front of us set X-Forwarded-For/Proto (0: trust no such header).
    trusted_proxies: int = field(default_factory=lambda: _env_int("TRUSTED_PROXIES", 0))
    # A phone clock further off than this (seconds) is flagged on the records it sends.
    clock_skew_seconds: int = field(default_factory=lambda: _env_int("CLOCK_SKEW_SECONDS", 300))
    # After a restore (a new server epoch) phones offer again the revisions the server acknowledged
    # to them within this many days (the session answer tells them; capture/epoch.js).
    resend_window_days: int = field(default_factory=lambda: _env_int("RESEND_WINDOW_DAYS", 30))
    log_requests: bool = field(default_factory=lambda: _env_bool("LOG_REQUESTS", True))
    # SQLite: a write inside a transaction begun without the write lock is an error (tests set this,
    # so every such path fails at once) instead of being retried with the lock (production).
    sqlite_strict_writes: bool = field(default_factory=lambda: _env_bool("SQLITE_STRICT_WRITES", False))
    # Art. 9 continuous recording: a gap up to this long (seconds) per body camera is not a finding.
    continuous_gap_tolerance_seconds: int = field(default_factory=lambda: _env_int("CONTINUOUS_GAP_TOLERANCE", 30))
    # Footage declared on a body camera may arrive this many working days after art. 25's storage
    # deadline before the step counts as unrecorded (the camera station's upload lag).
    footage_grace_working_days: int = field(default_factory=lambda: _env_int("FOOTAGE_GRACE_WORKING_DAYS", 3))
    # Body-camera clocks drift: footage links to an activity whose time it misses by up to this much.
    footage_clock_tolerance_seconds: int = field(default_factory=lambda: _env_int("FOOTAGE_CLOCK_TOLERANCE", 120))
    # Threads hashing footage files during an import (OpenSSL releases the GIL while it hashes).
    footage_hash_workers: int = field(default_factory=lambda: _env_int("FOOTAGE_HASH_WORKERS", 4))
    # A running deadline is announced ("due soon") this many working days before its day, and on the day.
    deadline_warning_working_days: int = field(default_factory=lambda: _env_int("DEADLINE_WARNING_WORKING_DAYS", 2))
    # Media storage: "local" (a folder every app host mounts: media_dir) or "s3" (any S3-compatible store).
    media_backend: str = field(default_factory=lambda: _env("MEDIA_BACKEND", "local"))
    s3_bucket: str | None = field(default_factory=lambda: _env("S3_BUCKET"))
    s3_endpoint: str | None = field(default_factory=lambda: _env("S3_ENDPOINT"))
    s3_region: str = field(default_factory=lambda: _env("S3_REGION", "us-east-1"))
    s3_access_key: str | None = field(default_factory=lambda: _env("S3_ACCESS_KEY"))
    s3_secret_key: str | None = field(default_factory=lambda: _env("S3_SECRET_KEY"))
    s3_prefix: str = field(default_factory=lambda: _env("S3_PREFIX", ""))
    # Limits the server advertises to phones (GET /api/v1/media/limits).
    media_max_bytes: int = field(default_factory=lambda: _env_int("MEDIA_MAX_BYTES", 4 * 1024**3))
    media_chunk_max_bytes: int = field(default_factory=lambda: _env_int("MEDIA_CHUNK_MAX_BYTES", 8 * 1024**2))
    media_preview_max_bytes: int = field(default_factory=lambda: _env_int("MEDIA_PREVIEW_MAX_BYTES", 2 * 1024**2))
    # The unread rest of a refused request body is read and dropped up to this many bytes, so the
    # connection stays usable; a larger rest closes the connection (default: the chunk limit, and
    # at least the app-wide body limit).
    request_drain_max_bytes: int | None = field(default_factory=lambda: _env_opt_int("REQUEST_DRAIN_MAX_BYTES"))
    # ... and for at most this many seconds: a client that stops sending gets its connection closed.
    request_drain_seconds: float = field(default_factory=lambda: float(_env("REQUEST_DRAIN_SECONDS", "10")))
    # Readiness (/readyz, /healthz): how long the media store may take to answer its probe.
    health_media_timeout_seconds: float = field(
        default_factory=lambda: float(_env("HEALTH_MEDIA_TIMEOUT", "2")))
    # Migrations on PostgreSQL give up on a table lock after this long instead of queueing every
    # writer behind their own wait; `init-db` can simply be run again.
    migration_lock_timeout_seconds: int = field(default_factory=lambda: _env_int("MIGRATION_LOCK_TIMEOUT", 5))
    # `sweep-uploads`: an upload nobody added to for this long is abandoned and removed; the
    # remaining state of a completed upload goes after completed_hours; temporary files a killed
    # host left behind after temp_hours.
    upload_abandon_hours: float = field(default_factory=lambda: float(_env("UPLOAD_ABANDON_HOURS", "48")))
    upload_completed_hours: float = field(default_factory=lambda: float(_env("UPLOAD_COMPLETED_HOURS", "1")))
    upload_temp_hours: float = field(default_factory=lambda: float(_env("UPLOAD_TEMP_HOURS", "6")))

    # The audit chain (art. 30). Events are on in every real deployment; turning them off exists only
    # to measure their cost, and `verify` then names every row changed without one.
    audit_events: bool = field(default_factory=lambda: _env_bool("AUDIT_EVENTS", True))
    # The Ed25519 key that signs checkpoints: a file outside the database (made on first use,
    # mode 0600). Keep it on another volume than the database, and back it up separately.
    audit_key_file: Path | None = field(default_factory=lambda: Path(p).resolve() if (p := _env("AUDIT_KEY_FILE")) else None)
    # Each app process seals the chain this often (seconds; 0: only `flask audit-seal` seals).
    audit_seal_seconds: float = field(default_factory=lambda: float(_env("AUDIT_SEAL_SECONDS", "2")))
    # A checkpoint is signed when the last one is this old and the chain has grown since. Until then
    # a database writer could rewrite the newest events consistently, so every 15 minutes rather
    # than the daily minimum; `verify` faults a chain left unsigned for longer than this (plus an
    # hour's grace).
    audit_checkpoint_hours: float = field(default_factory=lambda: float(_env("AUDIT_CHECKPOINT_HOURS", "0.25")))
    # An RFC 3161 timestamp authority for checkpoints (optional): its URL, and the PEM file of the
    # certificate(s) its tokens must be signed with.
    tsa_url: str | None = field(default_factory=lambda: _env("TSA_URL"))
    tsa_cert_file: Path | None = field(default_factory=lambda: Path(p) if (p := _env("TSA_CERT_FILE")) else None)
    # Art. 29 does not name who approves another enforcement unit's request: the division head over
    # the collecting unit (the stricter reading, default) or the collecting unit's lead.
    access_other_unit_approver: str = field(default_factory=lambda: _env("ACCESS_OTHER_UNIT_APPROVER", "division_head"))
    # Backups (`flask backup DEST`): the age public keys (age1…, comma-separated) every backup is
    # encrypted to — none: not encrypted (the destination must then be trusted as much as the server).
    # The identity that decrypts is given only to `flask restore --identity`, never kept here.
    backup_age_recipients: str = field(default_factory=lambda: _env("BACKUP_AGE_RECIPIENTS", ""))
    # An S3 destination at another site (s3://bucket/prefix): its endpoint and keys, apart from the
    # media store's own.
    backup_s3_endpoint: str | None = field(default_factory=lambda: _env("BACKUP_S3_ENDPOINT"))
    backup_s3_region: str = field(default_factory=lambda: _env("BACKUP_S3_REGION", "us-east-1"))
    backup_s3_access_key: str | None = field(default_factory=lambda: _env("BACKUP_S3_ACCESS_KEY"))
    backup_s3_secret_key: str | None = field(default_factory=lambda: _env("BACKUP_S3_SECRET_KEY"))
    # Prometheus metrics at GET /metrics (ops/metrics.py), answered only to these client addresses
    # (comma-separated CIDRs; others get 404): loopback and the private ranges by default.
    metrics: bool = field(default_factory=lambda: _env_bool("METRICS", True))
    metrics_allow: str = field(default_factory=lambda: _env(
        "METRICS_ALLOW", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"))
    # The request log's lines: "text" (one line as before) or "json" (one JSON object per request).
    log_format: str = field(default_factory=lambda: _env("LOG_FORMAT", "text"))

    def __post_init__(self) -> None:
        if self.media_dir is None:
            self.media_dir = Path(_env("MEDIA_DIR", str(self.var_dir / "media"))).resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'fieldapp.sqlite3'}"
        if self.audit_key_file is None:
            self.audit_key_file = self.var_dir / "audit-signing-key.pem"
        if self.request_drain_max_bytes is None:
            self.request_drain_max_bytes = max(self.media_chunk_max_bytes, MAX_CONTENT_LENGTH)

    @property
    def base_url(self) -> str:
        """The origin used in links we print (enrolment links): the first allowed origin."""
        return self.origins[0]


def flask_config(settings: Settings) -> dict:
    return {
        "SECRET_KEY": _load_secret_key(settings.var_dir),
        "SESSION_COOKIE_NAME": "fieldapp_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.cookie_secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": settings.cookie_secure,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": settings.session_hours * 3600,
        # A session lasts session_hours from sign-in (a working day), and the cookie is sent only
        # when the session changes: a response cut inside its headers on a bad link must not leave
        # the phone holding a truncated session cookie that spoils every later request.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # Tokens live as long as the session: an officer who opened the app in the morning and
        # syncs in the afternoon must not fail on a token that expired in between.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        "WTF_CSRF_SSL_STRICT": False,  # origins are checked against FIELDAPP_ORIGINS instead
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        "JSON_AS_ASCII": False,
    }
