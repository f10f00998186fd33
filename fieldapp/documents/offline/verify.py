#!/usr/bin/env python3
"""Offline check of an evidence package: 证据包离线核验.

    pip install cryptography
    python3 verify.py PACKAGE_DIR [--public-key PUBLISHED_KEY.pem] [--json]

Needs only the Python standard library (3.11+) and ``cryptography``; it never talks to the server.
The chain rules and the phone's signature rules come from ``fieldapp_chain.py`` and
``fieldapp_signing.py`` next to THIS script — verbatim copies of the server's ``chain.py`` and
``signing.py`` — so there is no second implementation that could disagree with the server. To avoid
trusting the programs shipped with a package, keep trusted copies of the three files in a folder of
your own and run that ``verify.py`` against the package; the SHA-256 of each is printed so they can
be compared with the published ones.

What is checked (decision record 015): every listed file exists with its listed size, SHA-256 and
SM3, and no file was added; each revision's ECDSA P-256 signature holds with its device's key and
names the item's original by its SHA-256; the audit chain links from checkpoint A's signed head to
checkpoint B's, both checkpoints carry valid Ed25519 signatures, and every event an item names is in
that stretch. Each item is 通过 (passed) only when all of that holds for it.

Exit status: 0 passed (通过), 1 failed (不通过), 2 unusable input (no manifest, an unknown format, a
missing helper or package, an unreadable --public-key).

How this verifier (and verify.html, which reads the record the same way) settles what the record
leaves open:
- The chain stretch is anchored at both ends: it starts from A's *signed* head (not the columns next
  to it) and must end exactly at B. checkpoints.json is [A, B]; when the stretch starts at the very
  beginning (manifest chain.from_seq 0) A may be null (or the list [B] alone), since the genesis
  hash needs no signature. Events after B are a fault: nothing signed vouches for them.
- With --public-key, both checkpoints must verify with the published key AND with the key shipped
  in chain/public_key.pem; a shipped key that differs from the published one is a fault.
- An item's revision must name the SHA-256 of the original's bytes as found (not as listed); a
  revision listing the original among its withdrawn media, and a withdrawn record, are reported
  as notes, not faults. The revision file's device_id must equal the signed envelope's, and the
  item's device key must be devices/<that id>.pem.
- Body-camera footage (record null) carries no phone signature: it passes on its files and the
  chain, and the report says so. Any other item without a record fails.
- A file found in the package that is not listed is named as added, whatever its name (also system
  files such as .DS_Store), except the six fixed files at the root; added files fail the package,
  not an item. A listed path that is absolute or climbs out (.., \\, empty parts) is never opened.
- Hex digests in the manifest are compared without regard to letter case; names are compared after
  Unicode NFC normalisation (a disc or file system may store either form).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
FORMAT = "fieldapp-evidence-package/1"
CHECKPOINT_KIND = "fieldapp-audit-checkpoint"   # as in the server's records/checkpoints.py
# Files every package carries that the manifest does not list (it cannot list itself; the programs
# are to be compared with their published copies instead). DISC.txt: each disc's own list, when a
# package burnt on several discs is copied back into one folder.
FIXED = frozenset({"manifest.json", "verify.html", "verify.py", "README.txt", "fieldapp_chain.py",
                   "fieldapp_signing.py", "DISC.txt"})
HELPERS = ("verify.py", "fieldapp_chain.py", "fieldapp_signing.py")
PROGRAMS = ("verify.html", *HELPERS)
HEX64 = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20
MAX_JSON = 64 << 20   # a manifest, revision or checkpoints file is small: never load a huge one whole
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# ChainWalk's problems (English, from the server's chain.py) with the Chinese said first.
CHAIN_PROBLEMS_ZH = (
    ("sequence jumps", "序号不连续：有事件缺失或被插入"),
    ("does not link", "未链接到前一事件"),
    ("its content no longer matches", "内容与其哈希不符：事件被改动"),
)


class Unusable(Exception):
    """The input cannot be checked at all (as opposed to checked and found wrong)."""


@dataclass
class Fault:
    what: str       # a path, "seq 5, event 12", "checkpoint B (seq 40)", "item 2", …
    problem: str    # 中文 / English

    def as_dict(self) -> dict:
        return {"what": self.what, "problem": self.problem}


@dataclass
class Section:
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def add(self, what: str, problem: str) -> Fault:
        fault = Fault(what, problem)
        self.faults.append(fault)
        return fault

    def as_dict(self) -> dict:
        return {"ok": self.ok, "faults": [f.as_dict() for f in self.faults], "notes": self.notes}


@dataclass
class ItemResult:
    item: Any
    original: str
    kind: str
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    about: str = ""   # who made it, with what, when: as the manifest says

    @property
    def ok(self) -> bool:
        return not self.faults

    def add(self, what: str, problem: str) -> None:
        self.faults.append(Fault(what, problem))

    def as_dict(self) -> dict:
        return {"item": self.item, "original": self.original, "kind": self.kind, "ok": self.ok,
                "verdict": verdict(self.ok), "reasons": [f.as_dict() for f in self.faults], "notes": self.notes}


@dataclass
class Report:
    folder: Path
    package_id: str = ""
    case: str = ""
    programs: dict[str, str] = field(default_factory=dict)
    sm3_source: str = ""
    keys: list[str] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0
    events: int = 0
    chain_range: tuple[Any, Any] = (None, None)
    manifest: Section = field(default_factory=Section)
    files: Section = field(default_factory=Section)
    chain: Section = field(default_factory=Section)
    checkpoints: Section = field(default_factory=Section)
    items: list[ItemResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def chain_ok(self) -> bool:
        return self.chain.ok and self.checkpoints.ok

    @property
    def ok(self) -> bool:
        return (self.manifest.ok and self.files.ok and self.chain_ok and all(i.ok for i in self.items))

    def fault_count(self) -> int:
        return (len(self.manifest.faults) + len(self.files.faults) + len(self.chain.faults)
                + len(self.checkpoints.faults) + sum(len(i.faults) for i in self.items))


def verdict(ok: bool) -> str:
    return "通过" if ok else "不通过"


# ----------------------------------------------------------------------------- loading

def load_helpers():
    """Import ``fieldapp_chain`` and ``fieldapp_signing`` from this script's folder (not the
    package's, not the current one)."""
    for name in HELPERS[1:]:
        if not (HERE / name).is_file():
            raise Unusable(f"{name} 不在核验程序所在文件夹 / is missing next to the verifier ({HERE})")
    # -I and -P leave the script's folder off sys.path; and keep __pycache__ out of the package.
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(HERE))
    import fieldapp_chain
    import fieldapp_signing
    for module in (fieldapp_chain, fieldapp_signing):
        if Path(module.__file__).resolve().parent != HERE:
            raise Unusable(f"{module.__name__} was imported from {module.__file__}, not from {HERE}")
    return fieldapp_chain, fieldapp_signing


