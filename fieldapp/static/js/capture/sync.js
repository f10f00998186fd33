// The phone's sync engine. It pushes the outbox in batches, pulls what changed on the server, and
// reports a heartbeat — on start, when the browser says it is online, when the app becomes
// visible, and on the 立即同步 button. Whether the server is reachable is learned by asking it.
// A failure of the network is the normal case: the attempt backs off and tries again, and nothing
// queued is ever dropped. Only the server saying in a whole answer that the session ended pauses
// sync until the officer signs in again (one tap).
//
// Pulling (the lead's returns, cases, the catalogue) does not wait for pushes: it runs on start,
// when the app becomes visible and every few minutes while it is open, so that a return reaches
// the officer without anyone having to sync.

import { count, get, getAll, getMeta, putMeta } from "./store.js";
import { deviceIdentity } from "./device.js";
import { refreshOfficers } from "./officers.js";
import { refreshCameras } from "./cameras.js";
import { refreshFootageVisits } from "./footage.js";
import { link, NetworkFailure, noteBrowserOffline, request, setCsrfToken, Unauthenticated } from "./http.js";
import { probeSession } from "./session.js";
import { uploadMedia } from "./uploader.js";
import { applyPushResults, emit, markSending, pendingFacts, statusLog } from "./status.js";
import { noteServerAnswer, reofferReport } from "./epoch.js";

// Records are small (a few kB): one batch of 50 is one round trip on a slow link; a cut batch
// is simply sent again (the server answers duplicates).
const BATCH_SIZE = 50;
const BACKOFF_START_MS = 2_000;
const BACKOFF_MAX_MS = 5 * 60_000;
// An attempt that moved something (a batch answered, a chunk stored) before the link dropped is a
// link that works some of the time: go again soon instead of backing off.
const RETRY_AFTER_PROGRESS_MS = 1_000;
const FLAKY_BACKOFF_MAX_MS = 8_000;
const SYNC_AFTER_SAVE_MS = 3_000;
const PULL_EVERY_MS = 2 * 60_000;
export const APP_VERSION = "0.3.0";

class DeviceRefused extends Error {}

const state = { running: false, paused: false, backoff: BACKOFF_START_MS, timer: null };

// What the lead sees of this phone: the same facts the officer's status line is made of.
// After a restore of the server, also what this phone offered again and could not (epoch.js).
async function heartbeatBody() {
  const facts = await pendingFacts();
  const reoffer = await reofferReport();
  return {
    app_version: APP_VERSION,
    catalogue_version: await getMeta("catalogue_version"),
    unsynced_items: facts.records + facts.originals,
    bytes_pending: facts.bytesLeft,
    oldest_unsynced_at: facts.oldest,
    sent_at: new Date().toISOString(),
    ...(reoffer ? { reoffer } : {}),
  };
}

async function ensureRegistered(identity, userId) {
  if ((await getMeta("device_registered_for")) === userId) return;
  const { status, data } = await request("POST", "/api/v1/devices", {
    device_id: identity.deviceId, public_key: identity.publicKeySpkiB64url, label: navigator.userAgent.slice(0, 100) });
  if (status === 200 || status === 201) await putMeta("device_registered_for", userId);
  else if (status === 403 || status === 409) throw new DeviceRefused(data?.message || data?.error);
  else throw new Error(`device registration: HTTP ${status}`);
}

function pushItem(revision) {
  // Everything else is what was signed, plus the signature; when the server acknowledged it is the
  // phone's own note.
  const { key, acked_at: ackedAt, ...item } = revision;
  void key;
  void ackedAt;
  return item;
}

// The heartbeat; a server that does not know this device (restored from a backup taken before it
// was registered) gets it registered again, with the same id and key, and the heartbeat again.
async function sendHeartbeat(identity, userId) {
  const url = `/api/v1/devices/${identity.deviceId}/heartbeat`;
  const answer = await request("POST", url, await heartbeatBody());
  if (answer.status !== 404 || answer.data?.error !== "unknown_device") return;
  await putMeta("device_registered_for", null);
  await ensureRegistered(identity, userId);
  await request("POST", url, await heartbeatBody());
}

async function pushOutbox(identity, progress) {
  const queued = (await getAll("outbox")).sort((a, b) =>
    a.queued_at.localeCompare(b.queued_at) || (a.revision || 0) - (b.revision || 0));
  progress(0, queued.length);
  let done = 0;
  for (let i = 0; i < queued.length; i += BATCH_SIZE) {
    const slice = queued.slice(i, i + BATCH_SIZE);
    const revisions = (await Promise.all(slice.map((item) => get("revisions", item.key)))).filter(Boolean);
    await markSending(revisions);
    const body = { device_id: identity.deviceId, items: revisions.map(pushItem), sent_at: new Date().toISOString(),
                   heartbeat: await heartbeatBody() };
    const { status, data } = await request("POST", "/api/v1/sync/push", body);
    if (status === 403 || status === 404) {
      if (data?.error === "unknown_device") {
        // Registered again on the next attempt (soon: this is retried like a failure of the link).
        await putMeta("device_registered_for", null);
        throw new Error("push: device unknown to the server");
      }
      throw new DeviceRefused(data?.message || data?.error);
    }
    if (status !== 200 || !Array.isArray(data?.results)) throw new Error(`push: HTTP ${status}`);
    // A new server epoch first: the revisions it acknowledged before are queued again, and then
    // these answers take out of the outbox what the server holds now.
    await noteServerAnswer(data);
    await applyPushResults(data.results, data.server_time);
    done += slice.length;
    progress(done, queued.length);
  }
}

