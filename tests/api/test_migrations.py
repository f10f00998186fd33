"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL; on
PostgreSQL they can run while the app is in use: a migration gives up on a table lock instead of
queueing everybody behind it, and an index is built without blocking writers."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool, text

from fieldapp import migrate
from fieldapp.models import Base


def test_migrated_schema_matches_the_models(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], f"models and migrations disagree; add a migration: {differences}"


# ---- migrating a database in use (PostgreSQL) --------------------------------------------------

BEFORE_WAITING_INDEX, WAITING_INDEX = "0005_review", "0006_media_refs_waiting"


@pytest.fixture
def pg_database(pg_cluster, request):
    """A factory of empty PostgreSQL databases (no schema), dropped after the test."""

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        pg_cluster.execute(f"CREATE DATABASE {name}")
        request.addfinalizer(lambda: pg_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        return pg_cluster.url(name)

    return make


def in_thread(target) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            target()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 — handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def revision_of(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def index_valid(engine, name: str) -> bool | None:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :n"),
            {"n": name}).scalar()


def test_a_migration_gives_up_on_a_table_lock_after_its_lock_timeout(pg_database):
    url = pg_database()
    migrate.upgrade(url, WAITING_INDEX)
    engine = create_engine(url, poolclass=pool.NullPool)
    reader = engine.connect()
    try:
        reader.execute(text("LOCK TABLE media_refs IN ACCESS SHARE MODE"))  # a long report, say
        started = time.monotonic()
        thread, outcome = in_thread(
            lambda: command.downgrade(migrate.alembic_config(url, lock_timeout_s=1), BEFORE_WAITING_INDEX))
        thread.join(15)
        waited = time.monotonic() - started
        still_waiting = thread.is_alive()
    finally:
        reader.rollback()
        reader.close()
    thread.join(30)
    try:
        assert not still_waiting, "the migration waited for the lock instead of giving up"
        assert outcome and outcome[0] is not None and migrate.is_lock_timeout(outcome[0]), outcome
        assert waited < 10, waited
        assert revision_of(engine) == WAITING_INDEX  # rolled back whole
    finally:
        engine.dispose()


def test_an_index_built_by_a_migration_does_not_block_writers(pg_database):
    url = pg_database()
    migrate.upgrade(url, BEFORE_WAITING_INDEX)
    engine = create_engine(url, poolclass=pool.NullPool)
    writer, other_writer = engine.connect(), engine.connect()
    try:
        writer.execute(text("LOCK TABLE media_refs IN ROW EXCLUSIVE MODE"))  # a push in progress
        thread, outcome = in_thread(lambda: migrate.upgrade(url, WAITING_INDEX))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with engine.connect() as watcher:
                building = watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%ix_media_refs_waiting%'"
                    " AND wait_event_type = 'Lock'")).scalar()
            if building:
                break
            time.sleep(0.05)
        assert building, "the index build never started"
        # Another writer meanwhile: not queued behind the index build.
        other_writer.execute(text("SET lock_timeout = '2s'"))
        other_writer.execute(text("UPDATE media_refs SET original_stored = original_stored WHERE false"))
        other_writer.commit()
    finally:
        writer.rollback()
        writer.close()
        other_writer.close()
    thread.join(30)
    try:
        assert outcome == [None], outcome
        assert revision_of(engine) == WAITING_INDEX
        assert index_valid(engine, "ix_media_refs_waiting") is True
    finally:
        engine.dispose()


def test_an_index_build_that_failed_part_way_is_finished_by_running_the_migration_again(pg_database):
    url = pg_database()
    migrate.upgrade(url, WAITING_INDEX)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:  # what a cancelled CREATE INDEX CONCURRENTLY leaves
            connection.execute(text("UPDATE pg_index SET indisvalid = false "
                                    "WHERE indexrelid = 'ix_media_refs_waiting'::regclass"))
        command.stamp(migrate.alembic_config(url), BEFORE_WAITING_INDEX)
        assert index_valid(engine, "ix_media_refs_waiting") is False
        migrate.upgrade(url, WAITING_INDEX)
        assert index_valid(engine, "ix_media_refs_waiting") is True
        assert revision_of(engine) == WAITING_INDEX
    finally:
        engine.dispose()
