"""RFC 3161 trusted timestamps for checkpoints (optional).

When ``TSA_URL`` is set, each checkpoint's signed statement is sent to a timestamp authority
(TSA) and the TimeStampToken it returns is stored beside the checkpoint: a third party then vouches
that the chain head existed at that time, which the server's own signature alone cannot show.

- ``request_token`` asks the TSA. Requests are built and answers decoded with ``rfc3161-client``
  (Trail of Bits, used by sigstore). Any failure raises ``TimestampUnavailable``: a TSA that is down
  must never stop a checkpoint from being made, so callers catch it and store no token.
- ``checker`` verifies stored tokens against the certificates the operator configured
  (``TSA_CERT_FILE``). rfc3161-client verifies through OpenSSL, which only trusts self-signed roots
  and reports every failure as one OpenSSL error stack; operators often configure just the TSA's own
  certificate, and the audit report needs to say *what* is wrong. So the token is read with
  ``asn1crypto`` and the signature and certificate path are checked with ``cryptography``.
- ``token_time`` reads the time the TSA vouched for, for display.
"""
from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from asn1crypto import cms, tsp  # noqa: F401  (tsp registers id-ct-TSTInfo and the ESS attributes with cms)
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_RESPONSE = 1 << 20  # real tokens are a few KiB; a bigger answer is not a timestamp
MAX_CHAIN = 6  # intermediates between the TSA certificate and a configured one, at most

NOT_OVER = "the token is not over this checkpoint"
BAD_SIGNATURE = "signature does not verify"
NOT_AUTHORITY = "not signed by the configured authority"

