// The phone's sync engine. It pushes the outbox in batches, pulls what changed on the server, and
// reports a heartbeat — on start, when the browser says it is online, when the app becomes
// visible, and on the 立即同步 button. Whether the server is reachable is learned by asking it.
// A failure of the network is the normal case: the attempt backs off and tries again, and nothing
// queued is ever dropped. A 401 pauses sync until the officer signs in again (one tap).

import { count, get, getAll, getMeta, putMeta } from "./store.js";
import { deviceIdentity } from "./device.js";
import { request, setCsrfToken, Unauthenticated } from "./http.js";
import { bytesPending, uploadMedia } from "./uploader.js";
import { applyPushResults, emit, markSending, statusLog } from "./status.js";

// Records are small (a few kB): one batch of 50 is one round trip on a slow link; a cut batch
// is simply sent again (the server answers duplicates).
const BATCH_SIZE = 50;
const BACKOFF_START_MS = 2_000;
const BACKOFF_MAX_MS = 5 * 60_000;
const SYNC_AFTER_SAVE_MS = 3_000;
export const APP_VERSION = "0.1.0";

class DeviceRefused extends Error {}

const state = { running: false, paused: false, backoff: BACKOFF_START_MS, timer: null };
async function heartbeatBody() {
  const outbox = await getAll("outbox");
  const media = (await getAll("media")).filter((m) => m.blob && !m.confirmed_at);
  const times = [...outbox.map((item) => item.queued_at), ...media.map((m) => m.captured_at)].filter(Boolean);
  return {
    app_version: APP_VERSION,
    catalogue_version: await getMeta("catalogue_version"),
    unsynced_items: outbox.length + media.length,
    bytes_pending: await bytesPending(),
    oldest_unsynced_at: times.length ? times.reduce((a, b) => (a < b ? a : b)) : null,
    sent_at: new Date().toISOString(),
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
  const { key, ...item } = revision; // everything else is what was signed, plus the signature
  void key;
  return item;
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
      if (data?.error === "unknown_device") await putMeta("device_registered_for", null);
      throw new DeviceRefused(data?.message || data?.error);
    }
    if (status !== 200 || !Array.isArray(data?.results)) throw new Error(`push: HTTP ${status}`);
    await applyPushResults(data.results);
    done += slice.length;
    progress(done, queued.length);
  }
}

async function pull() {
  const cursor = (await getMeta("pull_cursor")) || "0";
  const { status, data } = await request("GET", `/api/v1/sync/pull?cursor=${encodeURIComponent(cursor)}`);
  if (status !== 200 || !data) throw new Error(`pull: HTTP ${status}`);
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
  // approved); the activity view shows it and offers the answer.
  if (data.comments?.length || data.full) {
    const reviews = data.full ? {} : await getMeta("reviews", {});
    for (const event of data.comments || []) {
      if (!reviews[event.record_id] || reviews[event.record_id].id < event.id) reviews[event.record_id] = event;
    }
    await putMeta("reviews", reviews);
  }
  await putMeta("pull_cursor", data.cursor);
  if (data.catalogue_version && data.catalogue_version !== (await getMeta("catalogue_version"))) {
    const catalogue = await request("GET", "/api/v1/catalogue");
    if (catalogue.status === 200) {
      const versions = await getMeta("catalogues", {});
      versions[catalogue.data.version] = catalogue.data;
      await putMeta("catalogues", versions);
      await putMeta("catalogue_version", catalogue.data.version);
    }
  }
  if (data.more) await pull();
}

function schedule(ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => syncNow("retry"), ms);
}

export async function syncNow(reason = "manual") {
  if (state.running || state.paused) return false;
  state.running = true;
  emit("fieldapp:sync", { phase: "start", reason });
  try {
    const probe = await request("GET", "/api/v1/session");
    // Only the server saying "not signed in" pauses sync; a proxy's 502 while the app restarts,
    // or any other failure, is the network being the network: back off and try again.
    if (probe.status !== 200) throw new Error(`session probe: HTTP ${probe.status}`);
    if (!probe.data?.authenticated) throw new Unauthenticated();
    setCsrfToken(probe.data.csrf_token);
    const identity = await deviceIdentity();
    await ensureRegistered(identity, probe.data.user.id);
    // The heartbeat goes first, on its own: a small request gets through a link that drops the
    // big ones, and the lead then knows what is waiting on this phone even if the push fails.
    await request("POST", `/api/v1/devices/${identity.deviceId}/heartbeat`, await heartbeatBody());
    await pushOutbox(identity, (done, total) => emit("fieldapp:sync", { phase: "progress", done, total }));
    // Records captured while originals upload go first: they are small, and a lead waits for them.
    await uploadMedia((detail) => emit("fieldapp:sync", { phase: "progress", ...detail }), async () => {
      if ((await count("outbox")) > 0) await pushOutbox(identity, () => {});
    });
    await pull();
    state.backoff = BACKOFF_START_MS;
    const remaining = await count("outbox");
    emit("fieldapp:sync", { phase: "done", remaining });
    if (remaining > 0) schedule(1_000); // saved while we were pushing: go again shortly
    return true;
  } catch (error) {
    if (error instanceof Unauthenticated) {
      state.paused = true; // nothing is dropped; sync resumes after the officer signs in again
      emit("fieldapp:sync", { phase: "signin" });
    } else if (error instanceof DeviceRefused) {
      emit("fieldapp:sync", { phase: "refused", message: String(error.message || "") });
    } else {
      emit("fieldapp:sync", { phase: "offline", retryInMs: state.backoff });
      schedule(state.backoff);
      state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
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
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") syncNow("visible"); });
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
  window.fieldappSync = { syncNow, statusLog, state };
  return syncNow("start");
}

