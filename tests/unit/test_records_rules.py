"""The rules of arts. 26 and 29 as data, each in both directions: a rule fires on its fact and stays
silent without it, and each row names its article."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldapp.rules import records_rules as rr

CAPTURED = datetime(2026, 8, 31, 9, 0, tzinfo=UTC)
RULES = rr.builtin()


@pytest.mark.parametrize("kind, purpose, approver, article", [
    ("own_unit", "case_handling", "lead", "第二十九条第一款"),
    ("own_unit", "case_review", "lead", "第二十九条第一款"),
    ("own_unit", "reconsideration_litigation", "lead", "第二十九条第一款"),
    ("own_unit", "supervision", "lead", "第二十九条第一款"),
    ("internal_office", "case_review", "division_head", "第二十九条第二款"),
    ("internal_office", "reconsideration_litigation", "division_head", "第二十九条第二款"),
    ("internal_office", "supervision", "division_head", "第二十九条第二款"),
    ("internal_office", "efficiency_complaint", "division_head", "第二十九条第二款"),
    ("internal_office", "petition_check", "division_head", "第二十九条第二款"),
    ("other_enforcement", "case_handling", "division_head", "第二十九条第一款、第二款（从严）"),
    ("other_enforcement", "case_review", "division_head", "第二十九条第一款、第二款（从严）"),
    ("other_enforcement", "reconsideration_litigation", "division_head", "第二十九条第一款、第二款（从严）"),
    ("other_enforcement", "supervision", "division_head", "第二十九条第一款、第二款（从严）"),
    ("outside_body", "enforcement_handover", "bureau_head", "第二十九条第三款"),
    ("outside_body", "reconsideration_litigation", "bureau_head", "第二十九条第三款"),
])
def test_each_requester_kind_and_purpose_names_its_approver(kind, purpose, approver, article):
    decided = rr.approval(kind, purpose)
    assert (decided.approver, decided.article) == (approver, article)


@pytest.mark.parametrize("kind, purpose", [
    ("internal_office", "case_handling"),      # para. 2 lists the offices' purposes; handling a case is not one
    ("internal_office", "enforcement_handover"),
    ("outside_body", "case_review"),           # para. 3: a body outside asks for hand-over work
    ("own_unit", "enforcement_handover"),
])
def test_a_purpose_outside_the_paragraph_is_refused(kind, purpose):
    with pytest.raises(rr.RequestRefused, match="不能以"):
        rr.approval(kind, purpose)


def test_other_needs_words_and_the_other_unit_approver_is_configurable():
    with pytest.raises(rr.RequestRefused, match="请说明事由"):
        rr.approval("own_unit", "other")
    assert rr.approval("own_unit", "other", "复核").approver == "lead"
    assert rr.approval("other_enforcement", "case_handling", other_unit_approver="lead").approver == "lead"
    assert rr.approval("internal_office", "case_review", other_unit_approver="lead").approver == "division_head"
    with pytest.raises(rr.RecordsRulesError):
        rr.approval("other_enforcement", "case_handling", other_unit_approver="bureau_head")


@pytest.mark.parametrize("outside, requester_unit, unit_kind, expected", [
    (True, None, None, "outside_body"),
    (False, "A", None, "own_unit"),
    (False, "A", "policy", "own_unit"),  # the policy section's own records are its own
    (False, "B", "policy", "internal_office"),
    (False, "B", "office", "internal_office"),
    (False, "B", "discipline", "internal_office"),
    (False, "B", "leadership", "internal_office"),
    (False, "B", None, "other_enforcement"),
])
def test_requester_kind_follows_from_who_asks_and_whose_records(outside, requester_unit, unit_kind, expected):
    assert rr.requester_kind(outside=outside, requester_unit_id=requester_unit, requester_unit_kind=unit_kind,
                             collecting_unit_id="A") == expected


PERMANENT_FACTS = [  # (fact, rule, article)
    ("case_decided", "evidence", "第二十六条第（一）项"),
    ("evidence_use", "evidence", "第二十六条第（一）项"),
    ("case_flag:obstruction", "obstruction", "第二十六条第（二）项"),
    ("interruption:obstruction", "obstruction", "第二十六条第（二）项"),
    ("segment:obstruction", "obstruction", "第二十六条第（二）项"),
    ("case_flag:emergency", "major_emergency", "第二十六条第（三）项"),
    ("case_mark:major_emergency", "major_emergency", "第二十六条第（三）项"),
    ("case_flag:serious", "major_complex", "第二十六条第（四）项"),
    ("case_mark:major_complex", "major_complex", "第二十六条第（四）项"),
    ("segment:important", "station_important", "第二十六条第（四）项（采集站重要文件标记）"),
]


@pytest.mark.parametrize("fact, rule, article", PERMANENT_FACTS)
def test_each_permanent_rule_fires_on_its_fact(fact, rule, article):
    decided = rr.retention(CAPTURED, {fact})
    assert decided.klass == rr.PERMANENT and decided.keep_until is None
    assert (rule, article, fact) in {(r.rule, r.article, r.fact) for r in decided.reasons}
    assert not decided.due(datetime(2100, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("fact", ["case_flag:life_health", "case_flag:major_property", "segment:case",
                                  "interruption:battery", "case_mark:unknown", ""])
def test_facts_that_are_no_permanent_rule_keep_six_months_from_capture(fact):
    decided = rr.retention(CAPTURED, {fact} if fact else set())
    assert decided.klass == rr.SIX_MONTHS
    assert decided.keep_until == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)  # 31 Aug + 6 months: end of February
    assert [r.article for r in decided.reasons] == ["第二十六条（原则上不少于6个月）"]
    assert not decided.due(datetime(2027, 2, 28, 8, 59, tzinfo=UTC))
    assert decided.due(datetime(2027, 2, 28, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize("hold", ["case", "legal"])
def test_a_hold_keeps_what_would_be_due_and_a_permanent_rule_outranks_it(hold):
    held = rr.retention(CAPTURED, set(), {hold})
    assert held.klass == rr.HELD and held.keep_until is None
    assert not held.due(datetime(2100, 1, 1, tzinfo=UTC))
    both = rr.retention(CAPTURED, {"case_decided"}, {hold})
    assert both.klass == rr.PERMANENT  # the longest wins
    assert {r.rule for r in both.reasons} >= {"evidence", f"hold:{hold}", "minimum"}


def test_every_rule_cites_article_26_and_every_purpose_has_both_languages():
    assert all(rule.article.startswith("第二十六条") for rule in RULES.permanent)
    assert all(p.label_zh and p.label_en for p in RULES.purposes.values())
    assert {k.approver for k in RULES.requester_kinds.values()} == {"lead", "division_head", "bureau_head"}
