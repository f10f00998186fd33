"""An RFC 3161 timestamp authority made in the tests, served over HTTP on loopback.

Each ``start_tsa()`` makes its own root CA and TSA leaf (ECDSA P-256, so key generation costs
milliseconds) and answers timestamp queries on 127.0.0.1 at a port the kernel picks. The token is
built the way RFC 3161 and RFC 5816 describe: a CMS SignedData over an id-ct-TSTInfo content, with
the signed attributes content-type, message-digest and signing-certificate-v2, and the TSA's
certificate embedded. ASN.1 is built with asn1crypto and signed with cryptography, independently
of the rfc3161-client code the app uses to read it, so the tests are not checking a library
against itself.

``TSA.mode`` makes the authority misbehave: "ok" (default), "wrong-imprint", "wrong-nonce",
"rejection", "garbage" (bytes that are not ASN.1) and "http-error" (HTTP 500).
"""
from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MODES = ("ok", "wrong-imprint", "wrong-nonce", "rejection", "garbage", "http-error")
POLICY = "1.3.6.1.4.1.55555.3161.1"  # an arbitrary private-arc OID: the tests' own TSA policy


@dataclass
class Authority:
    """A root CA and the TSA leaf it issued, with the leaf's key."""
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fieldapp tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, signing_key, *, ca: bool,
                 issuer_public_key=None, timestamping: bool = True) -> x509.Certificate:
    # Valid from a day back so that clock skew between "now" here and genTime never matters.
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        # RFC 3161 2.3: the TSA certificate carries only id-kp-timeStamping, and critically.
        purpose = ExtendedKeyUsageOID.TIME_STAMPING if timestamping else ExtendedKeyUsageOID.CODE_SIGNING
        builder = (builder
                   .add_extension(x509.ExtendedKeyUsage([purpose]), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
                                  critical=False))
    return builder.sign(signing_key, hashes.SHA256())


