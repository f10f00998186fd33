// GB 11643-1999 居民身份证号码 check character — the twin of fieldapp/rules/id_card.py; both must
// behave identically (tests/e2e/test_js_modules.py compares them).
//
// 18 characters: a 6-digit address code, an 8-digit birth date, a 3-digit sequence and a check
// character (ISO 7064 MOD 11-2). A failing number is a WARNING, never a reason to block saving: the
// officer records what the card shows.

import { normaliseCreditCode } from "./creditcode.js";

export const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
export const CHECKS = "10X98765432";
const LENGTH = 18;
const DIGITS = /^[0-9]+$/;

// Full-width ASCII → half-width, spaces dropped, x upper-cased: the same as for credit codes.
export const normaliseIdNumber = normaliseCreditCode;

// The check character of a 17-digit body, or null if the body is not 17 ASCII digits.
export function computeIdCheck(body) {
  if (typeof body !== "string" || body.length !== LENGTH - 1 || !DIGITS.test(body)) return null;
  let total = 0;
  for (let i = 0; i < body.length; i++) total += Number(body[i]) * WEIGHTS[i];
  return CHECKS[total % 11];
}

// A calendar date that exists (proleptic Gregorian, years 1–9999, as Python's datetime.date).
function dateExists(year, month, day) {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day <= days;
}

// {status: "valid" | "bad_check" | "bad_date" | "bad_format" | "empty", expectedCheck, normalised}
// Anything but "valid" (or "empty") is shown as a warning; saving is still allowed.
export function checkIdNumber(number) {
  const normalised = normaliseIdNumber(number);
  if (!normalised) return { status: "empty", expectedCheck: null, normalised };
  const body = normalised.slice(0, LENGTH - 1);
  if (normalised.length !== LENGTH || !DIGITS.test(body) || !"0123456789X".includes(normalised[LENGTH - 1])) {
    return { status: "bad_format", expectedCheck: null, normalised };
  }
  if (!dateExists(Number(body.slice(6, 10)), Number(body.slice(10, 12)), Number(body.slice(12, 14)))) {
    return { status: "bad_date", expectedCheck: null, normalised };
  }
  const expectedCheck = computeIdCheck(body);
  return { status: normalised[LENGTH - 1] === expectedCheck ? "valid" : "bad_check", expectedCheck, normalised };
}
