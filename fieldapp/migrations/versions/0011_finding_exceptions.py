"""finding_exceptions: a lead's recorded acceptance of a finding; cases.party_id_number

Revision ID: 0011_finding_exceptions
Revises: 0010_change_log_feed_index

A finding that the law lets a lead accept (an AV-required step not recorded, a required document
marked not applicable) stays open and blocking until a lead records an exception with their name
and reason; the row is append-only and binds to the finding's facts as they stood. A party who is a
person is identified by a 居民身份证 number, kept beside the credit code of a party that is not.
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0011_finding_exceptions'
down_revision = '0010_change_log_feed_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('finding_exceptions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('finding_id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by_id', sa.Uuid(), nullable=False),
    sa.Column('at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_finding_exceptions_by_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_finding_exceptions_case_id_cases')),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_finding_exceptions_finding_id_findings')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_finding_exceptions_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding_exceptions'))
    )
    with op.batch_alter_table('finding_exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_finding_exceptions_case', ['case_id', 'key'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_exceptions_finding_id'), ['finding_id'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('party_id_number', sa.String(length=18), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('party_id_number')
    with op.batch_alter_table('finding_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_exceptions_finding_id'))
        batch_op.drop_index('ix_finding_exceptions_case')
    op.drop_table('finding_exceptions')
