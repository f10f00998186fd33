"""All models, imported here so Alembic and the app see one metadata."""
from .audit import AuditCheckpoint, AuditEvent
from .base import Base, utcnow
from .casework import Case, CatalogueVersion, UnitStepType
from .footage import Camera, CameraHandout, FootageLink, FootageSegment, Station
from .media import Media, MediaRef, MediaUpload, MediaUploadChunk
from .review import (
    CalendarDay,
    CalendarYear,
    CaseAssignment,
    CaseDeadline,
    CaseStage,
    Finding,
    FindingException,
    InterruptionReport,
    OriginalAccess,
    RecordReview,
    ReviewEvent,
)
from .documents import EvidencePackage, PaperDocument
from .records_mgmt import AccessGrant, AccessUse, Disposal, EvidenceUse, RetentionHold, RetentionState
from .sync import ChangeLog, Device, Revision, SyncedRecord
from .identity import (
    DivisionOversight,
    Enrollment,
    EnrollmentEvent,
    Passkey,
    RateLimitCounter,
    Role,
    Unit,
    User,
    UserRole,
    UserSession,
    WebAuthnChallenge,
)

__all__ = [
    "EvidencePackage", "PaperDocument", "AccessGrant", "AccessUse", "Disposal", "EvidenceUse", "RetentionHold", "RetentionState",
    "AuditCheckpoint", "AuditEvent", "Base", "utcnow", "CalendarDay", "CalendarYear", "CaseAssignment", "CaseDeadline", "CaseStage", "Finding", "FindingException",
    "InterruptionReport", "OriginalAccess", "RecordReview", "ReviewEvent", "Camera", "CameraHandout", "FootageLink", "FootageSegment", "Station", "Media", "MediaRef", "MediaUpload", "MediaUploadChunk", "Case", "CatalogueVersion", "UnitStepType", "ChangeLog", "Device", "Revision", "SyncedRecord", "DivisionOversight", "Enrollment", "EnrollmentEvent", "Passkey",
    "RateLimitCounter", "Role", "Unit", "User", "UserRole", "UserSession", "WebAuthnChallenge",
]
