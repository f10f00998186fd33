"""The capture ES modules run in the real browser: creditcode.js and idcard.js agree with the Python
rules, exif.js reads the EXIF that Pillow writes (both byte orders) and never throws on junk, and
deadlines.js tells which deadlines warn, at the boundaries, in any zone the phone is set to."""
from __future__ import annotations

import base64
import io
import random
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from PIL import Image, TiffImagePlugin

from fieldapp.rules.credit_code import ALPHABET, check_credit_code
from fieldapp.rules.id_card import CHECKS, check_id_number
from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.e2e

NULLS = {"takenAt": None, "offset": None, "make": None, "model": None, "orientation": None,
         "latE6": None, "lonE6": None, "gpsAccuracyM": None}


@pytest.fixture
def js(live, page):
    server, _app = live
    page.goto(server.url + "/help")
    return page


# --- 统一社会信用代码 -----------------------------------------------------------------------------

def _codes() -> list:
    body = "91370303MA3C5XJ90"
    right = check_credit_code(body + "0").expected_check
    wrong = next(ch for ch in ALPHABET if ch != right)
    zero_body = "00000000000000000"
    return [
        body + right, body + wrong, "91110000600001760P", "91440300708461136T",
        zero_body + "0", zero_body + "1",
        (body + right).lower(), " " + body[:8].lower() + " " + body[8:] + right + "\t",
        "\u3000" + body + right + "\u3000",
        "".join(chr(ord(ch) + 0xFEE0) for ch in body + right),
        body, body + right + "1", body[:-1] + "O" + right, body[:-1] + "I" + right,
        body + "Z", body + "S", body + "V", body[:8] + "-" + body[9:] + right,
        "", "   ", None, "\u3000", "\t\n", "１", "91370303МA3C5XJ90Q", "9137030😀MA3C5XJ90Q",
    ]


def test_creditcode_js_agrees_with_python(js):
    codes = _codes()
    results = js.evaluate("""async (codes) => {
        const m = await import('/static/js/capture/creditcode.js');
        return codes.map((c) => m.checkCreditCode(c));
    }""", codes)
    assert len(results) == len(codes)
    statuses = set()
    for code, got in zip(codes, results, strict=False):
        want = check_credit_code(code)
        assert got == {"status": want.status, "expectedCheck": want.expected_check,
                       "normalised": want.normalised}, code
        statuses.add(want.status)
    assert statuses == {"valid", "bad_check", "bad_format", "empty"}


def test_creditcode_js_agrees_on_random_codes(js):
    rng = random.Random(32100)
    alphabet = ALPHABET + "IOZSVabcxy "
    codes = ["".join(rng.choice(alphabet) for _ in range(rng.choice([17, 18, 18, 18, 19])))
             for _ in range(300)]
    codes += [code[:17] + check_credit_code(code[:17] + "0").expected_check
              for code in codes if check_credit_code(code[:17] + "0").expected_check]
    results = js.evaluate("""async (codes) => {
        const m = await import('/static/js/capture/creditcode.js');
        return codes.map((c) => m.checkCreditCode(c));
    }""", codes)
    for code, got in zip(codes, results, strict=False):
        want = check_credit_code(code)
        assert (got["status"], got["expectedCheck"], got["normalised"]) == \
            (want.status, want.expected_check, want.normalised), code


# --- 居民身份证号码 (GB 11643) ----------------------------------------------------------------------

CHECK_ID = """async (numbers) => {
    const m = await import('/static/js/capture/idcard.js');
    return numbers.map((n) => m.checkIdNumber(n));
}"""


def _id_numbers() -> list:
    body = "11010519491231002"
    wrong = next(ch for ch in CHECKS if ch != "X")
    leap = "11010520000229001"
    return [
        body + "X", body + "x", body + wrong, body, body + "X1", body + "Y", "A" + body[1:] + "X",
        " " + body[:6] + " " + body[6:14] + " " + body[14:] + "X\t", "\u3000" + body + "X",
        "".join(chr(ord(ch) + 0xFEE0) for ch in body + "X"),  # full-width, as some input methods type
        leap + check_id_number(leap + "0").expected_check,  # 29 February 2000
        "110105190002290010", "110105194902300010", "110105194913010010", "110105000001010010",
        "440524188001010014", "11010519491231002😀", "", "   ", None,
    ]


def _id_result(number) -> dict:
    want = check_id_number(number)
    return {"status": want.status, "expectedCheck": want.expected_check, "normalised": want.normalised}


