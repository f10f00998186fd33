"""The statistics pages (art. 32): units side by side, each unit's officers, trends by month, the
cases behind every number, and the XLSX export — of a month or of a whole year (month=all, made from
the stored months by ``periods``). Thin: the figures are ``compute``'s, read from the aggregated
table, brought up to date on view (``compute.refresh_if_stale``)."""
from __future__ import annotations

import io
import uuid
from datetime import datetime

import click
from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import db
from ..records import secrecy
from ..access import allow
from ..models import Case, MonthlyFigure, Revision, Role, SyncedRecord, Unit, User, utcnow
from . import compute, export, figures as figures_data, periods

bp = Blueprint("statistics", __name__, url_prefix="/supervision/statistics", cli_group=None)

READERS = (Role.SUPERVISOR, Role.DIVISION_HEAD, Role.BUREAU_HEAD, Role.LEAD)
EVERY_UNIT = frozenset({Role.SUPERVISOR, Role.DIVISION_HEAD, Role.BUREAU_HEAD})


def visible_units(user) -> frozenset[uuid.UUID] | None:
    """None: every unit (the policy section and the bureau's leaders); a lead: their own unit."""
    if user.roles & EVERY_UNIT:
        return None
    return frozenset({user.unit_id})


def _language() -> str:
    return "zh" if get_locale().language == "zh" else "en"


def _month_args() -> tuple[int, int | None]:
    """The period asked for: a year and a month, or the whole year (month=all → None)."""
    now = compute.month_of(utcnow())
    try:
        year = int(request.args.get("year", now[0]))
        text = request.args.get("month", str(now[1]))
        month = None if text == "all" else int(text)
    except ValueError:
        abort(404)
    if not (2000 <= year <= 2100 and (month is None or 1 <= month <= 12)):
        abort(404)
    return year, month


def _units(visible) -> list[Unit]:
    s = db.session()
    query = select(Unit).order_by(Unit.code)
    units = [u for u in s.execute(query).scalars() if visible is None or u.id in visible]
    return units


def _cells(year: int, months: list[int] | None, visible, *, totals_only: bool = False) -> list:
    t = MonthlyFigure
    query = select(t.month, t.unit_id, t.user_id, t.figure, t.value, t.numerator, t.denominator).where(t.year == year)
    if months is not None:
        query = query.where(t.month.in_(months))
    if totals_only:
        query = query.where(t.user_id.is_(None))
    if visible is not None:
        query = query.where(t.unit_id.in_(sorted(visible)))
    return db.session().execute(query).all()


def format_value(figure: figures_data.Figure, value, numerator=None, denominator=None) -> str:
    if value is None:
        return "—"
    if figure.kind == "ratio":
        return f"{value * 100:.0f}%（{numerator:.0f}/{denominator:.0f}）" if _language() == "zh" else \
            f"{value * 100:.0f}% ({numerator:.0f}/{denominator:.0f})"
    if figure.kind in ("minutes", "days"):
        return f"{value:.1f}"
    if figure.kind == "seconds":
        return f"{value:.0f}"
    return f"{value:.0f}"


