"""The passkey journey in headless Chromium at a phone's size, with virtual authenticators."""
from __future__ import annotations

import time

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fieldapp import db
from fieldapp.auth import enrollment
from fieldapp.models import Enrollment, EnrollmentEvent, utcnow
from tests.e2e.conftest import wait_until
from tests.support.flows import issue_code, seed_user

pytestmark = pytest.mark.e2e


def enrol_link(server, app, cert_no="37030300101", name="张伟") -> str:
    seeded = seed_user(app, name, cert_no, "ZF1")
    return enrollment.link(server.url, issue_code(app, seeded.user_id))


def register_on_phone(page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="使用本机（指纹、面容或锁屏密码）").click()
    page.wait_for_url("**/")
    page.get_by_test_id("home").wait_for()


def sign_out(page) -> None:
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/")
    # Let the capture app finish its first render and sync, which move the menu down the page.
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    wait_until(page, "window.fieldappSync && !window.fieldappSync.state.running")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url("**/auth/signin")


def sign_in(page) -> None:
    page.get_by_role("button", name="使用通行密钥登录").click()
    page.get_by_test_id("home").wait_for()


def test_enrol_sign_out_sign_in_and_see_the_units_home(live, page, authenticators):
    server, app = live
    authenticators.add("internal")
    register_on_phone(page, enrol_link(server, app))
    assert page.get_by_test_id("current-unit").inner_text() == "单位 ZF1"
    sign_out(page)
    sign_in(page)
    assert "张伟" in page.get_by_test_id("current-user").inner_text()


def test_second_passkey_and_revoking_one_stops_it(live, page, authenticators):
    server, app = live
    phone = authenticators.add("internal")
    register_on_phone(page, enrol_link(server, app))

    security_key = authenticators.add("usb")
    page.goto(server.url + "/account/passkeys")
    page.get_by_label("新通行密钥的名称").fill("黄色安全密钥")
    page.get_by_role("button", name="添加安全密钥").click()
    page.get_by_text("黄色安全密钥").wait_for()
    assert page.get_by_test_id("passkey").count() == 2

    # Revoke the phone's passkey (the first in the list).
    page.get_by_test_id("passkey").filter(has_text="本机通行密钥").get_by_role("button", name="吊销").click()
    page.get_by_test_id("passkey").filter(has_text="已吊销").wait_for()
    phone_credentials = authenticators.credentials(phone)
    assert len(phone_credentials) == 1

    # Only the security key present: signing in works.
    authenticators.remove(phone)
    sign_out(page)
    sign_in(page)

    # Only the revoked phone passkey present: refused, with the reason in Chinese.
    sign_out(page)
    authenticators.remove(security_key)
    restored = authenticators.add("internal")
    authenticators.add_credential(restored, phone_credentials[0])
    page.get_by_role("button", name="使用通行密钥登录").click()
    page.get_by_text("该通行密钥未注册或已被吊销").wait_for()
    assert page.url.endswith("/auth/signin")


def test_used_and_expired_codes_are_refused_with_a_clear_chinese_message(live, page, authenticators):
    server, app = live
    authenticators.add("internal")
    link = enrol_link(server, app)
    register_on_phone(page, link)
    sign_out(page)

    page.goto(link)
    assert "该注册码已被使用" in page.get_by_test_id("enroll-problem").inner_text()

    second = enrol_link(server, app, "37030300102", "李娜")
    with app.app_context(), db.transaction():
        db.session().execute(update(Enrollment).where(Enrollment.used_at.is_(None))
                             .values(expires_at=utcnow() - timedelta(minutes=1)))
    page.goto(second)
    assert "该注册码已过期" in page.get_by_test_id("enroll-problem").inner_text()


def test_a_replayed_sign_in_assertion_is_refused(live, page, authenticators):
    server, app = live
    authenticators.add("internal")
    register_on_phone(page, enrol_link(server, app))
    sign_out(page)
    with page.expect_request("**/auth/signin/verify") as captured:
        sign_in(page)
    body = json.loads(captured.value.post_data)
    sign_out(page)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    replay = page.request.post(server.url + "/auth/signin/verify", data=body,
                               headers={"X-CSRFToken": token})
    assert replay.status == 401 and replay.json()["error"] == "challenge_invalid"
    page.goto(server.url + "/")
    assert page.url.endswith("/auth/signin?next=/") or "/auth/signin" in page.url


def test_a_phone_without_a_platform_passkey_is_offered_a_security_key_and_the_admin_sees_it(
        live, page, authenticators):
    server, app = live
    authenticators.add("usb")  # no built-in authenticator, as on many phones without Google services
    page.goto(enrol_link(server, app))
    page.get_by_text("本机不支持内置通行密钥").wait_for()
    assert page.get_by_role("button", name="使用本机（指纹、面容或锁屏密码）").is_hidden()
    page.get_by_role("button", name="使用安全密钥（USB-C 或 NFC）").click()
    page.get_by_test_id("home").wait_for()
    assert "no_platform_authenticator" in reported_reasons(app, "no_platform_authenticator")


def reported_reasons(app, wanted: str, timeout_s: float = 15) -> list[str]:
    """The enrolment events' reasons once ``wanted`` is among them (or the time is up): the page
    tells the user at once and reports to the admin's log in the background, so on a loaded machine
    the report arrives after the words are shown."""
    deadline = time.monotonic() + timeout_s
    while True:
        with app.app_context():
            reasons = db.session().execute(select(EnrollmentEvent.reason)).scalars().all()
        if wanted in reasons or time.monotonic() > deadline:
            return reasons
        time.sleep(0.1)


def test_a_browser_without_webauthn_is_told_plainly_in_chinese(live, page):
    server, app = live
    page.add_init_script("delete window.PublicKeyCredential;")
    page.goto(enrol_link(server, app))
    page.get_by_text("本机无法保存通行密钥").wait_for()
    assert "no_webauthn" in reported_reasons(app, "no_webauthn")


def test_with_the_app_loaded_once_a_reload_offline_shows_the_app_shell(live, context, page, authenticators):
    server, app = live
    authenticators.add("internal")
    register_on_phone(page, enrol_link(server, app))
    wait_until(page, "navigator.serviceWorker.controller !== null")
    # The worker caches the page it did not see load; wait until it is there.
    wait_until(page, "caches.open('pages-v1').then(c => c.match('/')).then(r => !!r)")
    context.set_offline(True)
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.get_by_test_id("home").wait_for()
    assert page.get_by_test_id("current-unit").inner_text() == "单位 ZF1"
    page.locator("#sync-status[data-state=offline]").wait_for()
    context.set_offline(False)
