"""Verifying what the phone signed: canonical JSON, device public keys and ECDSA P-256 signatures.

Every record revision is signed on the phone, with a non-extractable WebCrypto ECDSA P-256 key, over
its canonical JSON form (RFC 8785, the JSON Canonicalization Scheme). The server rebuilds the same
bytes from the revision it received and checks the signature, so both sides must produce exactly the
same bytes for the same value. The JavaScript twin is ``static/js/capture/canonical.js``.

Signed payloads never contain floating-point numbers (coordinates are integer micro-degrees), so the
only part of RFC 8785 that is hard to get right everywhere — ECMAScript's number formatting — is
ruled out instead of implemented: a float anywhere, even ``1.0``, is refused. What remains is small:
keys sorted by UTF-16 code units, no whitespace, strings escaped the way ECMAScript
``JSON.stringify`` escapes them, and integers within JavaScript's safe range as plain decimals.
That is why this module implements JCS itself instead of depending on a package whose main work is
the float formatting we forbid.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "MAX_DEPTH", "MAX_SAFE_INTEGER", "P256_SIGNATURE_LENGTH",
    "BadPublicKey", "BadSignature", "NotCanonicalizable",
    "b64url_decode", "b64url_encode", "canonical_bytes", "contains_float", "load_public_key",
    "raw_to_der", "verify",
]

#: Largest integer a JavaScript number holds exactly (Number.MAX_SAFE_INTEGER). Anything beyond it
#: would be rounded on the phone, so the two sides would sign different numbers.
MAX_SAFE_INTEGER = 2**53 - 1

#: Deepest nesting of objects and arrays accepted. Record payloads are a few levels deep; the limit
#: turns hostile input (or a cycle) into NotCanonicalizable instead of a RecursionError, and
#: canonical.js enforces the same limit so the phone never signs what the server cannot check.
MAX_DEPTH = 100

#: WebCrypto returns an ECDSA P-256 signature as r‖s, each 32 bytes big-endian (IEEE P1363).
P256_SIGNATURE_LENGTH = 64


class NotCanonicalizable(ValueError):
    """The value holds something outside the JSON subset we sign (a float, a non-string key, …).

    ``path`` locates the offending part, e.g. ``('payload', 'place', 0)``.
    """

    def __init__(self, reason: str, path: tuple[str | int, ...] = ()) -> None:
        self.reason = reason
        self.path = path
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f"[{p!r}]" for p in path)
        super().__init__(f"{reason} at {where}")


class BadPublicKey(ValueError):
    """The bytes are not an SPKI-encoded ECDSA P-256 public key in canonical DER."""


class BadSignature(ValueError):
    """The signature is not a raw r‖s ECDSA P-256 signature."""


# --- RFC 8785 canonical JSON ---------------------------------------------------------------------

# Exactly what ECMAScript JSON.stringify escapes in a well-formed string: the quote, the backslash
# and the C0 controls (short forms where JSON has them, else \u00xx in lower-case hex). Everything
# else, U+2028/U+2029 and U+007F included, is written as itself in UTF-8.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES.update({chr(c): f"\\u{c:04x}" for c in range(0x20) if chr(c) not in _ESCAPES})
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\]')
# A Python str holds code points, so any surrogate in it is a lone one: not Unicode text, not
# encodable as UTF-8, and forbidden by I-JSON (RFC 7493), which RFC 8785 requires.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _quote(text: str, path: tuple[str | int, ...]) -> str:
    if _SURROGATE.search(text):
        raise NotCanonicalizable("string contains a lone surrogate", path)
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text) + '"'


def _emit(value: Any, out: list[str], depth: int) -> None:
    # bool before int: bool is a subclass of int in Python.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_quote(value, ()))
    elif isinstance(value, float):
        # Even 1.0: JSON.parse on the phone cannot tell 1.0 from 1, so a float in a signed value
        # means someone did arithmetic we promised not to do.
        raise NotCanonicalizable(f"floating-point number {value!r} is not allowed")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise NotCanonicalizable(f"integer {value} is outside the JavaScript safe range")
        out.append(int.__repr__(value))  # the digits, also for int subclasses such as IntEnum
    elif isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise NotCanonicalizable(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            _emit_object(value, out, depth + 1)
        else:
            _emit_array(value, out, depth + 1)
    else:
        raise NotCanonicalizable(f"{type(value).__name__} is not a JSON value")


def _emit_object(value: dict, out: list[str], depth: int) -> None:
    members = []
    for key in value:
        if not isinstance(key, str):
            raise NotCanonicalizable(f"object key {key!r} is not a string")
        quoted = _quote(key, (key,))
        # RFC 8785 3.2.3: order by UTF-16 code units. Big-endian UTF-16 bytes compare the same way;
        # plain str comparison (code points) would put U+1F600 after U+FB33, which is wrong.
        members.append((key.encode("utf-16-be"), quoted, key))
    members.sort(key=lambda m: m[0])
    out.append("{")
    for i, (_, quoted, key) in enumerate(members):
        if i:
            out.append(",")
        out.append(quoted)
        out.append(":")
        try:
            _emit(value[key], out, depth)
        except NotCanonicalizable as exc:
            raise NotCanonicalizable(exc.reason, (key, *exc.path)) from None
    out.append("}")


def _emit_array(value: list, out: list[str], depth: int) -> None:
    out.append("[")
    for i, item in enumerate(value):
        if i:
            out.append(",")
        try:
            _emit(item, out, depth)
        except NotCanonicalizable as exc:
            raise NotCanonicalizable(exc.reason, (i, *exc.path)) from None
    out.append("]")


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of ``value`` (dict with str keys, list, str, int, bool, None).

    Raises NotCanonicalizable for floats (even ``1.0``, NaN, infinities), integers outside
    ±(2**53 - 1), non-string keys, strings with lone surrogates, nesting deeper than MAX_DEPTH and
    any other type (tuples, bytes, sets, Decimal, datetime …): a signed value must survive
    JSON.parse on the phone unchanged, and only plain JSON values do.
    """
    out: list[str] = []
    _emit(value, out, 0)
    return "".join(out).encode("utf-8")


