"""cases.act_ended_reason: why a lead entered the end of the act by hand

Revision ID: 0012_act_ended_reason
Revises: 0011_finding_exceptions

The end of the act (art. 25's 30 days to file count from it) now follows from the steps that end
it; a lead may still enter it by hand, and then says why.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_act_ended_reason'
down_revision = '0011_finding_exceptions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('act_ended_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('act_ended_reason')