_HASHES = {"sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class TimestampUnavailable(RuntimeError):
    """No token could be had; the checkpoint is made without one."""


# ------------------------------------------------------------------------------ requesting

def request_token(url: str, statement: bytes, timeout: float = 10) -> bytes:
    """Ask the TSA at ``url`` to timestamp SHA-256(``statement``); return the TimeStampToken (DER).

    The answer must be for this request (status, imprint, nonce); its signature is not judged
    here but by ``checker`` in ``flask verify``, against the certificates the operator trusts."""
    try:
        request = (TimestampRequestBuilder().data(statement).hash_algorithm(HashAlgorithm.SHA256)
                   .nonce(nonce=True).cert_request(cert_request=True).build())
    except ValueError as exc:  # e.g. an empty statement: still "no token", never a failed checkpoint
        raise TimestampUnavailable(f"cannot build a timestamp request: {exc}") from exc
    body = _post(url, request.as_bytes(), timeout)
    try:
        response = decode_timestamp_response(body)
    except ValueError as exc:
        raise TimestampUnavailable(f"the timestamp authority at {url} sent an answer that is not "
                                   f"an RFC 3161 response ({exc})") from exc
    _check_response(url, response, statement, request.nonce)
    # rfc3161-client parses strict DER only, so re-encoding the token gives back the bytes sent.
    return bytes(response.time_stamp_token())


def _post(url: str, query: bytes, timeout: float) -> bytes:
    if not url.lower().startswith(("http://", "https://")):
        # urllib would also open file: and ftp: URLs; a TSA is only ever reached over HTTP(S).
        raise TimestampUnavailable(f"the timestamp authority URL {url!r} is not http(s)")
    request = urllib.request.Request(url, data=query, method="POST", headers={
        "Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampUnavailable(f"the timestamp authority at {url} answered HTTP {exc.code}") from exc
    except urllib.error.URLError as exc:
        raise TimestampUnavailable(f"the timestamp authority at {url} cannot be reached: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts, resets, bad URLs
        raise TimestampUnavailable(f"the timestamp authority at {url} cannot be reached: {exc}") from exc
    if len(body) > MAX_RESPONSE:
        raise TimestampUnavailable(f"the timestamp authority at {url} sent more than {MAX_RESPONSE} bytes")
    return body


def _check_response(url: str, response, statement: bytes, nonce: int | None) -> None:
    """Refuse an answer that is not a token for this very request: a token over another hash would
    timestamp nothing of ours, and a wrong nonce means a replayed or misrouted answer."""
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        said = "; ".join(response.status_string)
        raise TimestampUnavailable(f"the timestamp authority at {url} refused the request "
                                   f"(status {response.status}{': ' + said if said else ''})")
    try:
        info = response.tst_info
        imprint = info.message_imprint
        certificates = response.signed_data.certificates
    except ValueError as exc:  # "granted" but no usable token inside
        raise TimestampUnavailable(f"the timestamp authority at {url} sent no readable token ({exc})") from exc
    if imprint.hash_algorithm != SHA256_OID or imprint.message != hashlib.sha256(statement).digest():
        raise TimestampUnavailable(f"the timestamp authority at {url} timestamped something else "
                                   "(message imprint mismatch)")
    if info.nonce != nonce:
        raise TimestampUnavailable(f"the timestamp authority at {url} answered another request (nonce mismatch)")
    if not certificates:
        # We asked for it (certReq); without it the token cannot be checked against the chain later.
        raise TimestampUnavailable(f"the timestamp authority at {url} did not include its certificate")


# ------------------------------------------------------------------------------ reading

class _Unreadable(Exception):
    pass


@dataclass(frozen=True)
class _Token:
    """What verification needs from a TimeStampToken, read once."""
    content: bytes  # the DER TSTInfo, as signed (eContent)
    imprint_algorithm: str
    imprint: bytes
    gen_time: datetime
    signer: cms.SignerInfo
    signed_attrs: bytes  # what the signature covers
    certificates: list[asn1_x509.Certificate]  # as embedded, for finding the signer by its name
    x509_certificates: list[x509.Certificate]  # the same, for cryptography's checks


def _read(token_der: bytes) -> _Token:
    try:
        return _parse(token_der)
    except _Unreadable:
        raise
    except Exception as exc:  # asn1crypto and cryptography raise ValueError, TypeError, KeyError... on bad DER
        raise _Unreadable(_short(exc)) from exc


def _parse(token_der: bytes) -> _Token:
    info = cms.ContentInfo.load(token_der, strict=True)
    if info["content_type"].native != "signed_data":
        raise _Unreadable("not CMS signed data")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise _Unreadable("the signed content is not a TSTInfo")
    tst = encap["content"].parsed
    signers = list(signed["signer_infos"])
    if len(signers) != 1:
        raise _Unreadable(f"{len(signers)} signers instead of one")
    if not signers[0]["signed_attrs"]:
        raise _Unreadable("the signer has no signed attributes")
    # The signature covers the attributes' DER with the SET OF tag, not the [0] they carry inside
    # SignerInfo (RFC 5652 5.4). Taken now, as received, before anything is read from them.
    signed_attrs = b"\x31" + signers[0]["signed_attrs"].dump()[1:]
    # Absent certificates (asn1crypto's falsy Void) are allowed: the configured one may sign.
    certificates = [c.chosen for c in (signed["certificates"] or []) if c.name == "certificate"]
    imprint = tst["message_imprint"]
    try:
        x509_certificates = [x509.load_der_x509_certificate(c.dump()) for c in certificates]
    except ValueError as exc:
        raise _Unreadable("an embedded certificate is malformed") from exc
    return _Token(content=encap["content"].contents, imprint_algorithm=imprint["hash_algorithm"]["algorithm"].native,
                  imprint=imprint["hashed_message"].native, gen_time=tst["gen_time"].native.astimezone(timezone.utc),
                  signer=signers[0], signed_attrs=signed_attrs, certificates=certificates,
                  x509_certificates=x509_certificates)


def _short(exc: Exception) -> str:
    # Parser messages can span lines and quote absurd lengths; a report line wants one short clause.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def token_time(token_der: bytes) -> datetime | None:
    """The time (aware, UTC) the TSA put in the token, or None when the token cannot be read."""
    try:
        return _read(token_der).gen_time
    except _Unreadable:
        return None


# ------------------------------------------------------------------------------ verifying

def checker(cert_file: Path) -> Callable[[bytes, bytes], str | None]:
    """A ``check(statement, token_der)`` trusting the PEM certificates in ``cert_file`` (a TSA's
    root, an intermediate, or the TSA certificate itself): None when the token holds, otherwise a
    short English problem. Raises (only here, at set-up) when the file holds no certificate."""
    anchors = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())
    named = [asn1_x509.Certificate.load(a.public_bytes(Encoding.DER)) for a in anchors]

    def check(statement: bytes, token_der: bytes) -> str | None:
        try:
            return _problem(anchors, named, statement, token_der)
        except Exception as exc:  # a report must list a bad token, never crash on one
            return f"cannot be read: {_short(exc)}"

    return check


def _problem(anchors: list[x509.Certificate], named: list[asn1_x509.Certificate], statement: bytes,
             token_der: bytes) -> str | None:
    try:
        token = _read(token_der)
    except _Unreadable as exc:
        return f"cannot be read: {exc}"
    # Cheapest and most telling first: a valid token for another checkpoint is still the wrong one.
    if token.imprint_algorithm != "sha256" or token.imprint != hashlib.sha256(statement).digest():
        return NOT_OVER
    # A TSA may leave its certificate out when not asked; then a configured one can still sign.
    signer_cert = _signer_certificate(token.signer, token.certificates + named)
    if signer_cert is None:
        return "cannot be read: its signing certificate is neither in the token nor configured"
    cert = x509.load_der_x509_certificate(signer_cert.dump())  # it may be a configured one, not embedded
    problem = _signature_problem(token, signer_cert, cert)
    if problem:
        return problem
    if not _is_timestamping(cert):
        return f"{NOT_AUTHORITY}: the signing certificate is not for time-stamping"
    if not _reaches(cert, token.gen_time, token.x509_certificates, anchors, 0):
        return NOT_AUTHORITY
    return None


def _signer_certificate(signer: cms.SignerInfo,
                        candidates: list[asn1_x509.Certificate]) -> asn1_x509.Certificate | None:
    sid = signer["sid"]
    for candidate in candidates:
        if sid.name == "issuer_and_serial_number":
            if (candidate.issuer.dump() == sid.chosen["issuer"].dump()
                    and candidate.serial_number == sid.chosen["serial_number"].native):
                return candidate
        elif candidate.key_identifier == sid.chosen.native:
            return candidate
    return None


def _signature_problem(token: _Token, signer_cert: asn1_x509.Certificate, cert: x509.Certificate) -> str | None:
    """RFC 5652 5.4/5.6 and RFC 5816: the signed attributes carry the content's type and digest and
    name the signing certificate; the signature covers those attributes."""
    signer = token.signer
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        return f"cannot be read: unsupported digest algorithm {digest_name}"
    attrs = _signed_attributes(signer)
    if attrs is None or "content_type" not in attrs or "message_digest" not in attrs:
        return f"{BAD_SIGNATURE}: the signed attributes are incomplete or repeated"
    if attrs["content_type"][0].native != "tst_info":
        return f"{BAD_SIGNATURE}: the signed content type is not TSTInfo"
    if attrs["message_digest"][0].native != hashlib.new(digest_name, token.content).digest():
        return f"{BAD_SIGNATURE}: the timestamp content was altered"
    if not _names_certificate(attrs, signer_cert):
        return f"{BAD_SIGNATURE}: the signature names another signing certificate"
    if not _signature_holds(cert.public_key(), signer, token.signed_attrs, digest_name):
        return BAD_SIGNATURE
    return None


def _signed_attributes(signer: cms.SignerInfo) -> dict | None:
    """The signed attributes by type; None when one is repeated or has several values
    (RFC 5652 11: each once, single-valued), since which one counts would be ambiguous."""
    attrs = {}
    for attribute in signer["signed_attrs"]:
        name = attribute["type"].native
        if name in attrs or len(attribute["values"]) != 1:
            return None
        attrs[name] = attribute["values"]
    return attrs


def _names_certificate(attrs: dict, signer_cert: asn1_x509.Certificate) -> bool:
    """ESS signing-certificate(-v2) binds the signature to one certificate by its hash, so a
    certificate swapped in beside the same key (or a lookalike issuer/serial) does not pass."""
    if "signing_certificate_v2" in attrs:
        first = attrs["signing_certificate_v2"][0]["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        if algorithm not in _HASHES:
            return False
        return first["cert_hash"].native == hashlib.new(algorithm, signer_cert.dump()).digest()
    if "signing_certificate" in attrs:  # RFC 3161's original, with SHA-1 (identification, not security)
        first = attrs["signing_certificate"][0]["certs"][0]
        return first["cert_hash"].native == hashlib.sha1(signer_cert.dump()).digest()
    return False


def _signature_holds(key, signer: cms.SignerInfo, data: bytes, digest_name: str) -> bool:
    algorithm = signer["signature_algorithm"]
    signature = signer["signature"].native
    chosen = _HASHES[digest_name]()
    try:
        kind = algorithm.signature_algo
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), chosen)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _pss(algorithm["parameters"]), _HASHES[algorithm.hash_algo]())
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(chosen))
        elif kind == "dsa" and isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, chosen)
        elif kind in ("ed25519", "ed448") and isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False  # algorithm and key disagree: no valid signature can look like that
        return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, KeyError, TypeError):
        return False