def contains_float(value: Any) -> bool:
    """Whether a float is anywhere in ``value`` (in lists, tuples, dict values or dict keys).

    Lets a caller tell "this payload broke the no-floats rule" apart from other reasons a value is
    not canonicalizable. Iterative, so deep nesting cannot exhaust the stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


# --- keys and signatures -------------------------------------------------------------------------

def load_public_key(spki_der: bytes) -> ec.EllipticCurvePublicKey:
    """The ECDSA P-256 public key in ``spki_der`` (as WebCrypto's exportKey("spki") gives it).

    Anything else — another curve, RSA, Ed25519, a private key, garbage, trailing bytes, a
    compressed point — raises BadPublicKey. The encoding must be the canonical one (named curve,
    uncompressed point, the exact bytes re-encoding gives), so one device key has exactly one SPKI
    and the SPKI bytes can be stored and compared as the key's identity.
    """
    if not isinstance(spki_der, (bytes, bytearray, memoryview)):
        raise BadPublicKey(f"expected bytes, got {type(spki_der).__name__}")
    spki_der = bytes(spki_der)
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadPublicKey(f"not a DER SubjectPublicKeyInfo: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadPublicKey(f"not an elliptic-curve key: {type(key).__name__}")
    if not isinstance(key.curve, ec.SECP256R1):
        raise BadPublicKey(f"curve {key.curve.name} is not P-256")
    canonical = key.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    if canonical != spki_der:
        raise BadPublicKey("not the canonical SPKI encoding (named curve, uncompressed point)")
    return key


def raw_to_der(signature_raw: bytes) -> bytes:
    """Convert WebCrypto's raw r‖s ECDSA P-256 signature into the DER form cryptography verifies.

    Raises BadSignature unless it is exactly 64 bytes.
    """
    if not isinstance(signature_raw, (bytes, bytearray, memoryview)):
        raise BadSignature(f"expected bytes, got {type(signature_raw).__name__}")
    raw = bytes(signature_raw)
    if len(raw) != P256_SIGNATURE_LENGTH:
        raise BadSignature(f"a P-256 signature is {P256_SIGNATURE_LENGTH} bytes, not {len(raw)}")
    half = P256_SIGNATURE_LENGTH // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def verify(public_key: ec.EllipticCurvePublicKey, signature_raw: bytes, message: bytes) -> bool:
    """Whether ``signature_raw`` (r‖s) is a valid ECDSA P-256/SHA-256 signature of ``message``.

    False, never an exception, for a wrong or malformed signature: the caller's answer is the same
    ("not signed by this device") either way. A message that is not bytes is a programming error
    and raises TypeError. ECDSA signatures are malleable ((r, n - s) verifies too, and WebCrypto
    does not normalise s), so never use a signature's bytes as an identifier.
    """
    try:
        der = raw_to_der(signature_raw)
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, BadSignature):
        return False
    return True


# --- base64url -----------------------------------------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as the phone sends keys and signatures (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode base64url, with or without padding; raise ValueError on anything else.

    Strict on purpose: the standard decoder skips stray characters and accepts '+' and '/', and
    different strings decoding to the same bytes (non-zero trailing bits) are refused, so a key or
    signature has one spelling only.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("base64url text must be ASCII") from None
    if not isinstance(text, str):
        raise ValueError(f"expected str, got {type(text).__name__}")
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4):
        raise ValueError("not base64url: bad length or padding")
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    if b64url_encode(data) != body:
        raise ValueError("not canonical base64url (non-zero trailing bits)")
    return data
