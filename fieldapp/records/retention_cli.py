"""`flask retention-review`: recompute every object's class, mirror it in the store, purge
disposals past their seven days and print the week's digest for the records administrators."""
from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import click
from sqlalchemy import select

from .. import db
from ..i18n import local_time
from ..models import RetentionState, Unit, utcnow
from ..rules import records_rules
from . import retention


def digest(now=None) -> dict:
    """Per unit: objects due for disposal now, and those falling due in the coming week."""
    now = now or utcnow()
    s = db.session()
    units = {u.id: u for u in s.execute(select(Unit)).scalars()}
    due = retention.due(None, now)
    soon = list(s.execute(select(RetentionState).where(
        RetentionState.klass == records_rules.SIX_MONTHS, RetentionState.keep_until > now,
        RetentionState.keep_until <= now + timedelta(days=7))).scalars())
    out = {}
    for label, rows in (("due", due), ("due_within_7_days", soon)):
        for unit_id, count in Counter(r.unit_id for r in rows).items():
            unit = units.get(unit_id)
            out.setdefault(unit.code if unit else "-", {"unit": unit.name if unit else "-", "due": 0,
                                                         "due_within_7_days": 0})[label] = count
    return out


@click.command("retention-review")
@click.option("--no-purge", is_flag=True, help="recompute and report only; remove no bytes")
@click.option("--json", "as_json", is_flag=True)
def retention_review_command(no_purge, as_json):
    """Art. 26: recompute classes, mirror them in the store, purge disposals past 7 days, print the digest (run weekly or daily)."""
    from ..media.service import media_storage
    from ..media.storage import MediaError
    try:  # versioning, object lock and the lifecycle for old versions and upload leftovers (S3; idempotent)
        media_storage().ensure_retention_setup()
    except MediaError as exc:  # the review still runs: the database keeps the rules whatever the store can do
        click.echo(f"存储不能强制保存期限 / the store cannot enforce retention: {exc}", err=True)
    changes = retention.recompute_and_apply(None)
    purged = [] if no_purge else retention.purge_due()
    report = {"changed": len(changes), "purged": [f"{d.alg}:{d.hash}" for d in purged], "digest": digest(),
              "at": local_time(utcnow())}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"保存期限复核 / retention review {report['at']}: {len(changes)} 项类别变化 / classes changed; "
               f"{len(purged)} 项已清除 / purged")
    for code, row in sorted(report["digest"].items()):
        click.echo(f"  {code} {row['unit']}: 到期待处置 {row['due']} / due; 7日内到期 {row['due_within_7_days']} / due within 7 days")


COMMANDS = [retention_review_command]
