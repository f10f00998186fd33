"""Station manifests: each problem code in CSV and JSON, the encodings and delimiters Windows stations
write, Beijing times without an offset, and file names that try to be paths.

Every case asserts what the ingest shows: which rows are kept, and which problem (code, line, file,
a message naming the field) explains a skipped row.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fieldapp.footage.manifest import (
    WARNING_CODES,
    Manifest,
    find_manifest,
    parse_manifest_bytes,
    read_manifest,
)

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SM3 = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
GOOD = {
    "camera_serial": "DSJ-A8-000123",
    "officer_no": "310115001",
    "unit_code": "310115",
    "file_name": "ok.mp4",
    "started_at": "2026-11-03T09:15:00+08:00",
    "ended_at": "2026-11-03T09:45:00+08:00",
    "collected_at": "2026-11-03T18:00:00+08:00",
    "md5": MD5,
    "sm3": SM3,
    "important": "1",
}
FORMATS = ("csv", "json")


def row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def as_csv(rows: list[dict[str, str]], *, delimiter: str = ",", columns: list[str] | None = None) -> bytes:
    columns = columns or list(GOOD)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for item in rows:
        writer.writerow(item.get(key, "") for key in columns)
    return out.getvalue().encode()


def as_json(rows: list[dict[str, str]]) -> bytes:
    return json.dumps({"files": [{k: (v or None) for k, v in item.items()} for item in rows]},
                      ensure_ascii=False).encode()


def parse(fmt: str, rows: list[dict[str, str]]) -> Manifest:
    data = as_csv(rows) if fmt == "csv" else as_json(rows)
    return parse_manifest_bytes(data, fmt, now=NOW)


def line_of(fmt: str, index: int) -> int:
    """The line a problem names for the index-th data row: CSV counts the header as line 1."""
    return index + 2 if fmt == "csv" else index + 1


def only_error(manifest: Manifest):
    errors = [p for p in manifest.problems if p.code not in WARNING_CODES]
    assert len(errors) == 1, manifest.problems
    return errors[0]


# --- a good manifest ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_good_row_is_read_into_utc_values(fmt):
    manifest = parse(fmt, [GOOD])
    assert manifest.problems == []
    assert manifest.encoding == "utf-8"
    (got,) = manifest.rows
    assert got.line == line_of(fmt, 0)
    assert (got.camera_serial, got.officer_no, got.unit_code, got.file_name) == (
        "DSJ-A8-000123", "310115001", "310115", "ok.mp4")
    assert got.started_at == datetime(2026, 11, 3, 1, 15, tzinfo=UTC)
    assert got.ended_at == datetime(2026, 11, 3, 1, 45, tzinfo=UTC)
    assert got.collected_at == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    assert (got.md5, got.sm3, got.important, got.zone_assumed) == (MD5, SM3, True, False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_optional_fields_may_be_empty(fmt):
    manifest = parse(fmt, [row(officer_no="", unit_code="", collected_at="", md5="", sm3="", important="")])
    (got,) = manifest.rows
    assert (got.officer_no, got.unit_code, got.collected_at, got.md5, got.sm3, got.important) == (
        "", "", None, None, None, False)


# --- each row problem, in both formats ------------------------------------------------------------

ROW_PROBLEMS = [
    # (id, changes to the bad row, code, text its message must name)
    ("no camera", {"camera_serial": ""}, "missing_value", "camera_serial"),
    ("no start", {"started_at": ""}, "missing_value", "started_at"),
    ("time is words", {"started_at": "yesterday morning"}, "bad_time", "started_at"),
    ("no such day", {"ended_at": "2026-02-30 10:00:00"}, "bad_time", "ended_at"),
    ("bad collected", {"collected_at": "18:00"}, "bad_time", "collected_at"),
    ("ends at start", {"ended_at": "2026-11-03T09:15:00+08:00"}, "impossible_times", "ended_at"),
    ("ends before start", {"ended_at": "2026-11-03T01:00:00Z"}, "impossible_times", "ended_at"),
    ("over 24 hours", {"ended_at": "2026-11-04T09:15:01+08:00"}, "impossible_times", "24 hours"),
    ("in the future", {"started_at": "2026-11-06T09:00:00+08:00", "ended_at": "2026-11-06T09:30:00+08:00",
                       "collected_at": ""}, "impossible_times", "future"),
    ("collected before end", {"collected_at": "2026-11-03T09:40:00+08:00"}, "impossible_times", "collected_at"),
    ("md5 short", {"md5": "abc123"}, "bad_hash", "md5"),
    ("md5 not hex", {"md5": "g" * 32}, "bad_hash", "md5"),
    ("sm3 is an md5", {"sm3": MD5}, "bad_hash", "sm3"),
    ("important maybe", {"important": "maybe"}, "bad_value", "important"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("changes", "code", "named"), [c[1:] for c in ROW_PROBLEMS], ids=[c[0] for c in ROW_PROBLEMS])
def test_row_problem_skips_the_row_and_names_the_field(fmt, changes, code, named):
    manifest = parse(fmt, [GOOD, row(file_name="bad.mp4", **changes)])
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    problem = only_error(manifest)
    assert (problem.code, problem.line) == (code, line_of(fmt, 1))
    assert named in problem.message
    assert problem.file_name == "bad.mp4"


def test_problems_of_one_row_are_all_reported():
    manifest = parse("csv", [row(md5="xyz", important="perhaps", started_at="never")])
    assert manifest.rows == []
    assert {p.code for p in manifest.problems} == {"bad_hash", "bad_value", "bad_time"}


def test_future_is_judged_against_now():
    tomorrow_ish = row(started_at="2026-11-05T08:00:00+08:00", ended_at="2026-11-05T08:30:00+08:00", collected_at="")
    assert parse_manifest_bytes(as_csv([tomorrow_ish]), "csv", now=NOW).rows  # within a day: clocks drift
    later = parse_manifest_bytes(as_csv([tomorrow_ish]), "csv", now=datetime(2026, 11, 1, tzinfo=UTC))
    assert only_error(later).code == "impossible_times"


def test_collected_a_little_before_the_end_is_clock_skew():
    manifest = parse("csv", [row(collected_at="2026-11-03T09:44:30+08:00")])
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["../etc/passwd", "C:\\x.mp4", "sub/a.mp4", "..", ".", "C:x.mp4", "a..mp4",
                                  "\\\\server\\share\\a.mp4", "/etc/passwd", "a\x00.mp4"])
def test_a_name_that_is_a_path_is_refused_not_normalised(fmt, name):
    manifest = parse(fmt, [GOOD, row(file_name=name)])
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    problem = only_error(manifest)
    assert (problem.code, problem.line, problem.file_name) == ("path_in_name", line_of(fmt, 1), name)
    assert repr(name) in problem.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_identical_duplicate_keeps_the_first(fmt):
    manifest = parse(fmt, [GOOD, row(file_name="b.mp4"), GOOD])
    assert [r.file_name for r in manifest.rows] == ["ok.mp4", "b.mp4"]
    assert manifest.rows[0].line == line_of(fmt, 0)
    problem = only_error(manifest)
    assert (problem.code, problem.line, problem.file_name) == ("duplicate_row", line_of(fmt, 2), "ok.mp4")
    assert "identical" in problem.message and "'ok.mp4'" in problem.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_differing_duplicate_says_what_differs(fmt):
    manifest = parse(fmt, [GOOD, row(file_name="OK.MP4", md5="", started_at="2026-11-03T09:20:00+08:00")])
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    problem = only_error(manifest)
    assert problem.code == "duplicate_row"
    assert "identical" not in problem.message
    assert "started_at" in problem.message and "md5" in problem.message


def test_a_duplicate_of_a_skipped_row_is_still_a_duplicate():
    manifest = parse("csv", [row(md5="bad"), GOOD])
    assert manifest.rows == []
    assert [p.code for p in manifest.problems] == ["bad_hash", "duplicate_row"]


# --- times --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("local", ["2026-11-03 09:15:00", "2026/11/03 09:15:00", "2026-11-03T09:15:00",
                                   "2026/11/3 9:15", "20261103091500"])
def test_time_without_offset_is_beijing_time_and_flagged(fmt, local):
    manifest = parse(fmt, [row(started_at=local)])
    (got,) = manifest.rows  # kept: a warning, not an error
    assert got.started_at == datetime(2026, 11, 3, 1, 15, tzinfo=UTC)
    assert got.zone_assumed is True
    (warning,) = manifest.problems
    assert (warning.code, warning.line, warning.file_name) == ("zone_assumed", line_of(fmt, 0), "ok.mp4")
    assert "started_at" in warning.message and "Asia/Shanghai" in warning.message
    assert "zone_assumed" in WARNING_CODES


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-11-03T01:15:00Z", datetime(2026, 11, 3, 1, 15, tzinfo=UTC)),
    ("2026-11-03T09:15:00.250+08:00", datetime(2026, 11, 3, 1, 15, 0, 250000, tzinfo=UTC)),
    ("2026-11-03 09:15:00 +0800", datetime(2026, 11, 3, 1, 15, tzinfo=UTC)),
    ("2026-11-02T20:15:00-05:00", datetime(2026, 11, 3, 1, 15, tzinfo=UTC)),
])
def test_time_with_offset_is_converted_to_utc(text, utc):
    (got,) = parse("csv", [row(started_at=text, collected_at="")]).rows
    assert got.started_at == utc and got.started_at.tzinfo is UTC
    assert got.zone_assumed is False


# --- whole-manifest problems --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_required_column_rejects_the_manifest(fmt):
    without = {k: v for k, v in GOOD.items() if k != "file_name"}
    data = as_csv([without], columns=list(without)) if fmt == "csv" else as_json([without])
    manifest = parse_manifest_bytes(data, fmt, now=NOW)
    assert manifest.rows == []
    (problem,) = manifest.problems
    assert (problem.code, problem.line) == ("missing_column", None)
    assert "file_name" in problem.message and "文件名" in problem.message


@pytest.mark.parametrize(("data", "fmt", "code"), [
    (b"", "csv", "empty"),
    (b"\r\n\r\n", "csv", "empty"),
    (",".join(GOOD).encode() + b"\n\n", "csv", "empty"),
    (b"[]", "json", "empty"),
    (b'{"files": []}', "json", "empty"),
    (b'{"files": [', "json", "bad_manifest"),
    (b'{"rows": []}', "json", "bad_manifest"),
    (b'"a.mp4"', "json", "bad_manifest"),
    (b"file_name,started_at\n\x80\xff\x80,x\n", "csv", "encoding"),
    (b'[{"file_name": "\x80\xff"}]', "json", "encoding"),
    (b"camera_serial,file_name,start,started_at,ended_at\n", "csv", "bad_manifest"),
])
def test_whole_manifest_problem(data, fmt, code):
    manifest = parse_manifest_bytes(data, fmt, now=NOW)
    assert manifest.rows == []
    (problem,) = manifest.problems
    assert (problem.code, problem.line) == (code, None)
    assert problem.message.endswith(".")


def test_two_columns_for_one_field_are_named():
    manifest = parse_manifest_bytes(b"camera_serial,file_name,start,started_at,ended_at\n", "csv", now=NOW)
    assert "'start'" in manifest.problems[0].message and "'started_at'" in manifest.problems[0].message


def test_csv_row_with_extra_cells_is_skipped_as_shifted():
    data = as_csv([GOOD]) + b"DSJ,1,2,x.mp4,2026-11-03T09:15:00+08:00,2026-11-03T09:45:00+08:00,,,,0,surplus\r\n"
    manifest = parse_manifest_bytes(data, "csv", now=NOW)
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    problem = only_error(manifest)
    assert (problem.code, problem.line, problem.file_name) == ("bad_row", 3, "x.mp4")


def test_trailing_empty_cells_are_not_extra():
    data = as_csv([GOOD]).replace(b"\r\n", b",,\r\n").replace(b",,\r\n", b"\r\n", 1)
    assert [r.file_name for r in parse_manifest_bytes(data, "csv", now=NOW).rows] == ["ok.mp4"]


def test_json_item_that_is_not_an_object_is_skipped():
    data = json.dumps([GOOD, "b.mp4", {**GOOD, "file_name": "c.mp4", "md5": ["x"]}]).encode()
    manifest = parse_manifest_bytes(data, "json", now=NOW)
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    assert [(p.code, p.line, p.file_name) for p in manifest.problems] == [("bad_row", 2, None), ("bad_row", 3, "c.mp4")]


def test_json_scalars_of_other_types():
    data = json.dumps([{**GOOD, "officer_no": 310115001, "important": True, "sm3": None}]).encode()
    (got,) = parse_manifest_bytes(data, "json", now=NOW).rows
    assert (got.officer_no, got.important, got.sm3) == ("310115001", True, None)


def test_json_key_missing_from_some_objects_is_a_missing_value():
    data = json.dumps([GOOD, {k: v for k, v in GOOD.items() if k != "ended_at"} | {"file_name": "b.mp4"}]).encode()
    manifest = parse_manifest_bytes(data, "json", now=NOW)
    assert [r.file_name for r in manifest.rows] == ["ok.mp4"]
    problem = only_error(manifest)
    assert (problem.code, problem.line) == ("missing_value", 2) and "ended_at" in problem.message


# --- what Windows stations write --------------------------------------------------------------------

CHINESE_HEADER = "产品序号,警号,单位编号,文件名称,开始时间,结束时间,采集时间,MD5,SM3,重要文件"


def test_gbk_csv_with_chinese_headers():
    text = (CHINESE_HEADER + "\r\n"
            + f"DSJ-A8-000123,310115001,310115,执法_0001.mp4,2026-11-03 09:15:00,2026-11-03 09:45:00,"
              f"2026-11-03 18:00:00,{MD5.upper()},,是\r\n"
            + "DSJ-A8-000123,310115001,310115,执法_0002.mp4,2026-11-03 10:00:00,2026-11-03 10:05:00,,,,否\r\n")
    manifest = parse_manifest_bytes(text.encode("gbk"), "csv", now=NOW)
    assert manifest.encoding == "gb18030"
    first, second = manifest.rows
    assert (first.file_name, first.md5, first.important, first.zone_assumed) == ("执法_0001.mp4", MD5, True, True)
    assert first.started_at == datetime(2026, 11, 3, 1, 15, tzinfo=UTC)
    assert (second.file_name, second.important) == ("执法_0002.mp4", False)
    assert {p.code for p in manifest.problems} == {"zone_assumed"}


@pytest.mark.parametrize("header", [
    "设备编号,人员编号,单位代码,文件名,开始时间,结束时间,导入时间,md5,sm3,重要标记",
    "记录仪编号,执法证号,单位编号,文件名称,开始时间,结束时间,采集时间,MD5,SM3,重要文件",
])
def test_utf8_bom_csv(header):
    data = (header + "\r\n").encode("utf-8-sig") + as_csv([GOOD]).split(b"\r\n", 1)[1]
    manifest = parse_manifest_bytes(data, "csv", now=NOW)
    assert manifest.encoding == "utf-8-sig"
    assert [r.camera_serial for r in manifest.rows] == ["DSJ-A8-000123"]


def test_utf16_tab_separated_as_excel_saves_unicode_text():
    data = as_csv([GOOD], delimiter="\t").decode().encode("utf-16")
    manifest = parse_manifest_bytes(data, "csv", now=NOW)
    assert manifest.encoding == "utf-16" and [r.file_name for r in manifest.rows] == ["ok.mp4"]


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_delimiter_is_sniffed(delimiter):
    manifest = parse_manifest_bytes(as_csv([GOOD, row(file_name="b.mp4")], delimiter=delimiter), "csv", now=NOW)
    assert [r.file_name for r in manifest.rows] == ["ok.mp4", "b.mp4"]
    assert manifest.problems == []


def test_spaces_blank_lines_and_header_spelling_are_tolerated():
    text = ("\r\n Camera Serial ; Officer-No ; FILE_NAME ; Start ; End ; important \r\n"
            "  DSJ-1 ;  007 ;  a.mp4  ; 2026-11-03T09:15:00+08:00 ; 2026-11-03T09:16:00+08:00 ; Y \r\n"
            "\r\n   \r\n")
    manifest = parse_manifest_bytes(text.encode(), "csv", now=NOW)
    (got,) = manifest.rows
    assert (got.camera_serial, got.officer_no, got.file_name, got.important) == ("DSJ-1", "007", "a.mp4", True)
    assert got.line == 3


# --- files and folders ----------------------------------------------------------------------------

def test_read_manifest_dispatches_on_suffix(tmp_path: Path):
    (tmp_path / "LIST.CSV").write_bytes(as_csv([GOOD]))
    (tmp_path / "list.Json").write_bytes(as_json([GOOD]))
    assert [r.file_name for r in read_manifest(tmp_path / "LIST.CSV", now=NOW).rows] == ["ok.mp4"]
    assert [r.file_name for r in read_manifest(tmp_path / "list.Json", now=NOW).rows] == ["ok.mp4"]
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(ValueError, match="list.txt"):
        read_manifest(tmp_path / "list.txt")


def test_find_manifest(tmp_path: Path):
    assert find_manifest(tmp_path) is None
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "._export.csv").write_bytes(b"")  # macOS copy metadata, not a manifest
    assert find_manifest(tmp_path) is None
    (tmp_path / "export_20261103.csv").write_bytes(b"")
    assert find_manifest(tmp_path) == tmp_path / "export_20261103.csv"
    (tmp_path / "other.json").write_bytes(b"")
    with pytest.raises(ValueError, match="several manifests"):
        find_manifest(tmp_path)
    (tmp_path / "Manifest.JSON").write_bytes(b"")
    assert find_manifest(tmp_path) == tmp_path / "Manifest.JSON"
    (tmp_path / "manifest.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="manifest.csv"):
        find_manifest(tmp_path)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:00:00-05:00", "0001-01-01 00:00:00"])
def test_a_time_at_the_edge_of_the_calendar_is_a_bad_time_not_a_crash(text):
    body = json.dumps([{"camera_serial": "DSJ001", "file_name": "a.mp4", "started_at": text,
                        "ended_at": "2026-11-03T09:00:00+08:00"}]).encode()
    manifest = parse_manifest_bytes(body, "json", now=datetime(2026, 11, 4, tzinfo=UTC))
    assert manifest.rows == [] and [p.code for p in manifest.problems] == ["bad_time"]
