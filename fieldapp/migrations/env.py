"""Alembic environment: the URL comes from the caller (fieldapp.migrate), never from an ini file.

Each migration runs in its own transaction (``transaction_per_migration``): the locks a migration
takes are released when it commits, not held until the last migration of a long upgrade ends, and
a migration with an autocommit block (an index built CONCURRENTLY, see fieldapp.online_ddl) commits
only what came before it.

On PostgreSQL the migration connection has a ``lock_timeout``: a statement that needs a table lock
held by a running transaction waits a few seconds and then fails, instead of waiting on while every
later query of that table queues behind its lock request.
"""
from alembic import context
from sqlalchemy import create_engine, pool

from fieldapp.models import Base

config = context.config
target_metadata = Base.metadata
DEFAULT_LOCK_TIMEOUT_S = 5


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _set_lock_timeout(connection) -> None:
    seconds = config.attributes.get("lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S)
    in_transaction = connection.in_transaction()
    # Session-wide (not SET LOCAL): it must outlive each migration's transaction.
    connection.exec_driver_sql(f"SET lock_timeout = '{int(float(seconds) * 1000)}ms'")
    if not in_transaction:
        # End the transaction the SET opened, so that Alembic manages the migrations' own.
        connection.commit()


def _run(connection) -> None:
    if connection.dialect.name == "postgresql":
        _set_lock_timeout(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
