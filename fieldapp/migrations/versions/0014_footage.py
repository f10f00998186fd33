"""Body-camera footage: cameras, their hand-out log, collection stations, segments and their links to activities; media uploads a station began

Revision ID: 0014_footage
Revises: 0013_case_links
Create Date: 2026-12-04 18:01:00.496724
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0014_footage'
down_revision = '0013_case_links'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('cameras',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_cameras_created_by_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_cameras_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameras')),
    sa.UniqueConstraint('serial', name=op.f('uq_cameras_serial'))
    )
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cameras_unit_id'), ['unit_id'], unique=False)

    op.create_table('stations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('part_of_storage', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Uuid(), nullable=True),
    sa.Column('last_used_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_stations_created_by_users')),
    sa.ForeignKeyConstraint(['revoked_by'], ['users.id'], name=op.f('fk_stations_revoked_by_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_stations_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_stations_token_hash'))
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stations_unit_id'), ['unit_id'], unique=False)

    op.create_table('camera_handouts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('camera_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('taken_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('returned_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_camera_handouts_camera_id_cameras')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_camera_handouts_created_by_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_camera_handouts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_handouts')),
    sa.UniqueConstraint('record_id', name=op.f('uq_camera_handouts_record_id'))
    )
    with op.batch_alter_table('camera_handouts', schema=None) as batch_op:
        batch_op.create_index('ix_camera_handouts_camera_taken', ['camera_id', 'taken_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_camera_handouts_user_id'), ['user_id'], unique=False)

    op.create_table('footage_segments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('alg', sa.String(length=16), nullable=False),
    sa.Column('hash', sa.String(length=128), nullable=False),
    sa.Column('sm3', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('camera_serial', sa.String(length=40), nullable=False),
    sa.Column('camera_id', sa.Uuid(), nullable=True),
    sa.Column('officer_no', sa.String(length=40), nullable=False),
    sa.Column('unit_code', sa.String(length=32), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('started_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('collected_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ingested_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('station_id', sa.Uuid(), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('station_md5', sa.String(length=32), nullable=True),
    sa.Column('station_sm3', sa.String(length=64), nullable=True),
    sa.Column('important', sa.Boolean(), nullable=False),
    sa.Column('container_duration_s', sa.Float(), nullable=True),
    sa.Column('container_started_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('probe_error', sa.Text(), nullable=True),
    sa.Column('previews', sa.JSON(), nullable=False),
    sa.Column('keep_reasons', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_footage_segments_camera_id_cameras')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_footage_segments_station_id_stations')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_footage_segments_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_footage_segments')),
    sa.UniqueConstraint('alg', 'hash', name='uq_footage_segments_alg_hash')
    )
    with op.batch_alter_table('footage_segments', schema=None) as batch_op:
        batch_op.create_index('ix_footage_segments_camera_start', ['camera_serial', 'started_at'], unique=False)
        batch_op.create_index('ix_footage_segments_unit_start', ['unit_id', 'started_at'], unique=False)

    op.create_table('footage_links',
    sa.Column('segment_id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('basis', sa.String(length=20), nullable=False),
    sa.Column('linked_by', sa.Uuid(), nullable=True),
    sa.Column('linked_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['records.id'], name=op.f('fk_footage_links_activity_id_records')),
    sa.ForeignKeyConstraint(['linked_by'], ['users.id'], name=op.f('fk_footage_links_linked_by_users')),
    sa.ForeignKeyConstraint(['segment_id'], ['footage_segments.id'], name=op.f('fk_footage_links_segment_id_footage_segments')),
    sa.PrimaryKeyConstraint('segment_id', 'activity_id', name=op.f('pk_footage_links'))
    )
    with op.batch_alter_table('footage_links', schema=None) as batch_op:
        batch_op.create_index('ix_footage_links_activity', ['activity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_footage_links_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table('media_upload_chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('station_id', sa.Uuid(), nullable=True))
        batch_op.alter_column('user_id',
               existing_type=sa.Uuid(),
               nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_media_upload_chunks_station_id_stations'), 'stations', ['station_id'], ['id'])

    with op.batch_alter_table('media_uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('station_id', sa.Uuid(), nullable=True))
        batch_op.alter_column('began_by',
               existing_type=sa.Uuid(),
               nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_media_uploads_station_id_stations'), 'stations', ['station_id'], ['id'])




def downgrade() -> None:

    with op.batch_alter_table('media_uploads', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_media_uploads_station_id_stations'), type_='foreignkey')
        batch_op.alter_column('began_by',
               existing_type=sa.Uuid(),
               nullable=False)
        batch_op.drop_column('station_id')

    with op.batch_alter_table('media_upload_chunks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_media_upload_chunks_station_id_stations'), type_='foreignkey')
        batch_op.alter_column('user_id',
               existing_type=sa.Uuid(),
               nullable=False)
        batch_op.drop_column('station_id')

    with op.batch_alter_table('footage_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_footage_links_case_id'))
        batch_op.drop_index('ix_footage_links_activity')

    op.drop_table('footage_links')
    with op.batch_alter_table('footage_segments', schema=None) as batch_op:
        batch_op.drop_index('ix_footage_segments_unit_start')
        batch_op.drop_index('ix_footage_segments_camera_start')

    op.drop_table('footage_segments')
    with op.batch_alter_table('camera_handouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_handouts_user_id'))
        batch_op.drop_index('ix_camera_handouts_camera_taken')

    op.drop_table('camera_handouts')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stations_unit_id'))

    op.drop_table('stations')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cameras_unit_id'))

    op.drop_table('cameras')

