"""Build a test app against a given database, with settings a test can read and change."""
from __future__ import annotations

from pathlib import Path

from fieldapp import create_app
from fieldapp.config import Settings

TEST_SECRET = "test-secret-key-not-for-production"


# Apps made during the running test: after it, every row they wrote must be vouched for by the audit
# chain (tests/conftest.py), so no code path can write a covered table without its event.
made_in_this_test: list = []


def make_app(database_url: str, var_dir: Path, origin: str = "http://localhost", **overrides):
    settings = Settings(
        var_dir=var_dir,
        database_url=database_url,
        rp_id="localhost",
        origins=(origin,),
        cookie_secure=False,
        log_requests=False,
        **{"sqlite_strict_writes": True, "audit_seal_seconds": 0, **overrides},
    )
    app = create_app({"SECRET_KEY": TEST_SECRET, "TESTING": True}, settings=settings)
    made_in_this_test.append(app)
    return app