async function pull() {
  const epoch = await getMeta("server_epoch");
  const cursor = (await getMeta("pull_cursor")) || "0";
  const { status, data } = await request("GET", `/api/v1/sync/pull?cursor=${encodeURIComponent(cursor)}`);
  if (status !== 200 || !data) throw new Error(`pull: HTTP ${status}`);
  // A cursor of another history than the server's (it was restored): this page is of no use; the
  // pull starts over from cursor 0 (epoch.js reset it).
  await noteServerAnswer(data);
  if (epoch && data.server_epoch?.id && data.server_epoch.id !== epoch) return pull();
  const assigned = new Set(data.assignments || []);
  // A full resync comes in pages; its cases are kept aside until the last page, so that a link cut
  // half-way never leaves the officer with half a case list. Changes merge at once.
  const listKey = data.resync ? "server_cases_resync" : "server_cases";
  const cases = data.full ? [] : await getMeta(listKey, []);
  const byId = new Map(cases.map((c) => [c.id, c]));
  for (const c of data.cases) {
    if (c.status === "open") byId.set(c.id, c);
    else byId.delete(c.id);
  }
  const merged = Array.from(byId.values()).map((c) => ({ ...c, assigned_to_me: assigned.has(c.id) }));
  if (data.resync && !data.resync_complete) {
    await putMeta("server_cases_resync", merged);
  } else {
    await putMeta("server_cases", merged);
    if (data.resync) await putMeta("server_cases_resync", []);
  }
  // The lead's latest decision on each of this officer's activities (returned with a comment, or
  // approved); the activity view shows it and offers the answer. A resync's decisions are kept
  // aside like its cases: the officer keeps seeing the returns already known until it completes.
  if (data.comments?.length || data.resync) {
    const reviewsKey = data.resync ? "reviews_resync" : "reviews";
    const reviews = data.full ? {} : await getMeta(reviewsKey, {});
    for (const event of data.comments || []) {
      if (!reviews[event.record_id] || reviews[event.record_id].id < event.id) reviews[event.record_id] = event;
    }
    if (data.resync && !data.resync_complete) {
      await putMeta("reviews_resync", reviews);
    } else {
      await putMeta("reviews", reviews);
      if (data.resync) await putMeta("reviews_resync", {});
    }
  }
  await putMeta("pull_cursor", data.cursor);
  // A newer catalogue is fetched; so is the first one (a server that never published one says
  // null here, and publishes its built-in catalogue when it is asked for it).
  let catalogueChanged = false;
  const held = await getMeta("catalogue_version");
  if (!held || (data.catalogue_version && data.catalogue_version !== held)) {
    const catalogue = await request("GET", "/api/v1/catalogue");
    if (catalogue.status === 200) {
      const versions = await getMeta("catalogues", {});
      versions[catalogue.data.version] = catalogue.data;
      await putMeta("catalogues", versions);
      await putMeta("catalogue_version", catalogue.data.version);
      catalogueChanged = true;
    }
  }
  const changed = data.cases.length > 0 || (data.comments?.length || 0) > 0 || Boolean(data.full);
  // True when anything arrived that a screen may show (so that a periodic pull redraws nothing
  // when nothing changed).
  return (data.more ? await pull() : false) || changed || catalogueChanged;
}

// One pull at a time: two interleaved pulls would each merge a page into the case list and store
// their own cursor. A pull asked for while one runs follows it (it may bring something newer).
let pullChain = Promise.resolve();
function pullInTurn() {
  const run = pullChain.then(pull);
  pullChain = run.catch(() => {});
  return run;
}

function pauseForSignIn() {
  state.paused = true; // nothing is dropped; sync resumes after the officer signs in again
  emit("fieldapp:sync", { phase: "signin" });
}

// Pull on its own (start, visible, periodic): true when it went through.
export async function pullNow(reason = "manual") {
  if (state.paused) return false;
  try {
    const changed = await pullInTurn();
    emit("fieldapp:sync", { phase: "pulled", reason, changed });
    // Then the unit's enrolled officers, for choosing who is present on site while offline; after
    // the pull has been shown, so a slow answer delays no return. A failure keeps the cached list.
    await refreshOfficers(request).catch((error) => { if (error instanceof Unauthenticated) throw error; });
    // And the unit's body cameras (cameras.js), the same way.
    await refreshCameras(request).catch((error) => { if (error instanceof Unauthenticated) throw error; });
    return true;
  } catch (error) {
    if (error instanceof Unauthenticated) pauseForSignIn();
    return false; // a failed pull is retried by the next trigger, the periodic one at the latest
  }
}

