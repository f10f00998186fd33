"""change_log: the feed's (txid, id) index, built without stopping writes

Revision ID: 0010_change_log_feed_index
Revises: 0009_media_frames
"""
from alembic import op

from fieldapp import online_ddl


revision = '0010_change_log_feed_index'
down_revision = '0009_media_frames'
branch_labels = None
depends_on = None


def upgrade() -> None:
    online_ddl.create_index('ix_change_log_feed', 'change_log', ['txid', 'id'])


def downgrade() -> None:
    op.drop_index('ix_change_log_feed', table_name='change_log')
