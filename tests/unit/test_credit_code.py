"""GB 32100-2015 统一社会信用代码 check character (fieldapp.rules.credit_code)."""
from __future__ import annotations

import pytest

from fieldapp.rules.credit_code import ALPHABET, WEIGHTS, CreditCodeResult, check_credit_code, compute_check

# Bodies of 17 characters; their check characters are computed below by an independent
# re-statement of the standard (weights 3**i mod 31), not by the module under test.
BODIES = [
    "91370303MA3C5XJ90",
    "91370303160000000",
    "12370300004948373",
    "52370303MJE000000",
    "93370303MA00000HY",
    "Y1000000000000000",
    "00000000000000000",
]


def reference_check(body: str) -> str:
    values = [ALPHABET.index(ch) for ch in body]
    total = sum(v * pow(3, i, 31) for i, v in enumerate(values))
    return ALPHABET[-total % 31]


def test_weights_and_alphabet_are_the_standards():
    assert WEIGHTS == tuple(pow(3, i, 31) for i in range(17))
    assert len(ALPHABET) == 31
    assert not set("IOZSV") & set(ALPHABET)


@pytest.mark.parametrize("body", BODIES)
def test_constructed_codes_are_valid(body):
    code = body + reference_check(body)
    result = check_credit_code(code)
    assert isinstance(result, CreditCodeResult)
    assert result.status == "valid"
    assert result.ok
    assert result.expected_check == code[-1]
    assert result.normalised == code
    assert "校验通过" in result.message_zh and "passes" in result.message_en


def test_check_31_becomes_0():
    # A body whose weighted sum is a multiple of 31 has check character "0", never index 31.
    assert compute_check("00000000000000000") == "0"
    assert check_credit_code("000000000000000000").status == "valid"


@pytest.mark.parametrize("code", ["91110000600001760P", "91440300708461136T"])
def test_published_style_examples_confirmed_by_the_algorithm(code):
    assert reference_check(code[:17]) == code[17]
    assert check_credit_code(code).status == "valid"


@pytest.mark.parametrize("body", BODIES)
def test_every_other_check_character_is_bad_check(body):
    right = reference_check(body)
    for wrong in ALPHABET.replace(right, ""):
        result = check_credit_code(body + wrong)
        assert result.status == "bad_check"
        assert result.expected_check == right
        assert not result.ok
        assert right in result.message_zh and right in result.message_en


def test_a_single_typo_in_the_body_is_caught():
    code = BODIES[0] + reference_check(BODIES[0])
    typo = code[:5] + ("4" if code[5] != "4" else "5") + code[6:]
    assert check_credit_code(typo).status == "bad_check"


def test_a_code_failing_the_check_is_reported_not_raised():
    # A warning only: the caller still gets a result and the expected character.
    result = check_credit_code("91370303MA3C5XJ90Q")
    assert result.status == "bad_check"
    assert result.expected_check == reference_check("91370303MA3C5XJ90")


@pytest.mark.parametrize("code", [
    "91370303MA3C5XJ9",        # 16
    "91370303MA3C5XJ90QQ",     # 19
    "9",
    "91370303MA3C5XJ9OQ",      # letter O
    "91370303MA3C5XJ9IQ",      # letter I
    "91370303MA3C5XJ9ZQ",      # Z
    "91370303MA3C5XJ9SQ",      # S
    "91370303MA3C5XJ90V",      # V as the check character
    "91370303-MA3C5XJ9Q",      # punctuation
    "91370303МA3C5XJ90Q",      # Cyrillic М
])
def test_bad_format(code):
    result = check_credit_code(code)
    assert result.status == "bad_format"
    assert result.expected_check is None
    assert "18" in result.message_zh and "18" in result.message_en


@pytest.mark.parametrize("code", ["", "   ", None, "\u3000", "\t\n"])
def test_empty(code):
    result = check_credit_code(code)
    assert result.status == "empty"
    assert result.expected_check is None
    assert result.normalised == ""


def test_lowercase_and_spaces_are_normalised():
    code = BODIES[0] + reference_check(BODIES[0])
    messy = " " + code[:6].lower() + " " + code[6:12].lower() + "\u3000" + code[12:].lower() + "\t"
    result = check_credit_code(messy)
    assert result.status == "valid"
    assert result.normalised == code


def test_full_width_input_is_normalised():
    code = BODIES[0] + reference_check(BODIES[0])
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)
    assert check_credit_code(full_width).status == "valid"
    assert check_credit_code(full_width).normalised == code


def test_compute_check_rejects_malformed_bodies():
    with pytest.raises(ValueError):
        compute_check("123")
    with pytest.raises(ValueError):
        compute_check("I" * 17)