def test_idcard_js_agrees_with_python(js):
    numbers = _id_numbers()
    results = js.evaluate(CHECK_ID, numbers)
    assert results == [_id_result(n) for n in numbers]
    assert results[0] == {"status": "valid", "expectedCheck": "X", "normalised": "11010519491231002X"}
    assert results[1]["status"] == "valid" and results[2]["status"] == "bad_check"  # lower-case x; a wrong check digit
    assert {r["status"] for r in results} == {"valid", "bad_check", "bad_date", "bad_format", "empty"}


def test_idcard_js_agrees_on_random_numbers(js):
    rng = random.Random(11643)
    numbers = []
    for _ in range(300):
        body = f"{rng.randrange(10**5, 10**6)}{rng.randrange(1900, 2030)}{rng.randrange(0, 14):02d}" \
               f"{rng.randrange(0, 33):02d}{rng.randrange(0, 1000):03d}"
        numbers.append(body + rng.choice("0123456789Xx"))
    results = js.evaluate(CHECK_ID, numbers)
    assert results == [_id_result(n) for n in numbers]
    assert sum(r["status"] == "valid" for r in results) > 5


# --- EXIF ---------------------------------------------------------------------------------------

READ_EXIF = """async (b64) => {
    const m = await import('/static/js/capture/exif.js');
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const result = m.readExif(bytes.buffer);
    const floats = Object.entries(result).filter(([, v]) => typeof v === 'number' && !Number.isInteger(v));
    return {result, floats: floats.map(([k]) => k)};
}"""


def read_exif(page, data: bytes) -> dict:
    out = page.evaluate(READ_EXIF, base64.b64encode(data).decode("ascii"))
    assert out["floats"] == [], "readExif returned floating-point numbers"
    return out["result"]


def _r(value) -> TiffImagePlugin.IFDRational:
    f = Fraction(str(value))
    return TiffImagePlugin.IFDRational(f.numerator, f.denominator)


def make_jpeg(endian: str = "<", *, gps: bool = True, lat=(36, 49, 30.5), lon=(118, 18, 15.25),
              lat_ref="N", lon_ref="E", accuracy: float | None = 4.6, original: bool = True) -> bytes:
    exif = Image.Exif()
    exif.endian = endian
    exif[0x010F] = "HUAWEI"
    exif[0x0110] = "ALN-AL00"
    exif[0x0112] = 6
    exif[0x0132] = "2024:05:06 07:08:09"
    sub = exif.get_ifd(0x8769)
    if original:
        sub[0x9003] = "2024:06:15 14:03:27"
        sub[0x9011] = "+08:00"
    sub[0x9010] = "+09:00"
    if gps:
        g = exif.get_ifd(0x8825)
        g[0x0001] = lat_ref
        g[0x0002] = tuple(_r(v) for v in lat)
        g[0x0003] = lon_ref
        g[0x0004] = tuple(_r(v) for v in lon)
        if accuracy is not None:
            g[0x001F] = _r(accuracy)
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(buf, "JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    marker = b"II*\x00" if endian == "<" else b"MM\x00*"
    assert b"Exif\x00\x00" + marker in data
    return data


def micro(dms, ref) -> int:
    d, m, s = (Fraction(str(v)) for v in dms)
    value = (d + m / 60 + s / 3600) * 1_000_000
    rounded = int(value + Fraction(1, 2))
    return -rounded if ref in "SW" else rounded


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little-endian", "big-endian"])
def test_exif_from_pillow_jpeg(js, endian):
    data = make_jpeg(endian)
    got = read_exif(js, data)
    assert got["takenAt"] == "2024-06-15T14:03:27"
    assert got["offset"] == "+08:00"
    assert got["make"] == "HUAWEI"
    assert got["model"] == "ALN-AL00"
    assert got["orientation"] == 6
    assert abs(got["latE6"] - round(36.825139 * 1e6)) <= 1
    assert abs(got["lonE6"] - round(118.304236 * 1e6)) <= 1
    assert got["latE6"] == micro((36, 49, 30.5), "N")
    assert got["lonE6"] == micro((118, 18, 15.25), "E")
    assert got["gpsAccuracyM"] == 5

    # Cross-check with Pillow's own reading of the same file.
    with Image.open(io.BytesIO(data)) as im:
        pil = im.getexif()
        assert pil.get_ifd(0x8769)[0x9003] == "2024:06:15 14:03:27"
        assert pil[0x0112] == got["orientation"]


def test_exif_south_west_and_no_accuracy(js):
    got = read_exif(js, make_jpeg(lat=(33, 52, 7.2), lat_ref="S", lon=(151, 12, 36), lon_ref="W",
                                  accuracy=None))
    assert got["latE6"] == micro((33, 52, 7.2), "S") < 0
    assert got["lonE6"] == micro((151, 12, 36), "W") < 0
    assert got["gpsAccuracyM"] is None


def test_exif_falls_back_to_datetime_and_its_offset(js):
    got = read_exif(js, make_jpeg(">", original=False, gps=False))
    assert got["takenAt"] == "2024-05-06T07:08:09"
    assert got["offset"] == "+09:00"
    assert got["latE6"] is None and got["lonE6"] is None and got["gpsAccuracyM"] is None
    assert got["make"] == "HUAWEI"


def test_exif_zero_zero_means_no_fix(js):
    got = read_exif(js, make_jpeg(lat=(0, 0, 0), lon=(0, 0, 0)))
    assert got["latE6"] is None and got["lonE6"] is None


def test_jpeg_without_exif_gives_nulls(js):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, "JPEG")
    assert b"Exif" not in buf.getvalue()
    assert read_exif(js, buf.getvalue()) == NULLS


