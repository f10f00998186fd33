"""``flask backup``, ``flask restore`` and ``flask backup-verify`` (README: "Backup and restore")."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from .. import db


def _settings():
    from ..records import service
    return service.settings()


def _progress(label: str, as_json: bool):
    bar = None

    def advance(done: int, total: int) -> None:
        nonlocal bar
        if as_json or not sys.stderr.isatty():
            return
        if bar is None:
            bar = click.progressbar(length=total or 1, label=label, file=sys.stderr)
        bar.update(1)

    return advance


def _destination(spec: str):
    from .destination import open_destination
    try:
        return open_destination(spec, _settings())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("backup")
@with_appcontext
@click.argument("destination")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def backup_command(destination: str, as_json: bool):
    """Back up to DESTINATION (a folder at another site, or s3://bucket/prefix): the database, the
    media objects not yet there, the audit checkpoints and a signed manifest; encrypted to
    FIELDAPP_BACKUP_AGE_RECIPIENTS when set."""
    from ..media.service import media_storage
    from . import run, sealing

    settings = _settings()
    keys = [k for k in (getattr(settings, "backup_age_recipients", "") or "").split(",") if k.strip()]
    try:
        recipients = sealing.recipients(keys) if keys else None
        result = run.backup(_destination(destination), database_url=settings.database_url, store=media_storage(),
                            recipients=recipients, work_dir=settings.var_dir / "tmp",
                            progress=_progress("复制媒体 / copying media", as_json))
    except Exception as exc:  # noqa: BLE001 - every failure is the operator's to read, not a traceback
        raise click.ClickException(f"backup failed, nothing marked as done: {type(exc).__name__}: {exc}") from exc
    if as_json:
        click.echo(json.dumps({"id": result.id, "objects_total": result.objects_total,
                               "objects_copied": result.objects_copied, "bytes_copied": result.bytes_copied,
                               "new_bytes": result.new_bytes, "database_bytes": result.database_bytes,
                               "chain_seq": result.chain_seq}))
    else:
        click.echo(f"backup {result.id}: database {result.database_bytes} bytes; "
                   f"{result.objects_copied} of {result.objects_total} media objects copied "
                   f"({result.bytes_copied} bytes){'; encrypted' if recipients else ''}")
    if result.skipped:
        click.echo(f"{len(result.skipped)} media objects NOT backed up: their bytes no longer match their address "
                   "(run `flask media-audit`): " + ", ".join(result.skipped[:20]), err=True)
        sys.exit(1)


@click.command("restore")
@with_appcontext
@click.argument("source")
@click.option("--backup", "backup_id", help="the backup's id (default: the newest)")
@click.option("--identity", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the age identity file, for an encrypted backup")
@click.option("--by", "restored_by", default="", help="who restores, for the record")
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False),
              help="the server key's public half (PEM) to check the manifest with; default: the key file here")
@click.option("--allow-unsigned", is_flag=True,
              help="restore although the manifest's signature cannot be checked (no key here and no --public-key)")
@click.option("--no-verify", is_flag=True, help="skip the media audit afterwards")
def restore_command(source: str, backup_id, identity, restored_by, public_key_file, allow_unsigned, no_verify):
    """Bring this (fresh) instance up from a backup at SOURCE, then verify the result. Starts a new
    server epoch: phones offer again what they sent after the backup was taken."""
    from ..media.service import media_storage
    from ..records import keys, service
    from . import run, sealing

    settings = _settings()
    public = None
    if public_key_file:
        public = keys.load_public(Path(public_key_file).read_bytes())
    elif settings.audit_key_file.exists():
        public = service.public_key()
    elif not allow_unsigned:
        raise click.ClickException(
            f"no checkpoint key at {settings.audit_key_file} to check the backup's signature with: put the key file "
            "back first (it is backed up apart from the data), give its public half with --public-key, or, knowing "
            "what it means, --allow-unsigned")
    try:
        ids = sealing.identities(identity) if identity else None
        result = run.restore(_destination(source), database_url=settings.database_url, store=media_storage(),
                             backup_id=backup_id, ids=ids, public_key=public, restored_by=restored_by,
                             work_dir=settings.var_dir / "tmp", progress=_progress("恢复媒体 / restoring media", False))
    except Exception as exc:  # noqa: BLE001 - every failure is the operator's to read, not a traceback
        raise click.ClickException(f"restore failed: {type(exc).__name__}: {exc}; running the same restore again "
                                   "resumes it") from exc
    click.echo(f"restored backup {result.backup_id} (taken {result.taken_at}; manifest signature {result.signature}): "
               f"{result.objects_restored} media objects restored, {result.objects_present} already here; "
               f"new server epoch {result.epoch}")
    if public is None:
        click.echo("warning: the manifest's signature was not checked (no key here; give --public-key)", err=True)
    if not no_verify:
        from .media_audit import audit, summary_lines
        report = audit(media_storage(), db.session())
        click.echo("\n".join(summary_lines(report)))
        if not report.ok:
            raise click.ClickException("the restored media do not match the database: see above")
        click.echo("next: `flask verify` checks the audit chain, every row and every revision's signature")


@click.command("backup-verify")
@with_appcontext
@click.argument("source")
@click.option("--backup", "backup_id", help="the backup's id (default: the newest)")
@click.option("--identity", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the age identity file, for an encrypted backup")
def backup_verify_command(source: str, backup_id, identity):
    """Check a backup where it lies: the manifest's signature, the database copy's hash, and every
    media object it lists present with its hash."""
    from ..records import service
    from . import sealing, verify_backup

    settings = _settings()
    public = service.public_key() if settings.audit_key_file.exists() else None
    try:
        ids = sealing.identities(identity) if identity else None
        report = verify_backup.check(_destination(source), backup_id=backup_id, ids=ids, public_key=public)
    except Exception as exc:  # noqa: BLE001 - every failure is the operator's to read
        raise click.ClickException(str(exc)) from exc
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@click.command("new-epoch")
@click.option("--since", "since", required=True, help="the time the database was recovered to (ISO 8601, with its offset)")
@click.option("--by", "restored_by", default="", help="who recovered it, for the record")
@with_appcontext
def new_epoch_command(since: str, restored_by: str):
    """After the database was brought back to an earlier point by other means (PostgreSQL
    point-in-time recovery): start a new server epoch, so phones offer again what it may lack."""
    from datetime import datetime

    from ..models import ServerEpoch
    from ..records import capture

    try:
        at = datetime.fromisoformat(since)
    except ValueError as exc:
        raise click.ClickException(f"--since is not an ISO 8601 time: {since!r}") from exc
    if at.tzinfo is None:
        raise click.ClickException("--since needs its offset (e.g. +08:00): the time is otherwise ambiguous")
    with capture.acting_as("cli:new-epoch"), db.write_transaction() as s:
        epoch = ServerEpoch(backup_id=f"recovered-to-{at.isoformat()}"[:80], backup_taken_at=at,
                            restored_by=restored_by[:120])
        s.add(epoch)
        s.flush()
        click.echo(f"new server epoch {epoch.id}: phones offer again what they sent after {at.isoformat()}")


COMMANDS = [backup_command, restore_command, backup_verify_command, new_epoch_command]
