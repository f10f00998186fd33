"""Citations are stored in one checkable form and shown in the reader's language: Chinese screens
say 第十九条 and 行政处罚法第五十五条, English ones keep "art. 19"."""
from __future__ import annotations

import re

import pytest

from fieldapp.rules.catalogue import format_citation, format_citations_in, load_builtin, number_zh


@pytest.mark.parametrize("n, zh", [(1, "一"), (9, "九"), (10, "十"), (19, "十九"), (20, "二十"), (55, "五十五"),
                                   (100, "一百"), (101, "一百零一"), (110, "一百一十"), (130, "一百三十")])
def test_numbers(n, zh):
    assert number_zh(n) == zh


@pytest.mark.parametrize("stored, zh", [
    ("art. 19", "第十九条"),
    ("行政处罚法 art. 55", "行政处罚法第五十五条"),
    ("arts. 23–24", "第二十三条至第二十四条"),
    ("arts. 12, 19", "第十二条、第十九条"),
    ("arts. 12, 19, 22, 24", "第十二条、第十九条、第二十二条、第二十四条"),
    ("行政处罚法 art. 42, 55; 行政强制法 art. 18; 行政许可法 art. 34",
     "行政处罚法第四十二条、第五十五条；行政强制法第十八条；行政许可法第三十四条"),
    ("民事诉讼法 art. 89; 民诉解释 art. 130", "民事诉讼法第八十九条；民诉解释第一百三十条"),
    ("行政处罚法 art. 55; 行政强制法 art. 18(三)", "行政处罚法第五十五条；行政强制法第十八条第三项"),
])
def test_chinese_and_english(stored, zh):
    assert format_citation(stored, zh=True) == zh
    assert format_citation(stored, zh=False) == stored


def test_citations_inside_a_sentence():
    assert format_citations_in("依据 art. 19", zh=True) == "依据第十九条"
    assert format_citations_in("须全程记录（行政处罚法 art. 55）", zh=True) == "须全程记录（行政处罚法第五十五条）"
    assert format_citations_in("required by art. 19", zh=False) == "required by art. 19"


def test_every_citation_of_the_catalogue_reads_in_chinese():
    for citation in load_builtin().citations():
        shown = format_citation(citation, zh=True)
        assert not re.search(r"[A-Za-z]", shown), (citation, shown)
