"""The district regulation as data: stages, enforcement kinds, step types, flags and findings.

Why data rather than code: the regulation (临淄区市场监督管理局行政执法全过程记录规定) changes by
notice, units may add step types that "other rules require" (arts. 12, 19, 22, 24 each end so), and
the phone must drive its capture screens offline from the same source the server checks records
against. So the rules live in ``catalogue.toml``, each citing its article, and this module only
parses, validates and serves them. A malformed catalogue fails loudly when loaded
(:class:`CatalogueError`) instead of silently dropping a step officers must record.

Citations are plain strings: ``"art. 12"``, ``"arts. 10–12"`` or ``"arts. 12, 19"`` for the district
regulation, ``"行政处罚法 art. 42"`` for national law, ``"行政强制法 art. 18(三)"`` for one item of an
article, several joined by ``"; "``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from . import tomldata

__all__ = [
    "SEVERITIES", "CatalogueError", "Stage", "Kind", "StepType", "CaseFlag", "Reason", "Relation",
    "FindingRule", "DocumentCondition", "ConditionalDocument", "Catalogue", "load_builtin", "parse", "parse_step_type", "format_citation",
]

SEVERITIES = ("error", "warning")

_ID = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# One citation: optional law name (no spaces), "art."/"arts.", numbers joined by "–", "-", "/" or ", ";
# a single article may name one item in Chinese numerals: "行政强制法 art. 18(三)".
_CITATION = re.compile(r"(?:(?P<law>[^\s;]+) )?arts?\. (?P<nums>\d+(?:(?:–|-|/|, )\d+)*)"
                       r"(?:\((?P<item>[一二三四五六七八九十]+)\))?")


class CatalogueError(ValueError):
    """The catalogue data is malformed; the message names the section, the entry and the problem."""


@dataclass(frozen=True)
class Stage:
    """A stage of the whole process (art. 3); stage order is the order in the catalogue."""
    id: str
    label_zh: str
    label_en: str
    article: str


@dataclass(frozen=True)
class Kind:
    """A kind of enforcement act (art. 2) and the section of the regulation that governs it.

    ``service_by_leaving`` names the step type a 留置送达 record of this kind is: its audio/video duty
    (arts. 19, 22, 24) is that step's."""
    id: str
    label_zh: str
    label_en: str
    article: str
    service_by_leaving: str | None = None
    # Kinds whose step types are also recorded inside a case of this kind: 查封/扣押 taken within a
    # penalty or inspection case (art. 20 para. 2). Their duties and terms follow the step, not the case.
    measures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.measures, list):
            object.__setattr__(self, "measures", tuple(self.measures))


@dataclass(frozen=True)
class ConditionalDocument:
    """A checklist document due only when a condition holds (``when`` names a DocumentCondition)."""
    document: str
    when: str


@dataclass(frozen=True)
class StepType:
    """A step an officer can record, with what it rests on, produces, and whether it needs audio/video.

    ``unit_code`` is set only for step types a unit added itself (the "other cases" clauses).
    """
    id: str
    kind: str
    stage: str
    label_zh: str
    label_en: str
    av_required: bool
    av_article: str | None
    articles: tuple[str, ...]
    documents: tuple[str, ...]
    field: bool
    unit_code: str | None = None
    one_of: tuple[tuple[str, ...], ...] = ()  # alternatives: at least one of each group is made
    conditional: tuple[ConditionalDocument, ...] = ()
    sets_continuous: bool = False  # recording this step makes its activity continuous (art. 9)
    ends_act: bool = False  # recording this step ends the enforcement act (art. 25's filing clock)

    def __post_init__(self) -> None:
        # Accept lists (and the JSON form of the phone's cache) but keep the instance immutable.
        for name in ("articles", "documents"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.one_of, (list, tuple)):
            object.__setattr__(self, "one_of", tuple(tuple(g) if isinstance(g, (list, tuple)) else g
                                                     for g in self.one_of))
        if isinstance(self.conditional, (list, tuple)):
            object.__setattr__(self, "conditional", tuple(
                ConditionalDocument(c.get("document"), c.get("when")) if isinstance(c, Mapping) else c
                for c in self.conditional))

    @property
    def required_documents(self) -> tuple[str, ...]:
        """Documents due whatever happened: neither an alternative nor conditional."""
        optional = {d for group in self.one_of for d in group} | {c.document for c in self.conditional}
        return tuple(d for d in self.documents if d not in optional)


