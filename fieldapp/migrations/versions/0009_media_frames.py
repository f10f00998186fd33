"""media: the frame count of an animation (GIF, animated PNG or WebP), 1 for a still

Revision ID: 0009_media_frames
Revises: 0008_user_sessions
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_media_frames'
down_revision = '0008_user_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frames', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_column('frames')