class Crypto(NamedTuple):
    invalid_signature: type[Exception]
    serialization: Any
    ed25519_public: type
    hashes: Any


def load_crypto() -> Crypto:
    # Imported here, not at the top, so a missing package is a clear message and exit 2, not a traceback.
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:
        raise Unusable(f"需要 cryptography 库 / the cryptography package is needed: "
                       f"pip install cryptography ({exc})") from exc
    return Crypto(InvalidSignature, serialization, Ed25519PublicKey, hashes)


class _CryptographySM3:
    """SM3 through ``cryptography`` with hashlib's update/hexdigest, for an OpenSSL without SM3."""

    def __init__(self, hashes):
        self._hash = hashes.Hash(hashes.SM3())

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.finalize().hex()


def sm3_factory(crypto: Crypto):
    """A constructor of SM3 hash objects, and where SM3 comes from: OpenSSL through hashlib, else
    ``cryptography``. Without either no SM3 can be checked, and the package is not verified."""
    try:
        hashlib.new("sm3")
        return (lambda: hashlib.new("sm3")), "OpenSSL (hashlib)"
    except ValueError:
        pass
    try:
        _CryptographySM3(crypto.hashes).update(b"")
    except Exception as exc:  # noqa: BLE001 — AttributeError, UnsupportedAlgorithm: no SM3 here at all
        raise Unusable("无法计算 SM3：本机的 OpenSSL 与 cryptography 库都不提供 SM3，请升级 cryptography / "
                       f"SM3 cannot be computed: neither OpenSSL nor cryptography provides it here "
                       f"(pip install -U cryptography) ({exc})") from exc
    return (lambda: _CryptographySM3(crypto.hashes)), "cryptography"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_file(path: Path) -> Any:
    """A small JSON file, strictly UTF-8 (a byte-order mark is refused, as JSON.parse does)."""
    if path.stat().st_size > MAX_JSON:
        raise ValueError(f"larger than {MAX_JSON} bytes")
    return json.loads(path.read_bytes().decode("utf-8"))


