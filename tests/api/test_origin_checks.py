"""State-changing requests from another site's page are refused by their origin (hardening item 5);
the CSRF token stays required on top."""
from __future__ import annotations

import pytest

from fieldapp.security import cross_origin_reason
from tests.support.flows import csrf_token

OURS = ("http://localhost", "https://zf.example.gov.cn")


@pytest.mark.parametrize("headers, refused", [
    ({"Origin": "https://evil.example"}, True),
    ({"Origin": "null"}, True),
    ({"Origin": "http://localhost.evil.example"}, True),
    ({"Origin": "http://localhost:8001"}, True),  # another port is another origin
    ({"Sec-Fetch-Site": "cross-site"}, True),
    ({"Sec-Fetch-Site": "same-site"}, True),  # a sibling subdomain is not this app
    ({"Referer": "https://evil.example/page"}, True),
    ({"Referer": "not a url"}, True),
    ({"Origin": "http://localhost"}, False),
    ({"Origin": "HTTPS://ZF.EXAMPLE.GOV.CN"}, False),
    ({"Sec-Fetch-Site": "same-origin"}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Referer": "https://zf.example.gov.cn/review/"}, False),
    ({}, False),  # not a browser page: left to the CSRF token
    # The Origin header decides when present, whatever the others say.
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin", "Referer": "http://localhost/"}, True),
])
def test_the_origin_rule(headers, refused):
    assert (cross_origin_reason(headers, OURS) is not None) is refused


CROSS_SITE = [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
              {"Referer": "https://evil.example/x"}]


@pytest.mark.parametrize("hostile", CROSS_SITE, ids=["origin", "null", "fetch-metadata", "referer"])
def test_json_routes_and_forms_refuse_other_origins_with_a_clear_error(sync_app, hostile):
    app, client, device, _ = sync_app
    token = csrf_token(client)
    push = client.post("/api/v1/sync/push", json=device.batch(device.revision()),
                       headers={"X-CSRFToken": token, **hostile})
    assert push.status_code == 403 and push.get_json()["error"] == "origin_refused"
    form = client.post("/auth/signout", data={"csrf_token": token}, headers=hostile)
    assert form.status_code == 403 and "其他网站" in form.get_data(as_text=True)
    # Nothing happened: still signed in, nothing stored.
    assert client.get("/api/v1/session").get_json()["authenticated"] is True
    same = client.post("/api/v1/sync/push", json=device.batch(device.revision()),
                       headers={"X-CSRFToken": token, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200 and same.get_json()["results"][0]["status"] == "created"


def test_the_csrf_token_is_still_required_from_our_own_origin(sync_app):
    _app, client, device, _ = sync_app
    answer = client.post("/api/v1/sync/push", json=device.batch(device.revision()),
                         headers={"Origin": "http://localhost"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "csrf_failed"


def test_bearer_clients_are_not_browsers_and_are_not_judged_by_origin(sync_app):
    app, client, device, _ = sync_app
    station = app.test_client()  # no cookie: a collection station with its token
    answer = station.post("/api/v1/sync/push", json=device.batch(device.revision()),
                          headers={"Origin": "https://evil.example", "Authorization": "Bearer station-token"})
    assert answer.get_json().get("error") != "origin_refused"
    # A browser that has a session is judged by its origin, whatever Authorization it adds.
    riding = client.post("/api/v1/sync/push", json=device.batch(device.revision()),
                         headers={"Origin": "https://evil.example", "Authorization": "Bearer anything"})
    assert riding.get_json()["error"] == "origin_refused"
