"""Scans of the signed paper, uploaded back and kept with the generated document

Revision ID: 0018_paper_scans
Revises: 0017_evidence_packages
Create Date: 2026-12-08 00:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0018_paper_scans'
down_revision = '0017_evidence_packages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paper_scans',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('document_id', sa.Uuid(), nullable=False),
    sa.Column('alg', sa.String(length=10), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('sm3', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('uploaded_by', sa.Uuid(), nullable=False),
    sa.Column('uploaded_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['paper_documents.id'], name=op.f('fk_paper_scans_document_id_paper_documents')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_paper_scans_uploaded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_scans')),
    sa.UniqueConstraint('document_id', 'alg', 'hash', name='uq_paper_scans_document_id')
    )


def downgrade() -> None:
    op.drop_table('paper_scans')
