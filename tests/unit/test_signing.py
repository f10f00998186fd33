"""Server side of signed sync: RFC 8785 canonical JSON (no floats), P-256 device keys, and ECDSA
signatures in WebCrypto's raw r‖s form."""
from __future__ import annotations

import decimal
import enum
import json
import math

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fieldapp.sync.signing import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    BadPublicKey,
    BadSignature,
    NotCanonicalizable,
    b64url_decode,
    b64url_encode,
    canonical_bytes,
    contains_float,
    load_public_key,
    raw_to_der,
    verify,
)

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- canonical JSON ------------------------------------------------------------------------------

def test_rfc8785_sorting_example_by_utf16_code_units():
    # RFC 8785 §3.2.3. The RFC writes the emoji as "\ud83d\ude00" (JSON escapes); in Python source
    # that would be two lone surrogates, so it is U+1F600 here. By UTF-16 code units it sorts
    # *before* U+FB33 (0xD83D < 0xFB33), although its code point is larger.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001F600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = bytes.fromhex("""
        7b 22 5c 72 22 3a 22 43 61 72 72 69 61 67 65 20 52 65 74 75 72 6e 22 2c 22 31 22 3a
        22 4f 6e 65 22 2c 22 c2 80 22 3a 22 43 6f 6e 74 72 6f 6c 22 2c 22 c3 b6 22 3a 22 4c
        61 74 69 6e 20 53 6d 61 6c 6c 20 4c 65 74 74 65 72 20 4f 20 57 69 74 68 20 44 69 61
        65 72 65 73 69 73 22 2c 22 e2 82 ac 22 3a 22 45 75 72 6f 20 53 69 67 6e 22 2c 22 f0
        9f 98 80 22 3a 22 45 6d 6f 6a 69 3a 20 47 72 69 6e 6e 69 6e 67 20 46 61 63 65 22 2c
        22 ef ac b3 22 3a 22 48 65 62 72 65 77 20 4c 65 74 74 65 72 20 44 61 6c 65 74 20 57
        69 74 68 20 44 61 67 65 73 68 22 7d""")  # the RFC's listing of the UTF-8 result
    got = canonical_bytes(value)
    assert got == expected
    assert got.decode() == (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001F600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    # The same input as the RFC writes it, through a JSON parser (which joins the surrogate pair).
    parsed = json.loads('{"\\u20ac":"Euro Sign","\\r":"Carriage Return",'
                        '"\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",'
                        '"\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",'
                        '"\\u00f6":"Latin Small Letter O With Diaeresis"}')
    assert canonical_bytes(parsed) == expected


def test_rfc8785_string_and_literals_example():
    # RFC 8785 §3.2.2 without its "numbers" member (floats are refused by design).
    source = r'''{
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }'''
    assert canonical_bytes(json.loads(source)) == (
        '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()


@pytest.mark.parametrize(("text", "expected"), [
    ('"', r'"\""'),
    ("\\", r'"\\"'),
    ("/", '"/"'),
    ("\b\f\n\r\t", r'"\b\f\n\r\t"'),
    ("\x00\x01\x1f", r'"\u0000\u0001\u001f"'),
    ("\x7f", '"\x7f"'),
    ("\u2028\u2029", '"\u2028\u2029"'),  # JSON.stringify keeps them as they are
    ("\ufeff\uffff", '"\ufeff\uffff"'),
    ("临淄区市场监督管理局", '"临淄区市场监督管理局"'),
    ("\U0001F600\U0010FFFF", '"\U0001F600\U0010FFFF"'),
    ("", '""'),
])
def test_string_escapes_match_json_stringify(text, expected):
    assert canonical_bytes(text) == expected.encode("utf-8")


def test_chinese_is_utf8_not_escaped():
    got = canonical_bytes({"地点": "临淄区 齐都镇"})
    assert got == '{"地点":"临淄区 齐都镇"}'.encode()
    assert b"\\u" not in got


def test_nesting_literals_and_integers():
    value = {"b": [1, -2, 0, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, [], {}],
             "a": {"z": None, "y": True, "x": False}, "10": 1, "2": 2, "1": 3, "": 4, "A": 5, "a1": 6}
    assert canonical_bytes(value) == (
        b'{"":4,"1":3,"10":1,"2":2,"A":5,"a":{"x":false,"y":true,"z":null},"a1":6,'
        b'"b":[1,-2,0,9007199254740991,-9007199254740991,[],{}]}'
    )
    assert canonical_bytes(None) == b"null"
    assert canonical_bytes(True) == b"true"
    assert canonical_bytes(0) == b"0"


def test_int_subclasses_are_written_as_digits():
    class Level(enum.IntEnum):
        HIGH = 3

    assert canonical_bytes({"level": Level.HIGH}) == b'{"level":3}'


def test_canonical_form_is_stable_under_json_round_trip():
    value = {"payload": {"lat_e6": 36825139, "lon_e6": 118304236, "note": "现场\n\"检查\"",
                         "officers": [{"cert_no": "37030319001", "name": "张三"}]},
             "revision": 2, "parent": 1, "media": []}
    once = canonical_bytes(value)
    assert canonical_bytes(json.loads(once)) == once


@pytest.mark.parametrize("value", [
    1.0, 1.5, -0.0, math.nan, math.inf, -math.inf, {"a": [1, 2.0]},
    2**53, -(2**53), 10**30, {"n": MAX_SAFE_INTEGER + 1},
    {1: "x"}, {None: "x"}, {True: "x"}, {(1, 2): "x"},
    b"bytes", bytearray(b"x"), {1, 2}, frozenset(), (1, 2), decimal.Decimal("1"), object(),
    "\ud800", "a\udc00b", {"\ud83d": 1}, ["\ud83d\ude00"],  # lone surrogates (the last: two of them)
])
def test_rejections(value):
    with pytest.raises(NotCanonicalizable):
        canonical_bytes(value)


def test_rejection_is_a_value_error_that_says_where():
    with pytest.raises(ValueError) as info:
        canonical_bytes({"payload": {"place": [36825139, 118.3]}})
    assert isinstance(info.value, NotCanonicalizable)
    assert info.value.path == ("payload", "place", 1)
    assert "118.3" in str(info.value) and "['payload']['place'][1]" in str(info.value)


def test_nesting_limit_and_cycles():
    deep: list = []
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    assert canonical_bytes(deep) == b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    with pytest.raises(NotCanonicalizable, match="deeper"):
        canonical_bytes([deep])
    cycle: dict = {}
    cycle["self"] = cycle
    with pytest.raises(NotCanonicalizable):
        canonical_bytes(cycle)


def test_contains_float():
    assert contains_float(1.0)
    assert contains_float({"a": [1, {"b": math.nan}]})
    assert contains_float({1.5: "key"})
    assert contains_float([(1, 2.5)])
    assert not contains_float({"a": [1, True, None, "1.5", {"b": -3}]})
    assert not contains_float(True)
    deep: list = [0.5]
    for _ in range(10_000):
        deep = [deep]
    assert contains_float(deep)  # iterative: no RecursionError


# --- base64url -----------------------------------------------------------------------------------

def test_b64url_round_trip_and_padding_tolerance():
    for n in range(0, 70):
        data = bytes(range(256))[n:n * 3] + bytes([0xFB, 0xFF, 0xBF])[: n % 4]
        text = b64url_encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url_decode(text) == data
        assert b64url_decode(text + "=" * (-len(text) % 4)) == data
    assert b64url_decode("-_8") == b"\xfb\xff"
    assert b64url_decode(b"-_8") == b"\xfb\xff"


@pytest.mark.parametrize("text", [
    "+/8", "ab cd", "ab\ncd", "a", "abcde", "QQ=", "QQ===", "=", "==", "QR", "QQ=A", "Zm9v!", "é", 5,
])
def test_b64url_decode_rejects_garbage(text):
    with pytest.raises(ValueError):
        b64url_decode(text)


# --- keys and signatures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def p256():
    return ec.generate_private_key(ec.SECP256R1())


def webcrypto_sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """Sign as WebCrypto does: raw r‖s, 32 bytes each, instead of DER."""
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_load_public_key_accepts_p256_spki(p256):
    spki = p256.public_key().public_bytes(*SPKI)
    key = load_public_key(spki)
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    assert key.public_numbers() == p256.public_key().public_numbers()
    assert len(spki) == 91  # what WebCrypto's exportKey("spki") gives for P-256
    assert load_public_key(b64url_decode(b64url_encode(spki))).public_numbers() == key.public_numbers()


def _compressed_spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.CompressedPoint)
    return bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200") + point


def test_load_public_key_rejections(p256):
    rsa_spki = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(*SPKI)
    p384_spki = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(*SPKI)
    k1_spki = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(*SPKI)
    ed_spki = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*SPKI)
    p256_spki = p256.public_key().public_bytes(*SPKI)
    pkcs8 = p256.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    raw_point = p256.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    for bad in [rsa_spki, p384_spki, k1_spki, ed_spki, pkcs8, raw_point, b"", b"\x30\x00",
                b"garbage" * 13, p256_spki[:-1], p256_spki + b"\x00", _compressed_spki(p256)]:
        with pytest.raises(BadPublicKey):
            load_public_key(bad)
    with pytest.raises(BadPublicKey):
        load_public_key(b64url_encode(p256_spki))  # text, not bytes
    assert issubclass(BadPublicKey, ValueError)


def test_raw_to_der(p256):
    der = p256.sign(b"message", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert raw_to_der(raw) == der
    for length in [0, 1, 63, 65, 72, 128]:
        with pytest.raises(BadSignature):
            raw_to_der(bytes(length))
    with pytest.raises(BadSignature):
        raw_to_der(b64url_encode(raw))
    assert issubclass(BadSignature, ValueError)


def test_verify_webcrypto_style_signature(p256):
    public_key = load_public_key(p256.public_key().public_bytes(*SPKI))
    message = canonical_bytes({"record_id": "3f1c", "revision": 1, "payload": {"note": "现场"}})
    signature = webcrypto_sign(p256, message)
    assert len(signature) == 64
    assert verify(public_key, signature, message)

    for i in range(len(message) * 8):
        flipped = bytearray(message)
        flipped[i // 8] ^= 1 << (i % 8)
        assert not verify(public_key, signature, bytes(flipped)), i
    for i in range(len(signature) * 8):
        flipped = bytearray(signature)
        flipped[i // 8] ^= 1 << (i % 8)
        assert not verify(public_key, bytes(flipped), message), i

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify(other, signature, message)
    assert not verify(public_key, signature[:-1], message)
    assert not verify(public_key, bytes(64), message)
    assert not verify(public_key, b"\xff" * 64, message)
    assert not verify(public_key, p256.sign(message, ec.ECDSA(hashes.SHA256())), message)  # DER


def test_signatures_are_malleable_so_never_an_identifier(p256):
    # (r, n - s) is a second valid signature of the same message: dedupe by content, not signature.
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256
    message = b"revision"
    raw = webcrypto_sign(p256, message)
    twin = raw[:32] + (n - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    assert twin != raw
    assert verify(p256.public_key(), raw, message) and verify(p256.public_key(), twin, message)


def test_verify_message_must_be_bytes(p256):
    with pytest.raises(TypeError):
        verify(p256.public_key(), webcrypto_sign(p256, b"x"), "x")
