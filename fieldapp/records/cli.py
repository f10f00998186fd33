"""CLI commands of the audit chain: verify, seal, checkpoint, show the public key."""
from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from .. import db

PART_TITLES = {
    "chain": "链 / chain",
    "checkpoint": "检查点 / checkpoints",
    "row": "数据行 / rows",
    "revision": "记录修订签名 / revision signatures",
    "media": "媒体文件 / media files",
}


@click.command("verify")
@click.option("--media", "media_mode", type=click.Choice(["all", "sample", "none"]), default="sample",
              show_default=True, help="re-hash every stored original, a random sample, or none")
@click.option("--sample", "sample_size", type=int, default=200, show_default=True,
              help="how many originals a sample re-hashes")
@click.option("--seed", type=int, default=None, help="seed of the random sample (to repeat a run)")
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False),
              help="the trusted public key (PEM) as published; default: the server key's public half")
@click.option("--no-signatures", is_flag=True, help="skip re-checking every revision's device signature")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify_command(media_mode, sample_size, seed, public_key_file, no_signatures, as_json):
    """Check the audit chain, its checkpoints, every covered row, every revision's signature and
    the stored media; exit 1 when anything does not hold."""
    from ..media.service import media_storage
    from . import keys, service, tsa
    from .verification import verify

    settings = service.settings()
    if not public_key_file and not settings.audit_key_file.exists():
        raise click.ClickException(f"no checkpoint key at {settings.audit_key_file}: give the published public key "
                                   "with --public-key (verify never makes a key of its own)")
    trusted = (keys.load_public(Path(public_key_file).read_bytes()) if public_key_file
               else service.public_key())
    tsa_check = tsa.checker(settings.tsa_cert_file) if settings.tsa_cert_file else None
    bar = None

    def progress(n, total):
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 1, label="重新计算媒体哈希 / re-hashing media", file=sys.stderr)
        bar.update(n)

    report = verify(db.session(), trusted_public=trusted, store=media_storage(),
                    check_media_files=media_mode != "none",
                    media_sample=None if media_mode == "all" else sample_size, seed=seed,
                    progress=None if as_json or not sys.stderr.isatty() else progress,
                    tsa_check=tsa_check, revisions=not no_signatures,
                    checkpoint_every=timedelta(hours=settings.audit_checkpoint_hours))
    if bar is not None:
        bar.render_finish()
    if as_json:
        click.echo(json.dumps({"ok": report.ok, "sealed": report.sealed, "pending": report.pending,
                               "checkpoints": report.checkpoints, "rows": report.rows,
                               "revisions": report.revisions, "media_checked": report.media_checked,
                               "media_total": report.media_total, "notes": report.notes,
                               "faults": [f.__dict__ for f in report.faults]}, ensure_ascii=False))
    else:
        click.echo(render(report, media_mode))
    if not report.ok:
        raise SystemExit(1)


def render(report, media_mode: str) -> str:
    lines = ["审计链核验报告 / Audit verification report", ""]
    lines.append(f"链 / chain: {report.sealed} 个事件已封存 / events sealed; "
                 f"{report.pending} 个待封存 / pending (not yet sealed, not a fault)")
    lines.append(f"检查点 / checkpoints: {report.checkpoints}")
    lines.append(f"数据行 / rows checked: {report.rows}")
    lines.append(f"记录修订签名 / revision signatures checked: {report.revisions}")
    media = "未检查 / not checked" if media_mode == "none" else f"{report.media_checked} / {report.media_total}"
    lines.append(f"媒体文件重新计算哈希 / media re-hashed: {media}")
    for note in report.notes:
        lines.append(f"注意 / note: {note}")
    lines.append("")
    if report.ok:
        lines.append("结论 / result: 通过 — 未发现篡改 / PASSED — nothing was found altered")
        return "\n".join(lines)
    lines.append(f"结论 / result: 不通过 — {len(report.faults)} 处问题 / FAILED — {len(report.faults)} problems")
    for part, title in PART_TITLES.items():
        faults = [f for f in report.faults if f.part == part]
        if faults:
            lines.append("")
            lines.append(f"{title} ({len(faults)}):")
            lines.extend(f"  - {f.what}: {f.problem}" for f in faults)
    return "\n".join(lines)


@click.command("audit-seal")
def audit_seal_command():
    """Link every event below the safe horizon into the chain now."""
    from . import service
    click.echo(f"{service.seal_now()} events sealed")


@click.command("audit-checkpoint")
def audit_checkpoint_command():
    """Seal, then sign the chain head with the server key (and timestamp it where configured)."""
    from . import service
    row = service.checkpoint_now("on demand")
    if row is None:
        click.echo("the chain is empty: nothing to sign")
    else:
        click.echo(f"checkpoint {row.id}: seq {row.seq} head {row.head_hash}"
                   + (" (timestamped)" if row.tsa_token else ""))


@click.command("audit-public-key")
def audit_public_key_command():
    """Print the public half of the checkpoint key (PEM) and its id, to publish and pin."""
    from . import keys, service
    public = service.public_key()
    click.echo(keys.public_pem(public), nl=False)
    click.echo(f"key id (SHA-256 of the raw key): {keys.key_id(public)}")


@click.command("audit-export")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--up-to", "up_to", type=int, default=None, help="export the chain only up to this position")
def audit_export_command(folder, up_to):
    """Write the sealed chain, its checkpoints, the public key and an offline verifier into FOLDER,
    for anyone to check without this server (python3 verify_chain.py FOLDER)."""
    from . import keys, service
    from .export import write_chain_export

    service.seal_now()
    try:
        summary = write_chain_export(db.session(), Path(folder), keys.public_pem(service.public_key()), up_to_seq=up_to)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with db.transaction():
        service.accessed("export", "audit-chain", head_seq=summary["head_seq"], folder=str(folder)[:200])
    click.echo(f"{summary['events']} events, {summary['checkpoints']} checkpoints, "
               f"head {summary['head_seq']} {summary['head_hash']}")


COMMANDS = [audit_export_command, verify_command, audit_seal_command, audit_checkpoint_command, audit_public_key_command]