def pem_der(text: str, label: str = "PUBLIC KEY") -> bytes:
    """The DER inside one PEM block, decoded strictly (so both verifiers read the same bytes)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != f"-----BEGIN {label}-----" or lines[-1] != f"-----END {label}-----":
        raise ValueError(f"not a PEM {label} block")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad base64 in PEM: {exc}") from exc


def load_ed25519(pem: bytes, crypto: Crypto):
    try:
        der = pem_der(pem.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from exc
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("not an Ed25519 public key")
    return crypto.ed25519_public.from_public_bytes(der[len(ED25519_SPKI_PREFIX):])


def raw_key_id(key, crypto: Crypto) -> str:
    """SHA-256 of the raw 32-byte key, as the server's ``keys.key_id`` computes it."""
    raw = key.public_bytes(crypto.serialization.Encoding.Raw, crypto.serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise Unusable(f"缺少 manifest.json，这不是证据包 / manifest.json is missing: not an evidence package ({folder})")
    try:
        manifest = read_json_file(path)
    except (OSError, ValueError) as exc:
        raise Unusable(f"无法读取 manifest.json / cannot read manifest.json: {exc}") from exc
    if not isinstance(manifest, dict):
        raise Unusable("manifest.json 不是 JSON 对象 / is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise Unusable(f"未知的证据包格式 / unknown package format {manifest.get('format')!r} (expected {FORMAT})")
    if not isinstance(manifest.get("files"), list) or not isinstance(manifest.get("items"), list):
        raise Unusable("manifest.json 缺少 files 或 items 列表 / has no files or items list")
    return manifest


# ------------------------------------------------------------------------------- files

def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def safe_path(path) -> bool:
    """A relative, '/'-separated path that stays inside the package."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return all(p not in ("", ".", "..") for p in parts) and not re.match(r"[A-Za-z]:", parts[0])


@dataclass
class FileCheck:
    path: str
    role: str
    entry: dict
    present: bool = False
    sha256: str | None = None
    sm3: str | None = None
    size: int | None = None
    faults: list[Fault] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.present and not self.faults


def package_files(folder: Path) -> dict[str, str]:
    """Every file (and link) in the package: NFC-normalised relative path -> the name as stored."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):   # does not follow links to folders
        dirnames.sort()
        here = Path(dirpath).relative_to(folder)
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in sorted(filenames) + links:
            rel = (here / name).as_posix()
            found[nfc(rel)] = rel
    return found


def hash_file(path: Path, sm3_new, progress) -> tuple[int, str, str]:
    sha, sm3, size = hashlib.sha256(), sm3_new(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            sm3.update(chunk)
            size += len(chunk)
            progress(len(chunk))
    return size, sha.hexdigest(), sm3.hexdigest()


class Progress:
    """A one-line progress count on a terminal's stderr; silent otherwise."""

    def __init__(self, total: int):
        self.total, self.done, self.shown = total, 0, -1
        self.on = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        self.done += n
        percent = 100 * self.done // self.total if self.total else 100
        if self.on and percent != self.shown:
            self.shown = percent
            print(f"\r正在计算哈希 / hashing: {percent}%", end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.on:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)


def _compare(fc: FileCheck) -> None:
    listed = fc.entry.get("size")
    if not is_int(listed):
        fc.faults.append(Fault(fc.path, "清单未给出有效的大小 / the manifest gives no valid size"))
    elif listed != fc.size:
        fc.faults.append(Fault(fc.path, f"大小为 {fc.size} 字节，清单为 {listed} 字节 / "
                                        f"is {fc.size} bytes, the manifest says {listed}"))
    for key, label, actual in (("sha256", "SHA-256", fc.sha256), ("sm3", "SM3", fc.sm3)):
        listed = fc.entry.get(key)
        if not isinstance(listed, str) or not HEX64.fullmatch(listed.lower()):
            fc.faults.append(Fault(fc.path, f"清单未给出有效的 {label} / the manifest gives no valid {label}"))
        elif listed.lower() != actual:
            fc.faults.append(Fault(fc.path, f"{label} 与清单不符（清单 {listed.lower()}，实际 {actual}） / "
                                            f"{label} differs from the manifest (listed {listed.lower()}, "
                                            f"actual {actual})"))


def check_files(folder: Path, manifest: dict, sm3_new, report: Report) -> dict[str, FileCheck]:
    """Rule 1: every listed file is there with its size, SHA-256 and SM3; nothing is added."""
    found = package_files(folder)
    checks: dict[str, FileCheck] = {}
    for index, entry in enumerate(manifest["files"]):
        path = entry.get("path") if isinstance(entry, dict) else None
        if not safe_path(path):
            report.manifest.add(f"files[{index}]", f"路径无效或越出证据包，未打开 / the path is invalid or leaves "
                                                   f"the package, not opened: {path!r}")
            continue
        if nfc(path) in checks:
            report.manifest.add(path, "清单中重复列出 / listed twice in the manifest")
            continue
        role = entry.get("role") if isinstance(entry.get("role"), str) else ""
        checks[nfc(path)] = FileCheck(path, role, entry)
    sizes = {}   # the listed files that are there as regular files, for the progress count
    for key in checks:
        stored = folder / found[key] if key in found else None
        if stored is not None and not stored.is_symlink() and stored.is_file():
            sizes[key] = stored.stat().st_size
    progress = Progress(sum(sizes.values()))
    for key, fc in checks.items():
        stored = found.get(key)
        if stored is None:
            fc.faults.append(Fault(fc.path, "缺少文件：清单列出但证据包中没有 / missing file: listed in the manifest "
                                            "but not in the package"))
        elif key not in sizes:
            fc.faults.append(Fault(fc.path, "不是普通文件（链接或文件夹），未核验 / not a regular file (a link or "
                                            "a folder), not checked"))
        else:
            try:
                fc.size, fc.sha256, fc.sm3 = hash_file(folder / stored, sm3_new, progress)
                fc.present = True
            except OSError as exc:
                fc.faults.append(Fault(fc.path, f"无法读取 / cannot be read: {exc}"))
            else:
                _compare(fc)
                report.files_checked += 1
                report.bytes_checked += fc.size
                if stored != fc.path:
                    report.files.notes.append(f"{fc.path}: 文件名以另一种 Unicode 形式存储 / the name is stored "
                                              "in another Unicode normalisation form")
        report.files.faults.extend(fc.faults)
    progress.end()
    for key, stored in found.items():
        if key not in checks and stored not in FIXED:
            report.files.add(stored, "多出的文件：清单中没有列出 / added file: not listed in the manifest")
    return checks


# ------------------------------------------------------------------------------- chain

class BadLine(ValueError):
    pass


def _int(value, name: str) -> int:
    if not is_int(value):
        raise BadLine(f"{name} is not an integer")
    return value


def _str(value, name: str, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise BadLine(f"{name} is not a string")
    return value


def _hex(value, name: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise BadLine(f"{name} is not a SHA-256 hex digest")
    return value


def parse_event(chain, line: str):
    """One line of events.jsonl as the chain module's ``Sealed``; ``at`` back to an aware datetime,
    so ``event_bytes`` formats it to the same string and the same bytes the server hashed."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise BadLine(f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BadLine("not a JSON object")
    missing = [k for k in ("seq", "id", "at", "actor", "action", "tbl", "row_key", "row_hash", "detail",
                           "prev_hash", "hash") if k not in data]
    if missing:
        raise BadLine(f"missing {', '.join(missing)}")
    try:
        at = datetime.fromisoformat(_str(data["at"], "at"))
    except ValueError as exc:
        raise BadLine(f"at is not an ISO 8601 time ({exc})") from exc
    return chain.Sealed(
        seq=_int(data["seq"], "seq"), id=_int(data["id"], "id"), at=at,
        actor=_str(data["actor"], "actor"), action=_str(data["action"], "action"), tbl=_str(data["tbl"], "tbl"),
        row_key=_str(data["row_key"], "row_key"), row_hash=_str(data["row_hash"], "row_hash", nullable=True),
        detail=data["detail"], prev_hash=_hex(data["prev_hash"], "prev_hash"), hash=_hex(data["hash"], "hash"))


def event_body(chain, e) -> bytes:
    try:
        return chain.event_bytes(e.seq, e.id, e.at, e.actor, e.action, e.tbl, e.row_key, e.row_hash, e.detail)
    except (UnicodeEncodeError, OverflowError, ValueError) as exc:
        # A lone surrogate cannot be UTF-8; a time that leaves the calendar in UTC cannot be formatted.
        raise BadLine(f"the event cannot be encoded ({exc})") from exc


def _line_name(line: str, number: int) -> str:
    # Name what a damaged line still says about itself, so the fault points at an event if it can.
    try:
        data = json.loads(line)
        return f"line {number} (seq {data.get('seq')}, event {data.get('id')})"
    except (ValueError, AttributeError):
        return f"line {number}"


def chain_problem(problem: str) -> str:
    for start, zh in CHAIN_PROBLEMS_ZH:
        if problem.startswith(start):
            return f"{zh} / {problem}"
    return f"链错误 / {problem}"


@dataclass(frozen=True)
class Statement:
    seq: int
    head: str
    key: str
    at: str
    prev: tuple[int, str] | None


def parse_statement(text) -> Statement:
    if not isinstance(text, str):
        raise ValueError("the statement is not text")
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
        raise ValueError("not a checkpoint statement")
    seq, head, key, prev = data.get("seq"), data.get("head"), data.get("key"), data.get("prev")
    if not is_int(seq) or not isinstance(head, str) or not HEX64.fullmatch(head) or not isinstance(key, str):
        raise ValueError("seq, head or key is missing or malformed")
    previous = None
    if prev is not None:
        if not isinstance(prev, dict) or not is_int(prev.get("seq")) or not isinstance(prev.get("head"), str):
            raise ValueError("prev is malformed")
        previous = (prev["seq"], prev["head"])
    return Statement(seq, head, key, str(data.get("at")), previous)


@dataclass
class TrustedKey:
    zh: str         # what the key is, for messages
    en: str
    key: Any
    key_id: str


@dataclass
class ChainState:
    start_seq: int | None = None
    end_seq: int | None = None
    present: set[int] = field(default_factory=set)        # wanted seqs found in the stretch
    faulty: dict[int, str] = field(default_factory=dict)  # wanted seq -> its fault


def trusted_keys(files: dict[str, FileCheck], folder: Path, published, crypto: Crypto, report: Report) -> list:
    keys: list[TrustedKey] = []
    shipped_check = files.get("chain/public_key.pem")
    shipped = None
    if shipped_check is None:
        report.checkpoints.add("chain/public_key.pem", "清单未列出服务器公钥 / the manifest does not list the "
                                                       "server key")
    elif shipped_check.present:
        try:
            shipped = load_ed25519((folder / shipped_check.path).read_bytes(), crypto)
        except (OSError, ValueError) as exc:
            report.checkpoints.add(shipped_check.path, f"无法读取服务器公钥 / cannot read the server key: {exc}")
    else:
        report.checkpoints.add(shipped_check.path, "服务器公钥缺失，无法核验检查点签名 / the server key is missing: "
                                                   "the checkpoint signatures cannot be checked")
    if shipped is not None:
        keys.append(TrustedKey("随包服务器公钥", "the server key in the package", shipped,
                               raw_key_id(shipped, crypto)))
        report.keys.append(f"chain/public_key.pem key id {keys[-1].key_id}")
    if published is not None:
        pub = TrustedKey("公布的公钥", "the published key", published, raw_key_id(published, crypto))
        keys.append(pub)
        report.keys.append(f"--public-key key id {pub.key_id}")
        if shipped is not None and keys[0].key_id != pub.key_id:
            report.checkpoints.add("chain/public_key.pem", "随包服务器公钥与公布的公钥不同 / the server key in the "
                                                           "package differs from the published key")
    else:
        report.warnings.append("检查点公钥随证据包附带，请与服务器另行公布的公钥比对，或用 --public-key 指定 / the "
                               "checkpoint key came with the package: compare its key id with the published one, "
                               "or pass --public-key")
    return keys


def check_checkpoint(label: str, entry, keys: list[TrustedKey], crypto: Crypto, report: Report) -> Statement | None:
    """One checkpoint's statement, signatures and columns; return its statement if it can be read."""
    if not isinstance(entry, dict):
        report.checkpoints.add(f"checkpoint {label}", "不是检查点对象 / is not a checkpoint object")
        return None
    what = f"checkpoint {label} (seq {entry.get('seq')})"
    try:
        stated = parse_statement(entry.get("statement"))
    except (ValueError, TypeError) as exc:
        report.checkpoints.add(what, f"签名声明无法读取 / its signed statement cannot be read ({exc})")
        return None
    try:
        signature = base64.b64decode(str(entry.get("signature")), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    for trusted in keys:
        if stated.key != trusted.key_id:
            report.checkpoints.add(what, f"不是用{trusted.zh}签署的 / not signed with {trusted.en}")
            continue
        try:
            trusted.key.verify(signature, entry["statement"].encode("utf-8"))
        except (crypto.invalid_signature, ValueError):
            report.checkpoints.add(what, f"签名与声明不符（{trusted.zh}）：检查点被改动 / the signature does not "
                                         f"match the statement ({trusted.en}): the checkpoint was altered")
    if (stated.seq, stated.head, stated.key) != (entry.get("seq"), entry.get("head_hash"), entry.get("key_id")):
        report.checkpoints.add(what, "其字段与签名的声明不一致 / its columns differ from what was signed")
    if entry.get("tsa_token"):
        report.checkpoints.notes.append(f"{what}: 时间戳令牌未离线核验 / its RFC 3161 timestamp token is not "
                                        "checked offline")
    return stated


def walk_events(chain, path: Path, start: tuple[int, str], end: int | None, wanted: set[int],
                state: ChainState, report: Report) -> str | None:
    """Walk events.jsonl line by line (never all in memory) from ``start``; return the hash the chain
    recomputes at ``end`` (None if the stretch does not reach it)."""
    walk = chain.ChainWalk(*start)
    at_end = None
    beyond = False
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    event = parse_event(chain, line)
                    body = event_body(chain, event)
                except BadLine as exc:
                    name = _line_name(line, number)
                    report.chain.add(name, f"该行无法读取 / the line cannot be read: {exc}")
                    continue
                fault = walk.step(event)
                if fault:
                    problem = chain_problem(fault.problem)
                    report.chain.add(f"seq {fault.seq}, event {fault.event_id}", problem)
                    if fault.seq in wanted:
                        state.faulty[fault.seq] = problem
                if event.seq in wanted:
                    state.present.add(event.seq)
                if end is not None and event.seq == end:
                    at_end = chain.link(event.prev_hash, body)
                elif end is not None and event.seq > end and not beyond:
                    beyond = True
                    report.chain.add(f"seq {event.seq}, event {event.id}",
                                     f"在检查点 B（seq {end}）之后，无签名担保 / comes after checkpoint B "
                                     f"(seq {end}): no signature vouches for it")
    except UnicodeDecodeError as exc:
        report.chain.add(path.name, f"不是 UTF-8 文本，无法核验 / is not UTF-8 text, cannot be checked: {exc}")
    except OSError as exc:
        report.chain.add(path.name, f"无法读取 / cannot be read: {exc}")
    report.events = walk.count
    return at_end


def check_chain(folder: Path, manifest: dict, files: dict[str, FileCheck], chain, crypto: Crypto, published,
                wanted: set[int], report: Report) -> ChainState:
    """Rule 3: both checkpoints are signed by the trusted key(s); the events link from A's head to B's."""
    state = ChainState()
    keys = trusted_keys(files, folder, published, crypto, report)
    declared = manifest.get("chain") if isinstance(manifest.get("chain"), dict) else {}
    from_seq, to_seq = declared.get("from_seq"), declared.get("to_seq")
    report.chain_range = (from_seq, to_seq)
    if not is_int(from_seq) or not is_int(to_seq):
        report.manifest.add("chain", "清单未给出链的范围 from_seq / to_seq / the manifest gives no chain range")
    entries = None
    cp_check = files.get("chain/checkpoints.json")
    if cp_check is None or not cp_check.present:
        report.checkpoints.add("chain/checkpoints.json", "检查点文件缺失或未列出，无法核验链 / the checkpoints file is "
                                                         "missing or not listed: the chain cannot be checked")
    else:
        try:
            entries = read_json_file(folder / cp_check.path)
        except (OSError, ValueError) as exc:
            report.checkpoints.add(cp_check.path, f"无法读取 / cannot be read: {exc}")
    a_entry = b_entry = None
    if entries is not None:
        if isinstance(entries, list) and len(entries) == 2:
            a_entry, b_entry = entries
        elif isinstance(entries, list) and len(entries) == 1 and from_seq == 0:
            b_entry = entries[0]   # the stretch starts at the genesis: nothing before it to sign
        else:
            report.checkpoints.add(cp_check.path, "应恰好包含检查点 A 与 B / should hold exactly checkpoints A and B")
    a = check_checkpoint("A", a_entry, keys, crypto, report) if a_entry is not None else None
    b = check_checkpoint("B", b_entry, keys, crypto, report) if b_entry is not None else None
    if a_entry is None and b_entry is not None:
        start = (0, chain.GENESIS)
        if from_seq != 0:
            report.checkpoints.add("checkpoint A", f"缺少检查点 A，但清单的 from_seq 为 {from_seq} 而非 0 / checkpoint A is "
                                                   f"missing, yet the manifest's from_seq is {from_seq}, not 0")
    elif a is not None:
        start = (a.seq, a.head)
    else:
        start = None
    if a is not None and is_int(from_seq) and a.seq != from_seq:
        report.checkpoints.add(f"checkpoint A (seq {a.seq})", f"与清单的 from_seq {from_seq} 不符 / differs from "
                                                              f"the manifest's from_seq {from_seq}")
    if b is not None and is_int(to_seq) and b.seq != to_seq:
        report.checkpoints.add(f"checkpoint B (seq {b.seq})", f"与清单的 to_seq {to_seq} 不符 / differs from the "
                                                              f"manifest's to_seq {to_seq}")
    if b is not None and start is not None and b.seq <= start[0]:
        report.checkpoints.add(f"checkpoint B (seq {b.seq})", f"不在检查点 A（seq {start[0]}）之后 / does not come "
                                                              f"after checkpoint A (seq {start[0]})")
    if a is not None and b is not None and b.prev is not None and b.prev[0] == a.seq and b.prev[1] != a.head:
        report.checkpoints.add(f"checkpoint B (seq {b.seq})", "所签的前一检查点与 A 不符 / the previous checkpoint it "
                                                              "signs differs from A")
    ev_check = files.get("chain/events.jsonl")
    if ev_check is None or not ev_check.present:
        report.chain.add("chain/events.jsonl", "链事件文件缺失或未列出，无法核验链 / the chain events file is missing "
                                               "or not listed: the chain cannot be checked")
        return state
    if start is None or b is None:
        report.chain.add("chain/events.jsonl", "没有可读的检查点 A 与 B，链无法锚定 / no readable checkpoints A and B: "
                                               "the chain is anchored to nothing")
        return state
    state.start_seq, state.end_seq = start[0], b.seq
    reached = walk_events(chain, folder / ev_check.path, start, b.seq, wanted, state, report)
    what = f"checkpoint B (seq {b.seq})"
    if reached is None:
        report.checkpoints.add(what, f"链未到达位置 {b.seq}：有事件被删除 / the chain does not reach position "
                                     f"{b.seq}: events were removed")
    elif reached != b.head:
        report.checkpoints.add(what, f"链在位置 {b.seq} 重新计算的哈希不是所签的哈希：其前的事件被改动、删除或重新链接 / "
                                     f"the chain at position {b.seq} does not have the signed hash: events before "
                                     "it were changed, removed or re-linked")
    return state


# ------------------------------------------------------------------------------- items

@dataclass
class RevisionCheck:
    faults: list[Fault]
    envelope: dict | None


def check_revision(folder: Path, rev: FileCheck, signing, crypto: Crypto, keys_cache: dict,
                   files: dict[str, FileCheck]) -> RevisionCheck:
    """Rule 2: a revision as signed on the phone, with its device's key."""
    faults: list[Fault] = []
    envelope = None

    def fault(what: str, problem: str) -> RevisionCheck:
        # The envelope, once read, goes back even when its signature cannot hold: the item's other
        # checks (its device, its original) still say what they find.
        faults.append(Fault(what, problem))
        return RevisionCheck(faults, envelope)

    try:
        data = read_json_file(folder / rev.path)
    except (OSError, ValueError) as exc:
        return fault(rev.path, f"修订无法读取 / the revision cannot be read: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("envelope"), dict):
        return fault(rev.path, "修订不含 envelope 对象 / the revision holds no envelope object")
    device_id, signature = data.get("device_id"), data.get("signature")
    if not isinstance(device_id, str) or not re.fullmatch(r"[0-9A-Za-z_.-]{1,100}", device_id):
        return fault(rev.path, "修订未给出有效的设备编号 / the revision names no valid device id")
    envelope = data["envelope"]
    if envelope.get("device_id") != device_id:
        fault(rev.path, "修订的设备编号与签名内容中的不同 / the revision's device_id differs from the signed one")
    key_path = f"devices/{device_id}.pem"
    key_check = files.get(nfc(key_path))
    if key_check is None:
        return fault(key_path, "清单未列出该设备公钥 / the manifest does not list this device key")
    if not key_check.present:
        return fault(key_path, "设备公钥缺失，签名无法核验 / the device key is missing: the signature cannot be checked")
    if key_path not in keys_cache:
        try:
            der = pem_der((folder / key_check.path).read_bytes().decode("ascii"))
            keys_cache[key_path] = signing.load_public_key(der)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            keys_cache[key_path] = exc
    key = keys_cache[key_path]
    if isinstance(key, Exception):
        return fault(key_path, f"不是有效的 P-256 设备公钥 / not a valid P-256 device key: {key}")
    try:
        message = signing.canonical_bytes(envelope)
    except ValueError as exc:
        return fault(rev.path, f"签名内容无法规范化（RFC 8785） / the signed envelope cannot be canonicalised: {exc}")
    try:
        raw = signing.b64url_decode(signature if isinstance(signature, str) else "")
    except ValueError:
        raw = b""
    if not signing.verify(key, raw, message):
        fault(rev.path, "设备签名不成立：修订内容被改动或非该设备所签 / the device signature does not hold: the "
                        "revision was changed or not signed by this device")
    return RevisionCheck(faults, envelope)


def _file_faults(result: ItemResult, files: dict[str, FileCheck], path, role: str, label: str) -> FileCheck | None:
    if not safe_path(path):
        result.add(f"item {result.item}", f"{label}路径无效 / the {role} path is invalid: {path!r}")
        return None
    fc = files.get(nfc(path))
    if fc is None:
        result.add(path, f"{label}未在清单 files 中列出 / the {role} is not listed in the manifest's files")
        return None
    if fc.role != role:
        result.add(path, f"在清单中的角色是 {fc.role!r}，不是 {role} / its role in the manifest is {fc.role!r}, "
                         f"not {role}")
    result.faults.extend(fc.faults)
    return fc


def _about(item: dict) -> str:
    maker = item.get("maker") if isinstance(item.get("maker"), dict) else {}
    captured = item.get("captured_at") if isinstance(item.get("captured_at"), dict) else {}
    parts = [("制作人 / maker", " ".join(str(maker[k]) for k in ("name", "cert_no") if maker.get(k))),
             ("设备 / device", maker.get("device_id") or maker.get("camera_serial")),
             ("拍摄（设备） / captured (device)", captured.get("device")),
             ("接收（服务器） / received (server)", captured.get("server"))]
    return "; ".join(f"{label}: {value}" for label, value in parts if value)


def check_item(item, folder: Path, files: dict[str, FileCheck], state: ChainState, signing, crypto: Crypto,
               caches: dict, report: Report) -> ItemResult:
    if not isinstance(item, dict):
        result = ItemResult(None, "", "")
        result.add("item", "不是项目对象 / is not an item object")
        return result
    number, original = item.get("item"), item.get("original")
    result = ItemResult(number, original if isinstance(original, str) else "", str(item.get("kind") or ""))
    result.about = _about(item)
    name = f"item {number}"
    # the original and its preview (rule 1)
    orig = _file_faults(result, files, original, "original", "原件")
    if orig is not None and orig.entry.get("item") != number:
        result.add(orig.path, "清单中该原件属于另一项目 / the manifest lists this original under another item")
    preview = item.get("preview")
    if preview is not None:
        prev = _file_faults(result, files, preview, "preview", "预览图")
        if prev is not None and prev.entry.get("of") != original:
            result.add(prev.path, "预览图不是该原件的 / the preview is not of this original")
    # the revision and its device key (rule 2)
    record, maker = item.get("record"), item.get("maker") if isinstance(item.get("maker"), dict) else {}
    if record is None:
        if result.kind != "footage":
            result.add(name, "没有手机签名的修订 / has no revision signed on a phone")
        else:
            result.notes.append("执法记录仪视频：无手机签名，完整性由哈希与审计链证明 / body-camera footage: no phone "
                                "signature; its integrity rests on the hashes and the audit chain")
    elif not isinstance(record, dict):
        result.add(name, "record 不是对象 / record is not an object")
    else:
        _check_record(result, record, maker, orig, folder, files, signing, crypto, caches)
    # the chain (rule 3) and the chain events the item names
    if not report.chain_ok:
        result.add("chain", "审计链或检查点不通过（见上） / the audit chain or its checkpoints fail (see above)")
    seqs = item.get("chain")
    if not isinstance(seqs, list) or not all(is_int(s) for s in seqs):
        result.add(name, "未给出有效的链事件序号列表 / gives no valid list of chain events")
    else:
        for seq in seqs:
            if state.start_seq is not None and not state.start_seq < seq <= state.end_seq:
                result.add(f"seq {seq}", f"所引链事件不在检查点 A 与 B 之间（{state.start_seq}, {state.end_seq}] / the "
                                         f"chain event it names is outside (A, B] = ({state.start_seq}, "
                                         f"{state.end_seq}]")
            elif state.start_seq is not None and seq not in state.present:
                result.add(f"seq {seq}", "所引链事件不在 chain/events.jsonl 中 / the chain event it names is not in "
                                         "chain/events.jsonl")
            elif seq in state.faulty:
                result.add(f"seq {seq}", f"所引链事件有问题 / the chain event it names fails: {state.faulty[seq]}")
    return result


def _check_record(result: ItemResult, record: dict, maker: dict, orig: FileCheck | None, folder: Path,
                  files: dict[str, FileCheck], signing, crypto: Crypto, caches: dict) -> None:
    rid, revision, path = record.get("id"), record.get("revision"), record.get("path")
    if not isinstance(rid, str) or not is_int(revision) or path != f"revisions/{rid}/{revision}.json":
        result.add(str(path), "修订路径与记录编号、修订号不符 / the revision path does not match the record id "
                              "and revision")
    rev = _file_faults(result, files, path, "revision", "修订")
    if record.get("withdrawn") is True:
        result.notes.append("该记录已撤回 / the record was withdrawn")
    if rev is None or not rev.present:
        return
    if rev.path not in caches["revisions"]:
        caches["revisions"][rev.path] = check_revision(folder, rev, signing, crypto, caches["keys"], files)
    checked = caches["revisions"][rev.path]
    result.faults.extend(checked.faults)
    envelope = checked.envelope
    if envelope is None:
        return
    if envelope.get("record_id") != rid or envelope.get("revision") != revision:
        result.add(rev.path, "签名内容中的记录编号或修订号与清单不符 / the signed record id or revision differs from "
                             "the manifest")
    if "type" in record and envelope.get("record_type") != record["type"]:
        result.add(rev.path, "签名内容中的记录类型与清单不符 / the signed record type differs from the manifest")
    device_id = envelope.get("device_id")
    key_path = f"devices/{device_id}.pem"
    if maker.get("device_key") != key_path or maker.get("device_id") != device_id:
        result.add(rev.path, f"制作设备与签名设备不一致（应为 {key_path}） / the maker's device is not the signing "
                             f"device (expected {key_path})")
    key_check = files.get(nfc(key_path))
    if key_check is not None:
        if key_check.role != "device_key":
            result.add(key_path, f"在清单中的角色是 {key_check.role!r}，不是 device_key / its role in the manifest is "
                                 f"{key_check.role!r}, not device_key")
        result.faults.extend(f for f in key_check.faults if f not in result.faults)
    digest = orig.sha256 if orig is not None and orig.present else None
    if digest is None and orig is not None and isinstance(orig.entry.get("sha256"), str):
        digest = orig.entry["sha256"].lower()
    media = envelope.get("media") if isinstance(envelope.get("media"), list) else []
    if not any(isinstance(m, dict) and m.get("alg") == "sha-256" and m.get("hash") == digest for m in media):
        result.add(orig.path if orig is not None else rev.path,
                   "签名的修订未列出该原件的 SHA-256：原件被替换或改动 / the signed revision does not name this "
                   "original's SHA-256: the original was replaced or changed")
    withdrawn = envelope.get("withdrawn_media") if isinstance(envelope.get("withdrawn_media"), list) else []
    if any(isinstance(m, dict) and m.get("hash") == digest for m in withdrawn):
        result.notes.append("该修订将此原件列为撤回 / this revision lists the original as withdrawn")


def check_items(folder: Path, manifest: dict, files: dict[str, FileCheck], state: ChainState, signing,
                crypto: Crypto, report: Report) -> None:
    caches: dict = {"revisions": {}, "keys": {}}
    seen = set()
    for item in manifest["items"]:
        result = check_item(item, folder, files, state, signing, crypto, caches, report)
        if result.item in seen:
            result.add(f"item {result.item}", "项目编号重复 / the item number is used twice")
        seen.add(result.item if is_int(result.item) else id(result))
        report.items.append(result)
    if not report.items:
        report.manifest.add("items", "证据包中没有项目 / the package holds no items")


def wanted_seqs(manifest: dict) -> set[int]:
    return {s for item in manifest["items"] if isinstance(item, dict) and isinstance(item.get("chain"), list)
            for s in item["chain"] if is_int(s)}


# -------------------------------------------------------------------------------- report

def _section_lines(title: str, section: Section) -> list[str]:
    lines = [f"{title}: {verdict(section.ok)}"]
    lines += [f"  - {f.what}: {f.problem}" for f in section.faults]
    lines += [f"  注意 / note: {n}" for n in section.notes]
    return lines


def render(report: Report) -> str:
    lines = ["证据包离线核验报告 / Offline evidence package verification report", "",
             f"证据包 / package: {report.folder}"]
    if report.package_id or report.case:
        lines.append(f"证据包编号 / package id: {report.package_id}; 案件 / case: {report.case}")
    lines += [f"程序 / program: {HERE / name} sha256 {digest}" for name, digest in report.programs.items()]
    lines.append(f"SM3: {report.sm3_source}")
    lines += [f"检查点公钥 / checkpoint key: {k}" for k in report.keys]
    lines += [f"警告 / WARNING: {w}" for w in report.warnings]
    lines.append(f"已核验 {report.files_checked} 个文件，共 {report.bytes_checked} 字节；链事件 {report.events} 个"
                 f"（A seq {report.chain_range[0]} → B seq {report.chain_range[1]}） / checked {report.files_checked} "
                 f"files, {report.bytes_checked} bytes; {report.events} chain events")
    lines.append("")
    lines += _section_lines("清单 / manifest", report.manifest)
    lines += _section_lines("文件 / files", report.files)
    lines += _section_lines("审计链 / audit chain", report.chain)
    lines += _section_lines("检查点 / checkpoints", report.checkpoints)
    for item in report.items:
        lines.append("")
        lines.append(f"项目 {item.item} / item {item.item} ({item.kind}) {item.original}: {verdict(item.ok)}")
        if item.about:
            lines.append(f"  {item.about}")
        lines += [f"  - {f.what}: {f.problem}" for f in item.faults]
        lines += [f"  注意 / note: {n}" for n in item.notes]
    lines.append("")
    if report.ok:
        lines.append("结论 / result: 通过 — 未发现篡改 / PASSED — nothing was found altered")
    else:
        n = report.fault_count()
        lines.append(f"结论 / result: 不通过 — {n} 处问题 / FAILED — {n} problems")
    return "\n".join(lines)


def as_json(report: Report) -> dict:
    return {
        "format": FORMAT, "package": str(report.folder), "package_id": report.package_id,
        "ok": report.ok, "verdict": verdict(report.ok), "programs": report.programs, "sm3": report.sm3_source,
        "keys": report.keys, "warnings": report.warnings,
        "files_checked": report.files_checked, "bytes_checked": report.bytes_checked, "events": report.events,
        "manifest": report.manifest.as_dict(), "files": report.files.as_dict(), "chain": report.chain.as_dict(),
        "checkpoints": report.checkpoints.as_dict(), "items": [i.as_dict() for i in report.items],
    }


# ---------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="离线核验证据包 / verify an evidence package offline")
    p.add_argument("folder", type=Path, help="证据包文件夹 / the package folder")
    p.add_argument("--public-key", type=Path, default=None,
                   help="服务器公布的检查点公钥 PEM / the checkpoint key the server publishes, PEM; "
                        "default: only chain/public_key.pem shipped with the package")
    p.add_argument("--json", action="store_true", help="以 JSON 输出 / print the report as JSON")
    return p.parse_args(argv)


def verify(args: argparse.Namespace) -> Report:
    if sys.version_info < (3, 11):
        raise Unusable("需要 Python 3.11 或更高版本 / Python 3.11 or later is needed")
    if not args.folder.is_dir():
        raise Unusable(f"不是文件夹 / not a folder: {args.folder}")
    folder = args.folder.resolve()
    manifest = load_manifest(folder)
    crypto = load_crypto()
    chain, signing = load_helpers()
    sm3_new, sm3_source = sm3_factory(crypto)
    published = None
    if args.public_key is not None:
        try:
            published = load_ed25519(args.public_key.read_bytes(), crypto)
        except (OSError, ValueError) as exc:
            raise Unusable(f"无法读取公钥 / cannot read the public key {args.public_key}: {exc}") from exc
    report = Report(folder=folder, sm3_source=sm3_source)
    report.package_id = str(manifest.get("package_id") or "")
    case = manifest.get("case") if isinstance(manifest.get("case"), dict) else {}
    report.case = " ".join(str(case[k]) for k in ("number", "party") if case.get(k))
    report.programs = {name: sha256_file(HERE / name) for name in PROGRAMS if (HERE / name).is_file()}
    files = check_files(folder, manifest, sm3_new, report)
    state = check_chain(folder, manifest, files, chain, crypto, published, wanted_seqs(manifest), report)
    check_items(folder, manifest, files, state, signing, crypto, report)
    return report


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # A console that cannot show Chinese must not turn a verdict into a traceback.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    try:
        report = verify(args)
    except Unusable as exc:
        if args.json:
            print(json.dumps({"ok": False, "verdict": "无法核验", "unusable": str(exc)}, ensure_ascii=False))
        print(f"无法核验 / cannot verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(report), ensure_ascii=False, indent=1))
    else:
        print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