@dataclass(frozen=True)
class CaseFlag:
    """A property of a case: ``continuous`` ones make recording from arrival to departure mandatory
    (art. 9); ``serious`` marks the cases decided by collective discussion (行政处罚法 art. 57)."""
    id: str
    label_zh: str
    label_en: str
    article: str
    continuous: bool = False


@dataclass(frozen=True)
class Reason:
    """A category of reason why recording was interrupted (art. 9); ``sets_continuous``: from then
    on the activity is recorded without a break (obstruction)."""
    id: str
    label_zh: str
    label_en: str
    article: str
    sets_continuous: bool = False


@dataclass(frozen=True)
class DocumentCondition:
    """When a conditional checklist document is due."""
    id: str
    label_zh: str
    label_en: str
    article: str


@dataclass(frozen=True)
class Relation:
    """Who refused a document in a service by leaving (留置送达), relative to the recipient."""
    id: str
    label_zh: str
    label_en: str
    article: str


@dataclass(frozen=True)
class FindingRule:
    """A compliance finding the checks may raise, with its article and whether it blocks archiving."""
    id: str
    label_zh: str
    label_en: str
    article: str
    severity: str
    blocks_archiving: bool
    exception_allowed: bool = False  # a lead may accept it, in a recorded decision


T = TypeVar("T")


@dataclass(frozen=True)
class Catalogue:
    """One validated version of the rules; immutable, so one instance can be shared by all requests."""
    version: int
    title_zh: str
    title_en: str
    scope_article: str
    stages: tuple[Stage, ...]
    kinds: tuple[Kind, ...]
    step_types: tuple[StepType, ...]
    case_flags: tuple[CaseFlag, ...]
    interruption_reasons: tuple[Reason, ...]
    service_relations: tuple[Relation, ...]
    findings: tuple[FindingRule, ...]
    document_conditions: tuple[DocumentCondition, ...] = ()

    def step_types_for(self, kind: str) -> list[StepType]:
        """Steps recorded in a case of one kind (its own and its measures') as the phone lists them:
        on-site steps first, then by stage, then file order."""
        self.kind(kind)
        order = {stage.id: i for i, stage in enumerate(self.stages)}
        kinds = (kind, *self.kind(kind).measures)
        steps = [s for s in self.step_types if s.kind in kinds]
        return sorted(steps, key=lambda s: (not s.field, order[s.stage]))  # stable: keeps file order

    def step_type(self, step_type_id: str) -> StepType:
        return _by_id(self.step_types, step_type_id, "step type")

    def finding(self, finding_id: str) -> FindingRule:
        return _by_id(self.findings, finding_id, "finding")

    def kind(self, kind_id: str) -> Kind:
        return _by_id(self.kinds, kind_id, "kind")

    def stage(self, stage_id: str) -> Stage:
        return _by_id(self.stages, stage_id, "stage")

    def with_extra_step_types(self, unit_steps: Iterable[StepType]) -> Catalogue:
        """A new catalogue that also holds step types a unit defined (each must carry its unit_code).

        Built-in ids win: a unit step may not reuse any existing id, so records keep one meaning.
        """
        extra = tuple(unit_steps)
        for step in extra:
            if not isinstance(step, StepType):
                raise CatalogueError(f"unit step types: expected StepType, got {type(step).__name__}")
            if not (isinstance(step.unit_code, str) and step.unit_code.strip()):
                raise CatalogueError(f"step_types: {step.id!r}: a unit-defined step type needs unit_code")
        catalogue = replace(self, step_types=self.step_types + extra)
        _validate(catalogue)
        return catalogue

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for the phone's cache, shaped like the TOML so ``parse`` reads it back."""
        return {
            "version": self.version,
            "meta": {"title": self.title_zh, "title_en": self.title_en,
                     "scope_article": self.scope_article},
            **{name: [_plain(item) for item in getattr(self, name)] for name in _SECTIONS},
        }

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: changes when unit step types change though version does not."""
        text = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def citations(self) -> frozenset[str]:
        """Every single citation the catalogue makes, split at "; " (e.g. "art. 19", "行政强制法 art. 18")."""
        found: set[str] = {self.scope_article}
        for name in _SECTIONS:
            for item in getattr(self, name):
                texts = item.articles if isinstance(item, StepType) else (item.article,)
                for text in texts:
                    found.update(part.strip() for part in text.split(";"))
        return frozenset(found)

    def district_articles(self) -> frozenset[int]:
        """Numbers of the district regulation's articles cited anywhere, ranges expanded."""
        numbers: set[int] = set()
        for citation in self.citations():
            match = _CITATION.fullmatch(citation)
            if match and not match.group("law"):
                numbers.update(_expand(match.group("nums")))
        return frozenset(numbers)


