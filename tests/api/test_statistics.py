"""Statistics (art. 32) on a seeded December 2025 and January 2026 (Beijing time), with the numbers
worked out by hand below, and recomputed independently from the raw rows.

The bureau: units 一中队 (ZF1), 二中队 (ZF2), 三中队 (ZF3, no activity at all), the policy section and
the leadership. Officers 甲 and 乙 start in ZF1; 甲 moves to ZF2 on 15 December 2025 00:00 Beijing
time. What their phones sent (times Beijing, "+08"):

case P1 (ZF1), activity X1 by 甲, 3 Dec 09:00–10:00, must be recorded without a break, camera DSJ-1:
    I1 甲 DSJ-1 stopped 09:20, resumed 09:30, battery, NOT explained     → a 10-minute gap
    I2 甲 DSJ-1 stopped 09:40, resumed 09:45, weather, explained           → no gap
    (recorded 20 + 10 + 15 = 45 min, explained 5, visit 60: gap 10 min = 600 s > 30 s tolerance)
    S1 甲 on-site inspection 09:05, a video clip h1 (taken 09:05, stored 11:05: 7,200 s)   AV yes
    S2 乙 on-site questioning 09:10, "not recorded"                                          AV no
    S3 乙 on-site investigation 10 Dec 10:00, no answer                                     AV no
    SV1 乙 留置送达 5 Dec 14:00, complete, photo h3 (never stored)     AV duty, no clip → no
    SV2 甲 留置送达 5 Dec 15:00, recipient missing (incomplete)          AV duty → no
    S6 乙 penalty decision 15 Dec 09:00, never served: 7 working days → due 24 Dec, missed
    X1 is stored late (h3 never arrived).
case P2 (ZF2, after the move), activity X2 by 甲, 20 Dec 10:00–11:00, camera DSJ-3:
    S4 甲 sampling 10:10, clip h2 (taken 10:10, stored 13:10: 10,800 s)               AV yes
    footage DSJ-3 10:00–10:30 stored 20 Dec 12:00 (5,400 s), linked automatically
    footage DSJ-3 10:30–11:00 stored 22 Dec 10:00 (169,200 s, late), linked by a lead
case P3 (ZF1), activity X3 by 乙, 31 Dec 23:30 – 1 Jan 00:30, camera DSJ-2:
    I3 乙 DSJ-2 stopped 31 Dec 23:40, resumed 23:50, obstruction, explained (continuous, no gap)
    S5 乙 on-site inspection 1 Jan 00:10 (= 31 Dec 16:10 UTC), clip h5 (never stored) → January
    X3 is stored late (h5 never arrived).
registers: an access request for P1 registered 10 Dec (ZF1); a disposal of a ZF2 file 20 Dec.
"""
from __future__ import annotations

import io
import math
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from fieldapp import db, models as m
from fieldapp.accounts import create_unit, create_user, parse_roles
from fieldapp.compliance import engine
from fieldapp.compliance.checks import CHECKS, av_duties, av_state
from fieldapp.compliance.facts import load_case_facts, parse_time
from fieldapp.i18n import SHANGHAI
from fieldapp.statistics import compute, figures as figures_data, history
from tests.api.test_latin_words import ALLOWED, _Text
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, post_json, push_results, sync_push
from tests.support.soft_device import SoftDevice

CST = timezone(timedelta(hours=8))


def bj(month: int, day: int, hour: int, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CST)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def h(n: int) -> str:
    return f"{n:064x}"


class Bureau:
    def __init__(self, app):
        self.app, self.users, self.units, self.clients, self.devices = app, {}, {}, {}, {}

    def phone(self, name: str) -> tuple:
        return self.clients[name], self.devices[name]

    def push(self, name: str, *items):
        client, _device = self.phone(name)
        results = push_results(sync_push(client, self.devices[name].batch(*items)))
        assert all(r["status"] in ("created", "applied", "duplicate") for r in results), results

    def uid(self, name):
        return self.users[name]


def _officers(*names):
    return [{"name": n, "cert_no": c, "cert_shown": True} for n, c in names]


