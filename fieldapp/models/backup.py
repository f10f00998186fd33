"""Backups and server epochs (arts. 7, 25).

A **backup run** is one ``flask backup`` to a destination at another site: when, what it copied, and
the chain head it holds. A **server epoch** names the history the database continues: a restore to
an earlier point starts a new one. Phones compare the epoch they last saw with the server's, and on a
change offer again what the server acknowledged to them (``static/js/capture/epoch.js``), so nothing
the phones were told was 已同步 is lost silently.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow

INSTALL_EPOCH = "00000000-0000-0000-0000-000000000000"
"""The epoch of a database never restored: no row, and the same id everywhere."""


class ServerEpoch(Base):
    """One restore (the install epoch has no row): the new epoch id phones see, and what it was
    restored from."""

    __tablename__ = "server_epochs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_id)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    backup_id: Mapped[str] = mapped_column(String(80))
    backup_taken_at: Mapped[datetime]
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)  # the audit chain's head in the backup
    restored_by: Mapped[str] = mapped_column(String(120), default="")


class BackupRun(Base):
    """One backup taken (``flask backup``), for the operator's page and the backup-age metric."""

    __tablename__ = "backup_runs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # also the folder name at the destination
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    destination: Mapped[str] = mapped_column(String(300))  # without credentials
    encrypted: Mapped[bool] = mapped_column(default=False)
    database_bytes: Mapped[int | None] = mapped_column(BigInteger)
    objects_total: Mapped[int | None] = mapped_column(Integer)
    objects_copied: Mapped[int | None] = mapped_column(Integer)
    bytes_copied: Mapped[int | None] = mapped_column(BigInteger)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[dict | None] = mapped_column(JSON)
