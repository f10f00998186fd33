"""Reading a year's holiday arrangement as an admin types it from the State Council notice."""
from __future__ import annotations

import re
from datetime import date

_LINE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\s+(休|班|off|work)\s*(.*)$")


def parse_notice(text: str) -> list[tuple[date, bool, str]]:
    """One day per line: ``2027-10-01 休 国庆节`` (a day off) or ``2027-09-26 班 国庆节`` (a weekend
    day worked in lieu). Blank lines and lines starting with # are ignored. Every bad line is named."""
    rows, errors = [], []
    for number, raw in enumerate(text.replace("\x00", "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            errors.append(f"line {number}: expected 'YYYY-MM-DD 休|班 name', got {line!r}")
            continue
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            errors.append(f"line {number}: {match[1]}-{match[2]}-{match[3]} is not a date")
            continue
        rows.append((day, match[4] in ("班", "work"), match[5].strip()[:60]))
    if errors:
        raise ValueError("; ".join(errors))
    if not rows:
        raise ValueError("the notice lists no day")
    return rows