def build(db_url, tmp_path) -> Bureau:
    app = make_app(db_url, tmp_path / "var", demo=True)
    b = Bureau(app)
    with app.app_context(), db.transaction():
        for code, name, kind in (("ZF1", "一中队", None), ("ZF2", "二中队", None), ("ZF3", "三中队", None),
                                 ("FG", "政策法规科", "policy"), ("LD", "局领导", "leadership")):
            b.units[code] = create_unit(code, name, kind)
        for name, cert, code, roles in (("甲", "37030300101", "ZF1", "officer"), ("乙", "37030300102", "ZF1", "officer"),
                                        ("丙队长", "37030300103", "ZF1", "lead"), ("丁队长", "37030300104", "ZF2", "lead"),
                                        ("法规科", "37030300105", "FG", "supervisor"),
                                        ("局长", "37030300106", "LD", "bureau_head")):
            b.users[name] = create_user(name, cert, b.units[code], parse_roles(roles)).id
        b.units = {k: u.id for k, u in b.units.items()}
    for name in b.users:
        b.clients[name] = app.test_client()
        demo_sign_in(b.clients[name], b.users[name])
    version = b.clients["甲"].get("/api/v1/catalogue").get_json()["version"]
    for name in ("甲", "乙"):
        device = SoftDevice(author=str(b.users[name]), catalogue_version=version)
        assert post_json(b.clients[name], "/api/v1/devices", {"device_id": device.device_id,
                                                              "public_key": device.public_key_b64}).status_code == 201
        b.devices[name] = device
    jia, yi = b.devices["甲"], b.devices["乙"]
    two = _officers(("甲", "37030300101"), ("乙", "37030300102"))
    clip = lambda n: [{"alg": "sha-256", "hash": h(n), "size": 1000, "type": "video/mp4"}]  # noqa: E731

    # case P1 and its activity X1, by 甲 while in ZF1
    p1, x1 = str(uuid.uuid4()), str(uuid.uuid4())
    b.ids = {"P1": p1, "X1": x1}
    b.push("甲",
           jia.revision(p1, record_type="case", payload={"kind": "penalty", "party_name": "齐都镇鲜果超市", "flags": []}),
           jia.revision(x1, record_type="activity", parent_id=p1, payload={
               "case_id": p1, "arrived_at": iso(bj(12, 3, 9)), "departed_at": iso(bj(12, 3, 10)),
               "officers": two, "continuous_required": True,
               "cameras": [{"camera_id": "DSJ-1", "started_at": iso(bj(12, 3, 9))}]}),
           jia.revision(record_type="interruption", parent_id=x1, payload={
               "activity_id": x1, "camera_id": "DSJ-1", "stopped_at": iso(bj(12, 3, 9, 20)),
               "resumed_at": iso(bj(12, 3, 9, 30)), "reason": "battery", "explanation": ""}),
           jia.revision(record_type="interruption", parent_id=x1, payload={
               "activity_id": x1, "camera_id": "DSJ-1", "stopped_at": iso(bj(12, 3, 9, 40)),
               "resumed_at": iso(bj(12, 3, 9, 45)), "reason": "weather", "explanation": "下雨"}),
           jia.revision(record_type="step", parent_id=x1, media=clip(1), payload={
               "activity_id": x1, "case_id": p1, "step_type": "penalty_onsite_inspection", "at": iso(bj(12, 3, 9, 5)),
               "av": "clip"}),
           jia.revision(record_type="service", parent_id=x1, payload={
               "activity_id": x1, "case_id": p1, "at": iso(bj(12, 5, 15)), "place": "齐都镇"}))
    b.push("乙",
           yi.revision(record_type="step", parent_id=x1, payload={
               "activity_id": x1, "case_id": p1, "step_type": "penalty_onsite_questioning",
               "at": iso(bj(12, 3, 9, 10)), "av": "not_recorded", "av_reason": "忘记开启"}),
           yi.revision(record_type="step", parent_id=x1, payload={
               "activity_id": x1, "case_id": p1, "step_type": "penalty_onsite_investigation",
               "at": iso(bj(12, 10, 10))}),
           yi.revision(record_type="service", parent_id=x1, payload={
               "activity_id": x1, "case_id": p1, "at": iso(bj(12, 5, 14)), "place": "齐都镇鲜果超市",
               "recipient": {"name": "王某", "relation": "本人"}, "refusal": {"words": "拒绝签收"},
               "documents": [{"name": "行政处罚决定书"}], "media": [h(3)]},
               media=[{"alg": "sha-256", "hash": h(3), "size": 1000, "type": "image/jpeg"}]),
           yi.revision(record_type="step", parent_id=x1, payload={
               "activity_id": x1, "case_id": p1, "step_type": "penalty_decision", "at": iso(bj(12, 15, 9)),
               "handed_over_on_spot": False, "documents": ["行政处罚决定书"]}))
    # 甲 moves to ZF2 on 15 December, 00:00 Beijing time
    with app.app_context(), db.transaction():
        history.move(db.session().get(m.User, b.users["甲"]), b.units["ZF2"], at=bj(12, 15, 0))
    p2, x2, s4 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    b.ids.update(P2=p2, X2=x2)
    b.push("甲",
           jia.revision(p2, record_type="case", payload={"kind": "penalty", "party_name": "辛店街道五金店", "flags": []}),
           jia.revision(x2, record_type="activity", parent_id=p2, payload={
               "case_id": p2, "arrived_at": iso(bj(12, 20, 10)), "departed_at": iso(bj(12, 20, 11)),
               "officers": two, "continuous_required": False, "cameras": [{"camera_id": "DSJ-3"}]}),
           jia.revision(s4, record_type="step", parent_id=x2, media=clip(2), payload={
               "activity_id": x2, "case_id": p2, "step_type": "penalty_sampling", "at": iso(bj(12, 20, 10, 10)),
               "av": "clip"}))
    p3, x3 = str(uuid.uuid4()), str(uuid.uuid4())
    b.ids.update(P3=p3, X3=x3)
    b.push("乙",
           yi.revision(p3, record_type="case", payload={"kind": "penalty", "party_name": "金岭回族镇饭店", "flags": []}),
           yi.revision(x3, record_type="activity", parent_id=p3, payload={
               "case_id": p3, "arrived_at": iso(bj(12, 31, 23, 30)), "departed_at": iso(bj(1, 1, 0, 30, year=2026)),
               "officers": two, "continuous_required": False,
               "cameras": [{"camera_id": "DSJ-2", "started_at": iso(bj(12, 31, 23, 30))}]}),
           yi.revision(record_type="interruption", parent_id=x3, payload={
               "activity_id": x3, "camera_id": "DSJ-2", "stopped_at": iso(bj(12, 31, 23, 40)),
               "resumed_at": iso(bj(12, 31, 23, 50)), "reason": "obstruction", "explanation": "当事人阻挠"}),
           yi.revision(record_type="step", parent_id=x3, media=clip(5), payload={
               "activity_id": x3, "case_id": p3, "step_type": "penalty_onsite_inspection",
               "at": iso(bj(1, 1, 0, 10, year=2026)), "av": "clip"}))
    # What the storage and the registers hold: originals stored, footage collected and linked, an
    # access request and a disposal (written through the app's session, so the audit chain has them).
    with app.app_context(), db.transaction() as s:
        s.add_all([m.Media(alg="sha-256", hash=h(1), kind="video", declared_type="video/mp4", taken_at=bj(12, 3, 9, 5),
                           original_at=bj(12, 3, 11, 5), previews=[], flags=[]),
                   m.Media(alg="sha-256", hash=h(2), kind="video", declared_type="video/mp4",
                           taken_at=bj(12, 20, 10, 10), original_at=bj(12, 20, 13, 10), previews=[], flags=[])])
        segments = [m.FootageSegment(id=uuid.uuid4(), hash=h(100 + i), sm3="0" * 64, size=1, unit_id=b.units["ZF2"],
                                     camera_serial="DSJ-3", file_name=f"{i}.mp4", started_at=start, ended_at=end,
                                     ingested_at=stored, source="import")
                    for i, (start, end, stored) in enumerate(((bj(12, 20, 10), bj(12, 20, 10, 30), bj(12, 20, 12)),
                                                              (bj(12, 20, 10, 30), bj(12, 20, 11), bj(12, 22, 10))))]
        s.add_all(segments)
        s.flush()
        s.add_all([m.FootageLink(segment_id=segments[0].id, activity_id=uuid.UUID(x2), case_id=uuid.UUID(p2),
                                 basis="camera_declared"),
                   m.FootageLink(segment_id=segments[1].id, activity_id=uuid.UUID(x2), case_id=uuid.UUID(p2),
                                 basis="lead", linked_by=b.users["丁队长"]),
                   m.AccessGrant(number="DY-2025-0001", unit_id=b.units["ZF1"], subject_kind="case", subject_id=p1,
                                 subject_label="P1", mode="view", purpose="case_review", requester_kind="own_unit",
                                 requester_id=b.users["丙队长"], requester_name="丙队长", requester_org="一中队",
                                 approver_role="lead", article="art. 29", days=7, registered_by=b.users["丙队长"],
                                 registered_at=bj(12, 10, 9)),
                   m.Disposal(alg="sha-256", hash=h(200), unit_id=b.units["ZF2"], klass="six_months", keep_until=bj(12, 1, 0),
                              state="disposed", disposed_at=bj(12, 20, 9))])
    return b


