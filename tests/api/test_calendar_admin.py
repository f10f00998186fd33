"""The working-day calendar as the admin keeps it: seeded from the holiday library by init-db; a
year the database does not hold is counted by weekends only and every deadline it touches is
flagged; loading the year's notice re-counts them and the flag goes."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from fieldapp import db
from fieldapp.compliance import engine
from fieldapp.models import CalendarDay, CalendarYear, Case, CaseDeadline, User
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, run_cli, seed_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTICE_2027 = """# 国务院办公厅关于2027年部分节假日安排的通知（示例）
2027-01-01 休 元旦
2027-01-02 休 元旦
2027-01-03 休 元旦
"""


def test_an_unloaded_year_is_flagged_and_loading_its_notice_clears_the_flag(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    assert run_cli(app, "init-db").exit_code == 0
    with app.app_context():
        assert db.session().get(CalendarYear, 2026) is not None  # from the library
        with db.transaction() as s:  # as if the library did not know 2027 (it may, some day)
            s.execute(delete(CalendarDay).where(CalendarDay.day >= datetime(2027, 1, 1).date()))
            s.execute(delete(CalendarYear).where(CalendarYear.year == 2027))
    admin = seed_user(app, "管理员", "A-1", "ZF1", roles="admin,lead")
    client = app.test_client()
    demo_sign_in(client, admin.user_id)
    with app.app_context(), db.transaction() as s:
        case = Case(id=uuid.uuid4(), unit_id=s.get(User, admin.user_id).unit_id,
                    kind="inspection", party_name="淄博某超市", act_ended_at=datetime(2026, 12, 10, 2, tzinfo=UTC))
        s.add(case)
        case_id = case.id
    with app.app_context(), db.transaction():
        engine.refresh_case(case_id)
    with app.app_context():
        filing = db.session().execute(select(CaseDeadline).where(CaseDeadline.case_id == case_id)).scalar_one()
        assert filing.warnings == ["calendar_not_loaded:2027"]
        # 30 days counted from 11 December end on Saturday 9 January: moved to Monday, until 24:00.
        assert filing.due_at.astimezone(SHANGHAI) == datetime(2027, 1, 12, tzinfo=SHANGHAI)
    page = client.get("/review/deadlines?days=60").get_data(as_text=True)
    assert "2027 年节假日安排未载入" in page
    assert "2027" in client.get("/admin/calendar").get_data(as_text=True)

    response = post_form(client, "/admin/calendar", {"year": "2027", "notice": "2027-13-01 休 坏日期"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session().get(CalendarYear, 2027) is None  # a bad notice loads nothing
    post_form(client, "/admin/calendar", {"year": "2027", "notice": NOTICE_2027})
    with app.app_context():
        filing = db.session().execute(select(CaseDeadline).where(CaseDeadline.case_id == case_id)).scalar_one()
        assert filing.warnings == []
        assert db.session().get(CalendarYear, 2027).source == "admin"
    app.extensions["fieldapp.engine"].dispose()

