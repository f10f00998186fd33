"""Chaos: the page's own sync engine pushes hundreds of signed revisions through a proxy that cuts
and duplicates requests, to two real app processes on one database, one of which is killed with
SIGKILL and restarted midway. Afterwards every revision is on the server exactly once, every
signature verifies, and nothing was ever shown 已同步 that the server did not have by then.

Set-up (sign-in, device registration, the catalogue) goes through the proxy with chaos off; the
revisions are made offline with the page's own modules (records.js: signed by the page's device
key, queued in its IndexedDB outbox), then chaos goes on and the browser comes back online.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from fieldapp import db
from fieldapp.models import Revision, SyncedRecord
from fieldapp.sync.signing import b64url_decode
from tests.conftest import _fresh_database
from tests.e2e.capture_support import READ_STORE, start_visit
from tests.e2e.chaos_support import OUTBOX_COUNT, parse_js_time, start_behind_proxy
from tests.e2e.conftest import wait_until
from tests.support.app_process import AppProcess
from tests.support.appfactory import make_app
from tests.support.chaos_proxy import ChaosProxy
from tests.support.flows import run_cli

pytestmark = pytest.mark.e2e

SEED = 20261127
PUSH = "/api/v1/sync/push"
SECRET_KEY = "chaos-test-secret-shared-by-both-instances"
STEPS = 840             # plus a case, an activity and second/third revisions: 1010 revisions in all
SECOND_EVERY = 6        # every 6th step, a second revision of an earlier step
THIRD_EVERY = 30        # every 30th step, a third one
SYNC_BUDGET_S = 45
KILL_AT_FRACTION = 1 / 3
DOWN_FOR_S = 2.0
# The proxy deals faults from a shuffled deck of 20 (2 cuts of each kind and 1 duplicate per 20
# pushes). 1010 revisions in the phone's batches of 50 take 21 pushes, and every cut adds a retry:
# at least one whole deck — but a fault dealt while the killed instance is down finds no backend
# and is not counted, so each kind is required at least once.
MIN_CUTS_EACH, MIN_DUPLICATES = 1, 1

# Steps made with the page's own code: the module instances main.js uses (author and catalogue
# version already set), signed with the page's device key, queued in its outbox.
MAKE_STEPS = """async ({ steps, secondEvery, thirdEvery }) => {
  const records = await import('/static/js/capture/records.js');
  const store = await import('/static/js/capture/store.js');
  const server = await import('/static/js/capture/server.js');
  const [activity] = await records.recordsOfType('activity');
  const kase = await store.get('records', activity.parent_id);
  const catalogue = await server.currentCatalogue();
  const types = catalogue.step_types.filter((s) => s.kind === kase.payload.kind && s.field !== false);
  if (!types.length) throw new Error('no step types for ' + kase.payload.kind);
  const ids = [];
  for (let i = 0; i < steps; i++) {
    const type = types[i % types.length];
    const step = await records.saveRevision({ type: 'step', parentId: activity.id, payload: {
      activity_id: activity.id, case_id: kase.id, step_type: type.id, at: new Date().toISOString(),
      place: `齐都镇 ${i} 号摊位`, notes: `第 ${i + 1} 个环节`, documents: (type.documents || []).slice(0, 1),
      av_recorded: true, av_reason: null, photos: [] } });
    ids.push(step.id);
    if (i % secondEvery === secondEvery - 1) {
      // The officer corrects an earlier step: a second revision, its parent the first.
      const head = await store.get('records', ids[i - 2]);
      await records.saveRevision({ id: head.id, type: 'step', head,
                                   payload: { ...head.payload, notes: head.payload.notes + '（更正）' } });
    }
    if (i % thirdEvery === thirdEvery - 1) {
      const head = await store.get('records', ids[i - 2]);
      await records.saveRevision({ id: head.id, type: 'step', head,
                                   payload: { ...head.payload, notes: head.payload.notes + '（再更正）' } });
    }
  }
  return ids.length;
}"""


@pytest.fixture(params=["sqlite", "postgresql"])
def chaos_db(request, tmp_path) -> str:
    return _fresh_database(request.param, request, tmp_path)


class Killer(threading.Thread):
    """Watches the server's revision count; at the threshold, SIGKILLs the victim (while a push is in
    flight to it, when one comes within a few seconds), waits, and restarts it."""

    def __init__(self, victim: AppProcess, victim_index: int, proxy: ChaosProxy, database_url: str, threshold: int):
        super().__init__(name="chaos-killer", daemon=True)
        self.victim, self.victim_index, self.proxy, self.threshold = victim, victim_index, proxy, threshold
        self.mid_push = False
        self.engine = create_engine(database_url)
        self.cancelled = threading.Event()
        self.killed_at = self.restarted_at = None
        self.count_at_kill = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.engine.connect() as conn:
                while not self.cancelled.is_set():
                    count = conn.execute(text("SELECT count(*) FROM revisions")).scalar_one()
                    conn.rollback()
                    if count >= self.threshold:
                        break
                    time.sleep(0.05)
                else:
                    return
            self.count_at_kill = count
            until = time.monotonic() + 3
            while time.monotonic() < until and not self.cancelled.is_set():
                if self.proxy.in_flight(self.victim_index, PUSH):
                    self.mid_push = True
                    break
                time.sleep(0.002)
            self.victim.kill()
            self.killed_at = time.monotonic()
            if self.cancelled.wait(DOWN_FOR_S):
                return  # the test is being torn down: do not start a process nobody will stop
            self.victim.restart()
            self.restarted_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc
        finally:
            self.engine.dispose()


@dataclass
class Rig:
    proxy: ChaosProxy
    apps: list[AppProcess]
    context: object
    page: object


def start_rig(request, browser, tmp_path, database_url: str, instances: int = 2, **proxy_options) -> Rig:
    """One officer, the proxy (chaos off), the app processes behind it, and a page signed in through
    the demo route with its device registered by the page's own start-up sync."""
    proxy = ChaosProxy(fault_prefix=PUSH, **proxy_options).start()
    request.addfinalizer(proxy.stop)
    apps, context, page = start_behind_proxy(request, browser, tmp_path, database_url, proxy,
                                             secret_key=SECRET_KEY, instances=instances)
    return Rig(proxy, apps, context, page)