def test_png_gives_nulls(js):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "HUAWEI"
    Image.new("RGB", (16, 16), "white").save(buf, "PNG", exif=exif.tobytes())
    assert read_exif(js, buf.getvalue()) == NULLS


def test_truncated_and_random_bytes_give_nulls_without_throwing(js):
    data = make_jpeg()
    app1_end = data.index(b"Exif\x00\x00") + 200  # inside the APP1 segment
    for cut in [0, 1, 2, 3, 4, 10, 20, 30, app1_end]:
        assert read_exif(js, data[:cut]) == NULLS, cut
    rng = random.Random(7)
    for n in [1, 5, 100, 4096]:
        assert read_exif(js, rng.randbytes(n)) == NULLS
    # Random bytes behind a JPEG start and an APP1 Exif header: must not throw or hang.
    for _ in range(30):
        body = rng.randbytes(rng.randrange(8, 600))
        junk = b"\xff\xd8\xff\xe1" + (len(body) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + body
        got = read_exif(js, junk)
        assert set(got) == set(NULLS)


def test_corrupted_offsets_do_not_throw(js):
    data = bytearray(make_jpeg())
    tiff = data.index(b"Exif\x00\x00") + 6
    rng = random.Random(11)
    cases = []
    for _ in range(60):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            mutated[tiff + rng.randrange(0, 300)] = rng.randrange(256)
        cases.append(bytes(mutated))
    # IFD0 pointing at itself and a huge entry count.
    selfref = bytearray(data)
    selfref[tiff + 4:tiff + 8] = (8).to_bytes(4, "little")
    selfref[tiff + 8:tiff + 10] = (0xFFFF).to_bytes(2, "little")
    cases.append(bytes(selfref))
    for case in cases:
        got = read_exif(js, case)
        assert set(got) == set(NULLS)
        for key in ("latE6", "lonE6", "orientation", "gpsAccuracyM"):
            assert got[key] is None or isinstance(got[key], int)


def test_truncated_image_data_still_yields_complete_exif(js):
    data = make_jpeg()
    got = read_exif(js, data[: len(data) - 100])
    assert got["takenAt"] == "2024-06-15T14:03:27" and got["latE6"] == micro((36, 49, 30.5), "N")


# --- Deadlines due soon (deadlines.js) -----------------------------------------------------------
# The server sends each open case's running deadlines: due_at, and warn_from (its working days before
# the due day, counted on the server's calendar). A deadline counted in days ends at 24:00 Asia/Shanghai
# of its last day, sent as 00:00 of the next day (rules/deadlines.py), which belongs to the day before.

SHANGHAI = timezone(timedelta(hours=8))


def sh(text: str | None) -> str | None:
    """Shanghai wall time ("2026-11-18 10:00[:ss]") as the server sends instants: ISO 8601 in UTC."""
    if text is None:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC).isoformat()


