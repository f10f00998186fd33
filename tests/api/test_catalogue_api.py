"""The catalogue the phone downloads, its published versions, units' own step types, open cases."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.models import Case, CatalogueVersion, Unit
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_form, seed_user

AV_ARTICLES = {"licensing": "art. 12", "penalty": "art. 19", "coercion": "art. 22", "inspection": "art. 24"}


@pytest.fixture
def demo_app(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    yield app
    app.extensions["fieldapp.engine"].dispose()


def signed_in(app, roles="officer", unit="ZF1", cert="C-1"):
    seeded = seed_user(app, f"用户{cert}", cert, unit, roles)
    client = app.test_client()
    demo_sign_in(client, seeded.user_id)
    return client


def test_the_phone_gets_the_catalogue_with_every_kind_and_av_rule(demo_app):
    assert demo_app.test_client().get("/api/v1/catalogue").status_code == 401
    body = signed_in(demo_app).get("/api/v1/catalogue").get_json()
    assert body["version"] >= 1
    assert {k["id"] for k in body["kinds"]} == set(AV_ARTICLES)
    for kind, article in AV_ARTICLES.items():
        flagged = [s for s in body["step_types"] if s["kind"] == kind and s["av_required"]]
        assert flagged and all(s["av_article"] == article for s in flagged)


def add_step(client, unit_id, **overrides):
    form = {"unit_id": str(unit_id), "step_id": "zf1_night_market_check", "kind": "inspection",
            "stage": "investigation", "label_zh": "夜市专项检查", "label_en": "Night market inspection",
            "av_required": "1", "av_article": "art. 24", "articles": "art. 24", "documents": "现场笔录"}
    form.update(overrides)
    return post_form(client, "/admin/catalogue/steps", form, follow_redirects=True)


def test_a_units_step_type_publishes_a_new_version_and_old_versions_stay(demo_app):
    admin = signed_in(demo_app, "admin", cert="ADMIN-1")
    officer = signed_in(demo_app, "officer", cert="C-2")
    first = officer.get("/api/v1/catalogue").get_json()
    with demo_app.app_context():
        unit_id = db.session().execute(select(Unit.id).where(Unit.code == "ZF1")).scalar_one()
    page = add_step(admin, unit_id)
    assert page.status_code == 200 and "已发布" in page.get_data(as_text=True)

    latest = officer.get("/api/v1/catalogue").get_json()
    assert latest["version"] == first["version"] + 1
    added = [s for s in latest["step_types"] if s["id"] == "zf1_night_market_check"]
    assert added and added[0]["unit_code"] == "ZF1" and added[0]["av_required"]
    old = officer.get(f"/api/v1/catalogue/{first['version']}").get_json()
    assert old == first  # a record made with the old version is read with exactly that version
    assert officer.get("/api/v1/catalogue/999").status_code == 404


@pytest.mark.parametrize("overrides, words", [
    ({"kind": "astrology"}, "astrology"),
    ({"step_id": "Bad Id"}, "Bad Id"),
    ({"av_article": ""}, "av_article"),
    ({"label_zh": ""}, "label_zh"),
])
def test_bad_step_types_are_explained_and_publish_nothing(demo_app, overrides, words):
    admin = signed_in(demo_app, "admin", cert="ADMIN-1")
    admin.get("/api/v1/catalogue")  # publishes the built-in version
    with demo_app.app_context():
        unit_id = db.session().execute(select(Unit.id)).scalar_one()
        before = db.session().execute(select(CatalogueVersion.version)).scalars().all()
    page = add_step(admin, unit_id, **overrides).get_data(as_text=True)
    assert words in page
    with demo_app.app_context():
        assert db.session().execute(select(CatalogueVersion.version)).scalars().all() == before


def test_a_duplicate_step_id_is_refused(demo_app):
    admin = signed_in(demo_app, "admin", cert="ADMIN-1")
    with demo_app.app_context():
        unit_id = db.session().execute(select(Unit.id)).scalar_one()
    add_step(admin, unit_id)
    with demo_app.app_context():
        versions = db.session().execute(select(CatalogueVersion.version)).scalars().all()
    again = add_step(admin, unit_id).get_data(as_text=True)
    assert 'class="flash flash-error"' in again and "zf1_night_market_check" in again
    with demo_app.app_context():
        assert db.session().execute(select(CatalogueVersion.version)).scalars().all() == versions


def test_open_cases_are_those_of_the_officers_own_unit(demo_app):
    officer = signed_in(demo_app, "officer", unit="ZF1", cert="C-3")
    signed_in(demo_app, "officer", unit="QX", cert="C-4")
    with demo_app.app_context(), db.transaction():
        units = {u.code: u.id for u in db.session().execute(select(Unit)).scalars()}
        db.session().add_all([
            Case(unit_id=units["ZF1"], kind="inspection", party_name="本单位超市"),
            Case(unit_id=units["ZF1"], kind="penalty", party_name="已归档", status="archived"),
            Case(unit_id=units["QX"], kind="inspection", party_name="他单位超市"),
        ])
    names = {c["party_name"] for c in officer.get("/api/v1/cases").get_json()["cases"]}
    assert names == {"本单位超市"}
    supervisor = signed_in(demo_app, "supervisor", unit="ZF1", cert="C-5")
    names = {c["party_name"] for c in supervisor.get("/api/v1/cases").get_json()["cases"]}
    assert names == {"本单位超市", "他单位超市"}
