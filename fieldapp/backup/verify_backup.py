"""Checking a backup where it lies, without restoring it: the manifest's signature, the database
copy's SHA-256, and every media object the backup lists present with its SHA-256."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import run, sealing


@dataclass
class BackupReport:
    backup_id: str
    signature: str = "unchecked"
    database_ok: bool = False
    objects: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.database_ok and not self.problems

    def summary(self) -> str:
        head = (f"backup {self.backup_id}: signature {self.signature}; database copy "
                f"{'matches' if self.database_ok else 'DOES NOT MATCH'}; {self.objects} media objects checked")
        if not self.problems:
            return head + "; all present and matching"
        return head + f"; {len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems[:200])


def check(dest, *, backup_id: str | None = None, ids=None, public_key=None) -> BackupReport:
    backup_id = backup_id or run.latest_id(dest)
    manifest, signature = run.read_manifest(dest, backup_id, public_key)
    report = BackupReport(backup_id=backup_id, signature=signature)
    work = Path(tempfile.mkdtemp(prefix="fieldapp-backup-verify-"))
    try:
        try:
            with run._fetch(dest, f"backups/{backup_id}/{manifest['database']['name']}", ids, work) as fh:
                digest = hashlib.sha256()
                while chunk := fh.read(sealing.CHUNK):
                    digest.update(chunk)
            report.database_ok = digest.hexdigest() == manifest["database"]["sha256"]
        except sealing.SealingError:
            report.database_ok = False
        names = set(dest.names("objects/"))
        for entry in run.objects_of(dest, manifest, ids, work):
            report.objects += 1
            plain, sealed = f"objects/{entry['key']}", f"objects/{entry['key']}{sealing.SUFFIX}"
            name = sealed if sealed in names else plain if plain in names else None
            if name is None:
                report.problems.append(f"missing: {entry['key']}")
                continue
            try:
                with run._fetch(dest, name, ids, work) as fh:
                    spooled, sha, size = run._spool(fh, work)
                    spooled.close()
            except sealing.SealingError:
                report.problems.append(f"changed: {entry['key']} (its encryption no longer authenticates)")
                continue
            if size != entry["size"] or (entry.get("sha256") and sha != entry["sha256"]):
                report.problems.append(f"changed: {entry['key']} (hash {sha}, {size} bytes)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
