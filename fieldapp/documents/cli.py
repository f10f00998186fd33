"""`flask evidence-packages`: build the evidence packages still queued, and mark failed those whose
builder died (run from cron, e.g. every few minutes)."""
from __future__ import annotations

import json

import click

from . import package


@click.command("evidence-packages")
@click.option("--json", "as_json", is_flag=True)
def evidence_packages_command(as_json):
    """Build queued evidence packages; fail those left building by a process that died."""
    result = package.build_queued()
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"证据包 / evidence packages: {result['built']} 已完成 / built, {result['failed']} 失败 / failed, "
                   f"{result['interrupted']} 中断 / interrupted")


COMMANDS = [evidence_packages_command]