function schedule(ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => syncNow("retry"), ms);
}

function movedSomething(before, after) {
  return after.records < before.records || after.originals < before.originals || after.bytesLeft < before.bytesLeft;
}

// How long to wait after a failed attempt. One that moved something goes again at once; one cut
// after some whole answers (a flaky link, not a dead one) keeps trying every few seconds; one that
// got nothing through, or a server that keeps refusing, backs off up to five minutes.
async function retryDelay(before, error, startedAt) {
  const after = before && (await pendingFacts().catch(() => null));
  if (after && movedSomething(before, after)) {
    state.backoff = BACKOFF_START_MS;
    return RETRY_AFTER_PROGRESS_MS;
  }
  const wait = error instanceof NetworkFailure && link.lastSuccessAt >= startedAt
    ? Math.min(state.backoff, FLAKY_BACKOFF_MAX_MS) : state.backoff;
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  return wait;
}

// One attempt at a time. Asked for while one runs (the button, a trigger), the caller gets the
// outcome of the running one: it is the attempt that was asked for.
let current = null;

export function syncNow(reason = "manual") {
  if (state.paused) return Promise.resolve(false);
  if (!current) current = attempt(reason).finally(() => { current = null; });
  return current;
}

async function attempt(reason) {
  state.running = true;
  clearTimeout(state.timer); // this attempt is the retry that was waiting
  emit("fieldapp:sync", { phase: "start", reason });
  const startedAt = Date.now();
  let before = null;
  try {
    before = await pendingFacts();
    // Only the server saying "not signed in" pauses sync; a proxy's 502 while the app restarts,
    // a body cut after its headers, or any other failure, is the network being the network.
    const session = await probeSession();
    setCsrfToken(session.csrf_token);
    // A server restored to an earlier point: offer again what it had acknowledged (epoch.js).
    await noteServerAnswer(session);
    const identity = await deviceIdentity();
    await ensureRegistered(identity, session.user.id);
    // The heartbeat goes first, on its own: a small request gets through a link that drops the
    // big ones, and the lead then knows what is waiting on this phone even if the push fails.
    await sendHeartbeat(identity, session.user.id);
    await pushOutbox(identity, (done, total) => emit("fieldapp:sync", { phase: "progress", done, total }));
    // Records captured while originals upload go first: they are small, and a lead waits for them.
    await uploadMedia((detail) => emit("fieldapp:sync", { phase: "progress", ...detail }), async () => {
      if ((await count("outbox")) > 0) await pushOutbox(identity, () => {});
    });
    await pullInTurn();
    state.backoff = BACKOFF_START_MS;
    const remaining = await count("outbox");
    emit("fieldapp:sync", { phase: "done", remaining });
    // Then what became of the footage of this officer's visits, now that they are pushed
    // (footage.js paints it when it lands); the sync waits for none of it, and a failure keeps the
    // cached state.
    refreshFootageVisits(request, { force: true }).catch(() => {});
    if (remaining > 0) schedule(1_000); // saved while we were pushing: go again shortly
    return true;
  } catch (error) {
    if (error instanceof Unauthenticated) {
      pauseForSignIn();
    } else if (error instanceof DeviceRefused) {
      emit("fieldapp:sync", { phase: "refused", message: String(error.message || "") });
    } else {
      // The attempt failed and will be retried. (The phase keeps its old name, "offline", for the
      // listeners that know it; the status line decides 离线 from request outcomes, not from this.)
      const wait = await retryDelay(before, error, startedAt);
      emit("fieldapp:sync", { phase: "offline", retryInMs: wait });
      schedule(wait);
    }
    return false;
  } finally {
    state.running = false;
    emit("fieldapp:saved"); // refresh the unsynced count
  }
}

export function resumeAfterSignIn() {
  state.paused = false;
  state.backoff = BACKOFF_START_MS;
  return syncNow("signed-in");
}

export function startSyncTriggers() {
  window.addEventListener("online", () => syncNow("online"));
  window.addEventListener("offline", noteBrowserOffline);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    pullNow("visible"); // a return waiting for the officer comes first, whatever the push does
    syncNow("visible");
  });
  // While the app is open and the phone has any network, ask for returns now and then: a lead's
  // return must not wait for the officer to sync.
  setInterval(() => {
    if (document.visibilityState === "visible" && navigator.onLine !== false) pullNow("periodic");
  }, PULL_EVERY_MS);
  // After a save, wait until the officer pauses: a sync started at once would compete with the
  // next tap on a slow phone, and a burst of saves needs one sync, not one each.
  let afterSave = null;
  window.addEventListener("fieldapp:saved-record", () => {
    clearTimeout(afterSave);
    afterSave = setTimeout(() => syncNow("saved"), SYNC_AFTER_SAVE_MS);
  });
  navigator.serviceWorker?.addEventListener("message", (event) => {
    if (event.data?.type === "SYNC") syncNow("background-sync");
  });
  // Exposed for diagnostics and tests: trigger a sync and read every status change shown.
  window.fieldappSync = { syncNow, pullNow, statusLog, state, link };
  return syncNow("start");
}

