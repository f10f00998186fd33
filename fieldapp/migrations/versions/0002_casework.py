"""casework: cases, catalogue versions, unit step types

Revision ID: 0002_casework
Revises: 0001_identity
Create Date: 2026-11-27 04:50:56.426867
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0002_casework'
down_revision = '0001_identity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('case_number', sa.String(length=60), nullable=True),
    sa.Column('party_name', sa.String(length=200), nullable=False),
    sa.Column('party_credit_code', sa.String(length=18), nullable=True),
    sa.Column('party_address', sa.String(length=300), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('act_ended_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('archived_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_cases_created_by_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_cases_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_unit_status', ['unit_id', 'status'], unique=False)

    op.create_table('catalogue_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('published_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.Uuid(), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['published_by'], ['users.id'], name=op.f('fk_catalogue_versions_published_by_users')),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_catalogue_versions'))
    )
    op.create_table('unit_step_types',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('step_id', sa.String(length=80), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('introduced_in', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_unit_step_types_created_by_users')),
    sa.ForeignKeyConstraint(['introduced_in'], ['catalogue_versions.version'], name=op.f('fk_unit_step_types_introduced_in_catalogue_versions')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_unit_step_types_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_step_types')),
    sa.UniqueConstraint('step_id', name=op.f('uq_unit_step_types_step_id'))
    )
    with op.batch_alter_table('unit_step_types', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_step_types_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('unit_step_types', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_step_types_unit_id'))

    op.drop_table('unit_step_types')
    op.drop_table('catalogue_versions')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_unit_status')

    op.drop_table('cases')