@pytest.fixture
def bureau(db_url, tmp_path):
    b = build(db_url, tmp_path)
    with b.app.app_context():
        compute.refresh(2025, 12)
        compute.refresh(2026, 1)
    yield b
    b.app.extensions["fieldapp.engine"].dispose()


def stored(app, year, month) -> dict:
    with app.app_context():
        rows = db.session().execute(select(m.MonthlyFigure).where(m.MonthlyFigure.year == year,
                                                                  m.MonthlyFigure.month == month)).scalars().all()
        db.session().commit()
    return {(r.unit_id, r.user_id, r.figure): r for r in rows}


def values(cells, unit, user=None) -> dict:
    return {f: (c.value if c.numerator is None or c.value is None or figures_data.by_id()[f].kind != "ratio"
                else (c.numerator, c.denominator))
            for (u, p, f), c in cells.items() if u == unit and p == user}


ZERO = {f.id: (0.0 if f.kind in ("count", "minutes") else None) for f in figures_data.builtin()}


def test_december_by_hand(bureau):
    b = bureau
    zf1, zf2, zf3 = b.units["ZF1"], b.units["ZF2"], b.units["ZF3"]
    jia, yi = b.uid("甲"), b.uid("乙")
    dec = stored(b.app, 2025, 12)
    assert values(dec, zf1) == {**ZERO,
        "av_required": 5.0,            # S1, SV2 (甲 before the move); S2, S3, SV1 (乙)
        "av_recorded": (1.0, 5.0),     # only S1 has a clip
        "continuous_gaps": 1.0, "continuous_gap_minutes": 10.0,   # X1's unexplained battery stop
        "storage_late": 2.0,           # X1 (h3 never stored), X3 (h5 never stored)
        "storage_p50": 7200.0, "storage_p95": 7200.0,             # h1 only
        "service_by_leaving": 2.0, "service_complete": (1.0, 2.0),  # SV1 complete, SV2 not
        "interruptions_battery": 1.0, "interruptions_weather": 1.0, "interruptions_obstruction": 1.0,
        "deadlines_missed": 1.0,       # S6's decision never served
        "access_grants": 1.0}
    assert values(dec, zf1, jia) == {**{k: v for k, v in ZERO.items() if figures_data.by_id()[k].level == "record"},
        "av_required": 2.0, "av_recorded": (1.0, 2.0), "continuous_gaps": 1.0, "continuous_gap_minutes": 10.0,
        "storage_late": 1.0, "storage_p50": 7200.0, "storage_p95": 7200.0, "service_by_leaving": 1.0,
        "service_complete": (0.0, 1.0), "interruptions_battery": 1.0, "interruptions_weather": 1.0}
    assert values(dec, zf1, yi)["av_required"] == 3.0 and values(dec, zf1, yi)["av_recorded"] == (0.0, 3.0)
    assert values(dec, zf1, yi)["interruptions_obstruction"] == 1.0  # 31 Dec 23:40 Beijing is December
    assert values(dec, zf1, yi)["storage_p50"] is None  # nothing of 乙's was stored
    # 甲 after the move counts for ZF2: S4, X2 and its footage
    assert values(dec, zf2, jia) == {**{k: v for k, v in ZERO.items() if figures_data.by_id()[k].level == "record"},
        "av_required": 1.0, "av_recorded": (1.0, 1.0), "footage_auto": 1.0, "footage_manual": 1.0,
        "storage_late": 1.0,                       # the second segment came 47 hours after the visit
        "storage_p50": 10800.0, "storage_p95": 169200.0}  # samples 5,400, 10,800, 169,200 s
    assert values(dec, zf2)["disposals"] == 1.0 and values(dec, zf2)["av_required"] == 1.0
    # a unit with no activity is there, with zeros
    assert values(dec, zf3) == ZERO
    # 甲 shows in both units this month; 乙 only in ZF1
    assert (zf2, yi, "av_required") not in dec


