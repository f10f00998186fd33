"""`flask --app fieldapp …` commands for every admin task."""
from __future__ import annotations

import click
from flask import current_app
from sqlalchemy import func, select

from . import db, migrate
from .compliance import calendar_admin, deadline_source, engine
from .rules import publication
from .accounts import AccountError, create_unit, create_user, find_unit, find_user, parse_roles, update_user
from .auth import enrollment
from .models import Case, Role, User


def _settings():
    return current_app.config["FIELDAPP_SETTINGS"]


def _enrol_link(user: User) -> str:
    issued = enrollment.issue(user, _settings().enrollment_hours)
    return enrollment.link(_settings().base_url, issued.code)


def _schema_revisions(url: str) -> tuple[str | None, str | None]:
    """The schema's revision now (None: no schema yet) and the newest migration's, so that init-db
    says whether it created, upgraded or found nothing to do."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), head
    finally:
        engine.dispose()


@click.command("init-db")
def init_db_command():
    """Create the database schema, or upgrade it to the latest migration.

    Safe on several hosts at once: one upgrades (and seeds) while the others wait for it, then
    find nothing left to do."""
    settings = _settings()
    url = settings.database_url
    if url.startswith("sqlite:///"):
        from pathlib import Path
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        with migrate.schema_lock(url):
            before, head = _schema_revisions(url)
            migrate.upgrade(url, lock_timeout_s=settings.migration_lock_timeout_seconds)
            with db.transaction():
                current = publication.ensure_published()
                years = deadline_source.seed_from_library()
    except migrate.SchemaLockTimeout as exc:
        raise click.ClickException(f"{exc}; run init-db again when it has finished") from None
    except Exception as exc:
        if not migrate.is_lock_timeout(exc):
            raise
        raise click.ClickException(
            f"a migration waited more than {settings.migration_lock_timeout_seconds} s for a table lock held "
            "by running transactions and was rolled back; run init-db again (at a quieter time, or raise "
            "FIELDAPP_MIGRATION_LOCK_TIMEOUT)") from None
    if before is None:
        state = f"database created at the latest schema ({head})"
    elif before != head:
        state = f"database upgraded from {before} to the latest schema ({head})"
    else:
        state = f"database already at the latest schema ({head})"
    click.echo(f"{state}; rules catalogue version {current.version}")
    if years:
        click.echo(f"working-day calendar loaded from the holiday library for {', '.join(map(str, years))}")


@click.command("calendar-load")
@click.argument("year", type=int)
@click.argument("notice", type=click.File("r", encoding="utf-8"))
def calendar_load_command(year: int, notice):
    """Load YEAR's holiday arrangement (the State Council notice) from a file: one line per day,
    "YYYY-MM-DD 休|班 name" (休 a day off, 班 a weekend day worked in lieu). Replaces that year."""
    try:
        rows = calendar_admin.parse_notice(notice.read())
        with db.transaction():
            deadline_source.store_year(year, rows, source="admin")
        engine.refresh_all()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{year}: {len(rows)} special days loaded; deadlines re-counted")


@click.command("compliance-check")
def compliance_check_command():
    """Re-evaluate every case not archived: findings that come with the passing of time (late
    uploads, late filing) and deadlines. Run it from cron, e.g. every hour."""
    count = engine.refresh_all()
    click.echo(f"{count} cases checked")


@click.command("create-unit")
@click.argument("code")
@click.argument("name")
@click.option("--kind", type=click.Choice(["enforcement", "policy", "office", "discipline", "leadership"]),
              default="enforcement", show_default=True,
              help="what body the unit is (art. 29: which leader approves its requests for audio/video)")
def create_unit_command(code: str, name: str, kind: str):
    """Create a unit: an enforcement unit (科室、队、所), the policy section, the office, the discipline office, or the leadership."""
    try:
        with db.transaction():
            unit = create_unit(code, name, kind)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"unit {unit.code} created ({unit.id})")


@click.command("create-user")
@click.option("--name", required=True)
@click.option("--cert-no", required=True, help="enforcement certificate number (执法证号)")
@click.option("--unit", "unit_code", required=True, help="unit code")
@click.option("--roles", default="officer", show_default=True,
              help=f"comma-separated: {', '.join(r.value for r in Role)}")
def create_user_command(name: str, cert_no: str, unit_code: str, roles: str):
    """Create a user. They sign in with a passkey after `enroll`."""
    try:
        with db.transaction():
            unit = find_unit(unit_code)
            if unit is None:
                raise AccountError(f"no unit {unit_code}")
            user = create_user(name, cert_no, unit, parse_roles(roles))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.name} ({user.cert_no}) created")


@click.command("set-user")
@click.argument("user_ref")
@click.option("--roles", default=None)
@click.option("--unit", "unit_code", default=None)
@click.option("--disable/--enable", default=None, help="disabling ends the user's sessions at once")
def set_user_command(user_ref: str, roles: str | None, unit_code: str | None, disable: bool | None):
    """Change a user's roles or unit, or disable them."""
    try:
        with db.transaction():
            user = find_user(user_ref)
            if user is None:
                raise AccountError(f"no user {user_ref}")
            unit = find_unit(unit_code) if unit_code else None
            if unit_code and unit is None:
                raise AccountError(f"no unit {unit_code}")
            update_user(user, unit=unit, roles=parse_roles(roles) if roles is not None else None,
                        active=None if disable is None else not disable)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.cert_no} updated")


