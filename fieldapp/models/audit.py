"""The audit chain (art. 30): one event per server-side change or access, hash-linked by a sealer,
its head signed at checkpoints with a key kept outside the database."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import BigInteger, FetchedValue, Index, Integer, LargeBinary, String, Text, TypeDecorator, text
from sqlalchemy.orm import Mapped, mapped_column

from ..records.chain import canonical
from .base import Base, utcnow


class CanonicalJSON(TypeDecorator):
    """JSON kept as the canonical text the chain hashes (sorted keys, no spaces, UTF-8)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else canonical(value)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class AuditEvent(Base):
    """One access, or the changes one transaction made to one covered table (``action`` "change",
    ``detail`` listing each row's key, new content hash and operation), written in that transaction.

    ``id`` is the event's sequence number, handed out at insert. ``seq`` (its position in the chain),
    ``prev_hash`` and ``hash`` are filled by the sealer once the event lies below the feed's safe
    horizon (see ``records/sealer.py``): until then the event is pending, not faulty.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_unsealed", "txid", "id",
              sqlite_where=text("seq IS NULL"), postgresql_where=text("seq IS NULL")),
        Index("ix_audit_events_table", "tbl", "id"),  # verify reads each table's events in order
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    # The writing transaction on PostgreSQL (as in change_log); NULL on SQLite.
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))       # user:<id> | station:<id> | system | cli:<command>
    action: Mapped[str] = mapped_column(String(24))      # change | baseline | preview | original | export
    tbl: Mapped[str] = mapped_column(String(40))         # the covered table, or "" for an access
    # A baseline: the row's key and content hash. A change: how many rows it lists. An access: what.
    row_key: Mapped[str] = mapped_column(String(200))
    row_hash: Mapped[str | None] = mapped_column(String(64))
    # For an access: why, how, from where; for a change: the rows and their hashes. Stored as its
    # canonical text, so the sealer and verify hash the stored text as it is.
    detail: Mapped[dict | None] = mapped_column(CanonicalJSON)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """The chain head at ``seq``, signed with the server's Ed25519 key (and, where a timestamp
    authority is configured, its RFC 3161 token over the signed statement)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))      # SHA-256 of the raw public key
    statement: Mapped[bytes] = mapped_column(LargeBinary)  # the exact bytes signed
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    tsa_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(20), default="daily")  # daily | on demand
