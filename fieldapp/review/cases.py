"""What a lead does to cases: create them (one by one or from a list, e.g. a 双随机 draw),
assign officers, record that a stage is done or that the act ended, and archive (归档)."""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from .. import db
from ..compliance import engine, exceptions
from ..models import Case, CaseAssignment, CaseStage, Role, User, utcnow
from ..rules.credit_code import check_credit_code
from ..rules.id_card import IdCardResult, check_id_number
from ..sync.changes import record_change

KINDS = ("licensing", "penalty", "coercion", "inspection")
IMPORT_COLUMNS = ("kind", "party_name", "party_credit_code", "party_address", "case_number", "officers", "flags",
                  "party_id_number")
MAX_IMPORT_ROWS = 2000
ID_NUMBER_LIMIT = 18  # the column's width: a citizen identity number has 18 characters (15 on old cards)


class CaseError(Exception):
    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def _clean(value, limit: int) -> str | None:
    # NUL cannot be stored in PostgreSQL text and no one types it.
    text = (value or "").replace("\x00", "").strip()
    return text[:limit] or None


def case_flags() -> dict[str, dict]:
    """The catalogue's case flags (art. 9's circumstances, and others it lists), by id."""
    return {f["id"]: f for f in engine.catalogue_content().get("case_flags", [])}


def parse_flags(value) -> list[str]:
    """Flag ids as a list: from a form (a list) or a CSV cell (separated by ";" or "；")."""
    items = value if isinstance(value, (list, tuple)) else (value or "").replace("；", ";").split(";")
    out: list[str] = []
    for item in items:
        flag = (item or "").replace("\x00", "").strip()
        if flag and flag not in out:
            out.append(flag)
    return out


def check_party_id_number(value) -> IdCardResult:
    """The party's citizen identity number, checked (GB 11643). Only a number too long to be one
    is refused; any other failure is a warning and the number is kept as written."""
    checked = check_id_number((value or "").replace("\x00", ""))
    if len(checked.normalised) > ID_NUMBER_LIMIT:
        raise CaseError("bad_id_number", f"a citizen identity number has at most {ID_NUMBER_LIMIT} characters",
                        limit=ID_NUMBER_LIMIT)
    return checked


def create_case(unit_id: uuid.UUID, by: uuid.UUID, *, kind: str, party_name: str, party_credit_code: str | None = None,
                party_address: str | None = None, case_number: str | None = None, flags=(),
                party_id_number: str | None = None, known_flags: dict[str, dict] | None = None) -> Case:
    if kind not in KINDS:
        raise CaseError("bad_kind", f"kind must be one of {', '.join(KINDS)}")
    name = _clean(party_name, 200)
    if not name:
        raise CaseError("party_required", "the party's name is required")
    checked = check_credit_code(party_credit_code)
    # A failed check digit is only a warning (real codes that fail it exist); a wrong shape is refused.
    if checked.status == "bad_format":
        raise CaseError("bad_credit_code", "a unified social credit code has 18 digits or capital letters")
    code = checked.normalised if checked.status != "empty" else None
    flags = parse_flags(flags)
    known = (known_flags if known_flags is not None else case_flags()) if flags else {}
    for flag in flags:
        if flag not in known:
            raise CaseError("unknown_flag", f"unknown case flag {flag}", flag=flag[:40])
    id_checked = check_party_id_number(party_id_number)
    case = Case(unit_id=unit_id, kind=kind, party_name=name, party_credit_code=code,
                party_id_number=id_checked.normalised if id_checked.status != "empty" else None,
                party_address=_clean(party_address, 300), case_number=_clean(case_number, 60), flags=flags,
                origin="server", created_by=by)
    db.session().add(case)
    db.session().flush()
    record_change("case", case.id, unit_id=unit_id)
    return case


def id_number_warning(case: Case) -> IdCardResult | None:
    """The check of the party's identity number, when it fails (a warning: the case stands)."""
    if not case.party_id_number:
        return None
    checked = check_id_number(case.party_id_number)
    return None if checked.ok else checked


@dataclass
class ImportResult:
    created: list[Case]
    errors: list[tuple[int, CaseError]]  # (line number, refusal): nothing of a file with errors is stored
    warnings: list[tuple[int, IdCardResult]] = field(default_factory=list)  # (line number, ID number check)


