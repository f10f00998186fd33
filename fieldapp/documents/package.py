"""Building an evidence package (art. 27): the originals of a case byte for byte, their previews,
the signed revisions they belong to, the audit-chain events about them between two signed
checkpoints, the written explanation and the extraction record, and two offline verifiers — as a
folder, then a ZIP and disc images. The format is docs/decisions/015-evidence-package.md.

Everything the package says is read from the database first, in one read transaction, into plain
values (:class:`Plan`); the bytes are then copied with no transaction open. The ZIP and the images
are written under temporary names and renamed only when complete, and the package row says
``ready`` only after that: a package cut short is never offered for download.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from flask import current_app
from sqlalchemy import String, and_, or_, select, type_coerce, update

from .. import db
from ..i18n import local_time
from ..media import storage as media_store
from ..media.service import media_storage
from ..models import (AccessGrant, AuditCheckpoint, AuditEvent, Case, Device, EvidencePackage, EvidenceUse,
                      FootageSegment, Media, MediaRef, Revision, SyncedRecord, User, utcnow)
from ..records import grants, service as audit
from ..records.export import _checkpoint_record, _event_record
from ..sync.verification import envelope_of
from ..version import APP_VERSION

log = logging.getLogger(__name__)

FORMAT = "fieldapp-evidence-package/1"
BUREAU = "临淄区市场监督管理局"
EXPLANATION = "证据说明.pdf"
EXTRACTION_RECORD = "电子数据证据提取笔录.pdf"
FIXED = ("manifest.json", "verify.html", "verify.py", "README.txt", "fieldapp_chain.py", "fieldapp_signing.py")
COPY_BYTES = 4 * 1024 * 1024
CHAIN_TABLES = ("media", "media_refs", "footage_segments", "records", "revisions", "access_uses", "original_access")


class PackageRefused(ValueError):
    """A package the rules do not allow (no active copy grant, nothing selected); says why."""


# ------------------------------------------------------------------------------------ the plan


@dataclass
class Item:
    number: int
    alg: str
    hash: str
    kind: str
    name: str
    mime: str
    size: int
    preview: str | None  # derivative name: preview | poster
    maker: dict
    captured_at: dict
    place: dict | None
    record: dict | None  # {"id", "revision", "type", "withdrawn"}
    revision_seq: int | None
    device_id: str | None
    sm3: str | None  # computed at ingest (footage); else computed while copying
    proves: str = ""
    transcript: str = ""
    chain: list[int] = field(default_factory=list)
    sm3_source: str = "extraction"  # ingest: the station's file was hashed with SM3 as it arrived

    @property
    def original_path(self) -> str:
        return f"originals/{self.number:03d}-{self.name}"

    @property
    def preview_path(self) -> str | None:
        return f"previews/{self.number:03d}-{Path(self.name).stem}-预览.jpg" if self.preview else None


@dataclass
class Plan:
    package_id: uuid.UUID
    case: dict
    grant: dict
    extraction: dict
    items: list[Item]
    revisions: dict[tuple[str, int], dict]  # (record id, revision) -> {"envelope", "signature", "device_id"}
    devices: dict[str, bytes]  # device id -> SPKI DER
    checkpoints: list[dict]  # [A (or None: from the chain's start), B]
    events_from: int
    events_to: int
    register: list[dict]
    process: str


def _safe_name(name: str, fallback: str) -> str:
    name = re.sub(r"[\x00-\x1f/\\:*?\"<>|]+", "_", (name or "").strip())[:80].strip(" .")
    return name or fallback


def _ext(mime: str | None) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
            "video/mp4": ".mp4", "video/quicktime": ".mov", "audio/mp4": ".m4a", "audio/mpeg": ".mp3",
            "audio/aac": ".aac", "video/webm": ".webm", "audio/webm": ".weba"}.get(mime or "", "")


def selectable(grant: AccessGrant) -> list[tuple[str, str]]:
    return grants.objects(grant)


def start(grant: AccessGrant, by: User, *, selected: list[tuple[str, str]], statements: dict, method: str,
          place: str, process: str) -> EvidencePackage:
    """Register a package under ``grant`` (in the caller's transaction); :func:`build` makes it."""
    if not grants.may_copy(grant, by):
        raise PackageRefused("须持有效的复制批准，由音像记录管理员制作 / A package needs an approved, unexpired copy "
                             "grant and is made by the records administrator")
    if grant.subject_kind != "case":
        raise PackageRefused("证据包按案件制作 / A package is made for a case")
    covered = set(grants.objects(grant))
    chosen = [key for key in selected if key in covered]
    if not chosen:
        raise PackageRefused("请至少选择一个文件 / Choose at least one file")
    items = [{"alg": a, "hash": h, "proves": (statements.get(h, {}).get("proves") or "").strip()[:4000],
              "transcript": (statements.get(h, {}).get("transcript") or "").strip()[:20000]} for a, h in chosen]
    package = EvidencePackage(case_id=uuid.UUID(grant.subject_id), unit_id=grant.unit_id, grant_id=grant.id,
                              built_by=by.id, items=items, method=(method or "").strip()[:2000],
                              place=(place or "").strip()[:200], process=(process or "").strip()[:4000])
    db.session().add(package)
    db.session().flush()
    return package


def plan(package: EvidencePackage) -> Plan:
    """Everything the package says, read in the caller's (read) transaction."""
    s = db.session()
    case = s.get(Case, package.case_id)
    grant = s.get(AccessGrant, package.grant_id)
    builder = s.get(User, package.built_by)
    items: list[Item] = []
    revisions: dict[tuple[str, int], dict] = {}
    devices: dict[str, bytes] = {}
    for number, wanted in enumerate(package.items, start=1):
        item = _item(number, wanted["alg"], wanted["hash"], package.case_id, package.unit_id)
        item.proves, item.transcript = wanted.get("proves", ""), wanted.get("transcript", "")
        items.append(item)
        if item.record is not None:
            rev = s.execute(select(Revision).where(Revision.record_id == uuid.UUID(item.record["id"]),
                                                   Revision.revision == item.record["revision"])).scalar_one()
            revisions[(item.record["id"], item.record["revision"])] = {
                "envelope": envelope_of(rev), "signature": _b64url(rev.signature), "device_id": str(rev.device_id)}
            device = s.get(Device, rev.device_id)
            devices[str(rev.device_id)] = bytes(device.public_key)
    chain_range = _chain_items(items)
    return Plan(
        package_id=package.id,
        case={"id": str(case.id), "number": case.case_number, "kind": case.kind, "party": case.party_name},
        grant=grants.grant_for_manifest(grant),
        extraction={"by": {"name": builder.name, "cert_no": builder.cert_no}, "at": utcnow().isoformat(),
                    "method": package.method or "从执法记录系统存储中按哈希原样复制，逐个计算 SHA-256 与 SM3 并与登记值核对",
                    "place": package.place or BUREAU},
        items=items, revisions=revisions, devices=devices, register=_register_excerpt(grant, items),
        process=package.process, **chain_range)


def _item(number: int, alg: str, digest: str, case_id: uuid.UUID, unit_id: uuid.UUID) -> Item:
    s = db.session()
    media = s.get(Media, (alg, digest))
    segment = s.execute(select(FootageSegment).where(FootageSegment.alg == alg, FootageSegment.hash == digest)
                        ).scalar_one_or_none()
    if segment is not None:
        officer = s.execute(select(User).where(User.cert_no == segment.officer_no)).scalar_one_or_none() \
            if segment.officer_no else None
        return Item(number, alg, digest, "footage", _safe_name(segment.file_name, f"{digest[:12]}.mp4"),
                    "video/mp4", segment.size, "poster" if "poster" in (segment.previews or []) else None,
                    {"name": officer.name if officer else "", "cert_no": segment.officer_no or "", "device_id": None,
                     "device_key": None, "camera_serial": segment.camera_serial},
                    {"device": segment.started_at.isoformat(), "server": segment.ingested_at.isoformat()},
                    None, None, None, None, segment.sm3)
    # A photo or clip: the first revision of this unit's records of the case that names it — the
    # capture itself: who took it, on which phone, when (a later edit of the record is not the capture).
    ref = s.execute(select(MediaRef, SyncedRecord).join(SyncedRecord, SyncedRecord.id == MediaRef.record_id)
                    .where(MediaRef.alg == alg, MediaRef.hash == digest, SyncedRecord.case_id == case_id,
                           MediaRef.unit_id == unit_id)
                    .order_by(MediaRef.revision, SyncedRecord.created_at)).first()
    if ref is None or media is None:
        raise PackageRefused(f"找不到文件 {digest[:12]} 的记录 / no record of file {digest[:12]}")
    media_ref, record = ref
    rev = s.execute(select(Revision).where(Revision.record_id == record.id, Revision.revision == media_ref.revision)
                    ).scalar_one()
    author = s.get(User, rev.author_id)
    named = next((m for m in (rev.media or []) if m.get("hash") == digest), {})
    name = _safe_name(named.get("name") or "", f"{digest[:12]}{_ext(media.mime)}")
    if not Path(name).suffix:
        name += _ext(media.mime)
    place = (rev.payload or {}).get("place") or None
    if media.lat_e6 is not None:
        place = {**(place or {}), "lat_e6": media.lat_e6, "lon_e6": media.lon_e6}
    kind = {"image": "photo", "video": "video", "audio": "audio"}.get(media.kind or "", media.kind or "file")
    # Withdrawn: the whole record, or this file taken out of it by a later revision (art. 30: shown, not dropped).
    later = s.execute(select(Revision.withdrawn_media).where(Revision.record_id == record.id,
                                                             Revision.revision > rev.revision)).scalars()
    withdrawn = bool(record.withdrawn) or any(m.get("hash") == digest for media_list in later
                                               for m in (media_list or []) if isinstance(m, dict))
    return Item(number, alg, digest, kind, name, media.mime or "application/octet-stream", media.size or 0,
                "preview" if "preview" in (media.previews or []) else None,
                {"name": author.name, "cert_no": author.cert_no, "device_id": str(rev.device_id),
                 "device_key": f"devices/{rev.device_id}.pem", "camera_serial": None},
                {"device": media.taken_at.isoformat() if media.taken_at else rev.device_time,
                 "server": rev.received_at.isoformat()},
                place, {"id": str(record.id), "revision": rev.revision, "type": record.record_type,
                        "withdrawn": withdrawn},
                rev.seq, str(rev.device_id), media.sm3)


def _chain_items(items: list[Item]) -> dict:
    """The events about each item, and the checkpoints that bracket them: A, the last signed before
    the first of them (or the chain's start), and B, signed now."""
    s = db.session()
    # B first: only events it vouches for can be named (an access logged a moment later is not).
    last = s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc())
                     .limit(1)).scalar_one()
    # The detail is searched as the text it is stored as (its type would JSON-encode the needle).
    detail = type_coerce(AuditEvent.detail, String)
    for item in items:
        about = [detail.contains(item.hash), AuditEvent.row_key.contains(item.hash)]
        if item.record:
            about += [detail.contains(item.record["id"]),
                      and_(AuditEvent.tbl == "revisions", detail.contains(f"[[{item.revision_seq}],"))]
        rows = s.execute(select(AuditEvent.seq).where(
            AuditEvent.seq.is_not(None), AuditEvent.seq <= last.seq, AuditEvent.tbl.in_(CHAIN_TABLES + ("",)),
            or_(*about)).order_by(AuditEvent.seq)).scalars()
        item.chain = list(rows)
    first = min((seq for item in items for seq in item.chain), default=last.seq)
    before = s.execute(select(AuditCheckpoint).where(AuditCheckpoint.seq < first)
                       .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc()).limit(1)).scalar_one_or_none()
    return {"checkpoints": [_checkpoint_record(before) if before else None, _checkpoint_record(last)],
            "events_from": before.seq if before else 0, "events_to": last.seq}


