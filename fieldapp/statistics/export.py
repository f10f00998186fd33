"""The XLSX export of one month or one year (openpyxl): a sheet per unit (officers as rows, figures as columns),
a sheet of unit totals, and a sheet of the figures' definitions (from figures.toml). Chinese
headers first, English beneath."""
from __future__ import annotations

import io
import re
import uuid

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select

from .. import db
from ..models import Unit, User
from . import figures as figures_data, periods

_INVALID = re.compile(r"[\[\]:*?/\\]")


def sheet_title(name: str, taken: set[str]) -> str:
    """A valid, unique sheet name: no []:*?/\\, at most 31 characters, not blank."""
    base = (_INVALID.sub("_", name).strip("'") or "单位")[:31]
    title, n = base, 2
    while title.lower() in taken:
        suffix = f"（{n}）"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


def cell_value(figure: figures_data.Figure, value):
    if value is None:
        return None
    if figure.kind == "ratio":
        return round(value, 4)
    return round(value, 2) if figure.kind in ("minutes", "days", "seconds") else int(round(value))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _append(sheet, values: list) -> None:
    """Names are typed by people: a control character in one would make the file unwritable."""
    sheet.append([_CONTROL.sub("", v) if isinstance(v, str) else v for v in values])


def _as_text(cell) -> None:
    """A name starting with "=" would be stored as a formula, and run in the reader's spreadsheet:
    text stays text."""
    if cell.data_type == "f":
        cell.data_type = "s"


def workbook(year: int, month: int | None, visible: frozenset[uuid.UUID] | None) -> bytes:
    """One month's figures, or (month None) the whole year's by each figure's year rule; a
    percentile has no year figure and its column stays empty."""
    s = db.session()
    defs = figures_data.builtin()
    found = periods.cells(year, month, visible)
    values = {key: cell.value for key, cell in found.items()}
    unit_ids = {unit for unit, _user, _f in found}
    units = [u for u in s.execute(select(Unit).order_by(Unit.code)).scalars() if u.id in unit_ids]
    user_ids = {user for _unit, user, _f in found if user}
    people = {u.id: u for u in s.execute(select(User).where(User.id.in_(user_ids))).scalars()} if user_ids else {}
    book = Workbook()
    taken: set[str] = set()
    totals = book.active
    totals.title = sheet_title("单位合计", taken)
    _append(totals, ["单位", "单位代码"] + [f.label_zh for f in defs])
    _append(totals, ["Unit", "Code"] + [f.label_en for f in defs])
    for unit in units:
        _append(totals, [unit.name, unit.code] + [cell_value(f, values.get((unit.id, None, f.id))) for f in defs])
    officer_defs = [f for f in defs if f.level == "record"]
    for unit in units:
        sheet = book.create_sheet(sheet_title(unit.name, taken))
        _append(sheet, ["执法人员", "执法证号"] + [f.label_zh for f in officer_defs])
        _append(sheet, ["Officer", "Certificate no."] + [f.label_en for f in officer_defs])
        officers = sorted((people[u] for (unit_id, u, _f) in values if unit_id == unit.id and u in people),
                          key=lambda p: p.cert_no)
        for person in dict.fromkeys(officers):
            _append(sheet, [person.name, person.cert_no]
                         + [cell_value(f, values.get((unit.id, person.id, f.id))) for f in officer_defs])
        _append(sheet, ["本单位合计 Unit total", unit.code]
                     + [cell_value(f, values.get((unit.id, None, f.id))) for f in officer_defs])
    definitions = book.create_sheet(sheet_title("指标说明", taken))
    _append(definitions, ["指标代码", "名称", "定义", "依据", "类型", "Label", "Definition"])
    for f in defs:
        _append(definitions, [f.id, f.label_zh, f.definition_zh, f.article, f.kind, f.label_en, f.definition_en])
    for sheet in book.worksheets:
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows():
            for cell in row:
                _as_text(cell)
        sheet.freeze_panes = "C3" if sheet is not definitions else "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