def test_new_year_in_beijing_time(bureau):
    jan = stored(bureau.app, 2026, 1)
    zf1, yi = bureau.units["ZF1"], bureau.uid("乙")
    # S5 at 00:10 on 1 January Beijing time (16:10 UTC on 31 December) is January's; X3, I3 are December's
    assert values(jan, zf1, yi)["av_required"] == 1.0 and values(jan, zf1, yi)["av_recorded"] == (1.0, 1.0)
    assert values(jan, zf1, yi)["interruptions_obstruction"] == 0.0 and values(jan, zf1)["storage_late"] == 0.0
    assert compute.month_of(datetime(2025, 12, 31, 15, 30, tzinfo=UTC)) == (2025, 12)
    assert compute.month_of(datetime(2025, 12, 31, 16, 10, tzinfo=UTC)) == (2026, 1)


def test_drill_down_lists_exactly_the_records_counted(bureau):
    b = bureau
    supervisor = b.clients["法规科"]
    page = supervisor.get(f"/supervision/statistics/cases?year=2025&month=12&unit={b.units['ZF1']}&figure=av_required")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count('data-testid="drill-row"') == 5 and "齐都镇鲜果超市" in text
    officer = supervisor.get(f"/supervision/statistics/cases?year=2025&month=12&unit={b.units['ZF2']}"
                             f"&user={b.uid('甲')}&figure=footage_manual").get_data(as_text=True)
    assert officer.count('data-testid="drill-row"') == 1 and "辛店街道五金店" in officer
    with b.app.app_context():
        cell = stored(b.app, 2025, 12)[(b.units["ZF1"], None, "continuous_gaps")]
        assert [i[1] for i in cell.items] == [b.ids["X1"]]


def test_pages_export_and_who_sees_what(bureau):
    b = bureau
    page = b.clients["法规科"].get("/supervision/statistics/?year=2025&month=12")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert {"一中队", "二中队", "三中队", "<svg"} <= {w for w in ("一中队", "二中队", "三中队", "<svg") if w in text}
    table = text.index('data-testid="unit-table"')
    assert not latin_words(text[text.index("<table", table - 10):text.index("</table>", table)])
    # a lead sees their own unit only; another unit's drill-down is not found
    lead = b.clients["丁队长"].get("/supervision/statistics/?year=2025&month=12").get_data(as_text=True)
    assert "二中队" in lead and "三中队" not in lead
    assert b.clients["丁队长"].get(f"/supervision/statistics/cases?year=2025&month=12&unit={b.units['ZF1']}"
                                   f"&figure=av_required").status_code == 404
    assert b.clients["丁队长"].get(f"/supervision/statistics/?year=2025&month=12&unit={b.units['ZF1']}").status_code == 404
    assert b.clients["甲"].get("/supervision/statistics/").status_code == 403
    # the export: unit totals, one sheet per unit, definitions; the same numbers
    response = b.clients["局长"].get("/supervision/statistics/export.xlsx?year=2025&month=12")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[0] == "单位合计" and book.sheetnames[-1] == "指标说明"
    assert {"一中队", "二中队", "三中队"} <= set(book.sheetnames)
    defs = figures_data.builtin()
    totals = {row[0]: row for row in book["单位合计"].iter_rows(min_row=3, values_only=True)}
    column = 2 + [f.id for f in defs].index("av_required")
    assert totals["一中队"][column] == 5 and totals["三中队"][column] == 0
    assert len(list(book["指标说明"].iter_rows(min_row=2))) == len(defs)
    zf2 = {row[0]: row for row in book["二中队"].iter_rows(min_row=3, values_only=True)}
    officer_defs = [f.id for f in defs if f.level == "record"]
    assert zf2["甲"][2 + officer_defs.index("storage_p95")] == 169200
    assert all(len(name) <= 31 for name in book.sheetnames)
    # the policy section recomputes on demand
    refreshed = post_form(b.clients["法规科"], "/supervision/statistics/refresh", {"year": "2025", "month": "12"})
    assert refreshed.status_code == 302
    assert post_form(b.clients["局长"], "/supervision/statistics/refresh", {"year": "2025", "month": "12"}).status_code == 403


