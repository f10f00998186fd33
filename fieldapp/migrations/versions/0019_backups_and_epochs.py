"""Backups taken, server epochs (a restore starts one), and what a phone offered again after one

Revision ID: 0019_backups_and_epochs
Revises: 0018_paper_scans
Create Date: 2026-12-05 00:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0019_backups_and_epochs'
down_revision = '0018_paper_scans'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('server_epochs',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('started_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('backup_id', sa.String(length=80), nullable=False),
    sa.Column('backup_taken_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('chain_seq', sa.BigInteger(), nullable=True),
    sa.Column('restored_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_server_epochs')),
    sa.UniqueConstraint('id', name=op.f('uq_server_epochs_id'))
    )
    op.create_table('backup_runs',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('started_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('destination', sa.String(length=300), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('database_bytes', sa.BigInteger(), nullable=True),
    sa.Column('objects_total', sa.Integer(), nullable=True),
    sa.Column('objects_copied', sa.Integer(), nullable=True),
    sa.Column('bytes_copied', sa.BigInteger(), nullable=True),
    sa.Column('chain_seq', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_runs'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reoffer', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('reoffer')
    op.drop_table('backup_runs')
    op.drop_table('server_epochs')