def assert_clean_logs(apps: list[AppProcess]) -> None:
    for app_process in apps:
        log = app_process.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "[ERROR]" not in log, app_process.log_tail()


def test_revisions_survive_cuts_duplicates_and_a_killed_instance_exactly_once(chaos_db, browser, tmp_path, request):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    database_url = chaos_db
    rig = start_rig(request, browser, tmp_path, database_url, seed=SEED, cut_request_rate=0.10,
                    cut_response_rate=0.10, duplicate_rate=0.05)
    proxy, apps, context, page = rig.proxy, rig.apps, rig.context, rig.page
    victim = apps[0]
    timings["signed_in"] = time.monotonic() - t0

    context.set_offline(True)
    start_visit(page, party="临淄区齐都镇鲜果超市（混沌测试）")
    page.evaluate(MAKE_STEPS, {"steps": STEPS, "secondEvery": SECOND_EVERY, "thirdEvery": THIRD_EVERY})
    made = page.evaluate(READ_STORE, "revisions")
    made_keys = {(r["record_id"], r["revision"]) for r in made}
    assert len(made_keys) == len(made) >= 300
    assert page.evaluate(OUTBOX_COUNT) == len(made)
    assert sum(1 for r in made if r["revision"] > 1) >= 40
    timings["captured_offline"] = time.monotonic() - t0

    killer = Killer(victim, 0, proxy, database_url, threshold=int(len(made) * KILL_AT_FRACTION))
    killer.start()
    request.addfinalizer(lambda: (killer.cancelled.set(), killer.join(40)))
    proxy.chaos = True
    sync_started = time.monotonic()
    context.set_offline(False)  # the page's 'online' handler starts a sync by itself
    deadline = sync_started + SYNC_BUDGET_S
    calls = 0
    while time.monotonic() < deadline:
        if page.evaluate(OUTBOX_COUNT) == 0 and not page.evaluate("window.fieldappSync.state.running"):
            break
        # The engine backs off after each failure; calling it directly only skips waiting for its timer.
        page.evaluate("async () => window.fieldappSync.syncNow('chaos-test')")
        calls += 1
        time.sleep(0.05)
    timings["sync"] = time.monotonic() - sync_started
    killer.join(timeout=max(1.0, deadline - time.monotonic()) + 35)
    killer.cancelled.set()
    if killer.error:
        raise killer.error
    # One more run after the restart, so the restarted process serves this page too.
    proxy.chaos = False
    wait_until(page, "async () => await window.fieldappSync.syncNow('test-final')", 20)
    timings["total_before_checks"] = time.monotonic() - t0

    stats = proxy.stats
    print(f"\n[{request.node.callspec.id}] revisions made {len(made)}, syncNow calls {calls}, "
          f"timings {({k: round(v, 1) for k, v in timings.items()})}")
    print(f"[{request.node.callspec.id}] proxy {stats.summary()}")
    print(f"[{request.node.callspec.id}] killed at {killer.count_at_kill} revisions on the server, "
          f"{'in the middle of a push to it' if killer.mid_push else 'between requests'}, "
          f"down {DOWN_FOR_S} s; starts {[a.starts for a in apps]}, kills {[a.kills for a in apps]}")

    # The faults really happened, and the crash was a real one of a real process.
    assert stats.cut_request >= MIN_CUTS_EACH and stats.cut_response >= MIN_CUTS_EACH, stats.summary()
    assert stats.duplicated >= MIN_DUPLICATES, stats.summary()
    assert killer.killed_at is not None and killer.restarted_at is not None, "the instance was never killed"
    assert victim.kills == 1 and victim.starts == 2 and victim.running and apps[1].starts == 1
    assert any(t > killer.restarted_at and i == 0 and k != "upstream_failed" for t, i, _, k in stats.events), \
        "the restarted instance never served a request"
    # The server never failed: every answer a backend gave was a success, and no process logged an error.
    assert all(200 <= status < 400 for _, status in stats.statuses), stats.summary()["statuses"]
    assert_clean_logs(apps)

    # The page: nothing left to send, nothing shown as a problem, every record 已同步.
    assert page.evaluate(OUTBOX_COUNT) == 0
    status_log = page.evaluate("window.fieldappSync.statusLog")
    assert not [e for e in status_log if e["status"] == "problem"], "a retried or duplicated push became a problem"
    heads = {r["id"]: r for r in page.evaluate(READ_STORE, "records")}
    assert {r["status"] for r in heads.values()} == {"synced"}

    # The server: every revision the page made, exactly once, with the page's own signature.
    verify_app = make_app(database_url, tmp_path / "verify-var")
    try:
        with verify_app.app_context():
            s = db.session()
            rows = s.execute(select(Revision.record_id, Revision.revision, Revision.received_at,
                                    Revision.signature)).all()
            stored_heads = {str(r.id): r.head_revision for r in s.execute(select(SyncedRecord)).scalars()}
        stored_keys = [(str(r.record_id), r.revision) for r in rows]
        assert len(stored_keys) == len(set(stored_keys)), "a revision is stored twice"
        assert set(stored_keys) == made_keys and len(rows) == len(made)
        signatures = {(str(r.record_id), r.revision): r.signature for r in rows}
        assert all(signatures[(m["record_id"], m["revision"])] == b64url_decode(m["signature"]) for m in made)
        assert stored_heads == {rid: h["revision"] for rid, h in heads.items()}

        verified = run_cli(verify_app, "verify-signatures")
        assert verified.exit_code == 0, verified.output
        assert f"{len(made)} revisions checked, 0 bad" in verified.output
    finally:
        verify_app.extensions["fieldapp.engine"].dispose()

    # Every 已同步 the page showed was for a revision the server had by then: stored (received_at is
    # taken before the commit) no later than the moment the page showed it.
    received = {(str(r.record_id), r.revision): r.received_at for r in rows}
    shown = [e for e in status_log if e["status"] == "synced"]
    assert len(shown) >= len(heads)
    early = []
    for entry in shown:
        key = (entry["record_id"], entry["revision"])
        assert key in received, f"shown 已同步 but never on the server: {entry}"
        if received[key] > parse_js_time(entry["at"]) + timedelta(milliseconds=1):
            early.append((entry, received[key].isoformat()))
    assert not early, f"shown 已同步 before the server had it: {early[:5]}"
    print(f"[{request.node.callspec.id}] {len(shown)} 已同步 shown, all on the server in time; "
          f"total {time.monotonic() - t0:.1f} s")


