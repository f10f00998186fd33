"""The rules of records management, read from ``records.toml``: plain data and pure functions.

* :func:`requester_kind` and :func:`approval` — which paragraph of art. 29 a request falls under and
  which leader must approve it;
* :func:`retention` — art. 26's class of one stored object from the facts of the records that refer
  to it: six months from capture at least; permanent when a permanent rule's fact holds; held while a
  hold is on. The longest wins.
"""
from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import datetime

from . import tomldata

ENFORCEMENT = "enforcement"
INTERNAL_OFFICE_KINDS = frozenset({"policy", "office", "discipline", "leadership"})
UNIT_KINDS = (ENFORCEMENT, "policy", "office", "discipline", "leadership")
APPROVER_ROLES = ("lead", "division_head", "bureau_head")

SIX_MONTHS, HELD, PERMANENT = "six_months", "held", "permanent"



class RecordsRulesError(ValueError):
    pass


class _Entry(tomldata.Entry):
    error = RecordsRulesError


@dataclass(frozen=True)
class RequesterKind:
    id: str
    label_zh: str
    label_en: str
    approver: str
    article: str
    purposes: tuple[str, ...]
    configurable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Purpose:
    id: str
    label_zh: str
    label_en: str
    needs_note: bool = False


@dataclass(frozen=True)
class Labelled:
    id: str
    label_zh: str
    label_en: str
    article: str


@dataclass(frozen=True)
class PermanentRule:
    id: str
    label_zh: str
    label_en: str
    article: str
    facts: frozenset[str]


@dataclass(frozen=True)
class RecordsRules:
    requester_kinds: dict[str, RequesterKind]
    purposes: dict[str, Purpose]
    max_days: int
    default_days: int
    redaction_for: frozenset[str]
    minimum_months: int
    minimum_article: str
    recoverable_days: int
    disposal_approvers: tuple[str, ...]
    permanent: tuple[PermanentRule, ...]
    holds: dict[str, Labelled]
    confidentiality: dict[str, Labelled]
    significance: dict[str, Labelled]


def _labelled(entry: _Entry) -> Labelled:
    made = Labelled(entry.get("id"), entry.get("label_zh"), entry.get("label_en"), entry.get("article"))
    entry.close()
    return made


def parse(data: dict) -> RecordsRules:
    kinds = {}
    for i, raw in enumerate(data.get("requester_kinds", [])):
        e = _Entry(raw, f"requester_kinds[{i}]")
        kind = RequesterKind(e.get("id"), e.get("label_zh"), e.get("label_en"), e.get("approver"), e.get("article"),
                             e.get("purposes"), e.get("configurable", optional=True) or ())
        e.close()
        if kind.approver not in APPROVER_ROLES:
            raise RecordsRulesError(f"requester_kinds[{i}]: unknown approver {kind.approver!r}")
        kinds[kind.id] = kind
    purposes = {}
    for i, raw in enumerate(data.get("purposes", [])):
        e = _Entry(raw, f"purposes[{i}]")
        p = Purpose(e.get("id"), e.get("label_zh"), e.get("label_en"), bool(e.get("needs_note", optional=True)))
        e.close()
        purposes[p.id] = p
    for kind in kinds.values():
        unknown = set(kind.purposes) - set(purposes)
        if unknown:
            raise RecordsRulesError(f"requester kind {kind.id}: unknown purposes {sorted(unknown)}")
    access = _Entry(data.get("access"), "access")
    max_days, default_days, redaction_for = access.get("max_days"), access.get("default_days"), access.get("redaction_for")
    access.close()
    ret = _Entry(data.get("retention"), "retention")
    minimum_months, minimum_article = ret.get("minimum_months"), ret.get("minimum_article")
    recoverable_days, approvers = ret.get("recoverable_days"), ret.get("disposal_approvers")
    ret.close()
    permanent = []
    for i, raw in enumerate(data.get("permanent", [])):
        e = _Entry(raw, f"permanent[{i}]")
        permanent.append(PermanentRule(e.get("id"), e.get("label_zh"), e.get("label_en"), e.get("article"),
                                       frozenset(e.get("facts"))))
        e.close()
    return RecordsRules(
        requester_kinds=kinds, purposes=purposes, max_days=max_days, default_days=default_days,
        redaction_for=frozenset(redaction_for), minimum_months=minimum_months, minimum_article=minimum_article,
        recoverable_days=recoverable_days, disposal_approvers=tuple(approvers), permanent=tuple(permanent),
        holds={h.id: h for h in map(_labelled, (_Entry(r, f"holds[{i}]") for i, r in enumerate(data.get("holds", []))))},
        confidentiality={c.id: c for c in map(_labelled, (_Entry(r, f"confidentiality[{i}]")
                                                          for i, r in enumerate(data.get("confidentiality", []))))},
        significance={c.id: c for c in map(_labelled, (_Entry(r, f"significance[{i}]")
                                                       for i, r in enumerate(data.get("significance", []))))},
    )


