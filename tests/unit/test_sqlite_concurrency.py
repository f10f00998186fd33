"""The embedded SQLite mode under load from two workers: writers queue, none fails "database is locked"."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fieldapp import db
from fieldapp.auth import ratelimit
from tests.support.appfactory import make_app

THREADS = 8
ITERATIONS = 25
# A window far longer than the test, so no window boundary can reset the counts mid-run.
WINDOW_SECONDS = 10**9


@pytest.fixture
def two_workers(sqlite_url, tmp_path: Path):
    """Two apps on one SQLite file, each with its own engine and pool: two gunicorn workers."""
    apps = [make_app(sqlite_url, tmp_path / "var") for _ in range(2)]
    yield apps
    for app in apps:
        app.extensions["fieldapp.engine"].dispose()


def test_two_workers_writing_at_once_never_see_database_is_locked(two_workers):
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    lost_updates: list[tuple[int, int]] = []

    def work(index: int) -> None:
        app = two_workers[index % 2]
        try:
            barrier.wait(timeout=30)
            for _ in range(ITERATIONS):
                with app.app_context(), db.transaction():
                    # Read, then write in the same transaction: the pattern that fails at once on a
                    # deferred SQLite transaction whose snapshot another writer made stale.
                    before = ratelimit.count("shared", WINDOW_SECONDS)
                    after = ratelimit.hit("shared", WINDOW_SECONDS)
                    ratelimit.hit(f"thread-{index}", WINDOW_SECONDS)
                    if after != before + 1:
                        lost_updates.append((before, after))
        except BaseException as exc:  # noqa: BLE001 - every failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"

    assert errors == []
    assert lost_updates == []
    app = two_workers[0]
    with app.app_context():
        assert ratelimit.count("shared", WINDOW_SECONDS) == THREADS * ITERATIONS
        for index in range(THREADS):
            assert ratelimit.count(f"thread-{index}", WINDOW_SECONDS) == ITERATIONS


def test_connections_use_wal_foreign_keys_and_a_busy_timeout(two_workers):
    app = two_workers[0]
    with app.app_context(), db.engine().connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
