"""The statistics' figures are data (figures.toml), read strictly; each cites its article, its
Chinese label is Chinese, and the interruption figures match the catalogue's reasons."""
from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from fieldapp.statistics import compute, figures
from fieldapp.statistics.export import sheet_title


def raw() -> dict:
    return tomllib.loads(resources.files("fieldapp.statistics").joinpath("figures.toml").read_text(encoding="utf-8"))


def test_every_figure_has_an_article_and_both_languages():
    found = figures.builtin()
    assert len(found) >= 20
    for f in found:
        assert re.search(r"arts?\.|第", f.article), f.id
        assert not re.search(r"[A-Za-z]", f.label_zh), f"{f.id}: the Chinese label has Latin letters"
        assert not re.search(r"[A-Za-z]{2,}", f.definition_zh), f"{f.id}: the Chinese definition has Latin words"


def test_the_figures_the_issue_asks_for_are_there():
    ids = set(figures.by_id())
    assert {"av_required", "av_recorded", "continuous_gaps", "continuous_gap_minutes", "footage_auto",
            "footage_manual", "storage_late", "storage_p50", "storage_p95", "filing_late", "blocking_open",
            "blocking_open_age", "service_complete", "deadlines_missed", "access_grants", "disposals"} <= ids


def test_interruption_figures_cover_the_catalogue_reasons():
    text = resources.files("fieldapp.rules").joinpath("catalogue.toml").read_text(encoding="utf-8")
    reasons = {r["id"] for r in tomllib.loads(text)["interruption_reasons"]}
    assert {f.reason for f in figures.builtin() if f.reason} == reasons


@pytest.mark.parametrize("change, message", [
    (lambda d: d["figures"][0].pop("article"), "missing 'article'"),
    (lambda d: d["figures"][0].update(colour="red"), "unknown key"),
    (lambda d: d["figures"][0].update(kind="percent"), "kind must be one of"),
    (lambda d: d["figures"][1].update(id=d["figures"][0]["id"]), "defined twice"),
    (lambda d: d["figures"][0].update(article=" "), "article must be"),
    (lambda d: d.update(extra=1), "unknown key"),
])
def test_the_definitions_file_is_read_strictly(change, message):
    data = raw()
    change(data)
    with pytest.raises(figures.FiguresError, match=message):
        figures.parse(data)


def test_sheet_names_are_valid_and_unique():
    taken: set[str] = set()
    names = [sheet_title("一中队", taken), sheet_title("一中队", taken), sheet_title("a/b:c*d?[e]" + "长" * 40, taken)]
    assert names[0] != names[1] and all(len(n) <= 31 and not re.search(r"[\[\]:*?/\\]", n) for n in names)


def test_months_are_beijing_months():
    start, end = compute.month_bounds(2026, 1)
    assert start.isoformat() == "2025-12-31T16:00:00+00:00" and end.isoformat() == "2026-01-31T16:00:00+00:00"
    assert compute.percentile([5400, 10800, 169200], 50) == 10800
    assert compute.percentile([5400, 10800, 169200], 95) == 169200
    assert compute.percentile([], 50) is None