def _register_excerpt(grant: AccessGrant, items: list[Item]) -> list[dict]:
    from ..records import register
    keep = {i.hash[:12] for i in items}
    rows = register.rows({grant.unit_id}, register.Filters())
    return [{"at": local_time(r.at), "who": r.requester, "by": r.by, "action": register.ACTIONS.get(r.action, r.action),
             "approver": r.approver, "purpose": r.purpose, "what": r.what} for r in rows
            if any(k in r.what for k in keep) or r.grant_id == grant.id][:200]


def _b64url(raw: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")


# ------------------------------------------------------------------------------------ writing


def packages_dir() -> Path:
    return current_app.config["FIELDAPP_SETTINGS"].var_dir / "packages"


def _hash_copy(src, dst: Path) -> tuple[str, str, int]:
    sha, sm3, size = hashlib.sha256(), hashlib.new("sm3"), 0
    with dst.open("wb") as out:
        while chunk := src.read(COPY_BYTES):
            sha.update(chunk)
            sm3.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return sha.hexdigest(), sm3.hexdigest(), size


def _file_digests(path: Path) -> tuple[str, str, int]:
    with path.open("rb") as src:
        sha, sm3, size = hashlib.sha256(), hashlib.new("sm3"), 0
        while chunk := src.read(COPY_BYTES):
            sha.update(chunk)
            sm3.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), sm3.hexdigest(), size


