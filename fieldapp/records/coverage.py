"""Which tables the audit chain covers, and why the others are left out.

Every mapped table is in exactly one of these lists; ``tests/unit/test_audit_coverage.py`` fails
when a new table is in neither, so a table cannot join the schema without someone deciding whether
its rows are enforcement records (covered: every insert, update and delete of a row is an event,
and ``verify`` checks the row against the chain) or not (exempt, with the reason).
"""
from __future__ import annotations

COVERED: frozenset[str] = frozenset({
    # who may do what
    "units", "users", "user_roles", "division_oversight", "passkeys", "user_sessions",
    "enrollments", "enrollment_events",
    # what phones sent and the media it refers to
    "devices", "records", "revisions", "media", "media_refs",
    # the case beyond the visit, and the rules it was judged under
    "cases", "catalogue_versions", "unit_step_types", "calendar_days", "calendar_years",
    "case_assignments", "case_stages", "case_deadlines",
    # review, compliance and access
    "record_reviews", "review_events", "findings", "finding_exceptions", "interruption_reports",
    "original_access",
    # body-camera footage
    "cameras", "camera_handouts", "stations", "footage_segments", "footage_links",
    # access by approval, retention and disposal (arts. 26, 29)
    "access_grants", "access_uses", "retention_holds", "evidence_uses", "retention_states", "disposals",
    # evidence packages (art. 27)
    "evidence_packages", "paper_documents", "paper_scans",
    # backups taken, and restores (the server epochs phones compare) (arts. 7, 25)
    "backup_runs", "server_epochs",
    # which unit each officer belonged to when (statistics attribute records by it, art. 32)
    "user_unit_history",
})

EXEMPT: dict[str, str] = {
    "audit_events": "the chain itself: its rows are checked by their hash links and checkpoints, "
                    "not by events about themselves",
    "audit_checkpoints": "signed by the server key outside the database; verify checks each signature",
    "change_log": "the phones' pull feed: every row repeats a change of a covered table the chain "
                  "already records, and the feed is rebuilt from those tables by a full resync",
    "media_uploads": "the state of an upload still in flight; the original it completes becomes a "
                     "covered media row, and its bytes are checked against the media row's hash",
    "media_upload_chunks": "pieces of an upload in flight, gone once the original is assembled",
    "webauthn_challenges": "one-time sign-in nonces that live for minutes; the sign-in they serve is "
                           "a covered user_sessions row",
    "rate_limit_counters": "counters that throttle sign-in attempts and expire within the window",
    "monthly_figures": "statistics derived from covered tables and rebuilt from them by "
                       "`flask statistics-refresh`; no fact is recorded only here",
}
