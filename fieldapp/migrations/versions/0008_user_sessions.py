"""user_sessions: a server-side row per signed-in browser, so signing out ends the session

Revision ID: 0008_user_sessions
Revises: 0007_feed_position

Session cookies are signed, not stored: before this table a cookie saved before sign-out kept
working until it expired. Each sign-in now records a random token (hashed) that the cookie carries;
the user loader refuses a cookie whose row is ended or unknown. Cookies issued before this
revision carry no token, so everybody signs in once more after the upgrade.
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0008_user_sessions'
down_revision = '0007_feed_position'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))

    op.drop_table('user_sessions')
