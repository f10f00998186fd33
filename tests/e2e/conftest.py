"""Browser fixtures: one Debian Chromium per session, a live server and a fresh origin per test,
and WebAuthn virtual authenticators over the DevTools protocol."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import pytest

from tests.conftest import skip_or_fail
from tests.support.appfactory import make_app
from tests.support.live_server import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}


def pytest_report_header(config):
    try:
        version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = "chromium not installed"
    try:
        from importlib.metadata import version as pkg_version
        playwright = pkg_version("playwright")
    except Exception:  # noqa: BLE001
        playwright = "not installed"
    return [f"e2e browser: {version}; playwright {playwright}"]


@pytest.fixture(scope="session")
def playwright_instance():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"{CHROMIUM} missing (apt-get install chromium)")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def live(sqlite_url, tmp_path):
    """A live server on a fresh port (a fresh origin: clean service worker and IndexedDB)."""
    server, app = serve(lambda origin: make_app(sqlite_url, tmp_path / "var", origin=origin))
    yield server, app
    server.stop()
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def served_world(sqlite_url, tmp_path):
    """A live server holding the records bureau (tests/support/records_world.py): its people sign in
    through the test client (``world.client``) while the browser opens the server."""
    from tests.support.records_world import populate

    server, app = serve(lambda origin: make_app(sqlite_url, tmp_path / "var", origin=origin, demo=True))
    world = populate(app)
    yield server, world
    server.stop()
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def context(browser):
    context = browser.new_context(**PHONE)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@dataclass
class VirtualAuthenticators:
    cdp: object

    def add(self, transport: str = "internal") -> str:
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})["authenticatorId"]

    def remove(self, authenticator_id: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})

    def credentials(self, authenticator_id: str) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]

    def add_credential(self, authenticator_id: str, credential: dict) -> None:
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator_id, "credential": credential})


@pytest.fixture
def authenticators(context, page):
    """Authenticators are per tab: attach them to the test's page."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    return VirtualAuthenticators(cdp)


def wait_until(page, expression: str, timeout_s: float = 15.0, arg=None):
    """Poll a JS expression with page.evaluate until it is truthy.

    page.wait_for_function evaluates its string with eval(), which the app's Content-Security-Policy
    (no 'unsafe-eval') forbids; page.evaluate goes through the DevTools protocol and is not blocked.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.05)
