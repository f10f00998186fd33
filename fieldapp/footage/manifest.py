"""The manifest a collection station (采集站) exports next to the body-camera (执法记录仪) files.

A station export is a folder: the video files plus one manifest, CSV or JSON, with a row per file.
This module reads that manifest into :class:`ManifestRow` values and :class:`Problem` values. It
never touches the database, the video files or the file system beyond the manifest itself, and it
never raises for bad content: every defect becomes a ``Problem`` with a stable ``code`` so that the
ingest can show the station operator what to fix. A row with a problem is skipped (it is not in
``Manifest.rows``) unless the problem's code is in :data:`WARNING_CODES`.

Canonical format (English column names; the Chinese headers stations write are accepted too, see
:data:`COLUMNS`)::

    camera_serial,officer_no,unit_code,file_name,started_at,ended_at,collected_at,md5,sm3,important
    DSJ-A8-000123,310115001,310115,20261103_091500_0001.mp4,2026-11-03T09:15:00+08:00,2026-11-03T09:45:12+08:00,2026-11-03T18:02:00+08:00,9e107d9d372bb6826bd81d3542a419d6,,1
    DSJ-A8-000123,310115001,310115,20261103_094600_0002.mp4,2026-11-03T01:46:00Z,2026-11-03T02:01:30Z,,,,0

JSON: a list of objects, or an object ``{"files": [...]}`` holding that list, with the same keys::

    {"files": [
      {"camera_serial": "DSJ-A8-000123", "officer_no": "310115001", "unit_code": "310115",
       "file_name": "20261103_091500_0001.mp4",
       "started_at": "2026-11-03T09:15:00+08:00", "ended_at": "2026-11-03T09:45:12+08:00",
       "collected_at": "2026-11-03T18:02:00+08:00",
       "md5": "9e107d9d372bb6826bd81d3542a419d6", "sm3": null, "important": true}
    ]}

Required: camera_serial, file_name, started_at, ended_at. Everything else may be empty.

* Encodings: a UTF-8 BOM (``utf-8-sig``, what Excel writes for "CSV UTF-8"), a UTF-16 BOM (Excel's
  "Unicode text"), else strict UTF-8, else GB18030 — a superset of GBK, which Windows stations
  write. ``Manifest.encoding`` says which was used.
* CSV: the delimiter (``,``, ``;`` or tab) is sniffed from the header line, falling back to a comma;
  blank lines are ignored and cells are stripped. Column names are matched ignoring case, spaces,
  ``_`` and ``-``.
* Times: ISO 8601 with an offset (``2026-11-03T09:15:00+08:00``, ``Z``), also with a space or with
  ``/`` in the date (``2026/11/03 09:15:00``) and the compact ``20261103091500``. A time without
  an offset is read as Asia/Shanghai — stations run on Beijing time — and the row is kept with
  ``zone_assumed=True`` and a ``zone_assumed`` warning, because that reading is a guess a
  reviewer may need to know about. All times are returned in UTC.
* ``file_name`` must be a bare name: one that could reach outside the export folder (``/``, ``\\``,
  ``..``, ``C:``, NUL) is refused, never normalised, because the ingest opens it.

Problem codes: whole manifest (``line`` is None) — ``encoding``, ``bad_manifest``,
``missing_column``, ``empty``; per row — ``missing_value``, ``bad_time``, ``impossible_times``,
``bad_hash``, ``bad_value`` (an ``important`` mark that is neither yes nor no), ``path_in_name``,
``duplicate_row``, ``bad_row`` (a CSV row with cells beyond the header, a JSON item that is not an
object of scalars); warning (row kept) — ``zone_assumed``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

STATION_ZONE = ZoneInfo("Asia/Shanghai")
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
"""A manifest is a few kilobytes per thousand files; anything this large is not one."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "camera_serial": ("camera_serial", "camera", "serial", "产品序号", "设备编号", "记录仪编号"),
    "officer_no": ("officer_no", "officer", "警号", "执法证号", "人员编号"),
    "unit_code": ("unit_code", "unit", "单位编号", "单位代码"),
    "file_name": ("file_name", "filename", "文件名", "文件名称"),
    "started_at": ("started_at", "start", "start_time", "开始时间"),
    "ended_at": ("ended_at", "end", "end_time", "结束时间"),
    "collected_at": ("collected_at", "collected", "采集时间", "导入时间"),
    "md5": ("md5",),
    "sm3": ("sm3",),
    "important": ("important", "重要文件", "重要标记"),
}
"""Canonical field → the header names accepted for it (compared after :func:`_header_key`)."""