@click.command("enroll")
@click.argument("user_ref")
def enroll_command(user_ref: str):
    """Print a one-time enrolment link (valid 24 h) for USER (certificate number or id)."""
    with db.transaction():
        user = find_user(user_ref)
        if user is None:
            raise click.ClickException(f"no user {user_ref}")
        if not user.active:
            raise click.ClickException(f"user {user_ref} is disabled")
        link = _enrol_link(user)
    click.echo(link)


DEMO_UNITS = [("LZ-ZF1", "综合行政执法大队一中队", None), ("LZ-QX", "齐陵市场监督管理所", None),
              ("LZ-LD", "局领导", "leadership")]
# The 分管局负责人 oversees both enforcement units (art. 29 approvals for their records).
DEMO_OVERSIGHT = {"37030319080": ("LZ-ZF1", "LZ-QX")}
DEMO_USERS = [
    ("张伟", "37030319001", "LZ-ZF1", "officer"),
    ("李娜", "37030319002", "LZ-ZF1", "officer"),
    ("王强", "37030319010", "LZ-ZF1", "lead,officer"),
    ("赵敏", "37030319021", "LZ-QX", "officer"),
    ("刘洋", "37030319090", "LZ-ZF1", "supervisor"),
    ("周敏", "37030319030", "LZ-ZF1", "records_admin"),
    ("陈刚", "37030319080", "LZ-LD", "division_head"),
    ("杨帆", "37030319081", "LZ-LD", "bureau_head"),
    ("系统管理员", "ADMIN-0001", "LZ-ZF1", "admin"),
]


DEMO_CASES = [
    ("inspection", "临淄区齐都镇鲜果超市", "91370305MA3C00001X", "临淄区齐都镇桓公路 18 号", []),
    ("penalty", "淄博某食品加工有限公司", None, "临淄区凤凰镇工业园 6 号", ["life_health"]),
]


def _revoke_unused_codes(user: User) -> None:
    """End the user's codes not yet used that no admin issued through the web (the CLI's own)."""
    from .models import Enrollment, utcnow

    now = utcnow()
    for code in db.session().execute(select(Enrollment).where(
            Enrollment.user_id == user.id, Enrollment.created_by.is_(None),
            Enrollment.used_at.is_(None), Enrollment.expires_at > now)).scalars():
        code.expires_at = now


@click.command("seed-demo")
def seed_demo_command():
    """Create demo units and users (once) and print an enrolment link for each user.

    scripts/run calls this on every start: the links printed by an earlier start are revoked, so
    only the newest set of demo codes is ever valid."""
    with db.transaction():
        s = db.session()
        if s.execute(select(func.count(User.id))).scalar_one() == 0:
            units = {code: create_unit(code, name, kind) for code, name, kind in DEMO_UNITS}
            for name, cert_no, unit_code, roles in DEMO_USERS:
                user = create_user(name, cert_no, units[unit_code], parse_roles(roles))
                if cert_no in DEMO_OVERSIGHT:
                    update_user(user, overseen_units=[units[code] for code in DEMO_OVERSIGHT[cert_no]])
            for kind, party, code, address, flags in DEMO_CASES:
                s.add(Case(unit_id=units["LZ-ZF1"].id, kind=kind, party_name=party, party_credit_code=code,
                           party_address=address, flags=flags))
            click.echo("demo units, users and cases created")
        lines = []
        for _name, cert_no, _unit, roles in DEMO_USERS:
            user = find_user(cert_no)
            if user is not None and user.active:
                _revoke_unused_codes(user)
                lines.append(f"  {user.name:<6} {roles:<14} {_enrol_link(user)}")
    click.echo("enrolment links (one-time, valid 24 h):")
    for line in lines:
        click.echo(line)


@click.command("verify-signatures")
def verify_signatures_command():
    """Re-canonicalise every stored revision and verify its device signature (catches database edits)."""
    from .sync.verification import Finding, check_all

    bad = 0
    checked = 0
    for outcome in check_all():
        if isinstance(outcome, Finding):
            bad += 1
            click.echo(f"BAD {outcome.record_id} revision {outcome.revision}: {outcome.problem}")
        else:
            checked = outcome
    click.echo(f"{checked} revisions checked, {bad} bad")
    if bad:
        raise SystemExit(1)


@click.command("revoke-device")
@click.argument("device_id")
def revoke_device_command(device_id: str):
    """Revoke a device (a lost phone): its later pushes are refused; earlier revisions stay valid."""
    import uuid

    from .models import Device, utcnow

    with db.transaction():
        try:
            device = db.session().get(Device, uuid.UUID(device_id))
        except ValueError:
            device = None
        if device is None:
            raise click.ClickException(f"no device {device_id}")
        if device.revoked_at is None:
            device.revoked_at = utcnow()
    click.echo(f"device {device_id} revoked")


