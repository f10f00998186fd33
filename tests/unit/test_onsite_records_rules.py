"""The rules that make an on-site record (现场笔录, 询问笔录) the signed 笔录, each both ways: a record that
keeps it is not faulted, one that breaks it is faulted with its article."""
from __future__ import annotations

import copy

import pytest

from fieldapp.rules import onsite_records as rules

SIG_A, SIG_B, SIG_P, SIG_W = ("a" * 64), ("b" * 64), ("c" * 64), ("d" * 64)


def record(form: str = "scene", outcome: str = "signed") -> dict:
    payload = {
        "form": form, "started_at": "2026-03-04T01:00:00Z", "ended_at": "2026-03-04T01:40:00Z",
        "place": "临淄区桓公路 18 号", "subject": {"name": "齐鲁副食店", "id_no": "91370305MA3C5XKX1Q"},
        "officers": [{"name": "张伟", "cert_no": "37030001"}, {"name": "王强", "cert_no": "37030002"}],
        "recorder": "王强", "notice": {"credentials_shown": True, "recusal": "not_requested"},
    }
    if form == "inquiry":
        payload["qa"] = [{"q": "过期酸奶从哪里进货？", "a": "批发市场。"}]
    else:
        payload.update(content="店内货架上摆放过期酸奶 12 盒。", opinion="情况属实。")
    party = {"outcome": outcome, "signature": SIG_P if outcome == "signed" else None,
             "refused_reason": "当事人称不认可检查结果，拒绝签名" if outcome == "refused" else None}
    witness = ({"name": "刘敏", "org": "桓公路社区居委会", "signature": SIG_W} if outcome in ("refused", "absent")
               else None)
    payload["signing"] = {"party": party, "witness": witness,
                          "officers": [{"name": "张伟", "cert_no": "37030001", "signature": SIG_A},
                                       {"name": "王强", "cert_no": "37030002", "signature": SIG_B}]}
    payload["signing"]["content_sha256"] = rules.content_sha256(payload)
    return payload


def problems(payload: dict) -> set[str]:
    return {r.id for r in rules.assess(payload).problems}


@pytest.mark.parametrize("form,outcome", [("scene", "signed"), ("scene", "refused"), ("scene", "absent"),
                                          ("inquiry", "signed"), ("inquiry", "refused")])
def test_a_complete_record_is_the_signed_original(form, outcome):
    assessment = rules.assess(record(form, outcome))
    assert assessment.signed_original, [r.id for r in assessment.problems]
    assert assessment.outcome == outcome


def _resign(p):  # a change made before signing: the phone takes the hash over the changed text
    p["signing"]["content_sha256"] = rules.content_sha256(p)


def _text_changed(p):
    if "content" in p:
        p["content"] += "（补充）"
    else:
        p["qa"][0]["a"] += "（补充）"


def _confirmation_changed(p):
    p["signing"]["party"]["confirmation"] = "以上笔录我已看过，与我所说的不相符。"


def _witness_renamed(p):
    p["signing"]["witness"]["name"] = "另一人"


def _carried_over(p):  # the text changed and the hash recomputed, the old signature images kept
    _text_changed(p)
    _resign(p)


def _unlisted_second_signer(p):
    p["officers"] = p["officers"][:1]
    p["signing"]["officers"][1]["cert_no"] = "99999999"
    _resign(p)


def _malformed(p):
    p["form"] = ["scene"]


def _unknown_form(p):
    p["form"] = "statement"
    _resign(p)


def _no_content(p):
    if "content" in p:
        p["content"] = "  "
    else:
        p["qa"] = [{"q": "问题", "a": ""}]
    _resign(p)


def _no_recusal(p):
    p["notice"]["recusal"] = None
    _resign(p)


def _one_officer(p):
    p["officers"] = p["officers"][:1]
    p["signing"]["officers"] = p["signing"]["officers"][:1]
    _resign(p)


def _officer_unsigned(p):
    p["signing"]["officers"][1]["signature"] = None


def _third_officer_unsigned(p):
    p["officers"].append({"name": "赵磊", "cert_no": "37030003"})
    _resign(p)


def _no_credentials(p):
    p["notice"]["credentials_shown"] = False
    _resign(p)


def _no_party_signature(p):
    p["signing"]["party"]["signature"] = None


def _no_refusal_note(p):
    p["signing"]["party"]["refused_reason"] = "  "


def _witness_unsigned(p):
    p["signing"]["witness"]["signature"] = ""


def _no_outcome(p):
    p["signing"]["party"]["outcome"] = None