REQUIRED = ("camera_serial", "file_name", "started_at", "ended_at")
WARNING_CODES: frozenset[str] = frozenset({"zone_assumed"})
TRUTHY = frozenset({"1", "true", "yes", "y", "是", "重要"})
FALSY = frozenset({"", "0", "false", "no", "n", "否"})
HASH_LENGTHS = {"md5": 32, "sm3": 64}

MAX_DURATION = timedelta(hours=24)
FUTURE_SLACK = timedelta(days=1)
COLLECT_SLACK = timedelta(minutes=1)

_TIME = re.compile(
    r"(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})[Tt ]+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6})\d*)?)?"
    r"\s*(?P<z>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_COMPACT_TIME = re.compile(r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})")
_DRIVE = re.compile(r"^[A-Za-z]:")
_Report = Callable[[str, str], None]  # report(code, message) for the row being built


@dataclass(frozen=True)
class ManifestRow:
    line: int  # 1-based: the CSV line (the header is line 1), or the JSON item's index + 1
    camera_serial: str
    officer_no: str
    unit_code: str
    file_name: str  # a bare file name, never a path
    started_at: datetime  # aware, UTC
    ended_at: datetime  # aware, UTC, after started_at
    collected_at: datetime | None  # aware, UTC
    md5: str | None  # lowercase hex
    sm3: str | None  # lowercase hex
    important: bool  # 重要文件
    zone_assumed: bool  # some time had no offset and was read as Asia/Shanghai


@dataclass(frozen=True)
class Problem:
    line: int | None  # None for whole-manifest problems
    code: str
    message: str
    file_name: str | None = None


@dataclass
class Manifest:
    rows: list[ManifestRow]
    problems: list[Problem]
    encoding: str

    @property
    def warnings(self) -> list[Problem]:
        """Problems that did not cost their row."""
        return [p for p in self.problems if p.code in WARNING_CODES]


@dataclass(frozen=True)
class _Record:
    """One data row before validation: canonical field → stripped cell text."""

    line: int
    cells: dict[str, str]


class _Fatal(Exception):
    """Whole-manifest problems: no row can be trusted."""

    def __init__(self, *problems: Problem):
        super().__init__(problems[0].message)
        self.problems = list(problems)


# --- entry points -------------------------------------------------------------------------------

def read_manifest(path: Path, *, now: datetime | None = None) -> Manifest:
    """Read a manifest file; the format comes from its suffix (``.csv`` or ``.json``, any case)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "json"):
        raise ValueError(f"not a manifest (.csv or .json): {path.name}")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        return _too_large()
    return parse_manifest_bytes(path.read_bytes(), fmt, now=now)


def parse_manifest_bytes(data: bytes, fmt: str, *, now: datetime | None = None) -> Manifest:
    """Parse manifest bytes (``fmt`` is "csv" or "json"); never raises for bad content."""
    fmt = fmt.lower()
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown manifest format {fmt!r} (expected 'csv' or 'json')")
    now = _check_now(now)
    if len(data) > MAX_MANIFEST_BYTES:
        return _too_large()
    try:
        text, encoding = _decode(data)
    except _Fatal as exc:
        return Manifest(rows=[], problems=exc.problems, encoding="unknown")
    try:
        records, columns, problems = _csv_records(text) if fmt == "csv" else _json_records(text)
        if columns is not None:
            _require_columns(columns)
    except _Fatal as exc:
        return Manifest(rows=[], problems=exc.problems, encoding=encoding)
    if not records and not problems:
        return Manifest(rows=[], problems=[Problem(None, "empty", "The manifest lists no files.")], encoding=encoding)
    rows = _validate_records(records, problems, now)
    return Manifest(rows=rows, problems=sorted(problems, key=_problem_order), encoding=encoding)


def find_manifest(folder: Path) -> Path | None:
    """The one manifest in a station export folder (not its subfolders).

    ``manifest.json`` or ``manifest.csv`` (any case) wins; otherwise the single ``.csv``/``.json``
    file. Hidden files (macOS ``._`` copies) and symlinks are not candidates. Two candidates of the
    same rank raise ``ValueError``: picking one would ingest footage against a list that may not be
    the one the station meant.
    """
    candidates = sorted(
        p for p in Path(folder).iterdir()
        if p.suffix.lower() in (".csv", ".json") and not p.name.startswith(".")
        and not p.is_symlink() and p.is_file()
    )
    preferred = [p for p in candidates if p.name.lower() in ("manifest.json", "manifest.csv")]
    pool = preferred or candidates
    if len(pool) > 1:
        names = ", ".join(p.name for p in pool)
        raise ValueError(f"several manifests in {Path(folder).name}: {names}")
    return pool[0] if pool else None


# --- decoding -----------------------------------------------------------------------------------

def _decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was in; BOMs first, then UTF-8, then GB18030 (Windows stations)."""
    if data.startswith(b"\xef\xbb\xbf"):
        attempts = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        attempts = ("utf-16",)
    else:
        attempts = ("utf-8", "gb18030")
    for encoding in attempts:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise _Fatal(Problem(None, "encoding", f"The manifest is not text in {' or '.join(attempts)}."))


