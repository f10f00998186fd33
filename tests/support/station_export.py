"""A collection station's export folder, as tests and the benchmark need one: real video files
(made with PyAV) and a manifest in CSV or JSON, in UTF-8 or GBK, with English or Chinese headers."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ENGLISH = ["camera_serial", "officer_no", "unit_code", "file_name", "started_at", "ended_at", "collected_at",
           "md5", "sm3", "important"]
CHINESE = ["产品序号", "执法证号", "单位编号", "文件名", "开始时间", "结束时间", "采集时间", "MD5", "SM3", "重要文件"]


@dataclass
class ExportRow:
    file_name: str
    camera_serial: str
    start: datetime | str  # a str is written as given (e.g. a local time without offset)
    end: datetime | str
    officer_no: str = ""
    unit_code: str = ""
    collected: datetime | None = None
    important: bool = False
    md5: str | None = "auto"  # "auto": the file's own; None: left empty; other: written as given
    sm3: str | None = "auto"
    extra: dict = field(default_factory=dict)


def digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes() if path.exists() else b""
    return hashlib.md5(data).hexdigest(), hashlib.new("sm3", data).hexdigest()


def _time(value) -> str:
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_manifest(folder: Path, rows: list[ExportRow], *, fmt: str = "csv", encoding: str = "utf-8",
                   chinese: bool = False) -> Path:
    records = []
    for row in rows:
        md5, sm3 = digests(folder / row.file_name) if "/" not in row.file_name and "\\" not in row.file_name else ("", "")
        records.append([row.camera_serial, row.officer_no, row.unit_code, row.file_name, _time(row.start),
                        _time(row.end), _time(row.collected) if row.collected else "",
                        md5 if row.md5 == "auto" else (row.md5 or ""), sm3 if row.sm3 == "auto" else (row.sm3 or ""),
                        "是" if row.important and chinese else ("1" if row.important else "0")])
    headers = CHINESE if chinese else ENGLISH
    if fmt == "json":
        path = folder / "manifest.json"
        path.write_text(json.dumps({"files": [dict(zip(ENGLISH, r, strict=True)) for r in records]},
                                   ensure_ascii=False), encoding="utf-8")
        return path
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(records)
    path = folder / "manifest.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path
