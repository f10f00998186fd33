"""Signing on the phone, checked in real Chromium: canonical.js writes byte for byte what the
server's canonical_bytes writes, device.js keeps one non-extractable P-256 key per phone, and what
it signs the server verifies."""
from __future__ import annotations

import json

import pytest

from fieldapp.sync.signing import (
    MAX_DEPTH,
    b64url_decode,
    b64url_encode,
    canonical_bytes,
    load_public_key,
    verify,
)

pytestmark = pytest.mark.e2e

REVISION = {
    "key": "0b6f1c2e-4d1a-4e6b-9a57-1f1f0a7d2c11:2",
    "record_id": "0b6f1c2e-4d1a-4e6b-9a57-1f1f0a7d2c11",
    "record_type": "step",
    "revision": 2,
    "parent": 1,
    "catalogue_version": 3,
    "author": {"id": "u-1", "cert_no": "37030319001"},
    "device_time": "2024-06-15T06:03:27.123Z",
    "reason": None,
    "payload": {"note": "现场检查：\"经营场所\"\n无异常 😀", "lat_e6": 36825139,
                "lon_e6": -118304236, "accuracy_m": 12, "recorded": True, "withdrawn": False},
    "media": [{"alg": "sha-256", "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
               "size": 4_123_456, "type": "image/jpeg"}],
    "withdrawn_media": [],
}

