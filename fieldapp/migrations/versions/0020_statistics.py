"""Statistics (art. 32): each officer's unit history, and the monthly figures derived from the records

Every user gets one open history row in their present unit, from a fixed early date (nobody's
earlier units are known), with a baseline audit event each (the table is covered, see 0015).

Revision ID: 0020_statistics
Revises: 0019_backups_and_epochs
Create Date: 2026-12-05 00:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0020_statistics'
down_revision = '0019_backups_and_epochs'
branch_labels = None
depends_on = None

SINCE = '2000-01-01T00:00:00+00:00'


def upgrade() -> None:
    op.create_table('user_unit_history',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('from_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('to_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_user_unit_history_unit_id_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_unit_history_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_unit_history'))
    )
    with op.batch_alter_table('user_unit_history', schema=None) as batch_op:
        batch_op.create_index('ix_user_unit_history_user_from', ['user_id', 'from_at'], unique=False)
    op.create_table('monthly_figures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('figure', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=True),
    sa.Column('denominator', sa.Float(), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('computed_at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_monthly_figures_unit_id_units'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_monthly_figures_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_figures')),
    sa.UniqueConstraint('year', 'month', 'unit_id', 'user_id', 'figure', name='uq_monthly_figures_cell')
    )
    with op.batch_alter_table('monthly_figures', schema=None) as batch_op:
        batch_op.create_index('ix_monthly_figures_month', ['year', 'month', 'figure'], unique=False)
    _seed_history(op.get_bind())


def _seed_history(connection) -> None:
    import uuid
    from datetime import datetime

    from fieldapp.models import Base
    from fieldapp.models.base import utcnow
    from fieldapp.records.rowhash import content_columns, row_digest, row_key

    users = sa.table('users', sa.column('id', sa.Uuid()), sa.column('unit_id', sa.Uuid()))
    model = Base.metadata.tables['user_unit_history']
    history = sa.Table('user_unit_history', sa.MetaData(), *[sa.Column(c.name, c.type, primary_key=c.primary_key)
                                                             for c in model.columns])
    since = datetime.fromisoformat(SINCE)
    rows = [{'id': uuid.uuid4(), 'user_id': user_id, 'unit_id': unit_id, 'from_at': since, 'to_at': None}
            for user_id, unit_id in connection.execute(sa.select(users.c.id, users.c.unit_id))]
    if not rows:
        return
    connection.execute(history.insert(), rows)
    # Each row stands on the chain as 0015 baselined the rows before it: read back as verify reads it.
    events = sa.table('audit_events', sa.column('at', fieldapp.models.base.UTCDateTime()), sa.column('actor'),
                      sa.column('action'), sa.column('tbl'), sa.column('row_key'), sa.column('row_hash'))
    content = content_columns(history, connection.dialect.name)
    now, batch = utcnow(), []
    for row in connection.execute(sa.select(history.c.id, *content)):
        batch.append({'at': now, 'actor': 'system:baseline', 'action': 'baseline', 'tbl': 'user_unit_history',
                      'row_key': row_key(row[:1]), 'row_hash': row_digest(dict(zip(row._fields[1:], row[1:], strict=True)))})
        if len(batch) >= 1000:
            connection.execute(events.insert(), batch)
            batch = []
    if batch:
        connection.execute(events.insert(), batch)


def downgrade() -> None:
    with op.batch_alter_table('monthly_figures', schema=None) as batch_op:
        batch_op.drop_index('ix_monthly_figures_month')
    op.drop_table('monthly_figures')
    with op.batch_alter_table('user_unit_history', schema=None) as batch_op:
        batch_op.drop_index('ix_user_unit_history_user_from')
    op.drop_table('user_unit_history')