@bp.get("/")
@allow(*READERS)
def index():
    year, month = _month_args()
    visible = visible_units(current_user)
    if periods.refresh_if_stale(year, month):
        db.session().commit()
    lang = _language()
    defs = figures_data.builtin()
    by_id = {f.id: f for f in defs}
    units = _units(visible)
    year_rows = _cells(year, None, visible, totals_only=True)
    period = periods.cells(year, month, visible, user_id=None)
    shown_ids = {unit for unit, _user, _f in period}
    units = [u for u in units if u.id in shown_ids or u.kind is None]
    totals = {(unit, f): cell for (unit, _user, f), cell in period.items()}
    chosen = request.args.get("figure") if request.args.get("figure") in by_id else defs[0].id
    trend: dict[uuid.UUID, dict[int, tuple]] = {}
    for r in year_rows:
        if r.figure == chosen:
            trend.setdefault(r.unit_id, {})[r.month] = (r.value, r.numerator, r.denominator)
    unit_id = _uuid(request.args.get("unit"))
    if unit_id is None and visible is not None and len(visible) == 1:
        unit_id = next(iter(visible))
    if unit_id is not None and (visible is not None and unit_id not in visible):
        abort(404)
    officers, officer_cells = [], {}
    if unit_id is not None:
        found = {k: c for k, c in periods.cells(year, month, visible, unit_id=unit_id).items() if k[1] is not None}
        officer_cells = {(user, f): cell for (_unit, user, f), cell in found.items()}
        ids = sorted({user for _unit, user, _f in found}, key=str)
        people = {u.id: u for u in db.session().execute(select(User).where(User.id.in_(ids))).scalars()} if ids else {}
        officers = sorted((people[i] for i in ids if i in people), key=lambda u: u.cert_no)
    chart = _bar_chart([(u.name, (totals.get((u.id, chosen)).value if totals.get((u.id, chosen)) else 0) or 0)
                        for u in units])
    trend_chart = _line_chart({u.name: trend.get(u.id, {}) for u in units})
    by_month: dict[tuple, dict[int, tuple]] = {}
    for r in year_rows:
        by_month.setdefault((r.unit_id, r.figure), {})[r.month] = (r.value, r.numerator, r.denominator)
    year_totals = {(u.id, chosen): periods.year_value(by_id[chosen], by_month.get((u.id, chosen), {})) for u in units}
    computed = [compute.computed_at(year, m) for m in periods.months_of(year, month)]
    return render_template("statistics/index.html", year=year, month=month, figures=defs, by_id=by_id, lang=lang,
                           units=units, totals=totals, chosen=chosen, trend=trend, chart=chart,
                           trend_chart=trend_chart, unit_id=unit_id, officers=officers, officer_cells=officer_cells,
                           fmt=format_value, computed=min((c for c in computed if c), default=None),
                           year_totals=year_totals, can_refresh=current_user.has_role(Role.SUPERVISOR),
                           unit_names={u.id: u.name for u in units}, period_label=_period_label(year, month))


def _period_label(year: int, month: int | None) -> str:
    return f"{year}-{month:02d}" if month is not None else _("%(year)s, whole year", year=year)


def _uuid(text) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text)) if text else None
    except ValueError:
        return None


def _bar_chart(bars: list[tuple[str, float]]) -> dict:
    """Geometry of a horizontal bar chart, drawn by the template as inline SVG."""
    top = max((v for _n, v in bars), default=0) or 1
    return {"rows": [{"label": n, "value": v, "width": round(300 * v / top, 1), "y": 24 * i}
                     for i, (n, v) in enumerate(bars)], "height": 24 * len(bars) + 4}


def _line_chart(series: dict[str, dict[int, tuple]]) -> dict:
    """Geometry of a line chart of twelve months, one line per unit."""
    values = [v[0] for s in series.values() for v in s.values() if v[0] is not None]
    top = max(values, default=0) or 1
    lines = []
    for i, (name, months) in enumerate(series.items()):
        points = [(40 + 40 * (m - 1), round(170 - 150 * (months[m][0] or 0) / top, 1)) for m in range(1, 13)
                  if m in months and months[m][0] is not None]
        lines.append({"name": name, "points": " ".join(f"{x},{y}" for x, y in points), "dots": points,
                      "hue": (i * 47) % 360})
    return {"lines": lines, "top": top}


@bp.post("/refresh")
@allow(Role.SUPERVISOR)
def refresh():
    year, month = _month_args_form()
    compute.refresh(year, month)
    flash(_("Statistics recomputed."), "ok")
    return redirect(url_for("statistics.index", year=year, month=month))


def _month_args_form() -> tuple[int, int]:
    now = compute.month_of(utcnow())
    try:
        year, month = int(request.form.get("year", now[0])), int(request.form.get("month", now[1]))
    except ValueError:
        abort(400)
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        abort(400)
    return year, month


