"""The sync status line tells the truth on a flaky link, and a lead's return reaches the officer
without the officer syncing.

The first test lets the page's own sync engine (no test-driven retries) upload a visit captured
offline through the chaos proxy, which cuts 40 % of all API answers — right after their headers (a
200 with an empty body) or in the middle of their body — session probes included; once some bytes
are up, the link dies for two seconds, so that whole attempts fail too. Then only session probes
are cut while the officer taps 立即同步 a few times. What the officer was shown is recorded from
the DOM with a MutationObserver, and which requests got a whole answer from the browser's own
network events. Then:

* no sign-in was ever asked for (the session stayed valid throughout);
* 全部已同步 was never shown before the server held every revision and every original;
* 离线 was never shown within 10 s after a request that got a whole answer — and it is shown once
  every request has failed for that long;
* the bytes still to upload never grew (nothing new was captured meanwhile).

The second test hangs requests (an answer that never comes): the app stays usable, 立即同步 shows
at once even when every read hangs at start-up, and a lead's return, pulled when the app becomes
visible while the sync itself is stuck, is shown above the screens with a link to the activity.
"""
from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.models import Media, Revision, SyncedRecord, User
from fieldapp.review import workflow
from tests.e2e.capture_support import (
    READ_STORE, add_step_with_photo, jpeg_with_exif, sign_in_fresh_officer, start_visit,
)
from tests.e2e.chaos_support import OUTBOX_COUNT, start_behind_proxy
from tests.e2e.conftest import wait_until
from tests.support.appfactory import make_app
from tests.support.chaos_proxy import ChaosProxy
from tests.support.flows import seed_user

pytestmark = pytest.mark.e2e

SEED = 20261204
SECRET_KEY = "status-truth-test-secret"
API = "/api/v1/"
CUT_RESPONSE_RATE = 0.40
CHUNK_BYTES = 256 * 1024       # the server's chunk limit here: each photo takes a few chunks
SYNC_BUDGET_S = 30
OFFLINE_QUIET_S = 10
# The answers' times come from the browser's network process (request timing), the screen's from the
# page's Date.now(): two clocks, a few milliseconds apart (a run saw 9,997.5 ms for a 10 s wait).
CLOCK_SLACK_MS = 50
DEAD_LINK_S = 2.0
PROBES = 10                    # syncs by hand while only session probes are cut

# Every change of the status line and of the sign-in banner, as the officer saw it, with the page's
# clock (Date.now(), the same wall clock as the browser's network timings).
WATCH_SCREEN = """() => {
  window.__seen = [];
  const snap = () => {
    const line = document.getElementById('sync-status');
    const banner = document.getElementById('signin-again');
    const entry = { at: Date.now(), state: line?.dataset.state || '', text: line?.textContent || '',
                    bytes: line?.dataset.bytesLeft ?? null, signin: Boolean(banner && !banner.hidden) };
    const last = window.__seen[window.__seen.length - 1];
    if (!last || ['state', 'text', 'bytes', 'signin'].some((k) => last[k] !== entry[k])) window.__seen.push(entry);
  };
  new MutationObserver(snap).observe(document.body, { subtree: true, childList: true, characterData: true,
                                                       attributes: true });
  snap();
}"""

MEDIA_STATE = """async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open('fieldapp'); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const rows = await new Promise((resolve, reject) => {
    const r = db.transaction('media').objectStore('media').getAll();
    r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return rows.map((m) => ({ hash: m.hash, size: m.size, confirmed: Boolean(m.confirmed_at) }));
}"""


