// GB 32100-2015 统一社会信用代码 check character — the twin of fieldapp/rules/credit_code.py;
// both must behave identically (tests/e2e/test_js_modules.py compares them).
//
// A failing code is a WARNING, never a reason to block saving: codes that fail the check exist on
// real business licences, and the officer records what the licence shows.

export const ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
export const WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const LENGTH = 18;
// Removed before checking: space, tab, CR, LF, no-break space, ideographic space.
const SPACES = " \t\r\n\u00a0\u3000";

// Full-width ASCII → half-width, drop SPACES, upper-case a–z only.
export function normaliseCreditCode(code) {
  if (code === null || code === undefined) return "";
  let out = "";
  for (let ch of String(code)) {
    const cp = ch.codePointAt(0);
    if (cp >= 0xff01 && cp <= 0xff5e) ch = String.fromCodePoint(cp - 0xfee0);
    if (SPACES.includes(ch)) continue;
    if (ch >= "a" && ch <= "z") ch = ch.toUpperCase();
    out += ch;
  }
  return out;
}

// The check character of a normalised 17-character body, or null if the body is malformed.
export function computeCheck(body) {
  if (typeof body !== "string" || body.length !== LENGTH - 1) return null;
  let total = 0;
  for (let i = 0; i < body.length; i++) {
    const value = ALPHABET.indexOf(body[i]);
    if (value < 0) return null;
    total += value * WEIGHTS[i];
  }
  return ALPHABET[(31 - (total % 31)) % 31];
}

// {status: "valid" | "bad_check" | "bad_format" | "empty", expectedCheck: string|null, normalised}
// Anything but "valid" should be shown as a warning; saving must still be allowed.
export function checkCreditCode(code) {
  const normalised = normaliseCreditCode(code);
  if (!normalised) return { status: "empty", expectedCheck: null, normalised };
  if (normalised.length !== LENGTH) return { status: "bad_format", expectedCheck: null, normalised };
  const expectedCheck = computeCheck(normalised.slice(0, LENGTH - 1));
  if (expectedCheck === null || !ALPHABET.includes(normalised[LENGTH - 1])) {
    return { status: "bad_format", expectedCheck: null, normalised };
  }
  return { status: normalised[LENGTH - 1] === expectedCheck ? "valid" : "bad_check", expectedCheck, normalised };
}
