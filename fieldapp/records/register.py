"""The art. 29 register as one list: each grant with who asked (调阅人/复制人), who approved
(审批人), when, why and what; each use of it (a viewing, a copy handed out); and each original a
unit's own lead or records administrator opened with the standing reason. Filterable, and the same
rows export as CSV."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from .. import db
from ..i18n import SHANGHAI, local_time
from ..models import AccessGrant, AccessUse, OriginalAccess, Unit, User
from ..rules import records_rules

CSV_HEADER = ("时间 time", "登记号 number", "事项 action", "调阅人/复制人 requester", "单位 organisation",
              "经办人 by", "审批人 approver", "审批时间 approved", "事由 purpose", "内容 what", "依据 article", "状态 state")
ACTIONS = {"request": "申请登记", "view": "调阅", "copy": "复制", "original": "开启原件（本单位）"}


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None
    end: datetime | None = None
    purpose: str = ""
    person: str = ""
    action: str = ""

    @classmethod
    def from_args(cls, args) -> "Filters":
        def day(name):
            try:
                d = datetime.strptime(args.get(name, ""), "%Y-%m-%d")
            except ValueError:
                return None
            return datetime.combine(d.date(), time(), SHANGHAI).astimezone(UTC)
        end = day("end")
        return cls(start=day("start"), end=end + timedelta(days=1) if end else None,
                   purpose=(args.get("purpose") or "")[:40], person=(args.get("person") or "").strip()[:80],
                   action=(args.get("action") or "")[:10])


@dataclass(frozen=True)
class Row:
    at: datetime
    number: str
    action: str
    requester: str
    org: str
    by: str
    approver: str
    approved_at: datetime | None
    purpose: str
    what: str
    article: str
    state: str
    grant_id: uuid.UUID | None

    def csv(self) -> list[str]:
        return [local_time(self.at), self.number, ACTIONS.get(self.action, self.action), self.requester, self.org,
                self.by, self.approver, local_time(self.approved_at) if self.approved_at else "", self.purpose,
                self.what, self.article, self.state]


def rows(unit_ids: frozenset[uuid.UUID] | None, filters: Filters, limit: int = 2000, viewer=None) -> list[Row]:
    s = db.session()
    rules = records_rules.builtin()
    grant_stmt = select(AccessGrant)
    opened_stmt = select(OriginalAccess)
    if unit_ids is not None:
        grant_stmt = grant_stmt.where(AccessGrant.unit_id.in_(unit_ids))
        opened_stmt = opened_stmt.where(OriginalAccess.unit_id.in_(unit_ids))
    # The period is filtered in SQL, before any limit, so an older period is never cut short.
    if filters.start:
        opened_stmt = opened_stmt.where(OriginalAccess.at >= filters.start)
    if filters.end:
        opened_stmt = opened_stmt.where(OriginalAccess.at < filters.end)
    if filters.action and filters.action != "original":
        opened_stmt = opened_stmt.where(False)
    grant_list = list(s.execute(grant_stmt).scalars())
    by_id = {g.id: g for g in grant_list}
    uses = list(s.execute(select(AccessUse).where(AccessUse.grant_id.in_(list(by_id)))).scalars()) if by_id else []
    opened = list(s.execute(opened_stmt.order_by(OriginalAccess.id.desc()).limit(limit)).scalars())
    people_ids = {g.registered_by for g in grant_list} | {g.decided_by for g in grant_list if g.decided_by} | {
        u.by_id for u in uses} | {o.user_id for o in opened}
    people = {u.id: u for u in s.execute(select(User).where(User.id.in_(people_ids))).scalars()} if people_ids else {}
    units = {u.id: u for u in s.execute(select(Unit)).scalars()}

    def name(user_id):
        user = people.get(user_id)
        return user.name if user else ""

    def purpose(g: AccessGrant) -> str:
        label = rules.purposes[g.purpose].label_zh if g.purpose in rules.purposes else g.purpose
        return f"{label}：{g.purpose_note}" if g.purpose_note else label

    def approver(g: AccessGrant) -> str:
        return name(g.decided_by) if g.state in ("approved", "refused", "revoked") and g.decided_by else ""

    from .grants import status
    from .secrecy import subject_label_for
    shown = {g.id: subject_label_for(viewer, g) if viewer is not None else g.subject_label for g in grant_list}
    out: list[Row] = []
    for g in grant_list:
        out.append(Row(g.registered_at, g.number, "request", g.requester_name, g.requester_org, name(g.registered_by),
                       approver(g), g.decided_at, purpose(g), f"{'调阅' if g.mode == 'view' else '复制'}：{shown[g.id]}",
                       g.article, status(g), g.id))
    for u in uses:
        g = by_id[u.grant_id]
        what = f"{shown[g.id]} · {u.hash[:12]}" + (f" · 遮盖 {len(u.redactions)} 处：{u.redaction_reason}" if u.redactions else "")
        out.append(Row(u.at, g.number, u.action, g.requester_name if u.action == "view" else name(u.by_id),
                       g.requester_org, name(u.by_id), approver(g), g.decided_at, purpose(g), what, g.article,
                       status(g), g.id))
    for o in opened:
        unit = units.get(o.unit_id)
        out.append(Row(o.at, f"OA-{o.id}", "original", name(o.user_id), unit.name if unit else "", name(o.user_id),
                       "", None, "本单位审查（常设事由）" if o.reason == "own_unit_review" else o.reason,
                       f"原件 {o.hash[:12]}", "第二十九条第一款", "", None))
    out = [r for r in out if _kept(r, filters)]
    out.sort(key=lambda r: r.at, reverse=True)
    return out[:limit]


def _kept(row: Row, f: Filters) -> bool:
    if f.start and row.at < f.start or f.end and row.at >= f.end:
        return False
    if f.action and row.action != f.action:
        return False
    if f.purpose:
        label = records_rules.builtin().purposes.get(f.purpose)
        if label is None or not row.purpose.startswith(label.label_zh):
            return False
    if f.person and not any(f.person in text for text in (row.requester, row.by, row.approver, row.org)):
        return False
    return True
