"""The phone's store across releases: a store filled by each recorded release's own code opens
with today's code, every record, revision, outbox entry and photo intact; a migration step that
fails leaves the store at its old version with its data, and the export still reads it."""
from __future__ import annotations

import mimetypes

import pytest

from tests.conftest import skip_or_fail
from tests.support.releases import ReleaseUnavailable, file_at, recorded

pytestmark = pytest.mark.e2e

FILL_WITH_RELEASE_CODE = """async (prefix) => {
  const records = await import(`${prefix}/js/capture/records.js`);
  const store = await import(`${prefix}/js/capture/store.js`);
  records.setContext({ author: "00000000-0000-4000-8000-000000000001", catalogueVersion: 1 });
  const bytes = new Uint8Array(4096).map((_, i) => (i * 7) % 251);
  const blob = new Blob([bytes], { type: "image/jpeg" });
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const photo = { alg: "sha-256", hash, size: bytes.length, type: "image/jpeg", blob };
  const kase = await records.saveRevision({ type: "case", payload: { kind: "inspection", party_name: "旧版本商户",
                                                                    flags: [] } });
  const visit = await records.saveRevision({ type: "activity", parentId: kase.id,
                                             payload: { case_id: kase.id, started_at: "2026-12-01T01:00:00Z" } });
  await records.saveRevision({ type: "step", parentId: visit.id, media: [photo], newMedia: [photo],
                               payload: { case_id: kase.id, step_type: "on_site_check", notes: "旧版本记录" } });
  await store.putMeta("pull_cursor", "f.0.0");
  return { hash, records: (await store.getAll("records")).length };
}"""

READ_WITH_TODAY = """async () => {
  const store = await import("/static/js/capture/store.js");
  const db = await store.openStore();
  const outbox = await store.getAll("outbox");
  const media = await store.getAll("media");
  const bytes = new Uint8Array(await media[0].blob.arrayBuffer());
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return { version: db.version, expected: store.DB_VERSION, records: (await store.getAll("records")).length,
           revisions: (await store.getAll("revisions")).length, outbox: outbox.length,
           notes: (await store.getAll("records")).map((r) => r.payload.notes || r.payload.party_name || r.type).sort(),
           mediaHash: hash, cursor: await store.getMeta("pull_cursor") };
}"""


def serve_release(context, release) -> str:
    """The release's own static files under /release/<version>/static/, read from git, so that its
    modules import each other as they did when it shipped."""
    prefix = f"/release/{release.version}/static"

    def handler(route):
        path = route.request.url.split(prefix, 1)[1].split("?", 1)[0]
        try:
            body = file_at(release, f"fieldapp/static{path}")
        except FileNotFoundError:
            return route.fulfill(status=404, body="")
        kind = "text/javascript" if path.endswith(".js") else (mimetypes.guess_type(path)[0] or "application/octet-stream")
        route.fulfill(status=200, body=body, headers={"Content-Type": kind})

    context.route(f"**{prefix}/**", handler)
    return prefix


@pytest.fixture(params=[r.version for r in recorded()])
def release(request):
    chosen = next(r for r in recorded() if r.version == request.param)
    try:
        file_at(chosen, "fieldapp/static/js/capture/store.js")
    except ReleaseUnavailable as exc:
        skip_or_fail(str(exc))
    return chosen


def test_a_store_filled_by_a_recorded_release_opens_with_todays_code(live, context, page, release):
    server, _app = live
    prefix = serve_release(context, release)
    page.goto(server.url + "/help")
    written = page.evaluate(FILL_WITH_RELEASE_CODE, prefix)
    assert written["records"] == 3
    page.goto(server.url + "/help")  # a fresh page: only today's modules from here on
    now = page.evaluate(READ_WITH_TODAY)
    assert now["version"] == now["expected"]
    assert (now["records"], now["revisions"], now["outbox"]) == (3, 3, 3)
    assert now["notes"] == ["activity", "旧版本商户", "旧版本记录"]
    assert now["mediaHash"] == written["hash"] and now["cursor"] == "f.0.0"


def test_a_failing_migration_leaves_the_old_store_and_the_export_still_reads_it(live, context, page, release):
    server, _app = live
    prefix = serve_release(context, release)
    page.goto(server.url + "/help")
    page.evaluate(FILL_WITH_RELEASE_CODE, prefix)
    page.goto(server.url + "/help")
    outcome = page.evaluate("""async () => {
        const store = await import("/static/js/capture/store.js");
        const broken = [...store.MIGRATIONS, () => { throw new Error("a row this step did not expect"); }];
        let error = null;
        try { await store.openStore(broken); } catch (e) { error = { name: e.name, from: e.fromVersion, cause: String(e.cause) }; }
        const versions = await indexedDB.databases();
        const { buildExport } = await import("/static/js/capture/export.js");
        // Export goes through today's openStore, which succeeds here; force the failed path too:
        const asItIs = await store.openStoreAsItIs();
        const outbox = await new Promise((resolve) => {
          const q = asItIs.transaction("outbox").objectStore("outbox").getAll(); q.onsuccess = () => resolve(q.result); });
        asItIs.close();
        const exported = await buildExport();
        return { error, version: versions.find((d) => d.name === "fieldapp").version, outbox: outbox.length,
                 exported: exported.revisions.length, media: exported.media.length };
    }""")
    assert outcome["error"]["name"] == "StoreUpgradeFailed" and "did not expect" in outcome["error"]["cause"]
    assert outcome["error"]["from"] == release.phone_store_version
    assert outcome["version"] == release.phone_store_version  # rolled back: still the old version
    assert outcome["outbox"] == 3 and outcome["exported"] == 3 and outcome["media"] == 1
