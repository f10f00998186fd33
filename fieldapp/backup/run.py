"""Taking a backup to another site, and restoring a fresh instance from one (arts. 7, 25).

A destination holds::

    LATEST                              the id of the newest complete backup
    backups/<id>/manifest.json          what the backup is (below), signed: manifest.sig (Ed25519,
                                        the audit chain's checkpoint key)
    backups/<id>/database.<ext>[.age]   a consistent copy of the database
    backups/<id>/objects.jsonl[.age]    every media object at backup time: key, size, SHA-256
    backups/<id>/checkpoints.jsonl      the audit chain's signed checkpoints, readable outside the
                                        database copy
    objects/<store key>[.age]           the media objects, content-addressed and shared by every
                                        backup: an incremental backup copies only what is new

Every object is read once, hashed while it is spooled to a local temporary file, checked against
its content address (originals) before anything is written, then (encrypted and) written whole.
A restore checks every hash again before an object enters the store. The manifest is written last:
a backup cut off half-way is not a backup, and the next run copies what it lacks.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, inspect, select, text

from .. import db
from ..media.storage import StoredObject, parse_object_key
from ..models import AuditCheckpoint, AuditEvent, BackupRun, ServerEpoch
from ..version import APP_VERSION
from . import database, sealing
from .destination import Destination

log = logging.getLogger(__name__)

FORMAT = "fieldapp-backup"
LATEST = "LATEST"
COPY_WORKERS = 4


class BackupError(RuntimeError):
    pass


@dataclass
class BackupResult:
    id: str
    skipped: list[str] = field(default_factory=list)  # objects whose bytes no longer match their address
    objects_total: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    new_bytes: int = 0  # bytes of the objects that were not at the destination yet
    database_bytes: int = 0
    chain_seq: int | None = None
    manifest: dict = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _sign(manifest_bytes: bytes) -> bytes | None:
    from ..records import service
    try:
        return service.private_key().sign(manifest_bytes)
    except Exception as exc:  # noqa: BLE001 - a backup without a signature is still a backup
        log.warning("backup manifest not signed: %s", exc)
        return None


def _chain_head(s) -> tuple[int | None, str | None]:
    seq = s.execute(select(func.max(AuditEvent.seq))).scalar()
    if seq is None:
        return None, None
    return seq, s.execute(select(AuditEvent.hash).where(AuditEvent.seq == seq)).scalar_one()


def _checkpoints(s) -> bytes:
    lines = []
    for row in s.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)).scalars():
        lines.append(json.dumps({"seq": row.seq, "head": row.head_hash, "at": row.at.isoformat(), "key": row.key_id,
                                 "statement": base64.b64encode(row.statement).decode(),
                                 "signature": base64.b64encode(row.signature).decode()}, sort_keys=True))
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def _object_name(obj_key: str, encrypted: bool) -> str:
    return f"objects/{obj_key}" + (sealing.SUFFIX if encrypted else "")


def _open_object(store, obj: StoredObject) -> BinaryIO:
    if obj.name is None:
        return store.open(obj.alg, obj.digest)
    return io.BytesIO(store.get_derivative(obj.alg, obj.digest, obj.name))


def _previous_listing(dest: Destination) -> dict[str, dict]:
    """Each object's size and SHA-256 as the newest earlier (unencrypted) backup recorded them."""
    try:
        with dest.read(LATEST) as fh:
            previous = fh.read().decode().strip()
        with dest.read(f"backups/{previous}/manifest.json") as fh:
            manifest = json.loads(fh.read())
    except (FileNotFoundError, ValueError):
        return {}
    if manifest.get("encrypted"):
        return {}  # read only with the identity; derivatives are then hashed afresh when copied
    try:
        with dest.read(f"backups/{previous}/{manifest['objects']['name']}") as fh:
            return {e["key"]: e for line in fh.read().decode().splitlines() if line and (e := json.loads(line))}
    except (FileNotFoundError, KeyError, ValueError):
        return {}


