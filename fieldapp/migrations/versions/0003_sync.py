"""sync: devices, records, revisions, change log

Revision ID: 0003_sync
Revises: 0002_casework
Create Date: 2026-11-27 05:16:43.375771
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0003_sync'
down_revision = '0002_casework'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_change_log_unit_id_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_change_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_log'))
    )
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.create_index('ix_change_log_unit', ['unit_id', 'id'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=512), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('registered_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Uuid(), nullable=True),
    sa.Column('last_seen_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('app_version', sa.String(length=40), nullable=True),
    sa.Column('catalogue_version', sa.Integer(), nullable=True),
    sa.Column('unsynced_items', sa.Integer(), nullable=True),
    sa.Column('bytes_pending', sa.BigInteger(), nullable=True),
    sa.Column('oldest_unsynced_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('clock_skew_seconds', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['revoked_by'], ['users.id'], name=op.f('fk_devices_revoked_by_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_devices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_user_id'), ['user_id'], unique=False)

    op.create_table('records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('record_type', sa.String(length=20), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('head_revision', sa.Integer(), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_records_author_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_records_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ix_records_unit_type', ['unit_id', 'record_type'], unique=False)

    op.create_table('revisions',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('parent', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('record_type', sa.String(length=20), nullable=False),
    sa.Column('catalogue_version', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('device_time', sa.String(length=40), nullable=False),
    sa.Column('device_time_parsed', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('clock_skew_seconds', sa.Integer(), nullable=True),
    sa.Column('clock_skew_flag', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('media', sa.JSON(), nullable=False),
    sa.Column('withdrawn_media', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=128), nullable=False),
    sa.Column('missing_media', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_revisions_author_id_users')),
    sa.ForeignKeyConstraint(['catalogue_version'], ['catalogue_versions.version'], name=op.f('fk_revisions_catalogue_version_catalogue_versions')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_revisions_device_id_devices')),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_revisions_record_id_records')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_revisions')),
    sa.UniqueConstraint('record_id', 'revision', name='uq_revisions_record_revision')
    )
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revisions_device_id'), ['device_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revisions_device_id'))

    op.drop_table('revisions')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_unit_type')
        batch_op.drop_index(batch_op.f('ix_records_parent_id'))
        batch_op.drop_index(batch_op.f('ix_records_case_id'))
        batch_op.drop_index(batch_op.f('ix_records_author_id'))

    op.drop_table('records')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_user_id'))

    op.drop_table('devices')
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.drop_index('ix_change_log_unit')

    op.drop_table('change_log')
