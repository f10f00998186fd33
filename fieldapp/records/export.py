"""An export of the audit chain that anyone holding it can check without trusting the server.

The folder carries the sealed events (``events.jsonl``), the signed checkpoints, the public key,
a verbatim copy of ``chain.py`` (stdlib only by design) and ``verify_chain.py``, which walks the
events with that very module and checks every checkpoint with ``cryptography`` alone. There is no
second implementation of the chain rules to drift: the offline verifier imports the server's.

A reader who does not trust the exporter either compares ``public_key.pem`` with the key published
out of band, or better runs a trusted copy of ``verify_chain.py`` + ``fieldapp_chain.py`` with
``--public-key`` pointing at the published key.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditCheckpoint, AuditEvent
from . import sealer
from .chain import GENESIS, _at

_PAGE = 20_000
EVENT_KEYS = ("seq", "id", "at", "actor", "action", "tbl", "row_key", "row_hash", "detail", "prev_hash", "hash")

README = """\
审计链导出 / Audit chain export
==============================

【中文】
本文件夹是执法记录系统审计链的导出件，任何持有者无需信任服务器即可自行核验。

  events.jsonl       已封存的审计事件，按序号（seq）排列，每行一个 JSON 对象；
                     每个事件的哈希 = SHA-256(前一事件哈希 ‖ 事件的规范 JSON)。
  checkpoints.json   检查点：服务器用 Ed25519 私钥对某一位置的链头哈希所作的签名。
  public_key.pem     服务器检查点公钥（随导出附带）。
  fieldapp_chain.py  服务器所用哈希链规则的原样副本（仅用 Python 标准库）。
  verify_chain.py    离线核验程序（仅需 Python 3.11+ 与 cryptography 库）。

核验方法：
  pip install cryptography
  python3 verify_chain.py .
  python3 verify_chain.py . --public-key 公布的公钥.pem   （推荐：使用另行公布的公钥）

结果为“通过”（退出码 0）或“不通过”（退出码 1，并列出每处问题的序号与事件编号）；
输入无法使用（如缺少文件）时退出码为 2。
随导出附带的公钥只能证明导出内部一致；请将其与服务器另行公布的公钥比对，或用 --public-key 指定公布的公钥。
如不信任随导出附带的程序，可将可信的 verify_chain.py 与 fieldapp_chain.py 放在另一文件夹中运行：
  python3 /可信目录/verify_chain.py 本文件夹 --public-key 公布的公钥.pem
核验程序会打印这两个程序文件的 SHA-256，便于与公布的版本比对。
最后一个检查点之后的事件虽已正确链接，但尚无签名担保；请将报告中的最新检查点与服务器公布的最新检查点比对。

[English]
This folder is an export of the audit chain of the enforcement records system. Anyone holding it
can check it without trusting the server that kept it.

  events.jsonl       the sealed audit events in chain order (seq), one JSON object per line;
                     each event's hash = SHA-256(previous hash || canonical JSON of the event).
  checkpoints.json   checkpoints: the chain head at a position, signed with the server's Ed25519 key.
  public_key.pem     the server's checkpoint public key (as shipped with this export).
  fieldapp_chain.py  a verbatim copy of the chain rules the server uses (Python standard library only).
  verify_chain.py    the offline verifier (needs only Python 3.11+ and the cryptography package).

To verify:
  pip install cryptography
  python3 verify_chain.py .
  python3 verify_chain.py . --public-key published_key.pem   (recommended: the key published separately)

The result is PASSED (exit code 0) or FAILED (exit code 1, naming every fault with its seq and event
id); unusable input (a missing file, say) exits with code 2.
The key shipped with the export only shows the export is consistent with itself: compare it with
the key the server publishes, or pass the published key with --public-key.
If you do not trust the programs shipped with the export, run trusted copies of verify_chain.py and
fieldapp_chain.py kept in another folder:
  python3 /trusted/verify_chain.py THIS_FOLDER --public-key published_key.pem
