"""`flask media-audit`: every row's object is there with the right hash, every object belongs to a
row or an upload in flight. Reads only: orphans are listed, never deleted. Exit status 1 when
something is missing or corrupt."""
from __future__ import annotations

import json
import sys
import time

import click
from flask.cli import with_appcontext

from .. import db


@click.command("media-audit")
@click.option("--no-rehash", is_flag=True, help="check existence and sizes only; read no bytes")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")
@with_appcontext
def media_audit_command(no_rehash: bool, as_json: bool):
    """Audit the media store against the database (issue 19): missing, corrupt, orphaned objects;
    exit 1 when anything is missing or corrupt."""
    from ..media.service import media_storage
    from .media_audit import audit, human_bytes, summary_lines

    last = [0.0]

    def progress(phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 2:
            return
        last[0] = now
        if phase == "hashing":
            click.echo(f"re-hashing: {human_bytes(done)} of {human_bytes(total or 0)}", err=True)
        else:
            click.echo(f"{phase}: {done}", err=True)

    with db.reading() as s:
        report = audit(media_storage(), s, rehash=not no_rehash,
                       progress=progress if not as_json and sys.stderr.isatty() else None)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        for line in summary_lines(report):
            click.echo(line)
    if not report.ok:
        sys.exit(1)


COMMANDS = [media_audit_command]


def register(app) -> None:
    """Add `media-audit` to ``app.cli``."""
    for command in COMMANDS:
        app.cli.add_command(command)