def make_authority(label: str = "Test TSA", *, timestamping: bool = True) -> Authority:
    """A root and a TSA leaf; ``timestamping=False`` gives the leaf another purpose (code signing)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{label} Root CA")
    root = _certificate(root_name, root_name, root_key.public_key(), root_key, ca=True)
    leaf = _certificate(_name(label), root_name, leaf_key.public_key(), root_key, ca=False,
                        issuer_public_key=root_key.public_key(), timestamping=timestamping)
    return Authority(root=root, root_key=root_key, leaf=leaf, leaf_key=leaf_key)


def recertify(authority: Authority) -> x509.Certificate:
    """A second certificate for the same TSA key from the same root (another serial): only the
    signing-certificate attribute tells which of the two a token was signed under."""
    return _certificate(authority.leaf.subject, authority.root.subject, authority.leaf_key.public_key(),
                        authority.root_key, ca=False, issuer_public_key=authority.root_key.public_key())


# ------------------------------------------------------------------------------ the token

def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _tst_info(imprint: tsp.MessageImprint, nonce: int | None, serial: int, at: datetime) -> tsp.TSTInfo:
    info = {"version": "v1", "policy": POLICY, "message_imprint": imprint, "serial_number": serial,
            "gen_time": at, "accuracy": {"seconds": 1}}
    if nonce is not None:
        info["nonce"] = nonce
    return tsp.TSTInfo(info)


def _signed_attrs(content: bytes, leaf: asn1_x509.Certificate) -> cms.CMSAttributes:
    # RFC 5816: signing-certificate-v2 binds the signature to this very certificate (by hash).
    ess = tsp.SigningCertificateV2({"certs": [{
        "hash_algorithm": {"algorithm": "sha256"},
        "cert_hash": hashlib.sha256(leaf.dump()).digest(),
        "issuer_serial": {"issuer": [asn1_x509.GeneralName(name="directory_name", value=leaf.issuer)],
                          "serial_number": leaf.serial_number},
    }]})
    return cms.CMSAttributes([
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        {"type": "signing_certificate_v2", "values": [ess]},
    ])


def build_token(authority: Authority, tst_info: tsp.TSTInfo) -> cms.ContentInfo:
    """Sign ``tst_info`` as a TimeStampToken (a CMS ContentInfo holding SignedData)."""
    content = tst_info.dump()
    leaf = _asn1_cert(authority.leaf)
    attrs = _signed_attrs(content, leaf)
    # The signature covers the DER of the attributes as a SET OF (tag 0x31), not the [0] IMPLICIT
    # form they take inside SignerInfo (RFC 5652 5.4). asn1crypto sorts SET OF, as DER requires.
    signature = authority.leaf_key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": leaf.issuer, "serial_number": leaf.serial_number}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
        "certificates": [leaf],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def make_token(authority: Authority, statement: bytes, *, at: datetime | None = None) -> bytes:
    """A TimeStampToken (DER) over SHA-256(``statement``) at ``at`` (default now), without HTTP."""
    imprint = tsp.MessageImprint({"hash_algorithm": {"algorithm": "sha256"},
                                  "hashed_message": hashlib.sha256(statement).digest()})
    when = at or datetime.now(timezone.utc).replace(microsecond=0)
    return build_token(authority, _tst_info(imprint, None, 1, when)).dump()


class _StatusOnly(core.Sequence):
    # asn1crypto's TimeStampResp makes the token mandatory; a refusal carries none (RFC 3161 2.4.2).
    _fields = [("status", tsp.PKIStatusInfo)]


def _rejection() -> bytes:
    return _StatusOnly({"status": {"status": "rejection", "status_string": ["the test TSA says no"],
                                   "fail_info": tsp.PKIFailureInfo({"bad_request"})}}).dump()


# ------------------------------------------------------------------------------ the server

@dataclass
class TSA:
    """A running test authority. ``root_pem_path`` is what an operator would configure."""
    authority: Authority
    root_pem_path: Path
    mode: str = "ok"
    last_request: tsp.TimeStampReq | None = None  # what the client sent, for the tests to inspect
    last_response: bytes | None = None
    _serials: itertools.count = field(default_factory=lambda: itertools.count(1))
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/tsa"

    def answer(self, query: bytes) -> bytes:
        """The TimeStampResp for a DER TimeStampReq, as this authority's ``mode`` dictates."""
        if self.mode == "garbage":
            return b"<html>not a timestamp</html>"
        if self.mode == "rejection":
            return _rejection()
        request = self.last_request = tsp.TimeStampReq.load(query)
        imprint = request["message_imprint"]
        if self.mode == "wrong-imprint":
            imprint = tsp.MessageImprint({"hash_algorithm": {"algorithm": "sha256"},
                                          "hashed_message": hashlib.sha256(b"something else").digest()})
        nonce = request["nonce"].native
        if self.mode == "wrong-nonce" and nonce is not None:
            nonce += 1
        info = _tst_info(imprint, nonce, next(self._serials), datetime.now(timezone.utc).replace(microsecond=0))
        return tsp.TimeStampResp({"status": {"status": "granted"},
                                  "time_stamp_token": build_token(self.authority, info)}).dump()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler(tsa: TSA) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if tsa.mode == "http-error" or self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(500 if tsa.mode == "http-error" else 415)
                return
            body = tsa.last_response = tsa.answer(query)
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep test output quiet
            pass

    return Handler


def start_tsa(directory: Path, label: str = "Test TSA") -> TSA:
    """Make an authority, write its root to ``directory``/<label>.pem and serve it on loopback."""
    authority = make_authority(label)
    root_pem = directory / f"{label.replace(' ', '-').lower()}-root.pem"
    root_pem.write_bytes(authority.root.public_bytes(serialization.Encoding.PEM))
    tsa = TSA(authority=authority, root_pem_path=root_pem)
    tsa._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(tsa))
    tsa._server.daemon_threads = True
    # A short poll interval: stop() waits up to one interval for the loop to notice.
    threading.Thread(target=tsa._server.serve_forever, args=(0.05,), name=f"tsa-{label}", daemon=True).start()
    return tsa
