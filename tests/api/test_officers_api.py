"""GET /api/v1/officers: the enrolled officers of the caller's own unit, which the phone caches so
that the officers present on site are chosen from a list, not typed — and never another unit's."""
from __future__ import annotations

import pytest

from fieldapp import db
from fieldapp.accounts import find_user, update_user
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, seed_user

URL = "/api/v1/officers"


@pytest.fixture
def api(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    yield app
    app.extensions["fieldapp.engine"].dispose()


def signed_in(app, user_id):
    client = app.test_client()
    demo_sign_in(client, user_id)
    return client


def test_the_callers_unit_only_active_officers_sorted_by_name(api):
    zhang = seed_user(api, "张伟", "37030300401", "ZF1")
    li = seed_user(api, "李娜", "37030300402", "ZF1", roles="officer,lead")
    seed_user(api, "王强", "37030300403", "ZF1", roles="lead")  # a lead who does not go on site
    seed_user(api, "赵敏", "37030300404", "ZF1")  # disabled below
    other = seed_user(api, "孙涛", "37030300501", "ZF2")
    seed_user(api, "周洁", "37030300502", "ZF2")
    with api.app_context(), db.transaction():
        update_user(find_user("37030300404"), active=False)

    listed = signed_in(api, zhang.user_id).get(URL)
    assert listed.status_code == 200
    officers = listed.get_json()["officers"]
    assert [(o["name"], o["cert_no"]) for o in officers] == sorted([("张伟", "37030300401"), ("李娜", "37030300402")])
    mine = next(o for o in officers if o["cert_no"] == "37030300402")
    assert mine == {"id": str(li.user_id), "name": "李娜", "cert_no": "37030300402", "unit_name": "单位 ZF1"}

    # The other unit sees its own officers and nobody of ZF1.
    theirs = signed_in(api, other.user_id).get(URL).get_json()["officers"]
    assert sorted(o["cert_no"] for o in theirs) == ["37030300501", "37030300502"]
    assert {o["unit_name"] for o in theirs} == {"单位 ZF2"}


def test_signed_out_gets_401(api):
    answer = api.test_client().get(URL)
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthenticated"