def import_cases(unit_id: uuid.UUID, by: uuid.UUID, text: str) -> ImportResult:
    """A CSV list with a header row (columns: kind, party_name, party_credit_code, party_address,
    case_number, officers — officers as certificate numbers separated by spaces —, flags — the
    catalogue's case flag ids separated by ";" or "；" — and party_id_number). All or nothing: a
    file with any bad line stores nothing and names every bad line. An identity number that fails
    its check is a warning, never a refusal."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "party_name" not in reader.fieldnames or "kind" not in reader.fieldnames:
        return ImportResult([], [(1, CaseError("bad_header", "the first line must name the columns, at least kind and party_name"))])
    officers = {u.cert_no: u for u in db.session().execute(
        select(User).where(User.unit_id == unit_id, User.active.is_(True))).scalars()}
    known_flags = case_flags()
    created, errors, warnings = [], [], []
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_IMPORT_ROWS:
            errors.append((line, CaseError("too_many_rows", f"at most {MAX_IMPORT_ROWS} cases per file",
                                           limit=MAX_IMPORT_ROWS)))
            break
        try:
            with db.session().begin_nested():
                case = create_case(unit_id, by, kind=(row.get("kind") or "").strip(), party_name=row.get("party_name"),
                                   party_credit_code=row.get("party_credit_code"), party_address=row.get("party_address"),
                                   case_number=row.get("case_number"), flags=row.get("flags"),
                                   party_id_number=row.get("party_id_number"), known_flags=known_flags)
                for cert in (row.get("officers") or "").split():
                    if cert not in officers:
                        raise CaseError("unknown_officer", f"no active officer of this unit has certificate {cert}",
                                        cert=cert)
                    assign(case, officers[cert], by)
            created.append(case)
            warning = id_number_warning(case)
            if warning is not None:
                warnings.append((line, warning))
        except CaseError as exc:
            errors.append((line, exc))
    return ImportResult(created, errors, warnings)


def assign(case: Case, officer: User, by: uuid.UUID) -> bool:
    _not_archived(case)
    if officer.unit_id != case.unit_id or not officer.active:
        raise CaseError("not_in_unit", "only active officers of the case's unit can be assigned")
    if Role.OFFICER not in officer.roles:
        raise CaseError("not_an_officer", f"{officer.name} is not an officer", name=officer.name)
    s = db.session()
    if s.get(CaseAssignment, (case.id, officer.id)) is not None:
        return False
    s.add(CaseAssignment(case_id=case.id, user_id=officer.id, assigned_by=by))
    s.flush()
    record_change("assignment", case.id, unit_id=case.unit_id, user_id=officer.id)
    return True


def unassign(case: Case, officer_id: uuid.UUID) -> None:
    _not_archived(case)
    s = db.session()
    row = s.get(CaseAssignment, (case.id, officer_id))
    if row is not None:
        s.delete(row)
        record_change("assignment", case.id, unit_id=case.unit_id, user_id=officer_id)


def assignees(case_id: uuid.UUID) -> list[User]:
    return db.session().execute(select(User).join(CaseAssignment, CaseAssignment.user_id == User.id)
                                .where(CaseAssignment.case_id == case_id).order_by(User.name)).scalars().all()


def _not_archived(case: Case) -> None:
    if case.archived_at is not None:
        raise CaseError("archived", "the case is archived; it can no longer change here")


def mark_stage_done(case: Case, stage: str, by: uuid.UUID, stages: set[str]) -> None:
    _not_archived(case)
    if stage not in stages:
        raise CaseError("bad_stage", "unknown stage")
    s = db.session()
    if s.get(CaseStage, (case.id, stage)) is None:
        s.add(CaseStage(case_id=case.id, stage=stage, done_by=by))
        s.flush()
    engine.refresh_case(case.id)


def set_act_ended(case: Case, at: datetime, reason: str | None) -> None:
    """The lead enters when the act ended, and why by hand (the steps that end it — 结案, lifting,
    closing the inspection — say so by themselves): art. 25's 30 days to file count from here."""
    _not_archived(case)
    if at > utcnow():
        raise CaseError("future", "the act cannot end in the future")
    reason = _clean(reason, 2000)
    if not reason:
        raise CaseError("act_end_reason_needed", "say why the end of the act is entered by hand")
    case.act_ended_at, case.act_ended_reason = at, reason
    db.session().flush()
    engine.refresh_case(case.id)


def archive_blockers(case_id: uuid.UUID) -> list:
    """What would stop the case being archived now: the findings, checked as at archiving, whose
    rule blocks it (some, like a missing case number, are due only then)."""
    rules = engine.finding_rules()
    accepted = exceptions.latest_by_key(case_id)
    return [h for h in engine.findings_for(case_id, archiving=True) if rules.get(h.rule_id, {}).get("blocks_archiving")
            and not exceptions.covers(accepted.get(h.key), h.detail)]


def archive(case: Case, by: uuid.UUID) -> None:
    """File the case once nothing blocks it; it is then frozen (changes only as revisions with a
    reason) and its filing date is checked against the 30-day rule."""
    _not_archived(case)
    blocking = archive_blockers(case.id)
    if blocking:
        raise CaseError("blocked", "findings block archiving", findings=blocking, count=len(blocking))
    case.archived_at, case.archived_by, case.status = utcnow(), by, "archived"
    db.session().flush()
    record_change("case", case.id, unit_id=case.unit_id)
    engine.refresh_case(case.id)
