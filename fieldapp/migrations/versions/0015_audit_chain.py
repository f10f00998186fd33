"""The audit chain: events and signed checkpoints; a baseline event for every row already stored

Revision ID: 0015_audit_chain
Revises: 0014_footage
Create Date: 2026-12-04 21:40:00

Rows stored before the chain began get one ``baseline`` event each, with their content hash as it
stands at the upgrade: the chain vouches for them from this point, and ``verify`` checks them from
then on like any other row.
"""
from alembic import op
import sqlalchemy as sa
import fieldapp.models.base


revision = '0015_audit_chain'
down_revision = '0014_footage'
branch_labels = None
depends_on = None

# The tables covered when the chain began (records/coverage.py may grow later; this list may not).
COVERED_AT_START = (
    "units", "users", "user_roles", "division_oversight", "passkeys", "user_sessions",
    "enrollments", "enrollment_events", "devices", "records", "revisions", "media", "media_refs",
    "cases", "catalogue_versions", "unit_step_types", "calendar_days", "calendar_years",
    "case_assignments", "case_stages", "case_deadlines", "record_reviews", "review_events", "findings",
    "finding_exceptions", "interruption_reports", "original_access", "cameras", "camera_handouts",
    "stations", "footage_segments", "footage_links",
)


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=True),
    sa.Column('at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('tbl', sa.String(length=40), nullable=False),
    sa.Column('row_key', sa.String(length=200), nullable=False),
    sa.Column('row_hash', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_events_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_table', ['tbl', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_unsealed', ['txid', 'id'], unique=False,
                              sqlite_where=sa.text('seq IS NULL'), postgresql_where=sa.text('seq IS NULL'))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('audit_events', 'txid', server_default=sa.text("(pg_current_xact_id()::text)::bigint"))

    op.create_table('audit_checkpoints',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('at', fieldapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('statement', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('tsa_token', sa.LargeBinary(), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints'))
    )
    _baseline(op.get_bind())


def _baseline(connection) -> None:
    from fieldapp.models import Base
    from fieldapp.records.rowhash import content_columns, row_digest, row_key
    from fieldapp.models.base import utcnow

    existing = sa.inspect(connection)
    events = sa.table("audit_events", sa.column("at", fieldapp.models.base.UTCDateTime()), sa.column("actor"), sa.column("action"),
                      sa.column("tbl"), sa.column("row_key"), sa.column("row_hash"))
    now = utcnow()
    for name in COVERED_AT_START:
        model_table = Base.metadata.tables[name]
        present = {c["name"] for c in existing.get_columns(name)}
        # Only the columns this database has (a later model may have more), read as verify reads them.
        table = sa.Table(name, sa.MetaData(), *[sa.Column(c.name, c.type, primary_key=c.primary_key)
                                                for c in model_table.columns if c.name in present])
        pk = [table.c[c.name] for c in model_table.primary_key.columns]
        content = content_columns(table, connection.dialect.name)
        batch = []
        for row in connection.execute(sa.select(*pk, *content)):
            batch.append({"at": now, "actor": "system:baseline", "action": "baseline", "tbl": name,
                          "row_key": row_key(row[:len(pk)]),
                          "row_hash": row_digest(dict(zip(row._fields[len(pk):], row[len(pk):])))})
            if len(batch) >= 1000:
                connection.execute(events.insert(), batch)
                batch = []
        if batch:
            connection.execute(events.insert(), batch)


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_unsealed')
        batch_op.drop_index('ix_audit_events_table')
    op.drop_table('audit_events')
