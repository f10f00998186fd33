"""A small evidence package (decision record 015) made without the app's builder, from the real parts:
revisions signed by ``SoftDevice`` as a phone signs them, chain events hashed by ``chain.py``,
checkpoint statements made by ``checkpoints.statement`` and signed with an Ed25519 key, the helper
copies and both offline verifiers. Three items: a photo, a questioning video (each in a signed
revision) and body-camera footage (no revision); names in Chinese.

The tampering helpers below change a copy of a package the way someone without the keys could.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from fieldapp.records import chain, keys
from fieldapp.records import checkpoints as cp
from fieldapp.sync.push import SIGNED_FIELDS
from tests.support.soft_device import SoftDevice
from tests.support.videos import make_video

REPO = Path(__file__).resolve().parents[2]
OFFLINE = REPO / "fieldapp" / "documents" / "offline"
T0 = datetime(2026, 11, 27, 1, 0, 12, 345678, tzinfo=UTC)
OFFICER = {"id": "5b1f3c8e-2a4d-4f0e-9c61-7d2e8a0b4c19", "name": "张伟", "cert_no": "37030319001"}
FORMAT = "fieldapp-evidence-package/1"

# (file name of the original, kind, MIME type)
PHOTO = ("现场照片-货架.jpg", "photo", "image/jpeg")
VIDEO = ("询问录像（当事人）.mp4", "video", "video/mp4")
FOOTAGE = ("执法记录仪-DSJ0001.mp4", "footage", "video/mp4")


@dataclass
class Evidence:
    root: Path
    server_key: Ed25519PrivateKey
    devices: list[SoftDevice]
    manifest: dict
    events: list[dict] = field(default_factory=list)   # the whole chain, from seq 1

    def item(self, number: int) -> dict:
        return next(i for i in self.manifest["items"] if i["item"] == number)

    def published_pem(self) -> bytes:
        return public_pem(self.server_key)

    def copy(self, to: Path) -> Path:
        """A fresh copy of the package to tamper with."""
        return Path(shutil.copytree(self.root, to))


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def digests(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sm3": hashlib.new("sm3", data).hexdigest(),
            "size": len(data)}


def jpeg(width: int, height: int, shade: int) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 4 + shade) % 256, (y * 5) % 256, (x + y + shade) % 256)
                   for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def pdf(title: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), (255, 255, 255)).save(out, "PDF", title=title)
    return out.getvalue()


def _write_json(path: Path, value) -> bytes:
    data = (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _event(seq: int, prev: str, *, actor: str, action: str, tbl: str, row_key: str, row_hash: str | None,
           detail) -> dict:
    at = T0 + timedelta(minutes=seq, microseconds=seq * 7919)
    body = chain.event_bytes(seq, 1000 + seq, at, actor, action, tbl, row_key, row_hash, detail)
    # As flask audit-export writes a line (records/export.py): EVENT_KEYS in order, `at` as chain._at.
    return {"seq": seq, "id": 1000 + seq, "at": chain._at(at), "actor": actor, "action": action, "tbl": tbl,
            "row_key": row_key, "row_hash": row_hash, "detail": detail, "prev_hash": prev,
            "hash": chain.link(prev, body)}


def _checkpoint(key: Ed25519PrivateKey, number: int, event: dict, previous: dict | None) -> dict:
    at = datetime.fromisoformat(event["at"]) + timedelta(seconds=30)
    kid = keys.key_id(key.public_key())
    raw = cp.statement(event["seq"], event["hash"], at, kid,
                       (previous["seq"], previous["head_hash"]) if previous else None)
    # As records/export.py writes a checkpoint.
    return {"id": number, "seq": event["seq"], "head_hash": event["hash"], "at": chain._at(at), "key_id": kid,
            "statement": raw.decode("ascii"), "signature": base64.b64encode(key.sign(raw)).decode("ascii"),
            "tsa_token": None, "reason": "daily"}


def _signed_revision(device: SoftDevice, record_id: str, revision: int, payload: dict, media: list) -> dict:
    signed = device.revision(record_id, revision, payload, media=media, author=OFFICER["id"],
                             device_time="2026-11-27T01:02:03.456Z")
    envelope = {k: signed[k] for k in SIGNED_FIELDS}
    return {"envelope": envelope, "signature": signed["signature"], "device_id": device.device_id}


def build(root: Path) -> Evidence:
    """Write a valid package into ``root`` (made here; must not exist yet)."""
    root = Path(root)
    root.mkdir(parents=True)
    server_key = Ed25519PrivateKey.generate()
    phone, second_phone = SoftDevice(author=OFFICER["id"]), SoftDevice(author=OFFICER["id"])
    files: list[dict] = []

    def put(path: str, data: bytes, role: str, mime: str, **extra) -> dict:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        entry = {"path": path, "role": role, **digests(data), "type": mime, **extra}
        files.append(entry)
        return entry

    # --- originals and previews
    scratch = root.parent / f".{root.name}-media"
    scratch.mkdir()
    video = make_video(scratch / "v.mp4", seconds=1.0, size=(64, 48)).read_bytes()
    footage = make_video(scratch / "f.mp4", seconds=1.0, size=(48, 32), start=T0).read_bytes()
    shutil.rmtree(scratch)
    originals = [(PHOTO, jpeg(64, 48, 0)), (VIDEO, video), (FOOTAGE, footage)]
    placed = []
    for number, ((name, kind, mime), data) in enumerate(originals, start=1):
        stem = name.rsplit(".", 1)[0]
        original = put(f"originals/{number:03d}-{name}", data, "original", mime, item=number)
        preview = put(f"previews/{number:03d}-{stem}-预览.jpg", jpeg(32, 24, number * 40), "preview", "image/jpeg",
                      item=number, of=original["path"])
        placed.append((number, kind, original, preview))

    # --- revisions as signed on the phones, and the phones' keys
    media = [{"alg": "sha-256", "hash": o["sha256"], "size": o["size"], "type": o["type"]} for _, _, o, _ in placed]
    records = [
        (phone, str(uuid.uuid4()), 2, {"notes": "货架上的过期食品，共 12 件", "step": "on_site_check",
                                       "lat_e6": 36825139, "lon_e6": 118304236}, [media[0]]),
        (second_phone, str(uuid.uuid4()), 1, {"notes": "询问当事人王某，全程录像", "step": "questioning"}, [media[1]]),
    ]
    revisions = []
    for device, record_id, revision, payload, item_media in records:
        data = _signed_revision(device, record_id, revision, payload, item_media)
        path = f"revisions/{record_id}/{revision}.json"
        put(path, (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8"), "revision",
            "application/json")
        revisions.append((record_id, revision, path, device))
    for device in (phone, second_phone):
        pem = device.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        put(f"devices/{device.device_id}.pem", pem, "device_key", "application/x-pem-file")

    # --- the audit chain: seq 1–3 before checkpoint A, 4–8 in the package up to checkpoint B
    prev, events = chain.GENESIS, []
    plan = [
        dict(actor="system", action="baseline", tbl="units", row_key="unit:W01", row_hash="a" * 64, detail=None),
        dict(actor=f"user:{OFFICER['id']}", action="change", tbl="cases", row_key="1", row_hash=None,
             detail={"rows": [{"key": "cases:7", "hash": "b" * 64, "op": "insert"}]}),
        dict(actor="system", action="baseline", tbl="users", row_key="user:1", row_hash="c" * 64, detail=None),
        dict(actor=f"user:{OFFICER['id']}", action="change", tbl="synced_records", row_key="1", row_hash=None,
             detail={"rows": [{"key": f"synced_records:{revisions[0][0]}", "hash": "d" * 64, "op": "insert"}]}),
        dict(actor=f"user:{OFFICER['id']}", action="original", tbl="", row_key=f"sha-256:{media[0]['hash']}",
             row_hash=None, detail={"why": "证据包制作（第 29 条）", "how": "下载原件", "from": "10.0.0.8",
                                    "大小": media[0]["size"], "z-order": [3, 1, 2]}),
        dict(actor=f"user:{OFFICER['id']}", action="change", tbl="synced_records", row_key="1", row_hash=None,
             detail={"rows": [{"key": f"synced_records:{revisions[1][0]}", "hash": "e" * 64, "op": "insert"}]}),
        dict(actor="station:DS-01", action="change", tbl="footage", row_key="1", row_hash=None,
             detail={"rows": [{"key": f"footage:{media[2]['hash'][:16]}", "hash": "f" * 64, "op": "insert"}],
                     "camera": "DSJ0001", "note": "工作站导入\n第 1 批"}),
        dict(actor="cli:evidence-package", action="export", tbl="", row_key="package", row_hash=None,
             detail={"grant": "FZ-2026-0001", "items": 3}),
    ]
    for seq, spec in enumerate(plan, start=1):
        event = _event(seq, prev, **spec)
        events.append(event)
        prev = event["hash"]
    a = _checkpoint(server_key, 1, events[2], None)
    b = _checkpoint(server_key, 2, events[7], a)
    lines = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events[3:])
    put("chain/events.jsonl", lines.encode("utf-8"), "chain_events", "application/x-ndjson")
    put("chain/checkpoints.json", (json.dumps([a, b], ensure_ascii=False, indent=1) + "\n").encode("utf-8"),
        "chain_checkpoints", "application/json")
    put("chain/public_key.pem", public_pem(server_key), "server_key", "application/x-pem-file")

    # --- the written documents
    put("证据说明.pdf", pdf("证据说明"), "explanation", "application/pdf")
    put("电子数据证据提取笔录.pdf", pdf("电子数据证据提取笔录"), "extraction_record", "application/pdf")

    # --- what every package carries unlisted
    (root / "README.txt").write_text("核验方法 / How to verify: python3 verify.py .  或用浏览器打开 verify.html\n",
                                     encoding="utf-8")
    (root / "fieldapp_chain.py").write_bytes((REPO / "fieldapp/records/chain.py").read_bytes())
    (root / "fieldapp_signing.py").write_bytes((REPO / "fieldapp/sync/signing.py").read_bytes())
    for name in ("verify.py", "verify.html"):
        (root / name).write_bytes((OFFLINE / name).read_bytes())

    items = []
    item_chain = {1: [4, 5], 2: [6], 3: [7]}
    for number, kind, original, preview in placed:
        rev = revisions[number - 1] if number <= len(revisions) else None
        device = rev[3] if rev else None
        items.append({
            "item": number, "original": original["path"], "preview": preview["path"], "kind": kind,
            "maker": {"name": OFFICER["name"], "cert_no": OFFICER["cert_no"],
                      "device_id": device.device_id if device else None,
                      "device_key": f"devices/{device.device_id}.pem" if device else None,
                      "camera_serial": "DSJ0001" if kind == "footage" else None},
            "captured_at": {"device": "2026-11-27T01:02:03.456Z" if rev else None,
                            "server": "2026-11-27T01:05:00.000000+00:00"},
            "place": {"text": "临淄区齐都镇鲜果超市", "lat_e6": 36825139, "lon_e6": 118304236},
            "record": ({"id": rev[0], "revision": rev[1], "path": rev[2], "type": "step", "withdrawn": False}
                       if rev else None),
            "sm3_source": "extraction",
            "proves": "当事人经营场所货架上存放过期食品" if number == 1 else "询问经过与陈述内容",
            "transcript": None,
            "chain": item_chain[number],
        })
    manifest = {
        "format": FORMAT,
        "software": {"name": "fieldapp", "version": "test"},
        "bureau": "临淄区市场监督管理局",
        "package_id": str(uuid.uuid4()),
        "case": {"id": str(uuid.uuid4()), "number": "临市监罚〔2026〕12号", "kind": "penalty",
                 "party": "临淄区齐都镇鲜果超市"},
        "grant": {"number": "FZ-2026-0001"},
        "extraction": {"by": {"name": OFFICER["name"], "cert_no": OFFICER["cert_no"]},
                       "at": "2026-11-27T02:00:00Z", "method": "系统导出", "place": "临淄区市场监督管理局"},
        "files": files,
        "items": items,
        "chain": {"from_seq": a["seq"], "to_seq": b["seq"]},
    }
    _write_json(root / "manifest.json", manifest)
    return Evidence(root, server_key, [phone, second_phone], manifest, events)


# ----------------------------------------------------------------------------- tampering

def read_manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(root: Path, manifest: dict) -> None:
    _write_json(root / "manifest.json", manifest)


def flip_byte(root: Path, path: str, offset: int | None = None) -> None:
    """Change one byte of a file (the middle one unless told), keeping its size."""
    data = bytearray((root / path).read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    (root / path).write_bytes(bytes(data))


def change_listed_hash(root: Path, path: str, alg: str = "sha256") -> None:
    """Change the hash the manifest lists for ``path``, leaving the file alone."""
    manifest = read_manifest(root)
    entry = next(f for f in manifest["files"] if f["path"] == path)
    entry[alg] = ("0" if entry[alg][0] != "0" else "1") + entry[alg][1:]
    write_manifest(root, manifest)


def change_revision_payload(root: Path, path: str, key: str = "notes", value="货架上的食品均在保质期内") -> None:
    """Rewrite a revision's signed payload, keeping its signature."""
    data = json.loads((root / path).read_text(encoding="utf-8"))
    data["envelope"]["payload"][key] = value
    (root / path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def read_events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "chain/events.jsonl").read_text(encoding="utf-8").splitlines()]


