"""RFC 3161 timestamps of checkpoints: asking a TSA, and checking its tokens later.

Everything runs against timestamp authorities made in the tests (tests/support/tsa_server.py) on
loopback, so the client meets real HTTP and real CMS, built independently of the code under test.
"""
from __future__ import annotations

import hashlib
import socket
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import cms, tsp  # noqa: F401  (tsp teaches cms the TSTInfo content type)
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding

from fieldapp.records import tsa
from tests.support.tsa_server import make_authority, make_token, recertify, start_tsa

STATEMENT = b'{"head":"ab12","kind":"fieldapp-audit-checkpoint","seq":42,"v":1}'


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    server = start_tsa(tmp_path_factory.mktemp("tsa"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A second, unrelated authority: its tokens are well-formed but not trusted by the first's root."""
    server = start_tsa(tmp_path_factory.mktemp("tsa-other"), label="Other TSA")
    yield server
    server.stop()


@pytest.fixture
def fresh(tmp_path):
    """An authority of its own, for tests that change its mode or stop it."""
    server = start_tsa(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(authority):
    return tsa.request_token(authority.url, STATEMENT)


# ------------------------------------------------------------------------------ requesting

def test_request_is_sha256_with_nonce_and_cert_request(authority):
    tsa.request_token(authority.url, b"another statement")
    sent = authority.last_request
    imprint = sent["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    assert imprint["hashed_message"].native == hashlib.sha256(b"another statement").digest()
    assert sent["cert_req"].native is True
    assert sent["nonce"].native is not None


def test_token_is_the_content_info_the_authority_sent(authority):
    got = tsa.request_token(authority.url, STATEMENT)
    # The stored token must be byte for byte what the TSA signed and sent, not a re-encoding.
    assert got[:1] == b"\x30" and got in authority.last_response


def test_nonces_differ_between_requests(authority):
    tsa.request_token(authority.url, STATEMENT)
    first = authority.last_request["nonce"].native
    tsa.request_token(authority.url, STATEMENT)
    assert authority.last_request["nonce"].native != first


@pytest.mark.parametrize(("mode", "says"), [
    ("rejection", "refused the request (status 2: the test TSA says no)"),
    ("wrong-imprint", "message imprint mismatch"),
    ("wrong-nonce", "nonce mismatch"),
    ("garbage", "not an RFC 3161 response"),
    ("http-error", "answered HTTP 500"),
])
def test_bad_answers_are_unavailable(fresh, mode, says):
    fresh.mode = mode
    with pytest.raises(tsa.TimestampUnavailable, match="timestamp authority") as caught:
        tsa.request_token(fresh.url, STATEMENT)
    assert says in str(caught.value)


def test_server_down_is_unavailable(fresh):
    url = fresh.url
    fresh.stop()
    with pytest.raises(tsa.TimestampUnavailable, match="cannot be reached"):
        tsa.request_token(url, STATEMENT, timeout=2)


def test_silent_server_times_out():
    # A socket that listens but never answers: the request must give up after ``timeout``.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(tsa.TimestampUnavailable, match="cannot be reached"):
            tsa.request_token(f"http://127.0.0.1:{port}/", STATEMENT, timeout=0.3)


def test_only_http_urls():
    with pytest.raises(tsa.TimestampUnavailable, match="not http"):
        tsa.request_token("file:///etc/passwd", STATEMENT)


def test_unavailable_is_a_runtime_error():
    # Callers that only know "the TSA failed" catch RuntimeError and make the checkpoint anyway.
    assert issubclass(tsa.TimestampUnavailable, RuntimeError)


# ------------------------------------------------------------------------------ checking

def test_token_verifies_against_the_root(authority, token):
    assert tsa.checker(authority.root_pem_path)(STATEMENT, token) is None


def test_token_verifies_against_the_tsa_certificate_itself(authority, token, tmp_path):
    leaf = tmp_path / "tsa-leaf.pem"
    leaf.write_bytes(authority.authority.leaf.public_bytes(Encoding.PEM))
    assert tsa.checker(leaf)(STATEMENT, token) is None


def test_any_configured_certificate_may_vouch(authority, stranger, token, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(stranger.root_pem_path.read_bytes() + authority.root_pem_path.read_bytes())
    assert tsa.checker(bundle)(STATEMENT, token) is None


def test_token_over_another_statement_is_refused(authority, token):
    assert tsa.checker(authority.root_pem_path)(STATEMENT + b" ", token) == tsa.NOT_OVER


def test_token_of_another_authority_is_refused(authority, stranger):
    theirs = tsa.request_token(stranger.url, STATEMENT)
    assert tsa.checker(stranger.root_pem_path)(STATEMENT, theirs) is None
    assert tsa.checker(authority.root_pem_path)(STATEMENT, theirs) == tsa.NOT_AUTHORITY


def test_the_other_root_does_not_vouch_for_this_tsa(stranger, token):
    assert tsa.checker(stranger.root_pem_path)(STATEMENT, token) == tsa.NOT_AUTHORITY


@pytest.mark.parametrize("junk", [b"", b"\x30", b"not a token", b"\x30\x03\x02\x01\x00"])
def test_unreadable_tokens_are_problems(authority, junk):
    problem = tsa.checker(authority.root_pem_path)(STATEMENT, junk)
    assert problem.startswith("cannot be read")


def test_every_flipped_byte_gives_an_answer_not_an_exception(authority, token):
    check = tsa.checker(authority.root_pem_path)
    answers = [check(STATEMENT, _flip(token, i)) for i in range(len(token))]
    assert all(a is None or isinstance(a, str) for a in answers)
    # Only fields outside the signature (e.g. SignedData's version) may change unnoticed.
    assert sum(a is not None for a in answers) > 0.9 * len(token)


def test_altered_timestamp_content_is_caught(authority, token):
    check = tsa.checker(authority.root_pem_path)
    tst_info = _tst_info_span(token)
    for i in tst_info:
        assert check(STATEMENT, _flip(token, i)) is not None, f"flip at {i} went unnoticed"


def test_altered_signature_does_not_verify(authority, token):
    # The signature is the last field of the only SignerInfo, so the token's last byte is in it.
    assert tsa.checker(authority.root_pem_path)(STATEMENT, _flip(token, len(token) - 1)) == tsa.BAD_SIGNATURE


def test_token_without_its_certificate_is_refused_by_the_root(authority, token):
    stripped = _without_certificates(token)
    assert tsa.checker(authority.root_pem_path)(STATEMENT, stripped).startswith("cannot be read")


def test_token_without_its_certificate_verifies_against_the_configured_tsa_certificate(authority, token, tmp_path):
    leaf = tmp_path / "tsa-leaf.pem"
    leaf.write_bytes(authority.authority.leaf.public_bytes(Encoding.PEM))
    assert tsa.checker(leaf)(STATEMENT, _without_certificates(token)) is None


def test_problems_are_one_short_line(authority, token):
    check = tsa.checker(authority.root_pem_path)
    for i in range(0, len(token), 7):
        problem = check(STATEMENT, _flip(token, i)) or ""
        assert "\n" not in problem and len(problem) <= 120, problem


def test_signer_must_be_a_timestamping_certificate(tmp_path):
    # Issued by the configured root, but for code signing: not a time-stamping authority.
    wrong_purpose = make_authority(timestamping=False)
    root = tmp_path / "root.pem"
    root.write_bytes(wrong_purpose.root.public_bytes(Encoding.PEM))
    problem = tsa.checker(root)(STATEMENT, make_token(wrong_purpose, STATEMENT))
    assert problem.startswith(tsa.NOT_AUTHORITY) and "time-stamping" in problem


def test_token_is_bound_to_its_signing_certificate(authority):
    # Swap in another certificate for the same key (and point the unsigned signer id at it): the
    # signature still verifies and the certificate chains, but it is not the one the TSA signed under.
    swapped = _with_certificate(make_token(authority.authority, STATEMENT), recertify(authority.authority))
    problem = tsa.checker(authority.root_pem_path)(STATEMENT, swapped)
    assert problem == f"{tsa.BAD_SIGNATURE}: the signature names another signing certificate"


def test_certificate_must_be_valid_at_the_stamped_time(authority):
    # The test certificates were valid from a day ago; a token claiming last week is out of range.
    last_week = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=7)
    stale = make_token(authority.authority, STATEMENT, at=last_week)
    assert tsa.checker(authority.root_pem_path)(STATEMENT, stale) == tsa.NOT_AUTHORITY


def test_the_test_authority_satisfies_openssl(authority):
    # Cross-check of the test TSA itself: rfc3161-client's OpenSSL-based verifier accepts its
    # answers, so the checker above is not merely agreeing with a server built the same wrong way.
    import rfc3161_client

    tsa.request_token(authority.url, STATEMENT)
    response = rfc3161_client.decode_timestamp_response(authority.last_response)
    verifier = rfc3161_client.VerifierBuilder(roots=[authority.authority.root]).build()
    assert verifier.verify_message(response, STATEMENT)


def test_checker_needs_a_certificate(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(ValueError):
        tsa.checker(empty)


# ------------------------------------------------------------------------------ time

def test_token_time_is_the_authoritys_utc_time(token):
    at = tsa.token_time(token)
    assert at.tzinfo is not None and at.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - at) < timedelta(minutes=5)


def test_token_time_of_junk_is_none():
    assert tsa.token_time(b"junk") is None


# ------------------------------------------------------------------------------ helpers

def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def _tst_info_span(token: bytes) -> range:
    content = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents
    start = token.index(content)
    return range(start, start + len(content))


def _with_certificate(token: bytes, cert) -> bytes:
    replacement = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    signed = cms.ContentInfo.load(token)["content"].copy()
    signed["certificates"] = [replacement]
    signer = signed["signer_infos"][0].copy()
    signer["sid"] = cms.SignerIdentifier(name="issuer_and_serial_number", value={
        "issuer": replacement.issuer, "serial_number": replacement.serial_number})
    signed["signer_infos"] = [signer]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def _without_certificates(token: bytes) -> bytes:
    info = cms.ContentInfo.load(token)
    signed = info["content"].copy()
    signed["certificates"] = None
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
