"""Indexes on the times that tell which months' statistics changed since they were computed, and
when each month was last found unchanged (monthly_figures.checked_at)

A phone back after weeks without signal sends records of months already counted; an original stored
late or footage linked by a lead changes an earlier month too. ``statistics.compute.
months_changed_since`` finds those months by these three times.

Revision ID: 0021_statistics_change_times
Revises: 0020_statistics
Create Date: 2026-12-05 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0021_statistics_change_times'
down_revision = '0020_statistics'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_revisions_received_at'), 'revisions', ['received_at'], unique=False)
    op.create_index(op.f('ix_media_original_at'), 'media', ['original_at'], unique=False)
    op.create_index(op.f('ix_footage_links_linked_at'), 'footage_links', ['linked_at'], unique=False)
    with op.batch_alter_table('monthly_figures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monthly_figures', schema=None) as batch_op:
        batch_op.drop_column('checked_at')
    op.drop_index(op.f('ix_footage_links_linked_at'), table_name='footage_links')
    op.drop_index(op.f('ix_media_original_at'), table_name='media')
    op.drop_index(op.f('ix_revisions_received_at'), table_name='revisions')