# --- CSV and JSON into records ------------------------------------------------------------------

def _csv_records(text: str) -> tuple[list[_Record], set[str] | None, list[Problem]]:
    """Records of a CSV, and the header's fields (None without a header line).

    The header is the first non-blank line; its delimiter is sniffed.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text),
                        skipinitialspace=True, strict=False)
    header: dict[int, str] | None = None
    width = 0
    records: list[_Record] = []
    problems: list[Problem] = []
    previous_end = 0
    try:
        for cells in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header, width = _map_header(cells), len(cells)
                continue
            extra = [c for c in cells[width:] if c.strip()]
            values = {f: cells[i].strip() if i < len(cells) else "" for i, f in header.items()}
            if extra:
                problems.append(Problem(line, "bad_row", f"Line {line} has {len(cells)} cells but the header has "
                                        f"{width}; an unquoted delimiter inside a value shifts the columns.",
                                        values.get("file_name") or None))
                continue
            records.append(_Record(line, values))
    except csv.Error as exc:
        raise _Fatal(Problem(None, "bad_manifest",
                             f"The CSV cannot be read near line {reader.line_num}: {exc}.")) from None
    return records, None if header is None else set(header.values()), problems


def _sniff_delimiter(text: str) -> str:
    """The header line's delimiter among comma, semicolon and tab; a comma when unclear."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:
        return ","
    return delimiter if delimiter in ",;\t" else ","


def _map_header(cells: list[str]) -> dict[int, str]:
    """Column index → canonical field; unknown columns are ignored, one field twice is fatal."""
    mapping: dict[int, str] = {}
    seen: dict[str, str] = {}
    for index, name in enumerate(cells):
        field_name = _field_for(name)
        if field_name is None:
            continue
        if field_name in seen:
            raise _Fatal(Problem(None, "bad_manifest", f"The header has two columns for {field_name}: "
                                                       f"{seen[field_name]!r} and {name.strip()!r}."))
        seen[field_name] = name.strip()
        mapping[index] = field_name
    return mapping


def _json_records(text: str) -> tuple[list[_Record], set[str] | None, list[Problem]]:
    """Records of a JSON manifest (a list of objects, or {"files": [...]}) and the fields any of
    them has — None when no item is usable, so there is nothing to check columns against."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Fatal(Problem(None, "bad_manifest", f"The manifest is not valid JSON: {exc}.")) from None
    if isinstance(document, dict) and isinstance(document.get("files"), list):
        document = document["files"]
    if not isinstance(document, list):
        raise _Fatal(Problem(None, "bad_manifest",
                             'The JSON manifest is neither a list of objects nor {"files": [...]}.'))
    records: list[_Record] = []
    problems: list[Problem] = []
    columns: set[str] = set()
    for index, item in enumerate(document):
        try:
            record = _json_record(index + 1, item)
        except ValueError as exc:
            problems.append(Problem(index + 1, "bad_row", str(exc), _json_name(item)))
            continue
        columns.update(record.cells)
        records.append(record)
    return records, (columns if records else None), problems


def _json_record(line: int, item: Any) -> _Record:
    """One JSON item as a record; ValueError with a message when it cannot be one."""
    if not isinstance(item, dict):
        raise ValueError(f"Item {line} of the JSON manifest is a {type(item).__name__}, not an object.")
    cells: dict[str, str] = {}
    keys: dict[str, str] = {}
    for key, value in item.items():
        field_name = _field_for(str(key))
        if field_name is None:
            continue
        if field_name in keys:
            raise ValueError(f"Item {line} has two keys for {field_name}: {keys[field_name]!r} and {key!r}.")
        keys[field_name] = str(key)
        cells[field_name] = _json_cell(line, field_name, value)
    return _Record(line, cells)


def _json_cell(line: int, field_name: str, value: Any) -> str:
    """A JSON scalar as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    raise ValueError(f"Item {line}: {field_name} is a {type(value).__name__}, not a single value.")


