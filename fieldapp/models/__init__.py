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
from .backup import INSTALL_EPOCH, BackupRun, ServerEpoch
from .documents import EvidencePackage, PaperDocument, PaperScan
from .records_mgmt import AccessGrant, AccessUse, Disposal, EvidenceUse, RetentionHold, RetentionState
from .sync import ACTIVITY_CHILD_TYPES, ChangeLog, Device, Revision, SyncedRecord
from .statistics import MonthlyFigure, UserUnitHistory
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
    "INSTALL_EPOCH", "BackupRun", "ServerEpoch",
    "EvidencePackage", "PaperDocument", "PaperScan", "AccessGrant", "AccessUse", "Disposal", "EvidenceUse", "RetentionHold", "RetentionState",
    "AuditCheckpoint", "AuditEvent", "Base", "utcnow", "CalendarDay", "CalendarYear", "CaseAssignment", "CaseDeadline", "CaseStage", "Finding", "FindingException",
    "InterruptionReport", "OriginalAccess", "RecordReview", "ReviewEvent", "Camera", "CameraHandout", "FootageLink", "FootageSegment", "Station", "Media", "MediaRef", "MediaUpload", "MediaUploadChunk", "Case", "CatalogueVersion", "UnitStepType", "ChangeLog", "Device", "Revision", "SyncedRecord", "ACTIVITY_CHILD_TYPES", "DivisionOversight", "Enrollment", "EnrollmentEvent", "Passkey",
    "RateLimitCounter", "Role", "Unit", "User", "UserRole", "UserSession", "WebAuthnChallenge",
    "MonthlyFigure", "UserUnitHistory",
]