The verifier prints the SHA-256 of both program files so they can be compared with published ones.
Events after the last checkpoint link correctly but no signature vouches for them yet; compare the
latest checkpoint in the report with the latest one the server publishes.
"""


def write_chain_export(s: Session, folder: Path, public_pem: str, up_to_seq: int | None = None,
                       *, page: int = _PAGE) -> dict:
    """Write the chain (sealed events up to ``up_to_seq``, default: the head when the export starts)
    and everything needed to check it offline into ``folder``; return a summary."""
    folder = _prepare(Path(folder))
    # Pin the end first: the sealer keeps appending while we page, and an export must be one prefix
    # of the chain, with no checkpoint naming a position beyond its last event.
    head = sealer.head(s).seq
    up_to = head if up_to_seq is None else min(up_to_seq, head)
    count, head_seq, head_hash = _write_events(s, folder / "events.jsonl", up_to, page)
    checkpoints = _checkpoints(s, up_to)
    _write_text(folder / "checkpoints.json", json.dumps(checkpoints, ensure_ascii=False, indent=1) + "\n")
    _write_text(folder / "public_key.pem", public_pem)
    _write_text(folder / "README.txt", README)
    # Byte for byte, so the SHA-256 the verifier prints equals that of the published source file.
    (folder / "fieldapp_chain.py").write_bytes(_packaged("chain.py"))
    (folder / "verify_chain.py").write_bytes(_packaged("offline", "verify_chain.py"))
    return {"events": count, "checkpoints": len(checkpoints), "head_seq": head_seq, "head_hash": head_hash}


def _prepare(folder: Path) -> Path:
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"{folder} exists and is not a folder")
        if any(folder.iterdir()):
            # Never mix an export with older files: a stale events.jsonl next to fresh checkpoints
            # would fail verification for reasons that have nothing to do with the chain.
            raise ValueError(f"{folder} is not empty; export into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sealed_rows(s: Session, up_to: int, page: int = _PAGE) -> Iterator[dict]:
    """Sealed events with seq ≤ ``up_to`` in seq order, one page at a time (keyset on seq), so a chain
    of millions of events never sits in memory."""
    t = AuditEvent.__table__
    cols = [t.c[k] for k in EVENT_KEYS]
    after = 0
    while after < up_to:
        rows = s.execute(select(*cols).where(t.c.seq > after, t.c.seq <= up_to)
                         .order_by(t.c.seq).limit(page)).all()
        for r in rows:
            yield _event_record(r)
        if len(rows) < page:
            return
        after = rows[-1].seq


def _event_record(r) -> dict:
    record = dict(zip(EVENT_KEYS, r, strict=True))
    # The very string chain.event_bytes hashes, so the verifier can parse it back to the same bytes.
    record["at"] = _at(record["at"])
    return record


def _write_events(s: Session, path: Path, up_to: int, page: int) -> tuple[int, int, str]:
    count, head_seq, head_hash = 0, 0, GENESIS
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for record in sealed_rows(s, up_to, page):
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            count, head_seq, head_hash = count + 1, record["seq"], record["hash"]
    return count, head_seq, head_hash


def _checkpoints(s: Session, up_to: int) -> list[dict]:
    rows = s.execute(select(AuditCheckpoint).where(AuditCheckpoint.seq <= up_to)
                     .order_by(AuditCheckpoint.id)).scalars()
    return [_checkpoint_record(c) for c in rows]


def _checkpoint_record(c: AuditCheckpoint) -> dict:
    return {
        "id": c.id, "seq": c.seq, "head_hash": c.head_hash, "at": _at(c.at), "key_id": c.key_id,
        # The statement is ASCII JSON; as text it stays readable, and encoding it back gives the signed bytes.
        "statement": bytes(c.statement).decode("ascii"),
        "signature": _b64(c.signature), "tsa_token": _b64(c.tsa_token) if c.tsa_token is not None else None,
        "reason": c.reason,
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(bytes(raw)).decode("ascii")


def _packaged(*parts: str) -> bytes:
    # Read from the installed package (a wheel, a zip), not the source tree: what ships is what runs.
    resource = resources.files(__package__)
    for part in parts:
        resource = resource / part
    return resource.read_bytes()


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
