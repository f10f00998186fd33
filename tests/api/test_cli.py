"""The `flask --app fieldapp …` admin commands, run through Flask's CLI runner."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from fieldapp import db
from fieldapp.cli import DEMO_CASES, DEMO_USERS
from fieldapp.models import Case, Role, Unit, User
from tests.support.appfactory import make_app
from tests.support.flows import run_cli as run

ORIGIN = "https://zfjl.example.gov.cn"
LINK = re.compile(r"(https?://\S+/enroll/\S+)")


def ok(app, *args: str) -> str:
    result = run(app, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def user_by_cert(app, cert_no: str) -> User | None:
    with app.app_context():
        return db.session().execute(select(User).where(User.cert_no == cert_no)).scalar_one_or_none()


def count(app, model) -> int:
    with app.app_context():
        return db.session().execute(select(func.count(model.id))).scalar_one()


def test_create_unit_and_user_with_roles(app):
    assert "LZ-ZF1" in ok(app, "create-unit", "LZ-ZF1", "综合行政执法大队一中队")
    output = ok(app, "create-user", "--name", "王强", "--cert-no", "37030319010", "--unit", "LZ-ZF1",
                "--roles", "lead,officer")
    assert "37030319010" in output
    user = user_by_cert(app, "37030319010")
    assert user is not None and user.name == "王强" and user.active
    assert user.roles == {Role.LEAD, Role.OFFICER}
    with app.app_context():
        unit = db.session().get(Unit, user.unit_id)
        assert (unit.code, unit.name) == ("LZ-ZF1", "综合行政执法大队一中队")


def test_a_duplicate_unit_code_is_refused(app):
    ok(app, "create-unit", "LZ-ZF1", "一中队")
    result = run(app, "create-unit", "LZ-ZF1", "另一个中队")
    assert result.exit_code != 0
    assert "LZ-ZF1 already exists" in result.output
    assert count(app, Unit) == 1


def test_a_duplicate_certificate_number_is_refused_clearly(app):
    ok(app, "create-unit", "LZ-ZF1", "一中队")
    ok(app, "create-user", "--name", "张伟", "--cert-no", "37030319001", "--unit", "LZ-ZF1")
    result = run(app, "create-user", "--name", "张伟二", "--cert-no", "37030319001", "--unit", "LZ-ZF1")
    assert result.exit_code != 0
    assert "Error:" in result.output and "certificate number 37030319001 already exists" in result.output
    assert "Traceback" not in result.output
    assert count(app, User) == 1 and user_by_cert(app, "37030319001").name == "张伟"


def test_an_unknown_role_is_refused_clearly(app):
    ok(app, "create-unit", "LZ-ZF1", "一中队")
    result = run(app, "create-user", "--name", "张伟", "--cert-no", "37030319001", "--unit", "LZ-ZF1",
                 "--roles", "officer,chief")
    assert result.exit_code != 0
    assert "unknown role 'chief'" in result.output
    assert all(role.value in result.output for role in Role)  # tells the admin what would work
    assert user_by_cert(app, "37030319001") is None


def test_an_unknown_unit_is_refused_clearly(app):
    result = run(app, "create-user", "--name", "张伟", "--cert-no", "37030319001", "--unit", "NOPE")
    assert result.exit_code != 0 and "no unit NOPE" in result.output
    assert count(app, User) == 0


def test_enroll_prints_a_link_on_the_configured_origin_that_opens(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", origin=ORIGIN)
    try:
        ok(app, "create-unit", "LZ-ZF1", "一中队")
        ok(app, "create-user", "--name", "李娜", "--cert-no", "37030319002", "--unit", "LZ-ZF1")
        link = ok(app, "enroll", "37030319002").strip()
        assert link.startswith(f"{ORIGIN}/enroll/"), link
        page = app.test_client().get(link.removeprefix(ORIGIN))
        assert page.status_code == 200
        assert "李娜" in page.get_data(as_text=True)
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_enroll_for_an_unknown_user_fails(app):
    result = run(app, "enroll", "99999999999")
    assert result.exit_code != 0 and "no user 99999999999" in result.output
    assert not LINK.search(result.output)


def test_set_user_disable_makes_the_user_inactive_and_enroll_refuses(app):
    ok(app, "create-unit", "LZ-ZF1", "一中队")
    ok(app, "create-user", "--name", "赵敏", "--cert-no", "37030319021", "--unit", "LZ-ZF1")
    ok(app, "set-user", "37030319021", "--disable")
    assert user_by_cert(app, "37030319021").active is False
    result = run(app, "enroll", "37030319021")
    assert result.exit_code != 0 and "disabled" in result.output
    assert not LINK.search(result.output)

    ok(app, "set-user", "37030319021", "--enable", "--roles", "officer,records_admin")
    user = user_by_cert(app, "37030319021")
    assert user.active is True and user.roles == {Role.OFFICER, Role.RECORDS_ADMIN}


def test_seed_demo_twice_creates_users_once_and_prints_links_both_times(app):
    first = ok(app, "seed-demo")
    assert "demo units, users and cases created" in first
    first_links = LINK.findall(first)
    assert len(first_links) == len(DEMO_USERS)
    assert count(app, User) == len(DEMO_USERS)
    units = count(app, Unit)

    second = ok(app, "seed-demo")
    assert "created" not in second
    second_links = LINK.findall(second)
    assert len(second_links) == len(DEMO_USERS)
    assert count(app, User) == len(DEMO_USERS) and count(app, Unit) == units
    assert count(app, Case) == len(DEMO_CASES)
    assert not set(first_links) & set(second_links)  # each run prints fresh one-time codes
    client = app.test_client()
    for link in second_links:
        assert client.get("/enroll/" + link.split("/enroll/", 1)[1]).status_code == 200, link


def test_init_db_creates_the_schema_on_a_fresh_sqlite_file(tmp_path):
    path = tmp_path / "fresh" / "nested" / "fieldapp.sqlite3"
    app = make_app(f"sqlite:///{path}", tmp_path / "var")
    try:
        assert not path.exists()
        ok(app, "init-db")
        assert path.exists()
        assert count(app, User) == 0
        ok(app, "init-db")  # upgrading an up-to-date schema is a no-op, not an error
        ok(app, "create-unit", "LZ-ZF1", "一中队")
        ok(app, "create-user", "--name", "张伟", "--cert-no", "37030319001", "--unit", "LZ-ZF1")
        assert count(app, User) == 1
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_init_db_says_whether_it_created_upgraded_or_found_the_schema_current(tmp_path):
    from alembic.script import ScriptDirectory

    from fieldapp import migrate

    url = f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}"
    app = make_app(url, tmp_path / "var")
    try:
        assert "database created at the latest schema" in ok(app, "init-db")
        again = ok(app, "init-db")
        assert "already at the latest schema" in again and "created" not in again

        first = list(ScriptDirectory.from_config(migrate.alembic_config(url)).walk_revisions())[-1].revision
        older = make_app(f"sqlite:///{tmp_path / 'older.sqlite3'}", tmp_path / "var2")
        try:
            migrate.upgrade(f"sqlite:///{tmp_path / 'older.sqlite3'}", first)
            assert f"database upgraded from {first} to the latest schema" in ok(older, "init-db")
        finally:
            older.extensions["fieldapp.engine"].dispose()
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_seed_demo_on_each_start_revokes_the_codes_it_printed_before(app):
    from fieldapp.auth import enrollment
    from fieldapp.auth.enrollment import CodeProblem

    first = [link.rsplit("/", 1)[1] for link in LINK.findall(ok(app, "seed-demo"))]
    second = [link.rsplit("/", 1)[1] for link in LINK.findall(ok(app, "seed-demo"))]
    with app.app_context():
        assert {enrollment.find(code)[1] for code in first} == {CodeProblem.EXPIRED}  # no pile of live codes
        assert {enrollment.find(code)[1] for code in second} == {None}
