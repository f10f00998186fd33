"""What the chaos tests share: app processes behind the chaos proxy, and a phone page signed in
through it whose sync engine has run once cleanly (its device key registered)."""
from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import PHONE, wait_until
from tests.support.app_process import AppProcess, app_env
from tests.support.appfactory import make_app
from tests.support.chaos_proxy import ChaosProxy
from tests.support.flows import seed_user

OFFICER = "王芳"

OUTBOX_COUNT = """async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return new Promise((resolve, reject) => {
    const r = db.transaction("outbox").objectStore("outbox").count();
    r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
}"""


def parse_js_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def start_all(processes: list[AppProcess]) -> None:
    """Start the app processes in parallel (each takes a second or two to import the app)."""
    errors: list[BaseException] = []

    def start(p: AppProcess) -> None:
        try:
            p.start()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def start_behind_proxy(request, browser, tmp_path: Path, database_url: str, proxy: ChaosProxy, *,
                       secret_key: str, instances: int = 2, **env: str):
    """One officer, app processes sharing the database (and ``env``) behind ``proxy`` (chaos off),
    and a page signed in through the demo route; returns (apps, context, page)."""
    seed_app = make_app(database_url, tmp_path / "seed-var")
    seed_user(seed_app, OFFICER, "37030300901", "ZF1")
    seed_app.extensions["fieldapp.engine"].dispose()

    apps = [AppProcess(app_env(database_url=database_url, var_dir=tmp_path / f"var-{name}", secret_key=secret_key,
                               origin=proxy.url, **env), tmp_path / f"app-{name}.log") for name in "ab"[:instances]]
    for app_process in apps:
        request.addfinalizer(app_process.stop)
    start_all(apps)
    proxy.backends = [a.address for a in apps]

    context = browser.new_context(**PHONE)
    context.set_default_timeout(15_000)
    request.addfinalizer(context.close)
    page = context.new_page()
    page.goto(f"{proxy.url}/auth/demo")
    page.get_by_role("button", name=re.compile(OFFICER)).click()
    page.wait_for_url(f"{proxy.url}/")
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    wait_until(page, "() => Boolean(window.fieldappSync)")
    # The start-up sync registers the page's device key; one clean run of our own to be sure.
    wait_until(page, "async () => await window.fieldappSync.syncNow('test-setup')", 20)
    return apps, context, page