def js_time(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def megabytes_shown(text: str) -> float | None:
    found = re.search(r"(\d+\.\d) MB", text)
    return float(found.group(1)) if found else None


def line_state(page) -> dict:
    return page.evaluate("({ ...document.getElementById('sync-status').dataset })")


def test_cut_answers_never_ask_for_a_sign_in_nor_make_the_status_line_untrue(sqlite_url, browser, tmp_path, request):
    proxy = ChaosProxy(fault_prefix=API, seed=SEED, cut_request_rate=0, cut_response_rate=CUT_RESPONSE_RATE,
                       duplicate_rate=0, cut_response_in=("headers", "body")).start()
    request.addfinalizer(proxy.stop)
    _apps, context, page = start_behind_proxy(request, browser, tmp_path, sqlite_url, proxy, secret_key=SECRET_KEY,
                                              instances=1, media_chunk_max_bytes=str(CHUNK_BYTES))
    page.evaluate(WATCH_SCREEN)
    page.evaluate("() => { window.__phases = []; "
                  "window.addEventListener('fieldapp:sync', (e) => window.__phases.push(e.detail.phase)); }")

    # Captured with no signal: a visit and two steps with a photo each (a few chunks apiece).
    context.set_offline(True)
    captured_from = page.evaluate("Date.now()")
    start_visit(page, party="临淄区齐都镇鲜果超市（断流测试）")
    for seed in (1, 2):
        photo = tmp_path / f"p{seed}.jpg"
        jpeg_with_exif(photo, seed=seed, size=(1200, 900), noisy=True)
        add_step_with_photo(page, photo)
        page.get_by_test_id("activity-items").wait_for()
    made = {(r["record_id"], r["revision"]) for r in page.evaluate(READ_STORE, "revisions")}
    media = page.evaluate(MEDIA_STATE)
    total_bytes = sum(m["size"] for m in media)
    assert len(made) == 4 and len(media) == 2 and total_bytes > 4 * CHUNK_BYTES

    # Which API requests got a whole answer, and when (the browser's own account: a body cut short
    # of its Content-Length is a failed request there).
    whole_answers: list[float] = []

    def finished(req) -> None:
        if API in req.url:
            timing = req.timing
            ended = timing["startTime"] + timing["responseEnd"] if timing.get("responseEnd", -1) >= 0 else None
            whole_answers.append(ended if ended else time.time() * 1000)

    context.on("requestfinished", finished)
    proxy.chaos = True
    started = time.time() * 1000
    context.set_offline(False)  # the engine starts, retries and finishes by itself

    # Once some bytes are up, the link dies for a few seconds (every request fails at once), so that
    # whole sync attempts fail and are retried, not only single requests.
    deadline = time.monotonic() + SYNC_BUDGET_S
    dead_at_bytes = None
    while time.monotonic() < deadline:
        line = line_state(page)
        if dead_at_bytes is None and 0 < int(line.get("bytesLeft") or total_bytes) < total_bytes:
            dead_at_bytes, backends = int(line["bytesLeft"]), proxy.backends
            proxy.backends = []
            time.sleep(DEAD_LINK_S)
            proxy.backends = backends
        if line.get("state") == "synced":
            break
        time.sleep(0.05)
    took = time.time() * 1000 - started

    # Then only session probes meet cuts, and the officer syncs a few more times by hand.
    proxy.fault_prefix = "/api/v1/session"
    for _ in range(PROBES):
        page.evaluate("async () => window.fieldappSync.syncNow('button')")
    proxy.chaos = False

    seen = page.evaluate("window.__seen")
    phases = page.evaluate("window.__phases")
    stats = proxy.stats
    cuts_by_path = Counter(path.split("?")[0] for _, _, path, kind in stats.events if kind == "cut_response")
    print(f"\nsync took {took / 1000:.1f} s; link dead for {DEAD_LINK_S} s at {dead_at_bytes} bytes left; "
          f"proxy {stats.summary()}; cuts by path {dict(cuts_by_path)}")
    print("status lines:", [(round((e["at"] - started) / 1000, 1), e["state"], e["text"]) for e in seen
                            if e["at"] >= started])

    # 1. The session was valid throughout: never a sign-in.
    assert not [e for e in seen if e["signin"]], "a cut answer was taken for a signed-out session"
    assert "signin" not in phases and page.evaluate("window.fieldappSync.state.paused") is False

    # The faults really happened: cuts of both kinds (session probes included), and a dead link
    # while originals were still uploading, which failed whole attempts.
    assert stats.cut_modes["headers"] >= 2 and stats.cut_modes["body"] >= 2, stats.summary()
    assert cuts_by_path["/api/v1/session"] >= 1, cuts_by_path
    assert dead_at_bytes is not None and phases.count("offline") >= 1, (dead_at_bytes, phases)

    assert line_state(page)["state"] == "synced", f"not synced within {SYNC_BUDGET_S} s: {seen[-1]}"

    # 2. 全部已同步 only once the server held every revision and every original.
    verify_app = make_app(sqlite_url, tmp_path / "verify-var")
    request.addfinalizer(lambda: verify_app.extensions["fieldapp.engine"].dispose())
    with verify_app.app_context():
        s = db.session()
        received = {(str(r.record_id), r.revision): aware(r.received_at)
                    for r in s.execute(select(Revision.record_id, Revision.revision, Revision.received_at))}
        originals = {m["hash"]: s.get(Media, ("sha-256", m["hash"])) for m in media}
    assert set(received) == made
    assert all(o is not None and o.original_at is not None for o in originals.values())
    last_arrival = max([*received.values(), *(aware(o.original_at) for o in originals.values())])
    early = [e for e in seen if "全部已同步" in e["text"] and e["at"] >= captured_from
             and js_time(e["at"]) + timedelta(milliseconds=1) < last_arrival]
    assert not early, f"全部已同步 shown before the server had everything ({last_arrival}): {early[:3]}"

    # 3. 离线 never within 10 s after a whole answer.
    for entry in (e for e in seen if e["state"] == "offline" and e["at"] >= started):
        recent = [t for t in whole_answers
                  if entry["at"] - OFFLINE_QUIET_S * 1000 + CLOCK_SLACK_MS <= t <= entry["at"]]
        assert not recent, f"离线 shown {(entry['at'] - max(recent)) / 1000:.1f} s after a request succeeded: {entry}"

    # 4. What is left to upload never grows: nothing new was captured while syncing.
    during = [e for e in seen if e["at"] >= started]
    bytes_left = [int(e["bytes"]) for e in during if e["bytes"] not in (None, "")]
    assert bytes_left and all(a >= b for a, b in zip(bytes_left, bytes_left[1:], strict=False)), bytes_left
    shown_mb = [mb for mb in (megabytes_shown(e["text"]) for e in during) if mb is not None]
    assert all(a >= b for a, b in zip(shown_mb, shown_mb[1:], strict=False)), shown_mb
    assert page.evaluate(OUTBOX_COUNT) == 0 and all(m["confirmed"] for m in page.evaluate(MEDIA_STATE))

    # And 离线 does come when requests keep failing: 10 s after the last whole answer, not before.
    proxy.backends = []
    page.evaluate("async () => window.fieldappSync.syncNow('button')")
    last_whole = max(whole_answers)
    page.locator("#sync-status[data-state=offline]").wait_for(timeout=(OFFLINE_QUIET_S + 4) * 1000)
    shown = page.evaluate("window.__seen.filter((e) => e.state === 'offline').pop().at")
    assert shown - last_whole >= OFFLINE_QUIET_S * 1000 - CLOCK_SLACK_MS, (shown - last_whole)
    assert page.locator("#sync-status").inner_text().startswith("离线")


# ---- requests that never answer, and a lead's return ------------------------------------------------

HANG_FOREVER = []  # the routes held open (never answered) until the context closes


def hang(route) -> None:
    HANG_FOREVER.append(route)


def test_a_hung_request_stalls_nothing_and_a_return_is_pulled_and_shown_at_once(live, context, page, authenticators):
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app, offline=False)
    activity_url = start_visit(page, party="临淄区齐都镇百货商店")
    activity_id = activity_url.rsplit("/", 1)[1]
    # Synced means the server holds the activity (an attempt can end before the visit reached the
    # outbox on a loaded machine): sync again until it does.
    deadline = time.monotonic() + 30
    while True:
        wait_until(page, "async () => await window.fieldappSync.syncNow('test-setup')", 20)
        with app.app_context():
            held = db.session().get(SyncedRecord, uuid.UUID(activity_id)) is not None
            db.session().commit()
        if held or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert held, "the visit never reached the server"
    lead = seed_user(app, "李队长", "37030300488", "ZF1", roles="lead")

    # The sync path hangs: its heartbeat is never answered (a dead kept-alive connection).
    context.route("**/api/v1/devices/*/heartbeat", hang)
    page.goto(server.url + "/")
    page.get_by_test_id("sync-now").wait_for(timeout=3_000)
    wait_until(page, "window.fieldappSync && window.fieldappSync.state.running", 10)

    # The lead returns the activity; the officer only comes back to the app (it becomes visible).
    with app.app_context(), db.transaction():
        reviewer = db.session().get(User, lead.user_id)
        workflow.decide(uuid.UUID(activity_id), reviewer, "returned", "请补拍门头照片")
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    notice = page.get_by_test_id("return-notice")
    notice.wait_for(timeout=5_000)
    assert "临淄区齐都镇百货商店" in notice.inner_text() and "请补拍门头照片" in notice.inner_text()
    assert page.evaluate("window.fieldappSync.state.running"), "the notice must not have waited for the stuck sync"
    notice.get_by_test_id("return-open").click()
    page.get_by_test_id("review-returned").wait_for()
    assert page.url.endswith(f"#/activities/{activity_id}") and notice.is_hidden()

    # Every request has a timeout: the hung one fails as a network failure, it does not hang the caller.
    failure = page.evaluate("""async (url) => {
        const http = await import('/static/js/capture/http.js');
        const t0 = performance.now();
        try { await http.send('POST', url, { json: {}, timeoutMs: 300 }); return { ok: true }; }
        catch (error) { return { name: error.name, timedOut: error.timedOut, ms: performance.now() - t0 }; }
    }""", "/api/v1/devices/x/heartbeat")
    assert failure["name"] == "NetworkFailure" and failure["timedOut"] and failure["ms"] < 2_000, failure

    # Start-up with every read hanging: 立即同步 and the status line are there at once.
    for pattern in ("**/api/v1/sync/pull*", "**/api/v1/cases*", "**/api/v1/catalogue*", "**/api/v1/session*"):
        context.route(pattern, hang)
    page.goto(server.url + "/")
    page.get_by_test_id("sync-now").wait_for(timeout=3_000)
    assert page.locator("#sync-status[data-state]").count() == 1


def test_the_proxy_can_cut_an_answer_right_after_its_headers():
    from tests.unit.test_chaos_proxy import PUSH, Backend, http, parse

    backend = Backend("a")
    try:
        with ChaosProxy([backend.address], cut_request_rate=0, cut_response_rate=1, duplicate_rate=0,
                        cut_response_in="headers") as proxy:
            proxy.chaos = True
            raw = http(proxy.port, "POST", PUSH, b'{"short": 1}')
    finally:
        backend.stop()
    status, headers, body = parse(raw)
    assert status == 200 and int(headers["content-length"]) > 0 and body == b""
    assert proxy.stats.cut_modes == {"headers": 1}
    with pytest.raises(ValueError):
        ChaosProxy(cut_response_in=("headers", "head"))