@pytest.fixture
def one_instance_behind_nginx(sqlite_url, browser, tmp_path, request) -> Rig:
    """A signed-in page, one app process, and a proxy that answers 502 while no backend is up."""
    return start_rig(request, browser, tmp_path, sqlite_url, instances=1, unavailable_status=502)


def test_a_bad_gateway_while_the_app_restarts_is_retried_not_taken_for_a_sign_out(one_instance_behind_nginx):
    rig = one_instance_behind_nginx
    page, [app_process] = rig.page, rig.apps
    page.evaluate("() => { window.__phases = []; "
                  "window.addEventListener('fieldapp:sync', (e) => window.__phases.push(e.detail.phase)); }")
    app_process.kill()  # the session stays as valid as ever; nginx answers 502 until the app is back
    assert page.evaluate("async () => window.fieldappSync.syncNow('while-down')") is False
    assert rig.proxy.stats.no_backend >= 1
    app_process.restart()
    phases = page.evaluate("window.__phases")
    paused = page.evaluate("window.fieldappSync.state.paused")
    assert "signin" not in phases and "offline" in phases and not paused, \
        f"a 502 paused sync as if signed out: phases {phases}, paused {paused}"
    # Once the app is back, the engine's next attempt goes through without any sign-in.
    assert page.evaluate("async () => window.fieldappSync.syncNow('after-restart')") is True