def _json_name(item: Any) -> str | None:
    """The file name of a broken JSON item, when one can be told, for the problem list."""
    if isinstance(item, dict):
        for key, value in item.items():
            if _field_for(str(key)) == "file_name" and isinstance(value, str):
                return value.strip() or None
    return None


def _header_key(name: str) -> str:
    """Header text compared ignoring case, BOMs, whitespace (also full-width), ``_`` and ``-``."""
    return re.sub(r"[\s_\-\ufeff]+", "", name).lower()


_ALIASES = {_header_key(alias): canonical for canonical, names in COLUMNS.items() for alias in names}


def _field_for(name: str) -> str | None:
    return _ALIASES.get(_header_key(name))


def _require_columns(columns: set[str]) -> None:
    """Fatal ``missing_column`` when a required column is absent: no row could be used."""
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise _Fatal(*(Problem(None, "missing_column",
                               f"The manifest has no {f} column (accepted names: {', '.join(COLUMNS[f])}).")
                       for f in missing))


def _too_large() -> Manifest:
    message = f"The manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; it cannot be a station's list."
    return Manifest(rows=[], problems=[Problem(None, "bad_manifest", message)], encoding="unknown")


# --- rows ---------------------------------------------------------------------------------------

def _validate_records(records: list[_Record], problems: list[Problem], now: datetime) -> list[ManifestRow]:
    """Rows that passed every check, in manifest order; problems are appended to ``problems``."""
    rows: list[ManifestRow] = []
    first_seen: dict[str, _Record] = {}
    for record in records:
        row, row_problems = _build_row(record, now)
        name = record.cells.get("file_name", "")
        earlier = first_seen.get(name.casefold()) if name else None
        if earlier is not None:  # skipped whatever else is wrong with it, so its warnings go too
            kept = [p for p in row_problems if p.code not in WARNING_CODES]
            row, row_problems = None, [*kept, _duplicate(record, earlier)]
        elif name:
            first_seen[name.casefold()] = record
        problems.extend(row_problems)
        if row is not None:
            rows.append(row)
    return rows


def _duplicate(record: _Record, earlier: _Record) -> Problem:
    """``duplicate_row``: the first row for a file wins; say whether the repeat differs."""
    name = record.cells["file_name"]
    differing = sorted(f for f in set(record.cells) | set(earlier.cells)
                       if record.cells.get(f, "") != earlier.cells.get(f, ""))
    how = "as an identical row" if not differing else f"with a different {', '.join(differing)}"
    return Problem(record.line, "duplicate_row",
                   f"file_name {name!r} repeats line {earlier.line} {how}; the first row is kept and this "
                   f"one skipped (file names are compared ignoring case).", name)


def _build_row(record: _Record, now: datetime) -> tuple[ManifestRow | None, list[Problem]]:
    """A row, or None with the problems that cost it; warnings come with a kept row."""
    cells = record.cells
    name = cells.get("file_name", "")
    problems: list[Problem] = []

    def problem(code: str, message: str) -> None:
        problems.append(Problem(record.line, code, message, name or None))

    missing = [f for f in REQUIRED if not cells.get(f)]
    if missing:
        what = f" for {name!r}" if name else ""
        problem("missing_value", f"Line {record.line}{what} has no value for {', '.join(missing)}.")
    if name and (reason := _path_reason(name)):
        problem("path_in_name", f"file_name {name!r} {reason}; only a bare file name is accepted.")
    times, assumed = _times(cells, problem)
    if times is not None and (reasons := _impossible(times, now)):
        problem("impossible_times", f"{name or 'The row'}: {'; '.join(reasons)}.")
    md5, sm3 = (_hash(cells, algorithm, problem) for algorithm in ("md5", "sm3"))
    important = _important(cells.get("important", ""), problem)
    if problems or times is None:
        return None, problems
    if assumed:
        problem("zone_assumed", f"{name}: {', '.join(assumed)} without a UTC offset "
                                f"{'was' if len(assumed) == 1 else 'were'} read as Beijing time (Asia/Shanghai).")
    started, ended, collected = times
    row = ManifestRow(
        line=record.line, camera_serial=cells["camera_serial"], officer_no=cells.get("officer_no", ""),
        unit_code=cells.get("unit_code", ""), file_name=name, started_at=started, ended_at=ended,
        collected_at=collected, md5=md5, sm3=sm3, important=bool(important), zone_assumed=bool(assumed),
    )
    return row, problems