# rule id, article it names, the record it applies to (form, outcome), how the record breaks it
BROKEN = [
    ("content_unchanged", "行政强制法第十八条第（八）项", ("scene", "signed"), _text_changed),
    ("content_unchanged", "行政强制法第十八条第（八）项", ("inquiry", "signed"), _confirmation_changed),
    ("content_unchanged", "行政强制法第十八条第（八）项", ("scene", "refused"), _witness_renamed),
    ("two_officers", "行政处罚法第四十二条第一款", ("scene", "signed"), _unlisted_second_signer),
    ("well_formed", "行政处罚法第五十五条第二款", ("scene", "signed"), _malformed),
    ("well_formed", "行政处罚法第五十五条第二款", ("inquiry", "signed"), _unknown_form),
    ("content_recorded", "行政处罚法第五十五条第二款", ("scene", "signed"), _no_content),
    ("content_recorded", "行政处罚法第五十五条第二款", ("inquiry", "signed"), _no_content),
    ("recusal_recorded", "行政处罚法第四十三条第二款", ("scene", "signed"), _no_recusal),
    ("two_officers", "行政处罚法第四十二条第一款", ("scene", "signed"), _one_officer),
    ("two_officers", "行政处罚法第四十二条第一款", ("inquiry", "signed"), _officer_unsigned),
    ("every_officer", "行政强制法第十八条第（八）项", ("scene", "signed"), _third_officer_unsigned),
    ("credentials", "行政处罚法第五十五条第一款", ("inquiry", "signed"), _no_credentials),
    ("party_signed", "行政强制法第十八条第（八）项", ("scene", "signed"), _no_party_signature),
    ("refusal_noted", "行政强制法第十八条第（八）项", ("scene", "refused"), _no_refusal_note),
    ("absent_witnessed", "行政强制法第十八条第（九）项", ("scene", "absent"), _witness_unsigned),
    ("absent_only_at_scene", "行政处罚法第五十五条第二款", ("inquiry", "absent"), None),
    ("outcome_recorded", "行政强制法第十八条第（八）项", ("scene", "signed"), _no_outcome),
]


@pytest.mark.parametrize("rule_id,article,where,breaks", BROKEN, ids=[f"{b[0]}-{b[2][0]}" for b in BROKEN])
def test_each_rule_fires_when_broken_and_is_silent_when_kept(rule_id, article, where, breaks):
    form, outcome = where
    kept = record(form, outcome if outcome != "absent" or form == "scene" else "refused")
    assert rule_id not in problems(kept)
    broken = record(form, outcome)
    if breaks:
        breaks(broken)
    found = rules.assess(broken)
    assert rule_id in {r.id for r in found.problems}
    assert not found.signed_original
    (rule,) = [r for r in found.problems if r.id == rule_id]
    assert article in rule.article and rule.zh


def test_a_party_who_signed_needs_no_witness_and_a_witness_does_no_harm():
    p = record("scene", "signed")
    p["signing"]["witness"] = {"name": "刘敏", "signature": SIG_W}
    _resign(p)  # the witness was there when it was signed
    assert rules.assess(p).signed_original


def test_refusal_rules_do_not_apply_to_a_party_who_signed():
    p = record("inquiry", "signed")
    assert {"refusal_noted", "absent_witnessed"}.isdisjoint(problems(p))


@pytest.mark.parametrize("form", ["scene", "inquiry"])
def test_a_refusal_noted_on_the_record_needs_no_witness(form):
    """行政强制法第十八条第（八）项: the party's refusal is noted on the record, and that is all the law
    asks; a witness is needed when the party is absent (第（九）项), not when they refuse."""
    p = record(form, "refused")
    p["signing"]["witness"] = None
    _resign(p)
    assert rules.assess(p).signed_original, problems(p)
    p["signing"]["party"]["refused_reason"] = "  "
    _resign(p)
    assert problems(p) == {"refusal_noted"}


def test_the_images_and_a_withdrawal_are_outside_the_hash_the_words_signed_under_are_in():
    p = record()
    before = rules.content_sha256(p)
    q = copy.deepcopy(p)
    q["signing"]["party"]["signature"] = "e" * 64
    q["signing"]["officers"][0]["signature"] = None
    q.update(withdrawn=True, withdrawn_reason="重复录入")
    assert rules.content_sha256(q) == before
    q["signing"]["party"]["confirmation"] = "另一句话"
    assert rules.content_sha256(q) != before


def test_a_signature_counts_on_paper_only_when_its_image_is_held():
    p = record("scene", "signed")
    assert rules.assess(p, present={SIG_P, SIG_A, SIG_B}).signed_original
    missing = {r.id for r in rules.assess(p, present={SIG_A, SIG_B}).problems}
    assert missing == {"party_signed"}
    assert {"two_officers", "every_officer"} <= {r.id for r in rules.assess(p, present={SIG_P}).problems}


def test_a_signature_carried_over_from_an_earlier_revision_onto_other_text_is_caught():
    first = record("scene", "signed")
    later = copy.deepcopy(first)
    _carried_over(later)
    assert rules.assess(later).signed_original  # on its own it looks whole
    assert "content_unchanged" in {r.id for r in rules.assess(later, earlier=[first]).problems}
    withdrawn = copy.deepcopy(first)
    withdrawn.update(withdrawn=True, withdrawn_reason="重复")
    assert rules.assess(withdrawn, earlier=[first]).signed_original  # a withdrawal changes no signed text


def test_malformed_payloads_are_faulted_not_crashed():
    for payload in ({}, {"signing": "x"}, {"officers": "x", "signing": {"officers": [1, None]}},
                    {"form": "scene", "signing": {"party": {"outcome": "signed", "signature": 5}}},
                    {"form": ["scene"]}, {"form": "scene", "officers": [{"cert_no": ["x"]}], "qa": 3,
                                          "subject": "x", "notice": {"recusal": []}}, [1, 2]):
        assessment = rules.assess(payload) if isinstance(payload, dict) else rules.assess({"x": payload})
        assert not assessment.signed_original
        clean, repaired = rules.normalised(payload)
        assert isinstance(clean["officers"], list) and isinstance(clean["subject"], dict)


def test_every_rule_cites_an_article_and_names_a_known_fact():
    forms, all_rules = rules.builtin()
    assert set(forms) == {"scene", "inquiry"}
    assert {forms["scene"].title, forms["inquiry"].title} == {"现场笔录", "询问笔录"}
    for rule in all_rules:
        assert rule.article and ("法" in rule.article) and rule.needs in rules.FACTS