# (due_at, warn_from, now: Shanghai wall times; the status). Wednesday 18 November 2026 is "today".
STATUS_ROWS = {
    # warn_from 00:00 Wed 18 Nov of a deadline due at 24:00 Friday: a second (a millisecond) either side.
    "before warn_from": ("2026-11-21 00:00", "2026-11-18 00:00", "2026-11-17 23:59:59", "later"),
    "a millisecond before warn_from": ("2026-11-21 00:00", "2026-11-18 00:00", "2026-11-17 23:59:59.999", "later"),
    "at warn_from": ("2026-11-21 00:00", "2026-11-18 00:00", "2026-11-18 00:00", "due_soon"),
    "just after warn_from": ("2026-11-21 00:00", "2026-11-18 00:00", "2026-11-18 00:00:01", "due_soon"),
    # Due today at 23:59, and at 24:00 (the end of today, sent as tomorrow 00:00) — tomorrow just after it is not today.
    "due today 23:59": ("2026-11-18 23:59", "2026-11-16 00:00", "2026-11-18 10:00", "due_today"),
    "due today 24:00 (tomorrow 00:00)": ("2026-11-19 00:00", "2026-11-16 00:00", "2026-11-18 10:00", "due_today"),
    "due tomorrow 00:00:01, warning": ("2026-11-19 00:00:01", "2026-11-16 00:00", "2026-11-18 10:00", "due_soon"),
    "due tomorrow 00:01, no warning yet": ("2026-11-19 00:01", "2026-11-19 00:00", "2026-11-18 10:00", "later"),
    "due today though its warning starts later": ("2026-11-18 23:59", "2026-11-19 00:00", "2026-11-18 10:00", "due_today"),
    # Overdue by a second, and not at the due instant itself.
    "a second before due": ("2026-11-18 17:00", "2026-11-16 00:00", "2026-11-18 16:59:59", "due_today"),
    "at due": ("2026-11-18 17:00", "2026-11-16 00:00", "2026-11-18 17:00", "due_today"),
    "overdue by a second": ("2026-11-18 17:00", "2026-11-16 00:00", "2026-11-18 17:00:01", "overdue"),
    "24:00 at midnight": ("2026-11-19 00:00", "2026-11-16 00:00", "2026-11-19 00:00", "due_today"),
    "24:00 overdue by a second": ("2026-11-19 00:00", "2026-11-16 00:00", "2026-11-19 00:00:01", "overdue"),
    "overdue without warn_from": ("2026-11-18 17:00", None, "2026-11-19 09:00", "overdue"),
    "overdue for days": ("2026-11-10 00:00", "2026-11-06 00:00", "2026-11-18 10:00", "overdue"),
    # "Today" is the date in Shanghai, not in UTC.
    "same day in Shanghai, not in UTC": ("2026-11-19 09:00", None, "2026-11-19 07:30", "due_today"),
    "same day in UTC, not in Shanghai": ("2026-11-19 00:30", None, "2026-11-18 23:30", "later"),
    "no warn_from": ("2026-11-23 00:00", None, "2026-11-18 10:00", "later"),
}


def _status_rows() -> list[tuple[str, dict, str, str]]:
    rows = [(name, {"key": "k", "due_at": sh(due), "warn_from": sh(warn)}, sh(now), want)
            for name, (due, warn, now, want) in STATUS_ROWS.items()]
    now = sh("2026-11-18 17:00:01")
    rows += [  # what a server or a cache might hold
        ("no due_at", {"key": "k", "warn_from": sh("2026-11-16 00:00")}, now, "later"),
        ("unreadable due_at", {"key": "k", "due_at": "next week", "warn_from": sh("2026-11-16 00:00")}, now, "later"),
        ("Z and microseconds", {"key": "k", "due_at": "2026-11-18T09:00:00.000000Z"}, now, "overdue"),
        ("written without a zone: UTC", {"key": "k", "due_at": "2026-11-18T09:00:00"}, now, "overdue"),
        ("+08:00", {"key": "k", "due_at": "2026-11-18T17:00:00+08:00"}, now, "overdue"),
        ("+08:00, a second early", {"key": "k", "due_at": "2026-11-18T17:00:00+08:00"}, sh("2026-11-18 17:00"),
         "due_today"),
    ]
    return rows


