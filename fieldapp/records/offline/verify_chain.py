#!/usr/bin/env python3
"""Offline check of an audit chain export: 审计链导出件的离线核验.

    pip install cryptography
    python3 verify_chain.py FOLDER [--public-key PUBLISHED_KEY.pem]

Needs only the Python standard library (3.11+) and ``cryptography``; it never talks to the server.
The chain rules come from ``fieldapp_chain.py`` next to THIS script — a verbatim copy of the
server's ``chain.py`` — so there is no second implementation that could disagree with the server.
To avoid trusting the programs shipped with an export, keep trusted copies of both files in a
folder of your own and run that ``verify_chain.py`` against the export; the SHA-256 of both files
is printed so they can be compared with the published ones.

What is checked: every event links to the one before and still hashes to its hash; every
checkpoint's statement is readable, names the trusted key (SHA-256 of the raw Ed25519 key), carries
a valid signature, and its signed head equals the hash the chain recomputes at that position — so a
stretch cut and re-linked by someone without the private key no longer meets any signature.

Exit status: 0 passed (通过), 1 failed (不通过), 2 unusable input (a missing or unreadable file).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
CHECKPOINT_KIND = "fieldapp-audit-checkpoint"   # as in the server's records/checkpoints.py
HEX64 = re.compile(r"[0-9a-f]{64}")


class Unusable(Exception):
    """The input cannot be checked at all (as opposed to checked and found wrong)."""


@dataclass
class Fault:
    part: str       # chain | checkpoint
    what: str       # "seq 5, event 12" | "checkpoint 1 (seq 40)" | "line 7"
    problem: str


@dataclass
class Report:
    folder: Path
    chain_sha256: str = ""
    script_sha256: str = ""
    key_id: str = ""
    key_source: str = ""
    events: int = 0
    head_seq: int = 0
    head_hash: str = ""
    checkpoints: int = 0
    valid_checkpoints: int = 0
    latest_valid: dict | None = None
    faults: list[Fault] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def add(self, part: str, what: str, problem: str) -> None:
        self.faults.append(Fault(part, what, problem))


# ----------------------------------------------------------------------------- loading

def load_chain_module():
    """Import ``fieldapp_chain`` from this script's folder (not the export's, not the current one)."""
    if not (HERE / "fieldapp_chain.py").is_file():
        raise Unusable(f"fieldapp_chain.py 不在核验程序所在文件夹 / is missing next to the verifier ({HERE})")
    # -I and -P leave the script's folder off sys.path; and keep __pycache__ out of the export.
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(HERE))
    import fieldapp_chain
    if Path(fieldapp_chain.__file__).resolve().parent != HERE:
        raise Unusable(f"fieldapp_chain was imported from {fieldapp_chain.__file__}, not from {HERE}")
    return fieldapp_chain


class Crypto(NamedTuple):
    invalid_signature: type[Exception]
    serialization: Any
    ed25519_public: type


def load_crypto() -> Crypto:
    # Imported here, not at the top, so a missing package is a clear message and exit 2, not a traceback.
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:
        raise Unusable(f"需要 cryptography 库 / the cryptography package is needed: "
                       f"pip install cryptography ({exc})") from exc
    return Crypto(InvalidSignature, serialization, Ed25519PublicKey)


def load_public_key(path: Path, crypto: Crypto):
    try:
        key = crypto.serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise Unusable(f"无法读取公钥 / cannot read the public key {path}: {exc}") from exc
    if not isinstance(key, crypto.ed25519_public):
        raise Unusable(f"{path} 不是 Ed25519 公钥 / is not an Ed25519 public key")
    return key


def raw_key_id(key, crypto: Crypto) -> str:
    """SHA-256 of the raw 32-byte key, as the server's ``keys.key_id`` computes it."""
    raw = key.public_bytes(crypto.serialization.Encoding.Raw, crypto.serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_checkpoints(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise Unusable(f"缺少文件 / missing file: {path}") from exc
    except (OSError, ValueError) as exc:
        raise Unusable(f"无法读取 / cannot read {path}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise Unusable(f"{path} 不是检查点列表 / is not a list of checkpoints")
    return data


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- events

class BadLine(ValueError):
    pass


def _int(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
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


def _line_name(line: str, number: int) -> str:
    # Name what a damaged line still says about itself, so the fault points at an event if it can.
    try:
        data = json.loads(line)
        return f"line {number} (seq {data.get('seq')}, event {data.get('id')})"
    except (ValueError, AttributeError):
        return f"line {number}"


def recomputed(chain, e) -> str:
    # What the chain *computes* at this position, not what the line claims: a re-linked stretch
    # carries self-consistent claimed hashes, but none of them equals a signed head.
    return chain.link(e.prev_hash, chain.event_bytes(e.seq, e.id, e.at, e.actor, e.action, e.tbl, e.row_key,
                                                     e.row_hash, e.detail))


def walk_events(chain, path: Path, wanted: set[int], report: Report) -> dict[int, str]:
    """Walk events.jsonl line by line (never all in memory); return the recomputed hash at each
    position a checkpoint names."""
    reached: dict[int, str] = {}
    walk = chain.ChainWalk()
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise Unusable(f"缺少或无法读取 / missing or unreadable: {path} ({exc})") from exc
    with fh:
        try:
            for number, line in enumerate(fh, start=1):
                try:
                    event = parse_event(chain, line)
                except BadLine as exc:
                    report.add("chain", _line_name(line, number), f"the line cannot be read: {exc}")
                    continue
                fault = walk.step(event)
                if fault:
                    report.add("chain", f"seq {fault.seq}, event {fault.event_id}", fault.problem)
                if event.seq in wanted:
                    reached[event.seq] = recomputed(chain, event)
        except UnicodeDecodeError as exc:
            raise Unusable(f"{path} 不是 UTF-8 文本 / is not UTF-8 text: {exc}") from exc
    report.events, report.head_seq, report.head_hash = walk.count, walk.seq, walk.hash
    return reached


# --------------------------------------------------------------------------- checkpoints

@dataclass(frozen=True)
class Statement:
    seq: int
    head: str
    key: str
    at: str


def parse_statement(raw: bytes) -> Statement:
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
        raise ValueError("not a checkpoint statement")
    return Statement(int(data["seq"]), str(data["head"]), str(data["key"]), str(data.get("at")))


def _statement_of(entry: dict) -> Statement | None:
    try:
        return parse_statement(str(entry["statement"]).encode("utf-8"))
    except (ValueError, KeyError, TypeError):
        return None


def positions_named(entries: list[dict]) -> set[int]:
    """Every position a checkpoint names, in its columns or its statement (they may disagree)."""
    wanted: set[int] = set()
    for entry in entries:
        if isinstance(entry.get("seq"), int):
            wanted.add(entry["seq"])
        stated = _statement_of(entry)
        if stated:
            wanted.add(stated.seq)
    return wanted


def check_checkpoint(entry: dict, reached: dict[int, str], trusted, trusted_id: str, crypto: Crypto,
                     report: Report) -> Statement | None:
    """Check one checkpoint; return its statement if it holds."""
    name = f"checkpoint {entry.get('id')} (seq {entry.get('seq')})"
    stated = _statement_of(entry)
    if stated is None:
        report.add("checkpoint", name, "its signed statement cannot be read")
        return None
    if stated.key != trusted_id:
        report.add("checkpoint", name, "signed with a key other than the trusted one")
        return None
    try:
        signature = base64.b64decode(str(entry.get("signature")), validate=True)
        trusted.verify(signature, str(entry["statement"]).encode("utf-8"))
    except (binascii.Error, ValueError, crypto.invalid_signature):
        report.add("checkpoint", name, "the signature does not match the statement: the checkpoint was altered")
        return None
    held = True
    if (stated.seq, stated.head, stated.key) != (entry.get("seq"), entry.get("head_hash"), entry.get("key_id")):
        report.add("checkpoint", name, "its columns differ from what was signed")
        held = False
    chain_hash = reached.get(stated.seq)
    if chain_hash is None:
        report.add("checkpoint", name, f"the chain does not reach position {stated.seq}: events were removed")
        held = False
    elif chain_hash != stated.head:
        report.add("checkpoint", name, f"the chain at position {stated.seq} does not have the signed hash: "
                                       "events before it were changed, removed or re-linked")
        held = False
    if entry.get("tsa_token"):
        report.notes.append(f"{name}: 时间戳令牌未离线核验 / its RFC 3161 timestamp token is not checked offline")
    return stated if held else None


def check_checkpoints(entries: list[dict], reached: dict[int, str], trusted, trusted_id: str, crypto: Crypto,
                      report: Report) -> None:
    report.checkpoints = len(entries)
    for entry in entries:
        stated = check_checkpoint(entry, reached, trusted, trusted_id, crypto, report)
        if stated is None:
            continue
        report.valid_checkpoints += 1
        if report.latest_valid is None or stated.seq >= report.latest_valid["seq"]:
            report.latest_valid = {"seq": stated.seq, "head": stated.head, "at": stated.at}
    _note_what_is_vouched_for(report)


def _note_what_is_vouched_for(report: Report) -> None:
    if report.checkpoints == 0:
        if report.events:
            # Without a signature anyone could have written this chain from scratch.
            report.add("checkpoint", "export", "no checkpoint: nothing signed by the trusted key vouches for this chain")
        return
    latest = report.latest_valid
    if latest and report.head_seq > latest["seq"]:
        report.notes.append(f"seq {latest['seq'] + 1}–{report.head_seq} 在最新检查点之后：已正确链接，但尚无签名担保 / "
                            f"come after the latest checkpoint: they link correctly, but no signature vouches for them yet")


# -------------------------------------------------------------------------------- report

def render(report: Report) -> str:
    lines = ["审计链离线核验报告 / Offline audit chain verification report", "",
             f"导出件 / export: {report.folder}",
             f"链规则 / chain rules: {HERE / 'fieldapp_chain.py'} sha256 {report.chain_sha256}",
             f"核验程序 / verifier: {Path(__file__).resolve()} sha256 {report.script_sha256}",
             f"可信公钥 / trusted key: {report.key_source}, key id {report.key_id}"]
    lines += [f"警告 / WARNING: {w}" for w in report.warnings]
    lines.append(f"链 / chain: {report.events} 个事件 / events; 链头 / head: seq {report.head_seq} "
                 f"hash {report.head_hash}")
    lines.append(f"检查点 / checkpoints: {report.checkpoints}, 有效 / valid: {report.valid_checkpoints}")
    if report.latest_valid:
        v = report.latest_valid
        lines.append(f"最新有效检查点 / latest valid checkpoint: seq {v['seq']} head {v['head']} at {v['at']} "
                     "— 请与服务器公布的最新检查点比对 / compare with the latest one the server publishes")
    lines += [f"注意 / note: {n}" for n in report.notes]
    lines.append("")
    if report.ok:
        lines.append("结论 / result: 通过 — 未发现篡改 / PASSED — nothing was found altered")
        return "\n".join(lines)
    n = len(report.faults)
    lines.append(f"结论 / result: 不通过 — {n} 处问题 / FAILED — {n} problems")
    for part, title in (("chain", "链 / chain"), ("checkpoint", "检查点 / checkpoints")):
        faults = [f for f in report.faults if f.part == part]
        if faults:
            lines += ["", f"{title} ({len(faults)}):"] + [f"  - {f.what}: {f.problem}" for f in faults]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="离线核验审计链导出件 / verify an audit chain export offline")
    p.add_argument("folder", type=Path, help="导出文件夹 / the export folder")
    p.add_argument("--public-key", type=Path, default=None,
                   help="可信（公布的）公钥 PEM / the trusted (published) public key, PEM; "
                        "default: public_key.pem shipped with the export")
    return p.parse_args(argv)


def _trusted_key(args, report: Report, crypto: Crypto):
    shipped = args.folder / "public_key.pem"
    if args.public_key is not None:
        trusted = load_public_key(args.public_key, crypto)
        report.key_source = f"--public-key {args.public_key}"
        if shipped.is_file():
            try:
                if raw_key_id(load_public_key(shipped, crypto), crypto) != raw_key_id(trusted, crypto):
                    report.warnings.append("导出件附带的 public_key.pem 与可信公钥不同 / the public_key.pem shipped "
                                           "with the export differs from the trusted key")
            except Unusable:
                report.warnings.append("导出件附带的 public_key.pem 无法读取 / the shipped public_key.pem cannot be read")
        return trusted
    if not shipped.is_file():
        raise Unusable(f"缺少文件 / missing file: {shipped} (或用 / or pass --public-key)")
    report.key_source = f"{shipped} (随导出附带 / shipped with the export)"
    report.warnings.append("公钥随导出件附带，请与服务器另行公布的公钥比对，或用 --public-key 指定 / the key came with "
                           "the export: compare its key id with the published one, or pass --public-key")
    return load_public_key(shipped, crypto)


def verify(args: argparse.Namespace) -> Report:
    if sys.version_info < (3, 11):
        raise Unusable("需要 Python 3.11 或更高版本 / Python 3.11 or later is needed")
    if not args.folder.is_dir():
        raise Unusable(f"不是文件夹 / not a folder: {args.folder}")
    report = Report(folder=args.folder.resolve())
    chain = load_chain_module()
    crypto = load_crypto()
    report.chain_sha256 = sha256_file(HERE / "fieldapp_chain.py")
    report.script_sha256 = sha256_file(Path(__file__).resolve())
    trusted = _trusted_key(args, report, crypto)
    report.key_id = raw_key_id(trusted, crypto)
    entries = load_checkpoints(args.folder / "checkpoints.json")
    events = args.folder / "events.jsonl"
    if not events.is_file():
        raise Unusable(f"缺少文件 / missing file: {events}")
    reached = walk_events(chain, events, positions_named(entries), report)
    check_checkpoints(entries, reached, trusted, report.key_id, crypto, report)
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
        print(f"无法核验 / cannot verify: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