def backup(dest: Destination, *, database_url: str, store, recipients=None, work_dir: Path | None = None,
           progress: Callable[[int, int], None] | None = None) -> BackupResult:
    """Copy the database, the media objects not yet at ``dest``, the checkpoints and a manifest."""

    encrypted = bool(recipients)
    started = _now()
    result = BackupResult(id=_new_id(started))
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fieldapp-backup-", dir=work_dir))
    try:
        return _backup(dest, result, started, encrypted, database_url=database_url, store=store,
                       recipients=recipients, work=work, progress=progress)
    except BaseException as exc:
        # A failed run is recorded too: backups that stop for weeks must not stop silently.
        _record(result, dest, encrypted, started, error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _backup(dest: Destination, result: BackupResult, started: datetime, encrypted: bool, *, database_url: str, store,
            recipients, work: Path, progress) -> BackupResult:
    from ..records import service

    try:
        service.checkpoint_now("backup")  # the newest events are vouched for by a signed head
    except Exception as exc:  # noqa: BLE001 - no key, or a broken chain: say so, back up anyway
        log.warning("no checkpoint signed before the backup: %s", exc)
    with db.reading() as s:
        result.chain_seq, chain_hash = _chain_head(s)
        checkpoints = _checkpoints(s)
        alembic = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
    kind = database.kind(database_url)
    dump_path = work / "database"
    database.dump(database_url, dump_path)
    db_sha, result.database_bytes = _sha256_file(dump_path)
    db_name = f"database.{'sqlite3' if kind == 'sqlite' else 'pgdump'}" + (sealing.SUFFIX if encrypted else "")
    prefix = f"backups/{result.id}/"
    with open(dump_path, "rb") as fh:
        _write(dest, prefix + db_name, fh, recipients, work)
    dump_path.unlink()

    objects = list(store.objects())
    result.objects_total = len(objects)
    present = set(dest.names("objects/"))
    previous = _previous_listing(dest)
    # Not there yet — or a derivative remade in the store since (its key is the original's, its
    # bytes are new): copied again.
    wanted = [o for o in objects if _object_name(o.key, encrypted) not in present
              or (o.name is not None and o.key in previous and previous[o.key].get("size") != o.size)]
    result.new_bytes = sum(o.size for o in wanted)
    hashes: dict[str, str] = {o.key: o.digest for o in objects if o.name is None}
    hashes.update({k: e["sha256"] for k, e in previous.items() if e.get("sha256") and k not in hashes})
    wanted_keys = {o.key for o in wanted}
    for obj in objects:  # derivatives are small: their hash is taken from the store when not known
        if obj.name is not None and obj.key not in hashes and obj.key not in wanted_keys:
            hashes[obj.key] = hashlib.sha256(store.get_derivative(obj.alg, obj.digest, obj.name)).hexdigest()
    done = 0

    def copy(obj: StoredObject) -> tuple[str, str | None, int]:
        with _open_object(store, obj) as source:
            spooled, sha, size = _spool(source, work)
        with spooled:
            if obj.name is None and sha != obj.digest:
                log.error("%s: the store's bytes hash to %s, not their address; not copied", obj.key, sha)
                return obj.key, None, 0
            written = _write(dest, _object_name(obj.key, encrypted), spooled, recipients, work)
        return obj.key, sha, written

    with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
        for key, sha, written in pool.map(copy, wanted):
            done += 1
            if progress:
                progress(done, len(wanted))
            if sha is None:
                result.skipped.append(key)  # one bad object does not stop the backup of the rest
                continue
            hashes[key] = sha
            result.objects_copied += 1
            result.bytes_copied += written
    skipped = set(result.skipped)
    kept = [o for o in sorted(objects, key=lambda o: o.key) if o.key not in skipped]
    listing = "".join(json.dumps({"key": o.key, "size": o.size, "sha256": hashes.get(o.key)}, sort_keys=True) + "\n"
                      for o in kept).encode()
    objects_name = "objects.jsonl" + (sealing.SUFFIX if encrypted else "")
    _write(dest, prefix + objects_name, io.BytesIO(listing), recipients, work)
    dest.write(prefix + "checkpoints.jsonl", io.BytesIO(checkpoints))
    manifest = {
        "format": FORMAT, "v": 1, "id": result.id, "taken_at": started.isoformat(), "finished_at": _now().isoformat(),
        "app_version": APP_VERSION, "alembic_revision": alembic,
        "database": {"kind": kind, "name": db_name, "sha256": db_sha, "size": result.database_bytes},
        "objects": {"name": objects_name, "count": len(objects), "bytes": sum(o.size for o in objects),
                    "sha256": hashlib.sha256(listing).hexdigest(),
                    "copied": result.objects_copied, "copied_bytes": result.bytes_copied},
        "chain": {"seq": result.chain_seq, "head": chain_hash},
        "checkpoints": {"name": "checkpoints.jsonl", "sha256": hashlib.sha256(checkpoints).hexdigest()},
        "skipped": sorted(skipped),
        "encrypted": {"scheme": "age-x25519", "recipients": [str(r) for r in recipients]} if encrypted else None,
    }
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    dest.write(prefix + "manifest.json", io.BytesIO(body))
    signature = _sign(body)
    if signature is not None:
        dest.write(prefix + "manifest.sig", io.BytesIO(base64.b64encode(signature)))
    dest.write(LATEST, io.BytesIO(result.id.encode()))
    result.manifest = manifest
    _record(result, dest, encrypted, started,
            error=f"{len(skipped)} objects skipped: their bytes no longer match their address" if skipped else None)
    return result


def _record(result: BackupResult, dest: Destination, encrypted: bool, started: datetime, error: str | None = None) -> None:
    try:
        with db.write_transaction() as s:
            s.add(BackupRun(id=result.id, started_at=started, finished_at=_now() if not error or result.manifest else None,
                            destination=dest.label[:300], encrypted=encrypted, database_bytes=result.database_bytes,
                            objects_total=result.objects_total, objects_copied=result.objects_copied,
                            bytes_copied=result.bytes_copied, chain_seq=result.chain_seq, error=error,
                            summary={"new_bytes": result.new_bytes, "skipped": result.skipped[:100],
                                     "skipped_total": len(result.skipped)}))
    except Exception as exc:  # noqa: BLE001 - the backup's own outcome matters more than its log row
        log.error("backup %s not recorded: %s", result.id, exc)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(sealing.CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _spool(source: BinaryIO, work: Path) -> tuple[BinaryIO, str, int]:
    reader = sealing.HashingReader(source)
    spooled = tempfile.TemporaryFile(dir=work)
    shutil.copyfileobj(reader, spooled, sealing.CHUNK)
    spooled.seek(0)
    return spooled, reader.sha256.hexdigest(), reader.size


def _write(dest: Destination, name: str, source: BinaryIO, recipients, work: Path) -> int:
    if not recipients:
        return dest.write(name, source)
    with sealing.sealed(source, recipients, work) as sealed_file:
        return dest.write(name, sealed_file)


# ------------------------------------------------------------------------------------------ restore


@dataclass
class RestoreResult:
    backup_id: str
    taken_at: str
    epoch: str
    objects_restored: int = 0
    objects_present: int = 0
    bytes_restored: int = 0
    signature: str = "unchecked"  # valid | unchecked (no key here) — an invalid one stops the restore


def latest_id(dest: Destination) -> str:
    try:
        with dest.read(LATEST) as fh:
            return fh.read().decode().strip()
    except FileNotFoundError as exc:
        raise BackupError(f"no backup at {dest.label} (no {LATEST})") from exc


def read_manifest(dest: Destination, backup_id: str, public_key=None) -> tuple[dict, str]:
    try:
        with dest.read(f"backups/{backup_id}/manifest.json") as fh:
            body = fh.read()
    except FileNotFoundError as exc:
        raise BackupError(f"no backup {backup_id} at {dest.label}") from exc
    manifest = json.loads(body)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backups/{backup_id}/manifest.json is not a {FORMAT} manifest")
    state = "unchecked"
    if public_key is not None:
        try:
            with dest.read(f"backups/{backup_id}/manifest.sig") as fh:
                public_key.verify(base64.b64decode(fh.read()), body)
            state = "valid"
        except FileNotFoundError as exc:
            raise BackupError(f"backup {backup_id} has no signature (manifest.sig)") from exc
        except Exception as exc:
            raise BackupError(f"backup {backup_id}: the manifest's signature does not hold: it was changed, "
                              "or signed by another server's key") from exc
    return manifest, state


def _fetch(dest: Destination, name: str, ids, work: Path) -> BinaryIO:
    source = dest.read(name)
    if not name.endswith(sealing.SUFFIX):
        return source
    if not ids:
        source.close()
        raise BackupError("the backup is encrypted: give the age identity with --identity")
    with source:
        return sealing.opened(source, ids, work)


def _holds_data() -> bool:
    with db.reading() as s:
        tables = set(inspect(s.connection()).get_table_names())
        return any(table in tables and s.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first()
                   for table in ("users", "records"))


def _resuming(backup_id: str) -> bool:
    """Whether this database is the one an interrupted restore of ``backup_id`` already loaded (its
    newest epoch names the backup): then the restore goes on with the media, which it skips when
    already there."""
    with db.reading() as s:
        if "server_epochs" not in set(inspect(s.connection()).get_table_names()):
            return False
        newest = s.execute(select(ServerEpoch).order_by(ServerEpoch.seq.desc()).limit(1)).scalar_one_or_none()
        return newest is not None and newest.backup_id == backup_id and newest.restored_by.endswith(RESTORING)


RESTORING = " (restoring)"


def _known_revision(revision: str | None) -> None:
    """A backup made by a later release holds a schema this one cannot read: refused before loading."""
    from alembic.script import ScriptDirectory

    from .. import migrate
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    try:
        known = revision is None or scripts.get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        known = False
    if not known:
        raise BackupError(f"the backup's schema ({revision}) is newer than this release knows: restore it with "
                          "the release that made it, or a later one")


def objects_of(dest: Destination, manifest: dict, ids, work: Path) -> Iterator[dict]:
    with _fetch(dest, f"backups/{manifest['id']}/{manifest['objects']['name']}", ids, work) as fh:
        listing = fh.read()
    if hashlib.sha256(listing).hexdigest() != manifest["objects"]["sha256"]:
        raise BackupError("the backup's object list does not match its manifest")
    for line in listing.decode().splitlines():
        if line:
            yield json.loads(line)


def restore(dest: Destination, *, database_url: str, store, backup_id: str | None = None, ids=None,
            public_key=None, restored_by: str = "", work_dir: Path | None = None,
            progress: Callable[[int, int], None] | None = None) -> RestoreResult:
    """Bring a fresh instance up from a backup: the database, then every media object (each hash
    checked), then a new server epoch so phones offer again what the backup does not hold."""
    from .. import migrate

    from ..records import capture

    backup_id = backup_id or latest_id(dest)
    manifest, signature = read_manifest(dest, backup_id, public_key)
    if database.kind(database_url) != manifest["database"]["kind"]:
        raise BackupError(f"the backup holds a {manifest['database']['kind']} database; this instance uses "
                          f"{database.kind(database_url)}")
    resuming = _resuming(backup_id)
    if not resuming and _holds_data():
        raise BackupError("the target database already holds users or records: restore only into a fresh instance "
                          "(an empty database and media store)")
    _known_revision(manifest.get("alembic_revision"))
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fieldapp-restore-", dir=work_dir))
    try:
        if not resuming:
            copy = work / "database"
            with _fetch(dest, f"backups/{backup_id}/{manifest['database']['name']}", ids, work) as fh, \
                    open(copy, "wb") as out:
                shutil.copyfileobj(fh, out, sealing.CHUNK)
            if _sha256_file(copy)[0] != manifest["database"]["sha256"]:
                raise BackupError("the database copy does not match its manifest: not restored")
            db.engine().dispose()
            database.load(database_url, copy)
            copy.unlink()
            db.engine().dispose()
            migrate.upgrade(database_url)
            # The new epoch at once, marked as restoring: should the media fail half-way, phones
            # already see a restore (and re-offer), and running the restore again resumes it.
            with capture.acting_as("cli:restore"), db.write_transaction() as s:
                s.add(ServerEpoch(backup_id=backup_id, backup_taken_at=datetime.fromisoformat(manifest["taken_at"]),
                                  chain_seq=manifest.get("chain", {}).get("seq"),
                                  restored_by=(restored_by[:100] + RESTORING)))
        entries = list(objects_of(dest, manifest, ids, work))
        result = RestoreResult(backup_id=backup_id, taken_at=manifest["taken_at"], epoch="", signature=signature)
        names = set(dest.names("objects/"))

        def bring(entry: dict) -> int:
            found = parse_object_key(entry["key"])
            if found is None:
                raise BackupError(f"not a media key: {entry['key']}")
            alg, digest, name = found
            if name is None and store.exists(alg, digest) and store.size(alg, digest) == entry["size"]:
                return 0
            plain, sealed_name = f"objects/{entry['key']}", f"objects/{entry['key']}{sealing.SUFFIX}"
            source_name = sealed_name if sealed_name in names else plain
            with _fetch(dest, source_name, ids, work) as fh:
                spooled, sha, size = _spool(fh, work)
            with spooled:
                expected = digest if name is None else entry.get("sha256")
                if (expected and sha != expected) or size != entry["size"]:
                    raise BackupError(f"{entry['key']}: the backup's copy does not match (hash {sha}); not restored")
                if name is None:
                    staged = work / f"o-{digest}"
                    with open(staged, "wb") as out:
                        shutil.copyfileobj(spooled, out, sealing.CHUNK)
                    store.put_original_file(alg, digest, staged)
                    staged.unlink(missing_ok=True)
                else:
                    store.put_derivative(alg, digest, name, spooled.read())
            return size

        done = 0
        with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
            for size in pool.map(bring, entries):
                done += 1
                if size:
                    result.objects_restored += 1
                    result.bytes_restored += size
                else:
                    result.objects_present += 1
                if progress:
                    progress(done, len(entries))
        with capture.acting_as("cli:restore"), db.write_transaction() as s:
            epoch = s.execute(select(ServerEpoch).order_by(ServerEpoch.seq.desc()).limit(1)).scalar_one()
            epoch.restored_by = epoch.restored_by.removesuffix(RESTORING)  # done: the media are all here
            result.epoch = str(epoch.id)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
