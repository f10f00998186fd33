"""media_refs: a partial index of the references still waiting for their original

Revision ID: 0006_media_refs_waiting
Revises: 0005_review
"""
from alembic import op
import sqlalchemy as sa

from fieldapp import online_ddl


revision = '0006_media_refs_waiting'
down_revision = '0005_review'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # media_refs grows with every photo: built CONCURRENTLY on PostgreSQL, so that pushes and
    # uploads keep writing to it meanwhile. The index is the same as a plain build's.
    online_ddl.create_index('ix_media_refs_waiting', 'media_refs', ['unit_id', 'author_id', 'record_id'],
                            unique=False,
                            sqlite_where=sa.text('original_stored IS 0'),
                            postgresql_where=sa.text('original_stored IS false'))


def downgrade() -> None:
    with op.batch_alter_table('media_refs', schema=None) as batch_op:
        batch_op.drop_index('ix_media_refs_waiting')