@functools.cache
def builtin() -> RecordsRules:
    return parse(tomldata.load(__package__, "records.toml", RecordsRulesError))


# ------------------------------------------------------------------------------------ art. 29


def requester_kind(*, outside: bool, requester_unit_id=None, requester_unit_kind: str | None = None,
                   collecting_unit_id=None) -> str:
    """Which paragraph of art. 29 a request falls under, from who asks and whose records they are."""
    if outside:
        return "outside_body"
    if requester_unit_id is not None and requester_unit_id == collecting_unit_id:
        return "own_unit"
    if (requester_unit_kind or ENFORCEMENT) in INTERNAL_OFFICE_KINDS:
        return "internal_office"
    return "other_enforcement"


@dataclass(frozen=True)
class Approval:
    requester_kind: str
    approver: str  # lead | division_head | bureau_head
    article: str


class RequestRefused(ValueError):
    """A request the rules do not admit; the message says why, in Chinese and English."""


def approval(kind: str, purpose: str, note: str = "", *, other_unit_approver: str | None = None,
             rules: RecordsRules | None = None) -> Approval:
    """The approver art. 29 names for a requester of ``kind`` asking for ``purpose``."""
    rules = rules or builtin()
    entry = rules.requester_kinds.get(kind)
    if entry is None:
        raise RequestRefused(f"未知的申请人类别 / unknown requester kind {kind!r}")
    if purpose not in rules.purposes:
        raise RequestRefused(f"未知的事由 / unknown purpose {purpose!r}")
    if purpose not in entry.purposes:
        p = rules.purposes[purpose]
        raise RequestRefused(f"{entry.label_zh}不能以“{p.label_zh}”为由调阅 ({entry.article}) / "
                             f"{entry.label_en} cannot ask for “{p.label_en}”")
    if rules.purposes[purpose].needs_note and not note.strip():
        raise RequestRefused("请说明事由 / Say what the purpose is")
    approver = entry.approver
    if other_unit_approver and entry.configurable:
        if other_unit_approver not in entry.configurable:
            raise RecordsRulesError(f"{kind}: approver may be one of {entry.configurable}, not {other_unit_approver!r}")
        approver = other_unit_approver
    return Approval(kind, approver, entry.article)


# ------------------------------------------------------------------------------------ art. 26


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later (the month's last day where it is shorter: 31 Aug + 6 = 28/29 Feb)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Reason:
    rule: str
    article: str
    fact: str = ""

    def as_json(self) -> dict:
        return {"rule": self.rule, "article": self.article, "fact": self.fact}


@dataclass(frozen=True)
class Retention:
    klass: str  # six_months | held | permanent
    keep_until: datetime | None  # None: permanent or held
    reasons: tuple[Reason, ...]

    def due(self, now: datetime) -> bool:
        return self.klass == SIX_MONTHS and self.keep_until is not None and self.keep_until <= now


def retention(captured_at: datetime, facts: frozenset[str] | set[str], holds: frozenset[str] | set[str] = frozenset(),
              rules: RecordsRules | None = None) -> Retention:
    """Art. 26 for one object. ``facts`` are what holds for any record referring to it (e.g.
    ``case_flag:obstruction``, ``segment:important``); ``holds`` the kinds of hold on it. Every rule
    that fires is a reason; the longest wins (permanent, then held, then six months)."""
    rules = rules or builtin()
    minimum = Reason("minimum", rules.minimum_article)
    permanent = tuple(Reason(rule.id, rule.article, fact) for rule in rules.permanent
                      for fact in sorted(rule.facts & set(facts)))
    held = tuple(Reason(f"hold:{h}", rules.holds[h].article) for h in sorted(holds) if h in rules.holds)
    if permanent:
        return Retention(PERMANENT, None, permanent + held + (minimum,))
    if held:
        return Retention(HELD, None, held + (minimum,))
    return Retention(SIX_MONTHS, add_months(captured_at, rules.minimum_months), (minimum,))