_LATER_SECTIONS = ("document_conditions",)
_SECTIONS = ("stages", "kinds", "step_types", "case_flags", "interruption_reasons",
             "service_relations", "findings", "document_conditions")


def _by_id(items: Iterable[T], wanted: str, what: str) -> T:
    for item in items:
        if item.id == wanted:  # type: ignore[attr-defined]
            return item
    raise KeyError(f"unknown {what} {wanted!r}")


def _plain(item: Any) -> Any:
    if isinstance(item, tuple):
        return [_plain(v) for v in item]
    if hasattr(item, "__dataclass_fields__"):
        return {f.name: _plain(getattr(item, f.name)) for f in fields(item)}
    return item


def _expand(nums: str) -> set[int]:
    result: set[int] = set()
    for part in re.split(r", |/", nums):
        low, _, high = part.replace("-", "–").partition("–")
        result.update(range(int(low), int(high or low) + 1))
    return result


# ── citations as a reader sees them ──────────────────────────────────────────────────────────────
# The catalogue stores citations in one short, checkable form; screens show them in the reader's
# language. Chinese readers see 第十九条 for the district regulation and 行政处罚法第五十五条 for a
# national law, as an official writes them; English readers see the stored form.

_DIGITS_ZH = "零一二三四五六七八九"


def number_zh(n: int) -> str:
    """An article number in Chinese numerals (1 → 一, 19 → 十九, 55 → 五十五, 101 → 一百零一)."""
    if not 0 < n < 10000:
        return str(n)
    out, pending_zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit, n = divmod(n, value)
        if digit:
            if pending_zero:
                out += "零"
            out += ("" if (digit == 1 and unit == "十" and not out) else _DIGITS_ZH[digit]) + unit
            pending_zero = False
        elif out:
            pending_zero = True
    return out


def _numbers_zh(nums: str) -> str:
    parts = []
    for part in re.split(r", |/", nums):
        low, dash, high = part.replace("-", "–").partition("–")
        text = f"第{number_zh(int(low))}条"
        parts.append(f"{text}至第{number_zh(int(high))}条" if dash else text)
    return "、".join(parts)


def format_citation(text: str | None, zh: bool) -> str:
    """One stored citation (possibly several joined by "; ") for display.

    "art. 19" → 第十九条 · "arts. 23–24" → 第二十三条至第二十四条 · "arts. 12, 19" → 第十二条、第十九条 ·
    "行政处罚法 art. 42, 55; 行政强制法 art. 18" → 行政处罚法第四十二条、第五十五条；行政强制法第十八条.
    In English the stored form is already the reader's form. Text that is not a citation is
    returned as it is, so a unit's odd entry still shows rather than vanishing.
    """
    if not text or not zh:
        return text or ""
    out = []
    for part in text.split(";"):
        part = part.strip()
        match = _CITATION.fullmatch(part)
        if not match:
            out.append(part)
            continue
        item = f"第{match.group('item')}项" if match.group("item") else ""
        out.append((match.group("law") or "") + _numbers_zh(match.group("nums")) + item)
    return "；".join(out)


# A citation inside Chinese text: the space before it goes ("依据 art. 19" → "依据第十九条",
# "民法典 art. 201" → "民法典第二百零一条").
_CITATION_IN_TEXT = re.compile(r"(?P<law>[\u4e00-\u9fff])? ?arts?\. (?P<nums>\d+(?:(?:–|-|/|, )\d+)*)")


def format_citations_in(text: str | None, zh: bool) -> str:
    """Every citation inside a sentence, e.g. "依据 art. 19" → "依据第十九条"."""
    if not text or not zh:
        return text or ""
    return _CITATION_IN_TEXT.sub(lambda m: (m.group("law") or "") + _numbers_zh(m.group("nums")), text)


@functools.cache
def load_builtin() -> Catalogue:
    """The catalogue shipped beside this module (cached: it is immutable)."""
    data = tomldata.load(__package__, "catalogue.toml", CatalogueError)
    return parse(data)


# ── parsing: shape first (keys present, none unknown), then content (_validate) ──────────────────

class _Entry(tomldata.Entry):
    error = CatalogueError


def _where(section: str, index: int, data: Any) -> str:
    ident = data.get("id") if isinstance(data, Mapping) else None
    return f"{section}[{index}]" + (f" ({ident})" if isinstance(ident, str) else "")