# The phone's own zone must not matter: the days are Shanghai's.
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/Los_Angeles", "UTC"])
def test_deadline_status_at_the_boundaries(live, browser, zone):
    server, _app = live
    context = browser.new_context(**PHONE, timezone_id=zone)
    try:
        page = context.new_page()
        page.goto(server.url + "/help")
        rows = _status_rows()
        got = page.evaluate("""async (rows) => {
            const m = await import('/static/js/capture/deadlines.js');
            return rows.map(([, deadline, now]) => m.deadlineStatus(deadline, new Date(now)));
        }""", rows)
    finally:
        context.close()
    assert dict(zip([r[0] for r in rows], got, strict=True)) == {r[0]: r[3] for r in rows}


def _deadline(key: str, due: str, warn: str | None) -> dict:
    return {"key": key, "rule_id": key, "label_zh": key, "label_en": key, "due_at": sh(due), "warn_from": sh(warn)}


def test_due_soon_lists_what_warns_overdue_first_then_by_due_time(js):
    cases = [
        {"id": "a", "deadlines": [_deadline("a-later", "2026-12-10 00:00", "2026-12-08 00:00"),
                                  _deadline("a-soon", "2026-11-21 00:00", "2026-11-18 00:00")]},
        {"id": "old-server"},  # no deadlines field: none
        {"id": "null", "deadlines": None},
        {"id": "d", "deadlines": [_deadline("d-today", "2026-11-19 00:00", "2026-11-17 00:00"),
                                  _deadline("d-overdue", "2026-11-17 17:00", "2026-11-13 00:00")]},
        {"id": "e", "deadlines": [None, _deadline("e-overdue", "2026-11-16 12:00", "2026-11-12 00:00"),
                                  _deadline("e-soon-earlier", "2026-11-20 10:00", "2026-11-18 00:00")]},
        {"id": "none", "deadlines": []},
    ]
    got = js.evaluate("""async ([cases, now]) => {
        const m = await import('/static/js/capture/deadlines.js');
        const due = m.dueSoon(cases, new Date(now));
        return { rows: due.map((d) => [d.case.id, d.deadline.key, d.status]),
                 same: due.every((d) => cases.includes(d.case)),
                 none: m.dueSoon([], new Date(now)), old: m.dueSoon(undefined, new Date(now)) };
    }""", [cases, sh("2026-11-18 10:00")])
    assert got["rows"] == [["e", "e-overdue", "overdue"], ["d", "d-overdue", "overdue"],
                           ["d", "d-today", "due_today"], ["e", "e-soon-earlier", "due_soon"],
                           ["a", "a-soon", "due_soon"]]
    assert got["same"], "each row carries the case object itself"
    assert got["none"] == [] and got["old"] == []


# --- what a phone offers again after a restore (epoch.js) ----------------------------------------

def test_a_restore_offers_what_came_after_the_backup_and_counts_as_lost_only_what_it_may_lack(js):
    """With the backup's time known, a revision acknowledged days before it is in the backup: not
    offered, not counted as lost (the records administrator's list must not cry wolf). Without it,
    the resend window decides and what lies before the window is counted."""
    day = 24 * 3600 * 1000
    now = datetime(2026, 12, 5, 8, tzinfo=UTC).timestamp() * 1000
    since = now - 1 * day

    def revision(key: str, acked_days_ago: float | None) -> dict:
        acked = None if acked_days_ago is None else datetime.fromtimestamp(
            (now - acked_days_ago * day) / 1000, UTC).isoformat()
        return {"key": key, "record_id": "r-" + key, "revision": 1, "device_time": key, "acked_at": acked}

    revisions = [revision("in-backup", 2), revision("after-backup", 0.5), revision("long-ago", 40),
                 revision("unreadable", None) | {"acked_at": "not a time"}]
    records = [{"id": "r-" + r["key"], "status": "synced"} for r in revisions]
    plan = """async ([args, since]) => {
        const m = await import('/static/js/capture/epoch.js');
        const out = m.plan({ ...args, since });
        return { offer: out.offer.map((r) => r.key), beyondWindow: out.beyondWindow };
    }"""
    args = {"revisions": revisions, "records": records, "outboxKeys": [], "media": [], "windowDays": 30, "now": now}

    after_known_backup = js.evaluate(plan, [args, since])
    assert sorted(after_known_backup["offer"]) == ["after-backup", "unreadable"]
    assert after_known_backup["beyondWindow"] == 0  # art. 25: in the backup, restored; nothing lost

    by_window = js.evaluate(plan, [args, None])
    assert sorted(by_window["offer"]) == ["after-backup", "in-backup", "unreadable"]
    assert by_window["beyondWindow"] == 1  # acknowledged 40 days ago, before the 30-day window
