"""Removing upload state nobody needs any more, by age: `flask --app fieldapp sweep-uploads`.

Without it the media store only grows:

* an **abandoned upload** (a phone that never came back, a file deleted on the phone) keeps its
  chunks — on S3 also its multipart upload — for ever;
* a **completed upload** keeps two small objects per file (``upload.json``, ``completed``);
* a **host killed** mid-work leaves temporary files: a chunk being spooled, an original being
  assembled (a whole copy), a copy of an S3 original made for the preview pipeline.

What is removed, and why that is safe:

* An upload not written to for ``abandon_after`` (FIELDAPP_UPLOAD_ABANDON_HOURS, 48 h) goes with
  its database record of chunks, as a refused upload does. A phone that comes back later asks for
  its offset, is told the upload is unknown, and begins it again from byte 0.
* A completed upload's state goes ``completed_after`` (FIELDAPP_UPLOAD_COMPLETED_HOURS, 1 h) after
  its completion once the database records it as completed: from then on a repeated "complete" or
  "begin" is answered from the database, and the original lives under its own key, which the
  sweeper never touches. State whose completion the database never recorded (a host died in
  between) is kept as long as an abandoned upload's, so a retried "complete" still finds it.
* Temporary files go when not written to for ``temp_after`` (FIELDAPP_UPLOAD_TEMP_HOURS, 6 h):
  work in progress writes its files continuously.

Run it from cron or a systemd timer, hourly, on every host: the shared store is swept by whichever
host comes first (two sweeps at once remove the same things twice, harmlessly), and each host's
own temporary folder only by that host.
"""
from __future__ import annotations

import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from .. import db
from ..models import MediaUpload
from . import service
from .storage import MediaStorage, Swept, UploadState

log = logging.getLogger(__name__)
QUERY_BATCH = 500


@dataclass
class SweepReport:
    abandoned: int = 0
    completed: int = 0
    temporary: Swept = field(default_factory=Swept)
    failed: int = 0

    def line(self, dry_run: bool = False) -> str:
        verb = "would remove" if dry_run else "removed"
        text = (f"{verb} {self.abandoned} abandoned uploads, the state of {self.completed} completed uploads, "
                f"{self.temporary.files} temporary files ({self.temporary.bytes} bytes)")
        return text + (f"; {self.failed} failed (see the log)" if self.failed else "")


def _completed_in_database(upload_ids: list[str]) -> set[str]:
    done: set[str] = set()
    s = db.session()
    for start in range(0, len(upload_ids), QUERY_BATCH):
        batch = [uuid.UUID(u) for u in upload_ids[start:start + QUERY_BATCH]]
        done |= {str(u) for u in s.execute(select(MediaUpload.id).where(
            MediaUpload.id.in_(batch), MediaUpload.completed_at.is_not(None))).scalars()}
    s.commit()  # no transaction (nor SQLite read snapshot) held while the store is swept
    return done


def _sweep_host_temp(folder: Path, older_than: datetime, dry_run: bool) -> Swept:
    """Copies of S3 originals a killed host left in its temporary folder."""
    swept = Swept()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return swept
    for entry in entries:
        if not entry.name.startswith(service.ORIGINAL_TEMP_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or \
                    datetime.fromtimestamp(info.st_mtime, timezone.utc) >= older_than:
                continue
            if not dry_run:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue
        swept.add(info.st_size)
    return swept


def sweep(store: MediaStorage, *, abandon_after: timedelta, completed_after: timedelta,
          temp_after: timedelta, now: datetime | None = None, host_temp_dir: Path | None = None,
          dry_run: bool = False) -> SweepReport:
    """Sweep ``store`` as the module describes; needs an app context (the database)."""
    now = now or datetime.now(timezone.utc)
    report = SweepReport()
    states: list[UploadState] = list(store.uploads())
    done = _completed_in_database([s.upload_id for s in states if s.completed])
    for state in states:
        age = now - state.last_activity
        if state.completed:
            due = age > abandon_after or (age > completed_after and state.upload_id in done)
        else:
            due = age > abandon_after
        if not due:
            continue
        try:
            if not dry_run:
                if state.completed:
                    store.abort(state.upload_id)  # the original is stored; only its state goes
                else:
                    service.discard_upload(uuid.UUID(state.upload_id))
        except Exception:  # noqa: BLE001 — one broken upload must not stop the sweep
            log.exception("sweeping upload %s failed", state.upload_id)
            report.failed += 1
            continue
        if state.completed:
            report.completed += 1
        else:
            report.abandoned += 1
    older_than = now - temp_after
    for sweep_temporary in (lambda: store.sweep_temporary(older_than, dry_run),
                            lambda: _sweep_host_temp(host_temp_dir or Path(tempfile.gettempdir()),
                                                     older_than, dry_run)):
        try:
            swept = sweep_temporary()
        except Exception:  # noqa: BLE001
            log.exception("sweeping temporary files failed")
            report.failed += 1
            continue
        report.temporary.files += swept.files
        report.temporary.bytes += swept.bytes
    return report