def write_folder(p: Plan, folder: Path) -> dict:
    """The package as a folder; returns the manifest written."""
    store = media_storage()
    files: list[dict] = []

    def listed(path: str, role: str, **extra) -> dict:
        sha, sm3, size = _file_digests(folder / path)
        entry = {"path": path, "role": role, "sha256": sha, "sm3": sm3, "size": size, **extra}
        files.append(entry)
        return entry

    for item in p.items:
        target = folder / item.original_path
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(item.alg, item.hash) as src:
            sha, sm3, size = _hash_copy(src, target)
        if sha != item.hash:  # the store no longer holds what was registered: never package it silently
            raise PackageRefused(f"存储中的文件 {item.hash[:12]} 与登记的哈希不符 / stored bytes of {item.hash[:12]} "
                                 "no longer match their hash")
        if item.sm3 and item.sm3 != sm3:
            raise PackageRefused(f"文件 {item.hash[:12]} 的 SM3 与采集时不符 / SM3 of {item.hash[:12]} differs from ingest")
        item.sm3_source, item.sm3 = ("ingest" if item.sm3 else "extraction"), sm3
        files.append({"path": item.original_path, "role": "original", "sha256": sha, "sm3": sm3, "size": size,
                      "type": item.mime, "item": item.number})
        if item.preview:
            try:
                data = store.get_derivative(item.alg, item.hash, item.preview)
            except media_store.MediaNotFound:
                item.preview = None
            else:
                (folder / item.preview_path).parent.mkdir(parents=True, exist_ok=True)
                (folder / item.preview_path).write_bytes(data)
                listed(item.preview_path, "preview", of=item.original_path, type="image/jpeg", item=item.number)
    for (record_id, number), signed in sorted(p.revisions.items()):
        path = f"revisions/{record_id}/{number}.json"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(json.dumps(signed, ensure_ascii=False, sort_keys=True, indent=1), encoding="utf-8")
        listed(path, "revision", record_id=record_id, revision=number)
    from cryptography.hazmat.primitives import serialization
    for device_id, der in sorted(p.devices.items()):
        path = f"devices/{device_id}.pem"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        key = serialization.load_der_public_key(der)
        (folder / path).write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
        listed(path, "device_key", device_id=device_id)
    _write_chain(p, folder)
    for path, role in (("chain/events.jsonl", "chain_events"), ("chain/checkpoints.json", "chain_checkpoints"),
                       ("chain/public_key.pem", "server_key")):
        listed(path, role)
    _write_pdfs(p, folder, files)
    for path, role in ((EXPLANATION, "explanation"), (EXTRACTION_RECORD, "extraction_record")):
        listed(path, role)
    _write_fixed(folder)
    manifest = {
        "format": FORMAT, "software": {"name": "fieldapp", "version": APP_VERSION}, "bureau": BUREAU,
        "package_id": str(p.package_id), "case": p.case, "grant": p.grant, "extraction": p.extraction,
        "files": files,
        "items": [{"item": i.number, "original": i.original_path, "preview": i.preview_path if i.preview else None,
                   "kind": i.kind, "maker": i.maker, "captured_at": i.captured_at, "place": i.place,
                   "record": ({**i.record, "path": f"revisions/{i.record['id']}/{i.record['revision']}.json"}
                              if i.record else None),
                   "sm3_source": i.sm3_source, "proves": i.proves,
                   "transcript": i.transcript or None, "chain": i.chain} for i in p.items],
        "chain": {"from_seq": p.events_from, "to_seq": p.events_to},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _write_chain(p: Plan, folder: Path) -> None:
    from ..records import keys
    chain = folder / "chain"
    chain.mkdir(parents=True, exist_ok=True)
    t = AuditEvent.__table__
    from ..records.export import EVENT_KEYS
    with (chain / "events.jsonl").open("w", encoding="utf-8", newline="\n") as fh, db.reading() as s:
        after = p.events_from
        while after < p.events_to:  # sealed events never change: paging by seq reads one consistent run
            rows = s.execute(select(*[t.c[k] for k in EVENT_KEYS]).where(t.c.seq > after, t.c.seq <= p.events_to)
                             .order_by(t.c.seq).limit(20_000)).all()
            for r in rows:
                fh.write(json.dumps(_event_record(r), ensure_ascii=False, separators=(",", ":")) + "\n")
            if not rows:
                break
            after = rows[-1].seq
    (chain / "checkpoints.json").write_text(json.dumps(p.checkpoints, ensure_ascii=False, indent=1) + "\n",
                                            encoding="utf-8")
    (chain / "public_key.pem").write_text(keys.public_pem(audit.public_key()), encoding="utf-8")


def _write_pdfs(p: Plan, folder: Path, files: list[dict]) -> None:
    from . import evidence_docs
    (folder / EXPLANATION).write_bytes(evidence_docs.explanation(p, files))
    (folder / EXTRACTION_RECORD).write_bytes(evidence_docs.extraction_record(p, files))


def _resource(package: str, *parts: str) -> bytes:
    node = resources.files(package)
    for part in parts:
        node = node / part
    return node.read_bytes()


def _write_fixed(folder: Path) -> None:
    (folder / "verify.py").write_bytes(_resource("fieldapp.documents", "offline", "verify.py"))
    (folder / "verify.html").write_bytes(_resource("fieldapp.documents", "offline", "verify.html"))
    (folder / "fieldapp_chain.py").write_bytes(_resource("fieldapp.records", "chain.py"))
    (folder / "fieldapp_signing.py").write_bytes(_resource("fieldapp.sync", "signing.py"))
    (folder / "README.txt").write_text(README, encoding="utf-8")


README = """\
证据包 / Evidence package
========================

【中文】
本文件夹是临淄区市场监督管理局执法记录系统导出的证据包。任何人无需信任局方服务器，即可离线核验：
  1. 用浏览器打开 verify.html，点击“选择证据包文件夹”，选中本文件夹，逐项显示“通过/不通过”；
  2. 或在装有 Python 3.11 与 cryptography 的电脑上运行：python3 verify.py 本文件夹
     （建议加 --public-key 指定局方另行公布的服务器公钥）。
核验内容：每个文件的 SHA-256 与 SM3；每条记录修订的设备签名（ECDSA P-256）；审计链事件的哈希链接；
两个检查点的服务器签名（Ed25519）。manifest.json 列出每个文件及其来源。

[English]
This folder is an evidence package exported by the enforcement records system of the Linzi District
Market Supervision Administration. Anyone can check it offline without trusting the bureau's server:
  1. open verify.html in a browser, choose this folder, and read 通过 (passed) / 不通过 (failed) per item;
  2. or run: python3 verify.py THIS_FOLDER   (Python 3.11 and the cryptography package; add
     --public-key with the server key the bureau publishes separately).
It checks each file's SHA-256 and SM3, each revision's device signature (ECDSA P-256), the audit-chain
events' hash links, and both checkpoints' server signatures (Ed25519). manifest.json lists every file.
"""


def write_zip(folder: Path, target: Path, root: str) -> tuple[str, int]:
    """The folder as a ZIP (stored, not compressed: originals are already compressed media, and a
    stored member is what a court's tool reads most easily), UTF-8 names, ZIP64 for large files."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True, strict_timestamps=False) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
        with partial.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        size = partial.stat().st_size
        os.replace(partial, target)
        return digest, size
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def build(package_id: uuid.UUID, *, disc_capacity: int | None = None) -> EvidencePackage | None:
    """Make the package: claim it (one builder only), sign a checkpoint so its newest events are
    vouched for, read the plan, copy the bytes, write the ZIP and the disc images, then mark it
    ready — or failed, with why, and nothing of it left. None when another builder has it."""
    from . import disc
    from ..records import retention
    with db.transaction() as s:
        claimed = s.execute(update(EvidencePackage).where(EvidencePackage.id == package_id,
                                                          EvidencePackage.state == "queued")
                            .values(state="building")).rowcount
    if claimed != 1:
        return None
    out = packages_dir() / str(package_id)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=_ensure(packages_dir())))
    try:
        audit.checkpoint_now("evidence package")
        with db.reading():
            p = plan(db.session().get(EvidencePackage, package_id))
        folder = work / "package"
        folder.mkdir()
        write_folder(p, folder)  # bytes move with no transaction open
        root = f"证据包-{_safe_name(p.case['number'] or p.case['id'][:8], 'case')}-{datetime.now().strftime('%Y%m%d')}"
        out.mkdir(parents=True, exist_ok=True)
        zip_name = f"{root}.zip"
        digest, size = write_zip(folder, out / zip_name, root)
        written = disc.write_discs(folder, out, capacity=disc_capacity or disc.DVD_BYTES, label="FIELDAPP")
        discs = [{"name": d.path.name, "label": d.label, "size": d.size, "files": len(d.files),
                  "sha256": _file_digests(d.path)[0]} for d in written]
        with db.transaction() as s:
            row = s.get(EvidencePackage, package_id)
            row.state, row.finished_at = "ready", utcnow()
            row.zip_name, row.zip_size, row.zip_sha256, row.discs = zip_name, size, digest, discs
            for item in p.items:  # art. 26 (一): what went into a package is used as evidence, kept for ever
                s.add(EvidenceUse(alg=item.alg, hash=item.hash, source="export", ref=str(package_id),
                                  by_id=row.built_by))
    except Exception as exc:
        shutil.rmtree(out, ignore_errors=True)  # nothing of a failed package stays to be offered
        with db.transaction() as s:
            row = s.get(EvidencePackage, package_id)
            row.state, row.error, row.finished_at = "failed", str(exc)[:2000], utcnow()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    retention.recompute_and_apply({(i.alg, i.hash) for i in p.items})
    return row


INLINE_BYTES = 256 * 1024 * 1024  # larger packages are built beside the request
STALE_HOURS = 6  # a build not finished by then died with its process


def total_size(package: EvidencePackage) -> int:
    s = db.session()
    keys = [(i["alg"], i["hash"]) for i in package.items]
    return sum(size or 0 for (size,) in s.execute(select(Media.size).where(
        or_(*[and_(Media.alg == a, Media.hash == h) for a, h in keys])))) if keys else 0


def build_in_background(app, package_id: uuid.UUID) -> threading.Thread:
    """Build in a thread of this process; if the process dies first, ``build_queued`` (the CLI, from
    cron) marks the package failed after STALE_HOURS, and a new one can be built."""
    from ..records.capture import acting_as

    def run():
        with app.app_context(), acting_as("system:evidence-package"):
            try:
                build(package_id)
            except Exception:  # noqa: BLE001 — the row says failed, with why
                log.exception("evidence package %s failed", package_id)
    thread = threading.Thread(target=run, name=f"evidence-package-{package_id}", daemon=True)
    thread.start()
    return thread


def build_queued(now: datetime | None = None) -> dict:
    """Build every queued package, and fail those whose builder died (still building after STALE_HOURS)."""
    from datetime import timedelta
    now = now or utcnow()
    with db.transaction() as s:
        stale = list(s.execute(select(EvidencePackage).where(
            EvidencePackage.state == "building", EvidencePackage.built_at < now - timedelta(hours=STALE_HOURS))).scalars())
        for row in stale:
            row.state, row.finished_at = "failed", now
            row.error = "制作过程被中断 / the build was interrupted"
            shutil.rmtree(packages_dir() / str(row.id), ignore_errors=True)
    with db.reading() as s:
        queued = [row.id for row in s.execute(select(EvidencePackage).where(EvidencePackage.state == "queued")).scalars()]
    built = failed = 0
    for package_id in queued:
        try:
            built += build(package_id) is not None
        except Exception:  # noqa: BLE001 — recorded on the row
            failed += 1
    return {"built": built, "failed": failed, "interrupted": len(stale)}


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path