@bp.get("/cases")
@allow(*READERS)
def drill():
    """The cases and records behind one number."""
    year, month = _month_args()
    by_id = figures_data.by_id()
    figure = by_id.get(request.args.get("figure", ""))
    unit_id = _uuid(request.args.get("unit"))
    if figure is None or unit_id is None:
        abort(404)
    visible = visible_units(current_user)
    if visible is not None and unit_id not in visible:
        abort(404)
    user_id = _uuid(request.args.get("user"))
    found = periods.cells(year, month, visible, unit_id=unit_id, user_id=user_id, figure=figure.id, with_items=True)
    row = found.get((unit_id, user_id, figure.id))
    items = row.items if row else []
    case_ids = sorted({uuid.UUID(c) for c, _r, _w in items if c})
    record_ids = sorted({uuid.UUID(r) for _c, r, _w in items if r})
    s = db.session()
    cases = {c.id: c for c in s.execute(select(Case).where(Case.id.in_(case_ids))).scalars()} if case_ids else {}
    records = {}
    if record_ids:
        for rid, rtype, author, payload in s.execute(select(SyncedRecord.id, SyncedRecord.record_type,
                                                            SyncedRecord.author_id, Revision.payload)
                                                     .join(Revision, compute._heads())
                                                     .where(SyncedRecord.id.in_(record_ids))).all():
            records[rid] = (rtype, author, compute.event_time(rtype, payload))
    people = {u.id: u.name for u in s.execute(select(User).where(User.id.in_(
        {r[1] for r in records.values()} | ({user_id} if user_id else set())))).scalars()}
    unit = s.get(Unit, unit_id) or abort(404)
    lines = []
    for c, r, what in items:
        case = cases.get(uuid.UUID(c)) if c else None
        record = records.get(uuid.UUID(r)) if r else None
        # A case marked under art. 31 is counted like any other, but named only to who may see it.
        hidden = case is not None and not secrecy.may_see_case(current_user, case)
        lines.append({"case": case, "hidden": hidden, "record_id": r, "record_type": record[0] if record else None,
                      "officer": people.get(record[1]) if record else None, "at": record[2] if record else None,
                      "what": what})
    return render_template("statistics/cases.html", figure=figure, lang=_language(), year=year, month=month,
                           period_label=_period_label(year, month),
                           unit=unit, officer=people.get(user_id) if user_id else None, row=row, lines=lines,
                           fmt=format_value)


@bp.get("/export.xlsx")
@allow(*READERS)
def export_xlsx():
    year, month = _month_args()
    visible = visible_units(current_user)
    if periods.refresh_if_stale(year, month):
        db.session().commit()
    data = export.workbook(year, month, visible)
    name = f"statistics-{year}-{month:02d}.xlsx" if month is not None else f"statistics-{year}.xlsx"
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.cli.command("statistics-refresh")
@click.option("--month", "month_text", help="YYYY-MM (Beijing time); default: this month, the one before, and "
                                           "every earlier month something reached the server for since the last run")
@click.option("--all", "every", is_flag=True, help="every month from the first record to now")
def refresh_command(month_text: str | None, every: bool) -> None:
    """Recompute the monthly statistics (run hourly from cron)."""
    now = utcnow()
    if every:
        months = compute.months_with_records(now)
    elif month_text:
        try:
            months = [compute.parse_month(month_text)]
        except ValueError:
            raise click.BadParameter("YYYY-MM", param_hint="--month") from None
    else:
        months = compute.months_to_refresh(now)
    for year, month in months:
        t0 = datetime.now()
        cells = compute.refresh(year, month, now)
        click.echo(f"{year}-{month:02d}: {cells} cells in {(datetime.now() - t0).total_seconds():.1f} s")
    if not (every or month_text):
        # Every other stored month was found unchanged up to now: the next run reads from here.
        compute.mark_checked(set(compute.stored_months()) - set(months), now)
