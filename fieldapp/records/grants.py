"""Access to audio/video records by approval (art. 29).

The collecting unit's records administrator registers a request (who asks, for which records, view
or copy, why); :mod:`fieldapp.rules.records_rules` says which paragraph of art. 29 it falls under and
which leader approves; the grant then runs for its days. A view grant shows watermarked previews
only; a copy grant lets the records administrator hand out marked copies (redacted for bodies
outside the bureau where needed). Each of these steps writes covered rows, so each is an event in
the audit chain, and together with the originals opened they are the register.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from .. import db
from ..models import (AccessGrant, AccessUse, Case, FootageLink, FootageSegment, MediaRef, Role, SyncedRecord, User,
                      utcnow)
from ..rules import records_rules
from ..rules.records_rules import RequestRefused

SUBJECT_KINDS = ("case", "activity", "segment", "media")
MODES = ("view", "copy")
APPROVER_ROLE = {"lead": Role.LEAD, "division_head": Role.DIVISION_HEAD, "bureau_head": Role.BUREAU_HEAD}
_MEDIA_SUBJECT = re.compile(r"(sha-256):([0-9a-f]{64})")


@dataclass(frozen=True)
class Subject:
    kind: str
    id: str
    unit_id: uuid.UUID
    label: str


def resolve_subject(kind: str, subject_id: str) -> Subject:
    """The records a request names, and the unit that collected them."""
    s = db.session()
    subject_id = (subject_id or "").strip()
    try:
        if kind == "case":
            case = s.get(Case, uuid.UUID(subject_id))
            if case is not None:
                return Subject(kind, str(case.id), case.unit_id, f"案件 {case.case_number or ''} {case.party_name}".strip())
        elif kind == "activity":
            record = s.get(SyncedRecord, uuid.UUID(subject_id))
            if record is not None and record.record_type == "activity":
                return Subject(kind, str(record.id), record.unit_id, f"现场执法活动 {str(record.id)[:8]}")
        elif kind == "segment":
            segment = s.get(FootageSegment, uuid.UUID(subject_id))
            if segment is not None:
                return Subject(kind, str(segment.id), segment.unit_id, f"执法记录仪视频 {segment.file_name}")
        elif kind == "media":
            match = _MEDIA_SUBJECT.fullmatch(subject_id)
            if match:
                unit_id = s.execute(select(MediaRef.unit_id).where(MediaRef.alg == match[1], MediaRef.hash == match[2])
                                    .limit(1)).scalar_one_or_none()
                if unit_id is not None:
                    return Subject(kind, subject_id, unit_id, f"文件 {match[2][:12]}")
    except ValueError:
        pass
    raise RequestRefused("找不到所申请的记录 / The records asked for were not found")


def objects(grant: AccessGrant) -> list[tuple[str, str]]:
    """The stored objects (alg, hash) a grant covers, in a stable order."""
    s = db.session()
    keys: set[tuple[str, str]] = set()
    if grant.subject_kind == "media":
        alg, digest = grant.subject_id.split(":", 1)
        keys.add((alg, digest))
    elif grant.subject_kind == "segment":
        seg = s.get(FootageSegment, uuid.UUID(grant.subject_id))
        if seg is not None:
            keys.add((seg.alg, seg.hash))
    else:
        subject = uuid.UUID(grant.subject_id)
        if grant.subject_kind == "case":
            records = select(SyncedRecord.id).where(SyncedRecord.case_id == subject)
            links = select(FootageLink.segment_id).where(FootageLink.case_id == subject)
        else:
            records = select(SyncedRecord.id).where((SyncedRecord.id == subject) | (SyncedRecord.parent_id == subject))
            links = select(FootageLink.segment_id).where(FootageLink.activity_id == subject)
        keys |= {(a, h) for a, h in s.execute(select(MediaRef.alg, MediaRef.hash).where(
            MediaRef.record_id.in_(records), MediaRef.unit_id == grant.unit_id))}
        keys |= {(a, h) for a, h in s.execute(select(FootageSegment.alg, FootageSegment.hash).where(
            FootageSegment.id.in_(links)))}
    return sorted(keys)


def covers(grant: AccessGrant, alg: str, digest: str) -> bool:
    return (alg, digest) in set(objects(grant))


def _next_number(mode: str, now: datetime) -> str:
    prefix = f"{'DY' if mode == 'view' else 'FZ'}-{now.year}-"
    count = db.session().execute(select(func.count()).select_from(AccessGrant).where(
        AccessGrant.number.like(prefix + "%"))).scalar_one()
    return f"{prefix}{count + 1:04d}"


def register(by: User, *, subject_kind: str, subject_id: str, mode: str, purpose: str, purpose_note: str = "",
             requester: User | None = None, outside_name: str = "", outside_org: str = "",
             days: int | None = None) -> AccessGrant:
    """The records administrator of the collecting unit registers a request (art. 29 para. 1)."""
    rules = records_rules.builtin()
    if Role.RECORDS_ADMIN not in by.roles:
        raise RequestRefused("调阅、复制由音像记录管理员统一办理 / The records administrator registers requests")
    if subject_kind not in SUBJECT_KINDS:
        raise RequestRefused("请选择所申请的记录 / Name the records asked for")
    if mode not in MODES:
        raise RequestRefused("请选择调阅或复制 / Choose view or copy")
    subject = resolve_subject(subject_kind, subject_id)
    if subject.unit_id != by.unit_id:
        raise RequestRefused("须由采集该记录的执法机构的管理员办理 / The collecting unit's records administrator registers it")
    outside_name, outside_org = (outside_name or "").strip()[:80], (outside_org or "").strip()[:200]
    if requester is None and not (outside_name and outside_org):
        raise RequestRefused("请填写申请人：本系统用户，或外单位的姓名与单位 / Name the requester: a user, or a "
                             "person and body outside")
    kind = records_rules.requester_kind(outside=requester is None,
                                        requester_unit_id=requester.unit_id if requester else None,
                                        requester_unit_kind=requester.unit.kind if requester else None,
                                        collecting_unit_id=subject.unit_id)
    settings = current_app.config["FIELDAPP_SETTINGS"]
    decided = records_rules.approval(kind, purpose, purpose_note, other_unit_approver=settings.access_other_unit_approver)
    days = rules.default_days if days is None else int(days)
    if not 1 <= days <= rules.max_days:
        raise RequestRefused(f"有效期为 1 至 {rules.max_days} 天 / A grant runs 1 to {rules.max_days} days")
    now = utcnow()
    grant = AccessGrant(number=_next_number(mode, now), unit_id=subject.unit_id, subject_kind=subject.kind,
                        subject_id=subject.id, subject_label=subject.label[:300], mode=mode, purpose=purpose,
                        purpose_note=(purpose_note or "").strip()[:2000], requester_kind=kind,
                        requester_id=requester.id if requester else None,
                        requester_name=requester.name if requester else outside_name,
                        requester_org=requester.unit.name if requester else outside_org,
                        approver_role=decided.approver, article=decided.article, days=days,
                        registered_by=by.id, registered_at=now, state="pending")
    db.session().add(grant)
    db.session().flush()
    return grant


def may_decide(grant: AccessGrant, user: User) -> bool:
    """Whether ``user`` is the approver art. 29 names for this grant."""
    role = APPROVER_ROLE[grant.approver_role]
    if role not in user.roles or user.id in (grant.requester_id, grant.registered_by):
        return False
    if role is Role.LEAD:
        return user.unit_id == grant.unit_id
    if role is Role.DIVISION_HEAD:
        return grant.unit_id in user.overseen_unit_ids
    return True


def decide(grant: AccessGrant, by: User, *, approve: bool, note: str = "") -> None:
    if grant.state != "pending":
        raise RequestRefused("该申请已处理 / This request was already decided")
    if not may_decide(grant, by):
        raise RequestRefused(f"须由{_approver_label(grant.approver_role)}审批（{grant.article}）/ "
                             f"Approval belongs to the {grant.approver_role.replace('_', ' ')}")
    if not approve and not (note or "").strip():
        raise RequestRefused("不批准时请说明理由 / Say why the request is refused")
    now = utcnow()
    grant.state = "approved" if approve else "refused"
    grant.decided_by, grant.decided_at, grant.decision_note = by.id, now, (note or "").strip()[:2000]
    if approve:
        grant.valid_until = now + timedelta(days=grant.days)


def revoke(grant: AccessGrant, by: User) -> None:
    if grant.state not in ("pending", "approved"):
        raise RequestRefused("该申请已结束 / This request has ended")
    grant.state, grant.revoked_by, grant.revoked_at = "revoked", by.id, utcnow()


def _approver_label(role: str) -> str:
    return {"lead": "本执法机构负责人", "division_head": "分管局负责人", "bureau_head": "本局主要负责人"}[role]


def active(grant: AccessGrant, now: datetime | None = None) -> bool:
    return grant.state == "approved" and grant.valid_until is not None and grant.valid_until > (now or utcnow())


def status(grant: AccessGrant, now: datetime | None = None) -> str:
    """pending | approved | expired | refused | revoked — what the register shows."""
    if grant.state == "approved" and not active(grant, now):
        return "expired"
    return grant.state


def may_view(grant: AccessGrant, user: User) -> bool:
    """The requester views with their own account; for a body outside the bureau the records
    administrator shows the records on their behalf."""
    if not active(grant):
        return False
    return user.id == grant.requester_id or (Role.RECORDS_ADMIN in user.roles and user.unit_id == grant.unit_id)


def may_copy(grant: AccessGrant, user: User) -> bool:
    """Copies are made and handed out by the collecting unit's records administrator only."""
    return active(grant) and grant.mode == "copy" and Role.RECORDS_ADMIN in user.roles and user.unit_id == grant.unit_id


def may_redact(grant: AccessGrant) -> bool:
    return grant.requester_kind in records_rules.builtin().redaction_for


def record_use(grant: AccessGrant, action: str, by: User, key: tuple[str, str], *, copy_sha256: str | None = None,
               redactions: list | None = None, reason: str = "") -> AccessUse:
    use = AccessUse(grant_id=grant.id, action=action, by_id=by.id, alg=key[0], hash=key[1], copy_sha256=copy_sha256,
                    redactions=list(redactions or []), redaction_reason=(reason or "").strip()[:2000])
    db.session().add(use)
    db.session().flush()
    return use


def grant_for_manifest(grant: AccessGrant) -> dict:
    """What an evidence package's manifest says of the grant its originals were handed out under."""
    return {"number": grant.number, "mode": grant.mode, "purpose": grant.purpose, "article": grant.article,
            "requester": {"name": grant.requester_name, "org": grant.requester_org, "kind": grant.requester_kind},
            "approver_role": grant.approver_role, "approved_at": grant.decided_at.isoformat() if grant.decided_at else None,
            "valid_until": grant.valid_until.isoformat() if grant.valid_until else None}
