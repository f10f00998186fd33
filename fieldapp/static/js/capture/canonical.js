// Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) of what the phone signs. The server
// rebuilds the same bytes (fieldapp/sync/signing.py) and checks the signature, so both sides must
// agree byte for byte.
//
// Signed values never hold floating-point numbers (coordinates are integer micro-degrees), so the
// hard part of JCS, number formatting, is refused rather than implemented. What remains: keys
// sorted by UTF-16 code units, no whitespace, strings as JSON.stringify writes them, safe integers
// as plain decimals. What JSON.stringify would silently drop or transform (undefined, functions,
// symbols, array holes, Dates, Maps, NaN) throws a TypeError here instead: a signature over
// something other than what the record holds would be worse than no signature.

// Same limit as the server: deeper nesting (or a cycle) is refused, never signed.
export const MAX_DEPTH = 100;

function isWellFormed(text) {
  if (typeof text.isWellFormed === "function") return text.isWellFormed();
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
      return false;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return false;
  }
  return true;
}

function where(path) {
  return "$" + path.map((p) => (typeof p === "number" ? `[${p}]` : `[${JSON.stringify(p)}]`)).join("");
}

function quote(text, path) {
  // A lone surrogate is not Unicode text: I-JSON (which RFC 8785 requires) forbids it, and
  // TextEncoder would quietly turn it into U+FFFD.
  if (!isWellFormed(text)) throw new TypeError(`string with a lone surrogate at ${where(path)}`);
  // For a well-formed string, JSON.stringify is the JCS string serialisation by definition.
  return JSON.stringify(text);
}

function emit(value, out, path, depth) {
  if (value === null) { out.push("null"); return; }
  switch (typeof value) {
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "string":
      out.push(quote(value, path));
      return;
    case "number":
      if (!Number.isFinite(value) || !Number.isInteger(value)) {
        throw new TypeError(`not an integer: ${value} at ${where(path)}`);
      }
      if (!Number.isSafeInteger(value)) {
        throw new TypeError(`integer outside the safe range: ${value} at ${where(path)}`);
      }
      out.push(String(value)); // -0 gives "0", as RFC 8785 wants
      return;
    case "object":
      break;
    default: // undefined, function, symbol, bigint
      throw new TypeError(`${typeof value} is not a JSON value at ${where(path)}`);
  }
  if (depth >= MAX_DEPTH) throw new TypeError(`nested deeper than ${MAX_DEPTH} levels at ${where(path)}`);
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i) out.push(",");
      if (!(i in value)) throw new TypeError(`hole in array at ${where([...path, i])}`);
      emit(value[i], out, [...path, i], depth + 1);
    }
    out.push("]");
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = value?.constructor?.name || "object";
    throw new TypeError(`${name} is not a plain object at ${where(path)}`);
  }
  if (Object.getOwnPropertySymbols(value).length) {
    throw new TypeError(`object with symbol keys at ${where(path)}`);
  }
  // Array.prototype.sort without a comparator orders strings by UTF-16 code units, as RFC 8785
  // 3.2.3 asks (and it must be explicit: objects list integer-like keys first, numerically).
  const keys = Object.keys(value).sort();
  out.push("{");
  keys.forEach((key, i) => {
    if (i) out.push(",");
    out.push(quote(key, [...path, key]), ":");
    emit(value[key], out, [...path, key], depth + 1);
  });
  out.push("}");
}

// The RFC 8785 canonical JSON text of value. Throws TypeError for what we never sign: non-integer,
// non-finite or unsafe numbers, undefined, functions, symbols, bigints, array holes, objects that
// are not plain (Date, Map, Blob …), strings with lone surrogates, nesting deeper than MAX_DEPTH.
export function canonicalize(value) {
  const out = [];
  emit(value, out, [], 0);
  return out.join("");
}

// The canonical text as UTF-8 bytes: what is signed.
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalize(value));
}
