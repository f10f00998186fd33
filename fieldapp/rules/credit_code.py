"""GB 32100-2015 统一社会信用代码 (unified social credit code) check character.

A code has 18 characters from the alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (31 characters:
no I, O, Z, S or V). Characters 1–17 are weighted with ``3**(i-1) mod 31`` and the 18th is the
check character: ``31 - (sum mod 31)``, where 31 becomes 0.

The result is a WARNING, never a reason to refuse a record: codes that fail the check exist on real
business licences (issued before the check was enforced, or mis-printed), and the officer records
what the licence shows. The JavaScript twin is ``fieldapp/static/js/capture/creditcode.js``; both
must behave identically (tests/e2e/test_js_modules.py compares them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}

Status = Literal["valid", "bad_check", "bad_format", "empty"]

_MESSAGES: dict[str, tuple[str, str]] = {
    "valid": ("统一社会信用代码校验通过。", "The unified social credit code passes the check."),
    "bad_check": ("统一社会信用代码校验位不符（应为 {expected}），请核对营业执照；如执照上确为此代码，可照实记录。",
                  "The check character does not match (expected {expected}); compare with the licence "
                  "and record the code as printed if it really reads so."),
    "bad_format": ("统一社会信用代码应为 18 位数字或大写字母（不含 I、O、Z、S、V）。",
                   "A unified social credit code has 18 digits or capital letters (no I, O, Z, S, V)."),
    "empty": ("未填写统一社会信用代码。", "No unified social credit code entered."),
}


@dataclass(frozen=True)
class CreditCodeResult:
    """Outcome of :func:`check_credit_code` (and of ``id_card.check_id_number``, whose statuses
    add ``bad_date``). Any status but ``valid`` is a warning only."""

    status: str  # Status here; id_card.Status there
    normalised: str
    expected_check: str | None
    message_zh: str
    message_en: str

    @property
    def ok(self) -> bool:
        return self.status == "valid"


# Whitespace removed before checking: ASCII space, tab, CR, LF, no-break space, ideographic space.
_SPACES = " \t\r\n\u00a0\u3000"


def normalise(code: str | None) -> str:
    """Map full-width ASCII (as typed with a Chinese IME: "９１Ａ") to half-width, remove spaces
    (see ``_SPACES``) and upper-case a–z. Exactly what ``creditcode.js`` does."""
    if not code:
        return ""
    out = []
    for ch in str(code):
        cp = ord(ch)
        if 0xFF01 <= cp <= 0xFF5E:
            ch = chr(cp - 0xFEE0)
        if ch in _SPACES:
            continue
        if "a" <= ch <= "z":
            ch = ch.upper()
        out.append(ch)
    return "".join(out)


def compute_check(body: str) -> str:
    """The check character for a 17-character body (already normalised). Raises ValueError on a
    wrong length or a character outside the alphabet."""
    if len(body) != LENGTH - 1 or any(ch not in _VALUE for ch in body):
        raise ValueError("body must be 17 characters from the GB 32100 alphabet")
    total = sum(_VALUE[ch] * w for ch, w in zip(body, WEIGHTS, strict=False))
    return ALPHABET[(31 - total % 31) % 31]


def check_credit_code(code: str | None) -> CreditCodeResult:
    """Check a 统一社会信用代码 against GB 32100-2015.

    Spaces are stripped and letters upper-cased first. ``status`` is ``valid``, ``bad_check`` (the
    18th character differs from ``expected_check``), ``bad_format`` (not 18 characters from the
    alphabet) or ``empty``. A failing code must WARN the officer, never block saving: real codes
    that fail the check exist.
    """
    norm = normalise(code)
    if not norm:
        return _result("empty", norm, None)
    if len(norm) != LENGTH or any(ch not in _VALUE for ch in norm):
        return _result("bad_format", norm, None)
    expected = compute_check(norm[:-1])
    return _result("valid" if norm[-1] == expected else "bad_check", norm, expected)


def _result(status: Status, norm: str, expected: str | None) -> CreditCodeResult:
    zh, en = _MESSAGES[status]
    return CreditCodeResult(status, norm, expected, zh.format(expected=expected), en.format(expected=expected))