def write_events(root: Path, events: list[dict]) -> None:
    (root / "chain/events.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events), encoding="utf-8")


def change_event(root: Path, seq: int, **changes) -> None:
    """Edit one chain event's fields, keeping its recorded hashes."""
    events = read_events(root)
    next(e for e in events if e["seq"] == seq).update(changes)
    write_events(root, events)


def break_checkpoint_signature(root: Path, index: int = 1) -> None:
    """Flip a bit of a checkpoint's signature (0: A, 1: B)."""
    path = root / "chain/checkpoints.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    raw = bytearray(base64.b64decode(entries[index]["signature"]))
    raw[10] ^= 0x01
    entries[index]["signature"] = base64.b64encode(bytes(raw)).decode("ascii")
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def start_from_genesis(root: Path, evidence: Evidence) -> None:
    """Make the package's chain stretch start at the chain's beginning, as the builder does when no
    checkpoint precedes the items' events: every event from seq 1, checkpoints [null, B], from_seq 0."""
    write_events(root, evidence.events)
    path = root / "chain/checkpoints.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps([None, entries[1]], ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    manifest = read_manifest(root)
    manifest["chain"]["from_seq"] = 0
    for entry in manifest["files"]:
        if entry["path"] in ("chain/events.jsonl", "chain/checkpoints.json"):
            entry.update(digests((root / entry["path"]).read_bytes()))
    write_manifest(root, manifest)


def remove_file(root: Path, path: str) -> None:
    (root / path).unlink()


def add_file(root: Path, path: str, data: bytes = b"not part of the package\n") -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
