"""change_log: the writing transaction's id, so pull serves only what can no longer change

Revision ID: 0007_feed_position
Revises: 0006_media_refs_waiting

On PostgreSQL a change-log id is handed out when the row is inserted, not when its transaction
commits, so ids commit out of order and a cursor of "the highest id seen" skips the late ones.
Each row now carries the id of the transaction that wrote it (``pg_current_xact_id()``); pull
orders by (txid, id) and serves only rows of transactions older than the oldest one still in
flight, a set that can no longer grow.  SQLite has a single writer, so its ids commit in order
and the column stays NULL there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_feed_position'
down_revision = '0006_media_refs_waiting'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        with op.batch_alter_table('change_log', schema=None) as batch_op:
            batch_op.add_column(sa.Column('txid', sa.BigInteger(), nullable=True))
        return
    # Rows written before this release get 0 (their transactions have all ended). A constant default
    # is stored once in the catalogue, not written into every row, so this takes no time on a big
    # table; new rows then get their transaction's id. The index follows in 0010, built concurrently.
    op.add_column('change_log', sa.Column('txid', sa.BigInteger(), nullable=True, server_default=sa.text('0')))
    op.alter_column('change_log', 'txid', server_default=sa.text("(pg_current_xact_id()::text)::bigint"))


def downgrade() -> None:
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.drop_column('txid')
