"""Schema changes for migrations that must not stop the app's writes while they run.

A plain ``CREATE INDEX`` on PostgreSQL holds a SHARE lock on its table until it ends: on a big
table (media_refs, change_log, revisions) every insert and update waits for the whole build, and
the app's requests time out. ``CREATE INDEX CONCURRENTLY`` lets writes go on, at the price of
running outside a transaction and of leaving an INVALID index behind when it fails.

Use it in a migration::

    from fieldapp import online_ddl

    def upgrade() -> None:
        online_ddl.create_index("ix_things_owner", "things", ["owner_id"],
                                postgresql_where=sa.text("deleted_at IS NULL"))

    def downgrade() -> None:
        op.drop_index("ix_things_owner", table_name="things")

What it does on PostgreSQL:

* runs in an autocommit block (migrations/env.py gives each migration its own transaction, so
  only this migration's earlier steps are committed first — keep such a migration to the index);
* drops an INVALID index of the same name, the remains of an earlier attempt that failed, and
  skips an index that already exists and is valid, so running the migration again finishes it;
* lifts the migration's lock_timeout for the build: CONCURRENTLY waits for the transactions
  already running on the table without blocking anybody meanwhile, and giving up would only
  leave an invalid index behind.

On SQLite (one writer, the embedded mode) it is a plain CREATE INDEX.
"""
from __future__ import annotations

from alembic import op
from sqlalchemy import text

_INDEX_STATE = text(
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE c.relname = :name AND c.relnamespace = "
    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
)


def create_index(name: str, table: str, columns: list, *, unique: bool = False, **dialect_kw) -> None:
    """Create an index without blocking writes on PostgreSQL; see the module's description."""
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, columns, unique=unique, **dialect_kw)
        return
    with op.get_context().autocommit_block():
        valid = op.get_bind().execute(_INDEX_STATE, {"name": name}).scalar()
        if valid:
            return
        if valid is not None:  # INVALID: a concurrent build that failed part-way
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        previous = op.get_bind().exec_driver_sql("SHOW lock_timeout").scalar()
        op.execute("SET lock_timeout = 0")
        try:
            op.create_index(name, table, columns, unique=unique, postgresql_concurrently=True, **dialect_kw)
        finally:
            op.execute(text("SELECT set_config('lock_timeout', :value, false)").bindparams(value=previous))
