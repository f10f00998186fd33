"""GB 11643-1999 居民身份证号码 (citizen identity number) check character.

18 characters: a 6-digit address code, an 8-digit birth date, a 3-digit sequence and a check
character (ISO 7064 MOD 11-2: the first 17 digits weighted 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, the
check is ``"10X98765432"[sum % 11]``).

As with credit codes, a failing number is a WARNING, never a reason to refuse a record: the officer
writes what the card shows. The JavaScript twin is ``fieldapp/static/js/capture/idcard.js``.
"""
from __future__ import annotations

from datetime import date
from typing import Literal

from .credit_code import CreditCodeResult, normalise

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECKS = "10X98765432"

Status = Literal["valid", "bad_check", "bad_date", "bad_format", "empty"]

_MESSAGES: dict[str, tuple[str, str]] = {
    "valid": ("身份证号码校验通过。", "The identity number passes the check."),
    "bad_check": ("身份证号码校验位不符（应为 {expected}），请核对证件；如证件上确为此号码，可照实记录。",
                  "The check character does not match (expected {expected}); compare with the card and "
                  "record the number as printed if it really reads so."),
    "bad_date": ("身份证号码中的出生日期不存在，请核对证件。", "The birth date inside the identity number does not exist."),
    "bad_format": ("居民身份证号码应为 18 位：17 位数字加一位数字或 X。",
                   "A citizen identity number has 18 characters: 17 digits and a digit or X."),
    "empty": ("未填写身份证号码。", "No identity number entered."),
}


# The same shape as a credit code's result: the screens show either the same way.
IdCardResult = CreditCodeResult


def compute_check(body: str) -> str:
    if len(body) != 17 or not body.isascii() or not body.isdigit():
        raise ValueError("body must be 17 digits")
    return CHECKS[sum(int(ch) * w for ch, w in zip(body, WEIGHTS, strict=True)) % 11]


def check_id_number(number: str | None) -> IdCardResult:
    """Check a 居民身份证 number (spaces removed, x upper-cased, full-width digits accepted)."""
    norm = normalise(number)
    if not norm:
        return _result("empty", norm, None)
    if len(norm) != 18 or not norm[:17].isascii() or not norm[:17].isdigit() or norm[17] not in "0123456789X":
        return _result("bad_format", norm, None)
    try:
        date(int(norm[6:10]), int(norm[10:12]), int(norm[12:14]))
    except ValueError:
        return _result("bad_date", norm, None)
    expected = compute_check(norm[:17])
    return _result("valid" if norm[17] == expected else "bad_check", norm, expected)


def _result(status: Status, norm: str, expected: str | None) -> IdCardResult:
    zh, en = _MESSAGES[status]
    return IdCardResult(status, norm, expected, zh.format(expected=expected), en.format(expected=expected))
