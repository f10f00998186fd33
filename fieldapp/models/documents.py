"""Evidence packages (art. 27): what was extracted, under which grant, by whom, and where the
finished ZIP and disc images are. A package is offered for download only once ``ready``: one cut
short by a crash stays ``building`` (then ``failed``) and its partial files are never served."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class EvidencePackage(Base):
    __tablename__ = "evidence_packages"
    __table_args__ = (Index("ix_evidence_packages_case", "case_id", "built_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("access_grants.id"))
    built_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="queued")  # queued | building | ready | failed
    # What the officer or lead states for each item: [{"alg", "hash", "proves", "transcript"}]
    items: Mapped[list] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(200), default="")
    process: Mapped[str] = mapped_column(Text, default="")
    finished_at: Mapped[datetime | None]
    zip_name: Mapped[str | None] = mapped_column(String(200))
    zip_size: Mapped[int | None] = mapped_column(BigInteger)
    zip_sha256: Mapped[str | None] = mapped_column(String(64))
    discs: Mapped[list] = mapped_column(JSON, default=list)  # [{"name", "label", "size", "sha256"}]
    error: Mapped[str | None] = mapped_column(Text)


class PaperDocument(Base):
    """A document generated for printing: what it was made from (each record and revision, by
    content hash) so that ``/verify/<code>`` can say whether the paper still matches the records
    or a later revision superseded them."""

    __tablename__ = "paper_documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # photo_sheet | service_receipt | file_index | file_notes
    # What it is about: a record (an activity's photos, a service), or a whole case (the archive forms).
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("records.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    sources: Mapped[list] = mapped_column(JSON, default=list)  # [[record id, revision, content hash], …]
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical sources
    made_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    made_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaperScan(Base):
    """A scan of the signed paper, uploaded back and kept with the document it was printed from.
    The bytes are an original in the content-addressed media storage, under their SHA-256; the
    SM3 (GB/T 32905) is kept beside it. The same bytes are kept once per document."""

    __tablename__ = "paper_scans"
    __table_args__ = (UniqueConstraint("document_id", "alg", "hash", name="uq_paper_scans_document_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("paper_documents.id"))
    alg: Mapped[str] = mapped_column(String(10), default="sha-256")
    hash: Mapped[str] = mapped_column(String(64))
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(40))  # application/pdf | image/jpeg | image/png
    pages: Mapped[int | None]  # an image: 1; a PDF: counted when pypdf is installed, else unknown
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
