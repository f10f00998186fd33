"""The statistics' figures, read strictly from ``figures.toml``: what each one counts, under which
article, of what kind, and how it is shown."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ..rules import tomldata

KINDS = ("count", "minutes", "seconds", "days", "ratio")
LEVELS = ("record", "unit")
YEAR_RULES = ("sum", "last", "none")
DRILLS = ("records", "cases")


class FiguresError(ValueError):
    pass


class _Entry(tomldata.Entry):
    error = FiguresError


@dataclass(frozen=True)
class Figure:
    id: str
    label_zh: str
    label_en: str
    definition_zh: str
    definition_en: str
    article: str
    kind: str
    level: str
    year: str
    drill: str
    reason: str | None = None  # an interruption reason (interruptions_* figures)

    def label(self, language: str) -> str:
        return self.label_zh if language == "zh" else self.label_en

    def definition(self, language: str) -> str:
        return self.definition_zh if language == "zh" else self.definition_en


def parse(data: dict) -> tuple[Figure, ...]:
    top = _Entry(data, "figures.toml")
    entries = top.get("figures")
    top.close()
    found: list[Figure] = []
    for n, raw in enumerate(entries or ()):
        e = _Entry(raw, f"figures.toml [[figures]] #{n + 1}")
        figure = Figure(*(e.get(k) for k in ("id", "label_zh", "label_en", "definition_zh", "definition_en",
                                             "article", "kind", "level", "year", "drill")),
                        reason=e.get("reason", optional=True))
        e.close()
        for name in ("id", "label_zh", "label_en", "definition_zh", "definition_en", "article"):
            if not isinstance(getattr(figure, name), str) or not getattr(figure, name).strip():
                raise FiguresError(f"figure {figure.id!r}: {name} must be a non-empty string")
        if len(figure.id) > 40:
            raise FiguresError(f"figure {figure.id!r}: id longer than 40 characters")
        for name, allowed in (("kind", KINDS), ("level", LEVELS), ("year", YEAR_RULES), ("drill", DRILLS)):
            if getattr(figure, name) not in allowed:
                raise FiguresError(f"figure {figure.id!r}: {name} must be one of {', '.join(allowed)}")
        if figure.kind in ("seconds",) and figure.year != "none":
            raise FiguresError(f"figure {figure.id!r}: a percentile cannot be summed over a year")
        if any(f.id == figure.id for f in found):
            raise FiguresError(f"figure {figure.id!r} defined twice")
        found.append(figure)
    if not found:
        raise FiguresError("figures.toml defines no figures")
    return tuple(found)


@functools.cache
def builtin() -> tuple[Figure, ...]:
    return parse(tomldata.load("fieldapp.statistics", "figures.toml", FiguresError))


def by_id() -> dict[str, Figure]:
    return {f.id: f for f in builtin()}