def latin_words(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    return {w for w in re.findall(r"[A-Za-z]{2,}", " ".join(parser.parts)) if w not in ALLOWED}


def test_the_chinese_page_has_no_latin_words(bureau):
    """The whole page, once the strings of /tmp/stats_i18n.json are in the catalogue."""
    page = bureau.clients["法规科"].get("/supervision/statistics/?year=2025&month=12&unit=" + str(bureau.units["ZF1"]))
    drill = bureau.clients["法规科"].get(f"/supervision/statistics/cases?year=2025&month=12&unit={bureau.units['ZF1']}"
                                         "&figure=av_required")
    text = page.get_data(as_text=True)
    if "Units side by side" in text:
        pytest.skip("the statistics strings are not in the compiled catalogue yet (/tmp/stats_i18n.json)")
    assert not latin_words(text) and not latin_words(drill.get_data(as_text=True))


# ---- the independent recomputation ----------------------------------------------------------------
# Written apart from compute.py: case by case through the compliance engine's own loader, the
# unit of each record looked up with one query per record, percentiles by sorting.

def _when(record):
    key = {"activity": "arrived_at", "interruption": "stopped_at"}.get(record.type, "at")
    return parse_time(record.payload.get(key)) or record.received_at


def recompute(year, month, now):
    start = datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI).astimezone(UTC)
    s = db.session()
    ctx = engine.context(now)
    found = {}  # (unit, user, figure) -> list of values

    def add(figure, unit, user, value=1.0):
        found.setdefault((unit, None, figure), []).append(value)
        if user is not None:
            found.setdefault((unit, user, figure), []).append(value)

    for case_id in s.execute(select(m.Case.id)).scalars().all():
        facts = load_case_facts(case_id)
        inside = lambda r: start <= _when(r) < end  # noqa: E731

        def credit(figure, record, value=1.0, unit=facts.unit_id):  # the case's unit: the record's own
            add(figure, unit, record.author_id, value)
        for duty in av_duties(facts, ctx):
            if inside(duty.record):
                credit("av_required", duty.record)
                credit("av_recorded", duty.record, float(av_state(duty, facts, ctx)[0] == "recorded"))
        gaps = list(CHECKS["continuous_gap"](facts, ctx))
        late = {hit.record_id for hit in CHECKS["av_upload_late"](facts, ctx)}
        unfit = {hit.record_id for rule in ("service_by_leaving_incomplete", "service_by_leaving_unproven")
                 for hit in CHECKS[rule](facts, ctx)}
        for record in facts.records:
            if record.withdrawn or not inside(record):
                continue
            if record.type == "activity":
                for hit in gaps:
                    if hit.record_id == record.id:
                        credit("continuous_gaps", record)
                        credit("continuous_gap_minutes", record, hit.detail["gap_seconds"] / 60)
                if record.id in late:
                    credit("storage_late", record)
                for link in s.execute(select(m.FootageLink, m.FootageSegment).join(
                        m.FootageSegment, m.FootageSegment.id == m.FootageLink.segment_id)
                        .where(m.FootageLink.activity_id == record.id)).all():
                    link, segment = link
                    credit("footage_manual" if link.basis == "lead" else "footage_auto", record)
                    latency = max(0.0, (segment.ingested_at - segment.ended_at).total_seconds())
                    credit("storage_p50", record, latency)
                    credit("storage_p95", record, latency)
            for medium in record.media:
                row = s.get(m.Media, ("sha-256", medium.hash))
                if row is not None and row.original_at is not None:
                    latency = max(0.0, (row.original_at - (row.taken_at or _when(record))).total_seconds())
                    credit("storage_p50", record, latency)
                    credit("storage_p95", record, latency)
            if record.type == "service":
                credit("service_by_leaving", record)
                credit("service_complete", record, float(record.id not in unfit))
            if record.type == "interruption":
                reason = record.payload.get("reason")
                known = {f.reason for f in figures_data.builtin() if f.reason}
                credit(f"interruptions_{reason if reason in known else 'other'}", record)
    at = min(end, now)
    for f in s.execute(select(m.Finding).where(m.Finding.blocks_archiving.is_(True))).scalars():
        if f.opened_at < at and (f.resolved_at is None or f.resolved_at >= at):
            record = s.get(m.SyncedRecord, f.record_id) if f.record_id else None
            unit = f.unit_id
            add("blocking_open", unit, record.author_id if record else None)
            add("blocking_open_age", unit, record.author_id if record else None,
                (at - f.opened_at).total_seconds() / 86400)
    for d in s.execute(select(m.CaseDeadline)).scalars():
        if not (start <= d.due_at < end) or not ((d.met_at and d.met_at > d.due_at) or (not d.met_at and now > d.due_at)):
            continue
        if d.rule_id == "record_filing":
            add("filing_late", d.unit_id, None)
        elif d.rule_id not in ("av_upload",):
            facts = load_case_facts(d.case_id)
            starter = next(r for r in facts.records if str(r.id) == d.key.split(":", 1)[1])
            add("deadlines_missed", d.unit_id, starter.author_id)
    for g in s.execute(select(m.AccessGrant)).scalars():
        if start <= g.registered_at < end:
            add("access_grants", g.unit_id, None)
    for d in s.execute(select(m.Disposal)).scalars():
        if d.disposed_at and start <= d.disposed_at < end:
            add("disposals", d.unit_id, None)
    return found


def expected_value(figure, samples):
    if figure.kind in ("ratio", "days"):
        return sum(samples) / len(samples) if samples else None
    if figure.kind == "seconds":
        ordered = sorted(samples)
        p = 95 if figure.id.endswith("p95") else 50
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else None
    return float(sum(samples))


@pytest.mark.parametrize("year, month", [(2025, 12), (2026, 1)])
def test_every_stored_figure_equals_an_independent_recomputation(bureau, year, month):
    cells = stored(bureau.app, year, month)
    now = max(c.computed_at for c in cells.values())
    with bureau.app.app_context():
        found = recompute(year, month, now)
        db.session().commit()
    defs = figures_data.by_id()
    for (unit, user, figure), cell in cells.items():
        want = expected_value(defs[figure], found.get((unit, user, figure), []))
        got = cell.value
        assert (want is None and got is None) or (want is not None and got is not None
                                                  and abs(want - got) < 1e-6), (unit, user, figure, want, got)
    # and nothing the recomputation found is missing from the store
    assert {k for k in found if k[0] in {u for u, _p, _f in cells}} <= set(cells)


# ---- the unit history: kept when a unit changes, seeded by the migration ----------------------------

