"""Two hosts upgrading one database at once: both succeed, and the schema ends at head.

Each test starts real processes on a fresh, empty database — SQLite and PostgreSQL. The first test
releases two upgrades at the same instant (each process sleeps until an agreed moment after its
imports), which without the schema lock makes one of them fail on a table or ``alembic_version``
row the other just created. The second runs ``flask --app fieldapp init-db`` twice at once, as two
hosts of a deploy would.
"""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from fieldapp import migrate
from tests.support.app_process import REPO_ROOT, app_env

ROUNDS = 3
UPGRADE_AT = """
import sys, time
from fieldapp import migrate
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
migrate.upgrade(sys.argv[1])
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A factory of fresh databases with no schema at all."""

    def make() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.sqlite3'}"
        cluster = request.getfixturevalue("pg_cluster")
        name = f"t_{uuid.uuid4().hex[:16]}"
        cluster.execute(f"CREATE DATABASE {name}")
        request.addfinalizer(lambda: cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        return cluster.url(name)

    return make


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        results.append((process.returncode, out))
    return results


def test_two_upgrades_released_at_the_same_instant_both_succeed(empty_database):
    for _ in range(ROUNDS):
        url = empty_database()
        start = time.time() + 4.0  # after both processes have imported the app
        processes = [subprocess.Popen([sys.executable, "-c", UPGRADE_AT, url, repr(start)], cwd=REPO_ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for _ in range(2)]
        results = finish(processes)
        assert [code for code, _ in results] == [0, 0], "\n\n".join(out for _, out in results)
        assert current_revision(url) == head()


def test_two_init_db_commands_at_once_both_succeed(empty_database, tmp_path):
    url = empty_database()
    processes = []
    for host in "ab":
        env = app_env(database_url=url, var_dir=tmp_path / f"var-{host}", secret_key="init-db-lock-secret",
                      origin="http://localhost")
        processes.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "fieldapp", "init-db"],
                                          cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    results = finish(processes)
    assert [code for code, _ in results] == [0, 0], "\n\n".join(out for _, out in results)
    # One host created the schema; the other waited for it and found nothing left to do.
    assert sorted("created" if "database created at the latest schema" in out
                  else "current" if "database already at the latest schema" in out else out
                  for _, out in results) == ["created", "current"]
    assert current_revision(url) == head()


def test_an_upgrade_inside_the_schema_lock_does_not_wait_for_itself(empty_database):
    url = empty_database()
    started = time.monotonic()
    with migrate.schema_lock(url):
        migrate.upgrade(url)
    assert time.monotonic() - started < 60
    assert current_revision(url) == head()