@click.command("import-export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_export_command(path: str):
    """Import a phone's "export unsynced records" file (signatures verified; idempotent with sync)."""
    import json

    from .sync.importer import ImportError_, import_export

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        summary = import_export(data, _settings().clock_skew_seconds)
    except (ValueError, ImportError_) as exc:
        raise click.ClickException(f"cannot import {path}: {exc}") from None
    click.echo(summary.line())
    for problem in summary.problems[:50]:
        click.echo(f"  {problem}")


@click.command("sweep-uploads")
@click.option("--abandon-hours", type=float, default=None,
              help="remove uploads not added to for this long [FIELDAPP_UPLOAD_ABANDON_HOURS, 48]")
@click.option("--completed-hours", type=float, default=None,
              help="remove completed uploads' state this long after completion [FIELDAPP_UPLOAD_COMPLETED_HOURS, 1]")
@click.option("--temp-hours", type=float, default=None,
              help="remove temporary files not written for this long [FIELDAPP_UPLOAD_TEMP_HOURS, 6]")
@click.option("--dry-run", is_flag=True, help="only count what would be removed")
def sweep_uploads_command(abandon_hours, completed_hours, temp_hours, dry_run: bool):
    """Remove abandoned uploads, completed uploads' leftover state and temporary files left by a
    killed host, by age. Stored originals are never touched. Run it hourly on every host (cron or
    a systemd timer); runs on several hosts at once are harmless."""
    from datetime import timedelta

    from .media import service, sweep

    settings = _settings()

    def hours(given, configured) -> timedelta:
        value = configured if given is None else given
        if value < 0:
            raise click.BadParameter("ages are not negative")
        return timedelta(hours=value)

    report = sweep.sweep(
        service.media_storage(),
        abandon_after=hours(abandon_hours, settings.upload_abandon_hours),
        completed_after=hours(completed_hours, settings.upload_completed_hours),
        temp_after=hours(temp_hours, settings.upload_temp_hours),
        dry_run=dry_run,
    )
    click.echo(report.line(dry_run))
    if report.failed:
        raise SystemExit(1)


@click.command("footage-import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--unit", "unit_code", default=None, help="unit code for cameras nobody registered (else the manifest's)")
@click.option("--no-previews", is_flag=True, help="store and link only; make posters and previews later")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")
def footage_import_command(folder: str, unit_code: str | None, no_previews: bool, as_json: bool):
    """Ingest a collection station's export folder: its manifest (CSV or JSON) and the files it
    names. Every byte is hashed and checked against the station's hashes; a file that fails is
    reported and skipped, never half-stored. Ingesting the same folder again changes nothing."""
    import json

    from .footage import ingest, previews

    report = ingest.ingest_folder(folder, unit_code=unit_code)
    made = None if no_previews else previews.make_previews(report.stored)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "previews": made}, ensure_ascii=False))
    else:
        for line in report.lines:
            where = f"{line.file_name or report.manifest}" + (f" (row {line.line})" if line.line else "")
            click.echo(f"{line.outcome:9} {line.code:22} {where}: {line.message}")
        share = "—" if report.linked_share is None else f"{report.linked_share:.1%}"
        click.echo(f"stored {len(report.stored)}, unchanged {report.unchanged}, skipped {report.skipped}; "
                   f"linked automatically {share}" + (f"; previews {made['made']} made, {made['failed']} failed"
                                                      if made else ""))
    if any(line.outcome == "error" for line in report.lines):
        raise SystemExit(1)


@click.command("footage-previews")
def footage_previews_command():
    """Make the posters and previews footage still lacks (after `footage-import --no-previews`, or a
    station push cut short before they were made). Safe to run from cron on any host, any time."""
    from .footage import previews

    made = previews.make_previews(previews.segments_without_previews())
    click.echo(f"previews {made['made']} made, {made['failed']} could not be made (flagged no_preview)")


COMMANDS = [footage_import_command, footage_previews_command, init_db_command, sweep_uploads_command, verify_signatures_command, revoke_device_command, import_export_command, create_unit_command, create_user_command, set_user_command,
            enroll_command, seed_demo_command, calendar_load_command, compliance_check_command]


def init_app(app) -> None:
    from .records.cli import COMMANDS as AUDIT_COMMANDS
    from .documents.cli import COMMANDS as DOCUMENT_COMMANDS
    from .records.retention_cli import COMMANDS as RETENTION_COMMANDS
    from .backup.cli import COMMANDS as BACKUP_COMMANDS
    from .backup.audit_cli import COMMANDS as MEDIA_AUDIT_COMMANDS
    for command in (COMMANDS + AUDIT_COMMANDS + RETENTION_COMMANDS + DOCUMENT_COMMANDS + BACKUP_COMMANDS
                    + MEDIA_AUDIT_COMMANDS):
        app.cli.add_command(command)