# RFC 8785 §3.2.3: by UTF-16 code units U+1F600 (D83D DE00) sorts before U+FB33.
RFC8785_SORTING = {
    "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}

VALUES = [
    None, True, False, 0, -1, 42, 9007199254740991, -9007199254740991, 1_700_000_000_000,
    "", "plain", "临淄区市场监督管理局", "😀 emoji \U0010FFFF", "\u20ac\u0080\u00f6\ufb33",
    '"quoted" \\ back\\slash / slash', "\b\f\n\r\t\x00\x01\x1f\x7f", "\u2028\u2029\ufeff\uffff",
    [], {}, [None, True, [1, [2, [3]]], {"a": []}],
    RFC8785_SORTING,
    {"10": 1, "2": 2, "1": 3, "-1": 4, "01": 5, "a": 6, "A": 7, "": 8, "\uffff": 9, "\U0001F600": 10},
    {"b": {"d": [4, {"f": None, "e": "五"}], "c": -3}, "a": "甲"},
    REVISION,
]


@pytest.fixture
def js(live, page):
    server, _app = live
    page.goto(server.url + "/help")
    return page


def js_canonicalize(page, values: list) -> list[str]:
    # The values go over as JSON text and through JSON.parse, as they would from a server response.
    return page.evaluate("""async (text) => {
        const m = await import('/static/js/capture/canonical.js');
        return JSON.parse(text).map((v) => m.canonicalize(v));
    }""", json.dumps(values))


def test_js_canonicalize_equals_python(js):
    got = js_canonicalize(js, VALUES)
    for value, text in zip(VALUES, got, strict=True):
        assert text == canonical_bytes(value).decode("utf-8"), value


def test_js_canonical_bytes_are_the_python_bytes(js):
    got = js.evaluate("""async (text) => {
        const m = await import('/static/js/capture/canonical.js');
        return JSON.parse(text).map((v) => Array.from(m.canonicalBytes(v)));
    }""", json.dumps(VALUES))
    for value, data in zip(VALUES, got, strict=True):
        assert bytes(data) == canonical_bytes(value), value


def test_js_strings_are_json_stringify(js):
    # Every code unit a string can hold, but lone surrogates, in one string: JCS strings are
    # JSON.stringify's by definition, and Python must agree.
    text = "".join(chr(c) for c in [*range(0x0000, 0xD800), *range(0xE000, 0x10000), 0x1F600])
    got = js.evaluate("""async (text) => {
        const m = await import('/static/js/capture/canonical.js');
        const s = JSON.parse(text);
        return {canonical: m.canonicalize(s), same: m.canonicalize(s) === JSON.stringify(s)};
    }""", json.dumps(text))
    assert got["same"]
    assert got["canonical"] == canonical_bytes(text).decode("utf-8")


REJECTED = """async () => {
    const m = await import('/static/js/capture/canonical.js');
    const cyclic = {}; cyclic.self = cyclic;
    let deep = []; for (let i = 0; i < %(depth)d; i++) deep = [deep];
    const cases = {
        float: 1.5, nested_float: {a: [1, 0.1]}, nan: NaN, infinity: Infinity,
        minus_infinity: -Infinity, unsafe: 2 ** 53, unsafe_negative: -(2 ** 53), huge: 1e21,
        undefined_top: undefined, undefined_in_object: {a: undefined}, undefined_in_array: [undefined],
        hole: [1, , 3], function: {f() {}}, symbol: {s: Symbol('x')}, symbol_key: {[Symbol('k')]: 1},
        bigint: 1n, date: new Date(0), map: new Map(), set: new Set(), bytes: new Uint8Array(2),
        boxed_string: new String('x'), lone_high: '\\ud83d', lone_low: 'a\\ude00b',
        lone_key: {'\\ud83d': 1}, cyclic, too_deep: deep,
    };
    const out = {};
    for (const [name, value] of Object.entries(cases)) {
        try { out[name] = 'returned ' + m.canonicalize(value); }
        catch (e) { out[name] = e.constructor.name + ': ' + e.message; }
    }
    out.deepest_allowed = m.canonicalize(deep[0]).length;
    out.minus_zero = m.canonicalize([-0, 0]);
    return out;
}"""


def test_js_refuses_what_it_must_not_sign(js):
    got = js.evaluate(REJECTED % {"depth": MAX_DEPTH})
    assert got.pop("deepest_allowed") == 2 * MAX_DEPTH
    assert got.pop("minus_zero") == "[0,0]"
    for name, outcome in got.items():
        assert outcome.startswith("TypeError: "), (name, outcome)
    assert "$[\"a\"][1]" in got["nested_float"]
    assert "$[1]" in got["hole"]


def test_js_lone_surrogate_check_without_is_well_formed(js):
    # Phones older than String.prototype.isWellFormed use the module's own loop.
    got = js.evaluate("""async () => {
        const m = await import('/static/js/capture/canonical.js');
        const saved = String.prototype.isWellFormed;
        delete String.prototype.isWellFormed;
        try {
            const strings = ['\\ud83d', 'a\\ude00', '\\ude00\\ud83d', 'x\\ud83d', '\\ud83d\\ude00', 'ok', ''];
            return strings.map((s) => {
                try { return m.canonicalize(s); } catch (e) { return e.constructor.name; }
            });
        } finally { String.prototype.isWellFormed = saved; }
    }""")
    assert got == ["TypeError"] * 4 + ['"\U0001F600"', '"ok"', '""']


# --- the device key ------------------------------------------------------------------------------

IDENTITY = """async (url) => {
    const m = await import(url || '/static/js/capture/device.js');
    const id = await m.deviceIdentity();
    return {deviceId: id.deviceId, spki: id.publicKeySpkiB64url,
            privateExtractable: id.privateKey.extractable, privateUsages: id.privateKey.usages,
            privateType: id.privateKey.type, algorithm: id.privateKey.algorithm,
            publicExtractable: id.publicKey.extractable};
}"""


def test_device_identity_is_made_once_and_kept(js):
    first = js.evaluate(IDENTITY)
    assert first["privateExtractable"] is False
    assert first["privateType"] == "private" and first["privateUsages"] == ["sign"]
    assert first["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
    assert first["publicExtractable"] is True
    assert len(first["deviceId"]) == 36
    key = load_public_key(b64url_decode(first["spki"]))  # P-256, canonical SPKI
    assert b64url_encode(b64url_decode(first["spki"])) == first["spki"]
    assert js.evaluate(IDENTITY) == first

    # A reload reads it back from IndexedDB (a fresh module instance), still non-extractable; the
    # private key refuses export, the stored public key still exports the same SPKI.
    js.reload()
    assert js.evaluate(IDENTITY) == first
    stored = js.evaluate("""async () => {
        const store = await import('/static/js/capture/store.js');
        const row = await store.getMeta('device');
        let exported;
        try { await crypto.subtle.exportKey('pkcs8', row.privateKey); exported = 'exported'; }
        catch (e) { exported = e.name; }
        const spki = new Uint8Array(await crypto.subtle.exportKey('spki', row.publicKey));
        return {deviceId: row.deviceId, isKey: row.privateKey instanceof CryptoKey,
                extractable: row.privateKey.extractable, exported, spki: Array.from(spki),
                storedSpki: row.spki};
    }""")
    assert stored["deviceId"] == first["deviceId"]
    assert stored["isKey"] and stored["extractable"] is False
    assert stored["exported"] == "InvalidAccessError"
    assert bytes(stored["spki"]) == b64url_decode(first["spki"]) == b64url_decode(stored["storedSpki"])
    assert key.public_numbers() == load_public_key(bytes(stored["spki"])).public_numbers()


CONCURRENT = """async (withoutLocks) => {
    if (withoutLocks) Object.defineProperty(navigator, 'locks', {value: undefined, configurable: true});
    // Separate module instances (different URLs) do not share the module-level promise, like two
    // tabs; the shared store.js keeps one IndexedDB connection, which does not matter here.
    const urls = ['/static/js/capture/device.js', '/static/js/capture/device.js?tab=2',
                  '/static/js/capture/device.js?tab=3'];
    const modules = await Promise.all(urls.map((u) => import(u)));
    const ids = await Promise.all([modules[0].deviceIdentity(), modules[0].deviceIdentity(),
                                   modules[1].deviceIdentity(), modules[2].deviceIdentity()]);
    const store = await import('/static/js/capture/store.js');
    const row = await store.getMeta('device');
    return {ids: ids.map((i) => i.deviceId), spkis: ids.map((i) => i.publicKeySpkiB64url),
            stored: row.deviceId, samePromise: ids[0] === ids[1], locks: Boolean(navigator.locks)};
}"""


@pytest.mark.parametrize("without_locks", [False, True], ids=["web-locks", "no-web-locks"])
def test_concurrent_first_calls_make_one_identity(js, without_locks):
    got = js.evaluate(CONCURRENT, without_locks)
    assert got["locks"] is not without_locks
    assert got["samePromise"]
    assert len(set(got["ids"])) == 1 and len(set(got["spkis"])) == 1
    assert got["stored"] == got["ids"][0]


def test_two_tabs_racing_make_one_identity(js, context):
    url = js.url
    other = context.new_page()
    other.goto(url)
    start = """async () => {
        const m = await import('/static/js/capture/device.js');
        window.__identity = m.deviceIdentity().then((i) => i.deviceId);
        return true;
    }"""
    js.evaluate(start)
    other.evaluate(start)
    first = js.evaluate("() => window.__identity")
    second = other.evaluate("() => window.__identity")
    assert first == second


SIGN = """async (text) => {
    const m = await import('/static/js/capture/device.js');
    const id = await m.deviceIdentity();
    const signed = await m.signCanonical(JSON.parse(text));
    return {spki: id.publicKeySpkiB64url, ...signed};
}"""


def test_server_verifies_what_the_phone_signed(js):
    public_key = None
    for value in [REVISION, RFC8785_SORTING, {"note": "😀\u2028\"\\"}, "just a string", 0, None, []]:
        got = js.evaluate(SIGN, json.dumps(value))
        public_key = public_key or load_public_key(b64url_decode(got["spki"]))
        signature = b64url_decode(got["signature"])
        assert len(signature) == 64
        assert got["canonical"] == canonical_bytes(value).decode("utf-8")
        assert verify(public_key, signature, got["canonical"].encode("utf-8"))
        assert verify(public_key, signature, canonical_bytes(value))

    got = js.evaluate(SIGN, json.dumps(REVISION))
    signature = b64url_decode(got["signature"])
    changed = json.loads(json.dumps(REVISION))
    changed["payload"]["lat_e6"] += 1
    assert not verify(public_key, signature, canonical_bytes(changed))
    changed = {**REVISION, "revision": 3}
    assert not verify(public_key, signature, canonical_bytes(changed))
    # The order keys arrive in does not matter: same value, same canonical bytes, same signature.
    assert verify(public_key, signature, canonical_bytes(dict(reversed(list(REVISION.items())))))


def test_sign_refuses_floats_before_touching_the_key(js):
    got = js.evaluate("""async () => {
        const m = await import('/static/js/capture/device.js');
        const store = await import('/static/js/capture/store.js');
        let error;
        try { await m.signCanonical({lat: 36.825139}); } catch (e) { error = e.constructor.name; }
        return {error, stored: await store.getMeta('device')};
    }""")
    assert got == {"error": "TypeError", "stored": None}


def test_b64url_in_js_matches_python(js):
    # The last is longer than the 32 KiB chunks b64url converts at a time.
    samples = [b"", b"\x00", b"\xfb\xff", b"\xfb\xff\xbf", bytes(range(256)), bytes(40_000)]
    got = js.evaluate("""async (arrays) => {
        const m = await import('/static/js/capture/device.js');
        return arrays.map((a) => {
            const bytes = new Uint8Array(a);
            const padded = new Uint8Array(bytes.length + 4); padded.set(bytes, 2);
            return [m.b64url(bytes), m.b64url(bytes.buffer), m.b64url(padded.subarray(2, 2 + bytes.length))];
        });
    }""", [list(s) for s in samples])
    for data, forms in zip(samples, got, strict=True):
        assert forms == [b64url_encode(data)] * 3
