"""cases.linked_case_id: a penalty case opened on the spot from an inspection names that inspection

Revision ID: 0013_case_links
Revises: 0012_act_ended_reason
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_case_links'
down_revision = '0012_act_ended_reason'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('linked_case_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cases_linked_case_id_cases'), 'cases', ['linked_case_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cases_linked_case_id_cases'), type_='foreignkey')
        batch_op.drop_column('linked_case_id')