def _pss(parameters) -> padding.PSS:
    mgf_hash = parameters["mask_gen_algorithm"]["parameters"]["algorithm"].native
    return padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=parameters["salt_length"].native)


def _is_timestamping(cert: x509.Certificate) -> bool:
    # RFC 3161 2.3: the TSA's certificate has extendedKeyUsage id-kp-timeStamping, marked critical.
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return eku.critical and ExtendedKeyUsageOID.TIME_STAMPING in eku.value


def _reaches(cert: x509.Certificate, at: datetime, pool: list[x509.Certificate],
             anchors: list[x509.Certificate], depth: int) -> bool:
    """Whether ``cert`` is, or is issued through CA certificates to, one of ``anchors``, every
    certificate valid at ``at`` (the TSA's own time: a token stays good after its certificate
    expires, as RFC 3161 intends)."""
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        return False
    if cert in anchors:
        return True
    if depth >= MAX_CHAIN:
        return False
    return any(_reaches(issuer, at, pool, anchors, depth + 1) for issuer in _issuers(cert, pool + anchors))


def _issuers(cert: x509.Certificate, candidates: list[x509.Certificate]) -> list[x509.Certificate]:
    found = []
    for candidate in candidates:
        if candidate == cert or candidate.subject != cert.issuer or not _is_ca(candidate):
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        found.append(candidate)
    return found


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