def test_changing_a_users_unit_closes_one_stretch_and_opens_the_next(db_url, tmp_path):
    from fieldapp.accounts import update_user
    app = make_app(db_url, tmp_path / "var")
    try:
        with app.app_context():
            with db.transaction():
                one, two = create_unit("ZF1", "一中队"), create_unit("ZF2", "二中队")
                user = create_user("甲", "37030300101", one, parse_roles("officer"))
            with db.transaction():
                update_user(db.session().get(m.User, user.id), unit=two)
            rows = db.session().execute(select(m.UserUnitHistory).where(m.UserUnitHistory.user_id == user.id)
                                        .order_by(m.UserUnitHistory.from_at)).scalars().all()
            assert [(r.unit_id, r.to_at is None) for r in rows] == [(one.id, False), (two.id, True)]
            assert rows[0].to_at == rows[1].from_at and db.session().get(m.User, user.id).unit_id == two.id
            where = history.load()
            assert where.unit_at(user.id, rows[1].from_at - timedelta(seconds=1)) == one.id
            assert where.unit_at(user.id, rows[1].from_at) == two.id
            db.session().commit()
    finally:
        app.extensions["fieldapp.engine"].dispose()


@pytest.mark.tampers
def test_the_migration_gives_every_user_one_open_stretch_the_chain_vouches_for(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, insert

    from fieldapp import migrate
    from fieldapp.records import service
    from fieldapp.records.verification import verify
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(migrate.alembic_config(url), "0019_backups_and_epochs")
    engine = create_engine(url)
    unit_id, user_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as c:  # the release before writes a unit and a user
        c.execute(insert(m.Unit.__table__).values(id=unit_id, code="ZF9", name="稷下所"))
        c.execute(insert(m.User.__table__).values(id=user_id, name="张伟", cert_no="37030300001", unit_id=unit_id,
                                                  webauthn_handle=b"h" * 32))
    engine.dispose()
    migrate.upgrade(url)
    app = make_app(url, tmp_path / "var")
    try:
        with app.app_context():
            rows = db.session().execute(select(m.UserUnitHistory)).scalars().all()
            assert [(r.user_id, r.unit_id, r.to_at) for r in rows] == [(user_id, unit_id, None)]
            service.checkpoint_now()
            report = verify(db.session(), trusted_public=service.public_key(), check_media_files=False)
            # the unit and user this test wrote behind the app's back are flagged; the history row is not
            assert sorted(f.what.split(" ")[0] for f in report.faults) == ["units", "users"], report.faults
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_a_secret_case_is_counted_but_not_named_to_those_who_may_not_see_it(bureau):
    b = bureau
    url = f"/supervision/statistics/cases?year=2025&month=12&unit={b.units['ZF1']}&figure=av_required"
    with b.app.app_context(), db.transaction() as s:
        case = s.execute(select(m.Case).where(m.Case.party_name == "齐都镇鲜果超市")).scalars().first()
        case.confidentiality = "trade_secret"
    supervisor = b.clients["法规科"].get(url).get_data(as_text=True)
    assert supervisor.count('data-testid="drill-row"') == 5  # still counted
    assert "齐都镇鲜果超市" not in supervisor and 'data-testid="drill-secret"' in supervisor
    # nor who made the records of it, when, or which case it is
    assert str(case.id) not in supervisor and "乙" not in supervisor.split('data-testid="drill"', 1)[1]
    lead = b.clients["丙队长"].get(url).get_data(as_text=True)  # the unit's own lead keeps seeing it
    assert "齐都镇鲜果超市" in lead


def test_a_name_that_looks_like_a_formula_stays_text_in_the_export(bureau):
    b = bureau
    with b.app.app_context(), db.transaction() as s:
        s.get(m.Unit, b.units["ZF3"]).name = '=HYPERLINK("http://x.example","三中队")\x07'
    response = b.clients["局长"].get("/supervision/statistics/export.xlsx?year=2025&month=12")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    cells = [c for row in book["单位合计"].iter_rows(min_row=3) for c in row if isinstance(c.value, str)
             and c.value.startswith("=HYPERLINK")]
    assert cells and all(c.data_type == "s" for c in cells) and "\x07" not in cells[0].value


def test_two_refreshes_of_a_month_at_once_leave_one_set_of_figures(bureau):
    import threading

    from fieldapp.statistics import compute
    errors = []

    def run():
        try:
            with bureau.app.app_context():
                compute.refresh(2025, 12)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with bureau.app.app_context():
        cells = db.session().execute(select(m.MonthlyFigure.unit_id, m.MonthlyFigure.user_id, m.MonthlyFigure.figure)
                                     .where(m.MonthlyFigure.year == 2025, m.MonthlyFigure.month == 12)).all()
    assert len(cells) == len(set(cells)) > 0


def test_a_month_already_counted_is_counted_again_when_a_late_record_of_it_arrives(bureau):
    """A phone back from weeks without signal sends a step of last December: the hourly run and a
    page view of that month count it, without recomputing months nothing reached."""
    b = bureau
    zf1, yi = b.units["ZF1"], b.uid("乙")
    assert values(stored(b.app, 2025, 12), zf1, yi)["av_required"] == 3.0
    with b.app.app_context():
        # The seed reached the server more than compute.CHANGE_MARGIN before the months were
        # computed (a change closer than that counts as after: it may have committed after).
        with db.transaction() as s:
            for revision in s.execute(select(m.Revision)).scalars():
                revision.received_at -= timedelta(minutes=10)
            for link in s.execute(select(m.FootageLink)).scalars():
                link.linked_at -= timedelta(minutes=10)
        assert (2025, 12) not in compute.months_to_refresh()  # nothing new since the last run
        january_computed = compute.computed_at(2026, 1)
    b.push("乙", b.devices["乙"].revision(record_type="step", parent_id=b.ids["X1"], payload={
        "activity_id": b.ids["X1"], "case_id": b.ids["P1"], "step_type": "penalty_onsite_investigation",
        "at": iso(bj(12, 11, 10)), "av": "not_recorded", "av_reason": "设备故障"}))
    with b.app.app_context():
        months = compute.months_to_refresh()
        db.session().rollback()
    assert (2025, 12) in months and (2026, 1) not in months
    assert b.clients["法规科"].get("/supervision/statistics/?year=2025&month=12").status_code == 200
    assert values(stored(b.app, 2025, 12), zf1, yi)["av_required"] == 4.0
    with b.app.app_context():
        assert compute.computed_at(2026, 1) == january_computed  # January was left as it was


def test_a_month_never_computed_is_computed_when_first_looked_at(bureau):
    b = bureau
    with b.app.app_context(), db.transaction() as s:
        s.execute(m.MonthlyFigure.__table__.delete().where(m.MonthlyFigure.year == 2025))
    assert stored(b.app, 2025, 12) == {}
    assert b.clients["法规科"].get("/supervision/statistics/?year=2025&month=12").status_code == 200
    assert values(stored(b.app, 2025, 12), b.units["ZF1"])["av_required"] == 5.0


def test_blocking_findings_open_at_month_end_and_late_filing_by_hand(bureau):
    """The findings and filing figures, non-zero: P1's open blocking findings were opened on 6
    December (Beijing); one is resolved on 10 January. P2's filing was due on 28 December and has not
    happened; P3's was due on 29 December and was met on 27 December."""
    b = bureau
    zf1, zf2 = b.units["ZF1"], b.units["ZF2"]
    with b.app.app_context():
        with db.transaction() as s:
            blocking = s.execute(select(m.Finding).where(
                m.Finding.case_id == uuid.UUID(b.ids["P1"]), m.Finding.blocks_archiving.is_(True),
                m.Finding.resolved_at.is_(None)).order_by(m.Finding.id)).scalars().all()
            assert len(blocking) >= 2, "the seeded P1 breaks rules that block archiving"
            for finding in blocking:
                finding.opened_at = bj(12, 6, 0)
            blocking[0].resolved_at = bj(1, 10, 0, year=2026)
            open_in_december = len(blocking)
            s.add_all([m.CaseDeadline(case_id=uuid.UUID(b.ids["P2"]), unit_id=zf2, key="record_filing:P2",
                                      rule_id="record_filing", due_at=bj(12, 28, 0)),
                       m.CaseDeadline(case_id=uuid.UUID(b.ids["P3"]), unit_id=zf1, key="record_filing:P3",
                                      rule_id="record_filing", due_at=bj(12, 29, 0), met_at=bj(12, 27, 0))])
        compute.refresh(2025, 12)
        compute.refresh(2026, 1)
    dec, jan = stored(b.app, 2025, 12), stored(b.app, 2026, 1)
    assert values(dec, zf1)["blocking_open"] == open_in_december
    assert values(dec, zf1)["blocking_open_age"] == pytest.approx(26.0)  # 6 Dec 00:00 → 1 Jan 00:00
    assert values(jan, zf1)["blocking_open"] == open_in_december - 1
    assert values(jan, zf1)["blocking_open_age"] == pytest.approx(57.0)  # → 1 Feb 00:00
    assert values(dec, zf2)["filing_late"] == 1.0 and values(dec, zf1)["filing_late"] == 0.0
    assert values(dec, zf2)["blocking_open"] == 0.0
    for year, month in ((2025, 12), (2026, 1)):
        test_every_stored_figure_equals_an_independent_recomputation(b, year, month)


def test_the_whole_year_per_unit_and_per_officer_from_its_months(bureau):
    """A step of 28 November joins December's: the year 2025 sums the counts and the shares' parts
    over the months, shows no percentile (none is derivable from months), and the year's
    drill-down and export say the same."""
    b = bureau
    zf1, yi = b.units["ZF1"], b.uid("乙")
    b.push("乙", b.devices["乙"].revision(record_type="step", parent_id=b.ids["X1"], payload={
        "activity_id": b.ids["X1"], "case_id": b.ids["P1"], "step_type": "penalty_onsite_investigation",
        "at": iso(bj(11, 28, 10)), "av": "not_recorded", "av_reason": "设备故障"}))
    supervisor = b.clients["法规科"]
    page = supervisor.get(f"/supervision/statistics/?year=2025&month=all&unit={zf1}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "2025 年全年" in html

    def cell(row_attr: str, figure: str) -> str:
        row = html[html.index(row_attr):]
        row = row[:row.index("</tr>")]
        start = row.index(f'data-figure="{figure}"')
        return re.sub(r"<[^>]+>", "", row[start:row.index("</td>", start)].split(">", 1)[1]).strip()

    assert cell(f'data-testid="unit-row" data-unit="{zf1}"', "av_required") == "6"   # 1 in November, 5 in December
    assert cell(f'data-testid="unit-row" data-unit="{zf1}"', "av_recorded") == "17%（1/6）"
    assert cell(f'data-testid="unit-row" data-unit="{zf1}"', "storage_p50") == "—"
    assert cell(f'data-testid="officer-row" data-user="{yi}"', "av_required") == "4"
    assert cell(f'data-testid="officer-row" data-user="{yi}"', "av_recorded") == "0%（0/4）"
    assert values(stored(b.app, 2025, 11), zf1, yi)["av_required"] == 1.0  # November was computed on view
    drill = supervisor.get(f"/supervision/statistics/cases?year=2025&month=all&unit={zf1}&figure=av_required")
    assert drill.get_data(as_text=True).count('data-testid="drill-row"') == 6
    book = load_workbook(io.BytesIO(b.clients["局长"].get("/supervision/statistics/export.xlsx?year=2025&month=all").data))
    defs = figures_data.builtin()
    totals = {row[0]: row for row in book["单位合计"].iter_rows(min_row=3, values_only=True)}
    assert totals["一中队"][2 + [f.id for f in defs].index("av_required")] == 6
    officer_defs = [f.id for f in defs if f.level == "record"]
    zf2_sheet = {row[0]: row for row in book["二中队"].iter_rows(min_row=3, values_only=True)}
    assert zf2_sheet["甲"][2 + officer_defs.index("av_required")] == 1
    assert zf2_sheet["甲"][2 + officer_defs.index("storage_p95")] is None


def test_an_edit_that_moves_a_record_to_another_month_recounts_both(bureau):
    """Revision 2 of S3 moves it from 10 December to 5 January: December loses it, January gains it,
    and the year 2025 no longer counts it."""
    b = bureau
    zf1, yi = b.units["ZF1"], b.uid("乙")
    with b.app.app_context():
        s3 = db.session().execute(select(m.SyncedRecord).join(m.Revision, m.Revision.record_id == m.SyncedRecord.id)
                                  .where(m.Revision.payload["at"].as_string() == iso(bj(12, 10, 10)))).scalar_one()
        s3_id, head = str(s3.id), s3.head_revision
        db.session().rollback()
    b.push("乙", b.devices["乙"].revision(s3_id, revision=head + 1, parent_id=b.ids["X1"], reason="时间记错",
                                         record_type="step", payload={
        "activity_id": b.ids["X1"], "case_id": b.ids["P1"], "step_type": "penalty_onsite_investigation",
        "at": iso(bj(1, 5, 10, year=2026))}))
    with b.app.app_context():
        months = compute.months_to_refresh()
        db.session().rollback()
    assert {(2025, 12), (2026, 1)} <= set(months)
    for month in ("12", "1"):
        year = "2025" if month == "12" else "2026"
        assert b.clients["法规科"].get(f"/supervision/statistics/?year={year}&month={month}").status_code == 200
    assert values(stored(b.app, 2025, 12), zf1, yi)["av_required"] == 2.0
    assert values(stored(b.app, 2026, 1), zf1, yi)["av_required"] == 2.0


def test_a_year_before_any_record_is_not_filled_with_zeros(bureau):
    b = bureau
    page = b.clients["法规科"].get("/supervision/statistics/?year=2003&month=all")
    assert page.status_code == 200
    with b.app.app_context():
        assert db.session().execute(select(m.MonthlyFigure).where(m.MonthlyFigure.year == 2003)).first() is None


def test_a_month_found_unchanged_is_noted_as_checked_and_not_recomputed(bureau):
    """Looking at an old month with nothing new keeps its figures and notes when it was checked, so
    the next look reads only what arrived after; the hourly command notes every month it leaves."""
    b = bureau
    with b.app.app_context():
        with db.transaction() as s:  # the seed arrived well before the months were computed
            for revision in s.execute(select(m.Revision)).scalars():
                revision.received_at -= timedelta(minutes=10)
            for link in s.execute(select(m.FootageLink)).scalars():
                link.linked_at -= timedelta(minutes=10)
        december = compute.computed_at(2025, 12)
        db.session().rollback()
    assert b.clients["法规科"].get("/supervision/statistics/?year=2025&month=12").status_code == 200
    with b.app.app_context():
        assert compute.computed_at(2025, 12) == december  # not recomputed
        checked = compute.freshness(2025, 12)
        assert checked > december
        db.session().rollback()
    result = b.app.test_cli_runner().invoke(args=["statistics-refresh"])
    assert result.exit_code == 0, result.output
    assert "2025-12" not in result.output and "2026-01" not in result.output
    with b.app.app_context():
        assert compute.computed_at(2025, 12) == december and compute.freshness(2025, 12) > checked
        assert compute.freshness(2026, 1) > compute.computed_at(2026, 1)


def test_a_late_record_that_starts_a_clock_due_in_another_month_recounts_that_month(bureau):
    """A penalty decision of 29 December, not handed over on the spot, starts the clock of its
    service, due in January: January is among the months the late record changed, though no record
    of January arrived (deadlines_missed counts by the month a deadline falls due)."""
    b = bureau
    with b.app.app_context():
        with db.transaction() as s:
            for revision in s.execute(select(m.Revision)).scalars():
                revision.received_at -= timedelta(minutes=10)
            for link in s.execute(select(m.FootageLink)).scalars():
                link.linked_at -= timedelta(minutes=10)
        since = compute.freshness(2026, 1)
        assert (2026, 1) not in compute.months_changed_since(since)
        db.session().rollback()
    b.push("乙", b.devices["乙"].revision(record_type="step", parent_id=b.ids["X1"], payload={
        "activity_id": b.ids["X1"], "case_id": b.ids["P1"], "step_type": "penalty_decision",
        "at": iso(bj(12, 29, 9)), "handed_over_on_spot": False, "documents": ["行政处罚决定书"]}))
    with b.app.app_context():
        due = [d.due_at for d in db.session().execute(select(m.CaseDeadline).where(
            m.CaseDeadline.case_id == uuid.UUID(b.ids["P1"]))).scalars()]
        assert any(compute.month_of(d) == (2026, 1) for d in due), due
        changed = compute.months_changed_since(since)
        db.session().rollback()
    assert (2025, 12) in changed and (2026, 1) in changed