def _path_reason(name: str) -> str | None:
    """Why a file name could point outside the export folder, or None for a bare name."""
    if name in (".", ".."):
        return "is a directory reference"
    if "\x00" in name:
        return "contains a NUL character"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    return None


def _times(cells: dict[str, str], problem: _Report) -> tuple[tuple[datetime, datetime, datetime | None] | None, list[str]]:
    """(started, ended, collected) in UTC and the fields read as Beijing time; None on a bad time."""
    parsed: dict[str, datetime | None] = {}
    assumed: list[str] = []
    ok = True
    for field_name in ("started_at", "ended_at", "collected_at"):
        text = cells.get(field_name, "")
        if not text:
            parsed[field_name] = None
            continue
        try:
            value, zone_assumed = parse_time(text)
        except ValueError:
            problem("bad_time", f"{field_name} {text!r} is not a date and time such as 2026-11-03T09:15:00+08:00.")
            ok = False
            continue
        parsed[field_name] = value
        if zone_assumed:
            assumed.append(field_name)
    started, ended = parsed.get("started_at"), parsed.get("ended_at")
    if not ok or started is None or ended is None:
        return None, assumed
    return (started, ended, parsed.get("collected_at")), assumed


def parse_time(text: str) -> tuple[datetime, bool]:
    """A station time as aware UTC, and whether its zone was assumed (no offset: Asia/Shanghai).

    Raises ValueError for anything else, including impossible dates such as 2026-02-30.
    """
    text = text.strip()
    match = _TIME.fullmatch(text) or _COMPACT_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a time: {text!r}")
    parts = match.groupdict()
    fraction = (parts.get("f") or "").ljust(6, "0")
    local = datetime(int(parts["y"]), int(parts["mo"]), int(parts["d"]), int(parts["h"]), int(parts["mi"]),
                     int(parts.get("s") or 0), int(fraction or 0))
    zone_text = parts.get("z")
    try:
        if zone_text is None:
            return local.replace(tzinfo=STATION_ZONE).astimezone(UTC), True
        return local.replace(tzinfo=_offset(zone_text)).astimezone(UTC), False
    except OverflowError:  # year 1 or 9999 moved across midnight by its offset
        raise ValueError(f"not a time a camera recorded: {text!r}") from None


def _offset(text: str) -> timezone:
    """``Z``, ``+08:00``, ``+0800`` or ``+08`` as a fixed offset."""
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"not an offset: {text!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _impossible(times: tuple[datetime, datetime, datetime | None], now: datetime) -> list[str]:
    """What cannot be true of a recording's times: the reasons, empty when plausible."""
    started, ended, collected = times
    reasons = []
    if ended <= started:
        reasons.append(f"ended_at {_iso(ended)} is not after started_at {_iso(started)}")
    elif ended - started > MAX_DURATION:
        reasons.append(f"started_at {_iso(started)} to ended_at {_iso(ended)} is longer than 24 hours")
    if started > now + FUTURE_SLACK:
        reasons.append(f"started_at {_iso(started)} is more than a day in the future")
    if collected is not None and collected < ended - COLLECT_SLACK:
        reasons.append(f"collected_at {_iso(collected)} is before ended_at {_iso(ended)}")
    return reasons


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _hash(cells: dict[str, str], algorithm: str, problem: _Report) -> str | None:
    """A declared digest in lowercase hex, None when absent; a malformed one is a ``bad_hash``."""
    text = cells.get(algorithm, "")
    if not text:
        return None
    length = HASH_LENGTHS[algorithm]
    value = text.lower()
    if not re.fullmatch(rf"[0-9a-f]{{{length}}}", value):
        shown = text if len(text) <= 80 else text[:77] + "..."
        problem("bad_hash", f"{algorithm} {shown!r} is not {length} hexadecimal digits.")
        return None
    return value


def _important(text: str, problem: _Report) -> bool | None:
    """The 重要文件 mark; a value that is neither yes nor no is a ``bad_value``, not a silent no."""
    value = text.strip().lower()
    if value in TRUTHY:
        return True
    if value in FALSY:
        return False
    problem("bad_value", f"important {text!r} is neither yes (1, true, yes, 是, 重要) nor no (0, false, no, 否, empty).")
    return None


def _check_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now


def _problem_order(problem: Problem) -> tuple[int, int]:
    """Whole-manifest problems first, then by line; stable within a line (sorted() is stable)."""
    return (0, 0) if problem.line is None else (1, problem.line)