def _labelled(cls: type[T], entry: _Entry, **optional: Any) -> T:
    """An entry with id, labels and article, plus the optional keys named (with their defaults)."""
    extra = {}
    for key, default in optional.items():
        value = entry.get(key, optional=True)
        extra[key] = default if value is None else value
    item = cls(id=entry.get("id"), label_zh=entry.get("label_zh"),  # type: ignore[call-arg]
               label_en=entry.get("label_en"), article=entry.get("article"), **extra)
    entry.close()
    return item


def _step(entry: _Entry) -> StepType:
    step = StepType(
        id=entry.get("id"), kind=entry.get("kind"), stage=entry.get("stage"),
        label_zh=entry.get("label_zh"), label_en=entry.get("label_en"),
        av_required=entry.get("av_required"), av_article=entry.get("av_article", optional=True),
        articles=entry.get("articles"), documents=entry.get("documents"), field=entry.get("field"),
        unit_code=entry.get("unit_code", optional=True), one_of=entry.get("one_of", optional=True) or (),
        conditional=entry.get("conditional", optional=True) or (),
        sets_continuous=bool(entry.get("sets_continuous", optional=True)),
        ends_act=bool(entry.get("ends_act", optional=True)),
    )
    entry.close()
    return step


def _finding(entry: _Entry) -> FindingRule:
    item = FindingRule(
        id=entry.get("id"), label_zh=entry.get("label_zh"), label_en=entry.get("label_en"),
        article=entry.get("article"), severity=entry.get("severity"),
        blocks_archiving=entry.get("blocks_archiving"),
        exception_allowed=bool(entry.get("exception_allowed", optional=True)),
    )
    entry.close()
    return item


def parse_step_type(data: Mapping[str, Any], *, unit_code: str | None = None) -> StepType:
    """One step type from a dict, e.g. a unit's own definition, checked on its own.

    ``unit_code`` (when given) overrides any in ``data``. Whether kind and stage exist and the id is
    free is checked when the step joins a catalogue (:meth:`Catalogue.with_extra_step_types`).
    """
    if unit_code is not None and isinstance(data, Mapping):
        data = {**data, "unit_code": unit_code}
    ident = data.get("id") if isinstance(data, Mapping) else None
    where = f"step type {ident!r}" if isinstance(ident, str) else "step type"
    step = _step(_Entry(data, where))
    _check_item(step, where)
    return step


def parse(data: Mapping[str, Any]) -> Catalogue:
    """Build and validate a catalogue from TOML-shaped data (or ``Catalogue.to_json()`` output)."""
    top = _Entry(data, "catalogue")
    meta = _Entry(top.get("meta"), "meta")
    readers = {
        "stages": lambda e: _labelled(Stage, e), "kinds": lambda e: _labelled(Kind, e, service_by_leaving=None, measures=()),
        "step_types": _step, "case_flags": lambda e: _labelled(CaseFlag, e, continuous=False),
        "interruption_reasons": lambda e: _labelled(Reason, e, sets_continuous=False),
        "service_relations": lambda e: _labelled(Relation, e), "findings": _finding,
        "document_conditions": lambda e: _labelled(DocumentCondition, e),
    }
    sections: dict[str, tuple[Any, ...]] = {}
    for name, read in readers.items():
        # Sections added after the first version are optional, so older published versions still read.
        raw = top.get(name, optional=name in _LATER_SECTIONS)
        if raw is None:
            sections[name] = ()
            continue
        if not isinstance(raw, tuple):
            raise CatalogueError(f"{name}: expected an array of tables")
        sections[name] = tuple(read(_Entry(item, _where(name, i, item))) for i, item in enumerate(raw))
    catalogue = Catalogue(
        version=top.get("version"), title_zh=meta.get("title"), title_en=meta.get("title_en"),
        scope_article=meta.get("scope_article"), **sections,
    )
    meta.close()
    top.close()
    _validate(catalogue)
    return catalogue


# ── content checks, shared by parse() and with_extra_step_types() ───────────────────────────────

def _text(value: Any, where: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: {name} must be a non-empty string")


def _citation(value: Any, where: str, name: str) -> None:
    _text(value, where, name)
    for part in value.split("; "):
        if not _CITATION.fullmatch(part):
            raise CatalogueError(f"{where}: {name} {value!r} is not a citation like 'art. 12' "
                                 f"or '行政处罚法 art. 42'")


def _flag(value: Any, where: str, name: str) -> None:
    if not isinstance(value, bool):
        raise CatalogueError(f"{where}: {name} must be true or false")


def _validate(cat: Catalogue) -> None:
    if not isinstance(cat.version, int) or isinstance(cat.version, bool) or cat.version < 1:
        raise CatalogueError("version must be a positive integer")
    _text(cat.title_zh, "meta", "title")
    _text(cat.title_en, "meta", "title_en")
    _citation(cat.scope_article, "meta", "scope_article")
    kinds, stages = {k.id for k in cat.kinds}, {s.id for s in cat.stages}
    conditions = {c.id for c in cat.document_conditions}
    steps = {s.id: s for s in cat.step_types}
    for name in _SECTIONS:
        items = getattr(cat, name)
        if not items and name not in _LATER_SECTIONS:
            raise CatalogueError(f"{name}: must not be empty")
        seen: set[str] = set()
        for item in items:
            where = f"{name}: {item.id!r}" if isinstance(item.id, str) else name
            _check_item(item, where)
            if item.id in seen:
                raise CatalogueError(f"{name}: duplicate id {item.id!r}")
            seen.add(item.id)
            if isinstance(item, StepType):
                if item.kind not in kinds:
                    raise CatalogueError(f"{where}: unknown kind {item.kind!r}")
                if item.stage not in stages:
                    raise CatalogueError(f"{where}: unknown stage {item.stage!r}")
                for cond in item.conditional:
                    if cond.when not in conditions:
                        raise CatalogueError(f"{where}: conditional {cond.document!r}: unknown condition {cond.when!r}")
            if isinstance(item, Kind) and (not isinstance(item.measures, tuple)
                                           or any(m not in kinds or m == item.id for m in item.measures)):
                raise CatalogueError(f"{where}: measures must name other kinds")
            if isinstance(item, Kind) and item.service_by_leaving is not None:
                target = steps.get(item.service_by_leaving)
                if target is None or target.kind != item.id:
                    raise CatalogueError(f"{where}: service_by_leaving {item.service_by_leaving!r} is not a step "
                                         f"type of this kind")


def _check_item(item: Any, where: str) -> None:
    """Checks one entry on its own; references to other sections are _validate's business."""
    if not (isinstance(item.id, str) and _ID.fullmatch(item.id)):
        raise CatalogueError(f"{where}: id must be snake_case ([a-z0-9_], starting with a letter)")
    _text(item.label_zh, where, "label_zh")
    _text(item.label_en, where, "label_en")
    if isinstance(item, StepType):
        _check_step(item, where)
        return
    _citation(item.article, where, "article")
    if isinstance(item, FindingRule):
        if item.severity not in SEVERITIES:
            raise CatalogueError(f"{where}: severity {item.severity!r} is not one of {SEVERITIES}")
        _flag(item.blocks_archiving, where, "blocks_archiving")
        _flag(item.exception_allowed, where, "exception_allowed")
    if isinstance(item, CaseFlag):
        _flag(item.continuous, where, "continuous")
    if isinstance(item, Reason):
        _flag(item.sets_continuous, where, "sets_continuous")


def _check_step(step: StepType, where: str) -> None:
    _text(step.kind, where, "kind")
    _text(step.stage, where, "stage")
    _flag(step.av_required, where, "av_required")
    _flag(step.field, where, "field")
    for name in ("articles", "documents"):
        if not isinstance(getattr(step, name), tuple):
            raise CatalogueError(f"{where}: {name} must be a list of strings")
    if not step.articles:
        raise CatalogueError(f"{where}: articles must cite at least one article")
    for article in step.articles:
        _citation(article, where, "articles entry")
    for document in step.documents:
        _text(document, where, "documents entry")
    if len(set(step.documents)) != len(step.documents):
        raise CatalogueError(f"{where}: a document is listed twice")
    _flag(step.sets_continuous, where, "sets_continuous")
    listed = set(step.documents)
    for group in step.one_of:
        if not isinstance(group, tuple) or len(group) < 2:
            raise CatalogueError(f"{where}: one_of groups list at least two alternative documents")
        for document in group:
            if document not in listed:
                raise CatalogueError(f"{where}: one_of names {document!r}, which is not in documents")
    for cond in step.conditional:
        if not isinstance(cond, ConditionalDocument) or cond.document not in listed:
            raise CatalogueError(f"{where}: conditional names {getattr(cond, 'document', cond)!r}, "
                                 f"which is not in documents")
        _text(cond.when, where, "conditional when")
    if step.av_required:
        _citation(step.av_article, where, "av_article (required when av_required is true)")
        if step.av_article not in step.articles:
            raise CatalogueError(f"{where}: av_article {step.av_article!r} must also be in articles")
    elif step.av_article is not None:
        raise CatalogueError(f"{where}: av_article is set but av_required is false")
    if step.unit_code is not None:
        _text(step.unit_code, where, "unit_code")
