// What the officer sees of sync: one status line in the header, the 立即同步 button, the one-tap
// sign-in when the session ended (WebAuthn needs a user gesture, so it cannot happen by itself),
// and the notice of a lead's return.
//
// The status line is never told what to say by whoever happened to run last. It is derived, each
// time anything changes, from what IndexedDB holds (revisions not answered, originals not
// confirmed, bytes the server does not hold yet) and from the outcome of the latest requests:
// 离线 only when requests fail and none succeeded for OFFLINE_AFTER_MS; 全部已同步 only when
// nothing at all is waiting — the moment the phone may be switched off.

import { t } from "../i18n.js";
import { getPasskey, postJSON } from "../webauthn.js";
import { linkDown, linkDownAt, send } from "./http.js";
import { pendingFacts } from "./status.js";
import { get, getMeta, putMeta } from "./store.js";
import { resumeAfterSignIn, syncNow } from "./sync.js";

// What the engine is doing, as far as the line needs it.
const flow = { running: false, retrying: false, paused: false, refused: null };

export function mountSyncUi() {
  const line = takeOverStatusLine();
  const button = document.getElementById("sync-now");
  const progress = document.getElementById("sync-progress");
  const banner = document.getElementById("signin-again");
  const returns = document.getElementById("return-notice");
  if (!line || !button || !progress || !banner) return;
  button.hidden = false;
  button.addEventListener("click", () => syncNow("button"));

  const refreshLine = coalesced(() => renderLine(line, progress));
  const refreshReturns = coalesced(() => renderReturns(returns));
  window.addEventListener("fieldapp:sync", (event) => {
    const { phase, message } = event.detail;
    if (phase === "start") Object.assign(flow, { running: true, retrying: false, refused: null });
    else if (phase === "done") Object.assign(flow, { running: false, retrying: event.detail.remaining > 0 });
    else if (phase === "offline") Object.assign(flow, { running: false, retrying: true });
    else if (phase === "refused") { flow.running = false; flow.refused = message || ""; }
    else if (phase === "signin") { flow.running = false; flow.paused = true; showSignIn(banner); }
    if (phase === "done" || phase === "pulled") refreshReturns();
    refreshLine();
  });
  for (const name of ["fieldapp:link", "fieldapp:status", "fieldapp:saved", "online", "offline"]) {
    window.addEventListener(name, refreshLine);
  }
  window.addEventListener("fieldapp:saved", refreshReturns);
  window.addEventListener("hashchange", refreshReturns);
  const reoffer = reofferNotice(banner);
  const refreshReoffer = coalesced(() => renderReoffer(reoffer));
  window.addEventListener("fieldapp:reoffer", refreshReoffer);
  refreshLine();
  refreshReturns();
  refreshReoffer();
}

// app.js (on every page) writes its own guess of connectivity into #sync-status. On the capture
// page this module owns that line: it puts a fresh node in its place, so the old reference app.js
// holds writes nowhere.
function takeOverStatusLine() {
  const old = document.getElementById("sync-status");
  if (!old) return null;
  const line = old.cloneNode(false);
  line.dataset.testid = "sync-line";
  old.replaceWith(line);
  return line;
}

// Run fn now, or once more right after the run in progress: never two at once (each reads the
// facts after the previous one did, so what is shown only moves forward).
function coalesced(fn) {
  let running = null;
  let again = false;
  return function run() {
    if (running) { again = true; return; }
    running = (async () => {
      do {
        again = false;
        try { await fn(); } catch (error) { console.warn("status line", error); }
      } while (again);
    })().finally(() => { running = null; });
  };
}

function megabytes(bytes) {
  // Rounded up: anything left never shows as 0.0 MB.
  return (Math.ceil(bytes / 100_000) / 10).toFixed(1);
}

function fill(template, values) {
  return Object.entries(values).reduce((text, [k, v]) => text.replace(`{${k}}`, String(v)), template);
}

// The line for these facts: { state, text }. Exported for tests of the wording.
export function describe(facts, { down, running, retrying, paused, refused }) {
  const items = facts.records + facts.originals;
  const left = fill(t("line_left"), { n: items, mb: megabytes(facts.bytesLeft) });
  const problems = facts.problems ? ` · ${fill(t("line_problems"), { n: facts.problems })}` : "";
  if (down) {
    const detail = items ? fill(t("line_kept"), { n: items, mb: megabytes(facts.bytesLeft) }) : t("line_synced");
    return { state: "offline", text: `${t("line_offline")} · ${detail}${problems}` };
  }
  if (!items && !facts.problems) return { state: "synced", text: t("line_synced") };
  if (!items) return { state: "problem", text: fill(t("line_problems"), { n: facts.problems }) };
  if (refused !== null) return { state: "refused", text: `${t("device_refused")} ${refused} · ${left}${problems}` };
  if (paused) return { state: "paused", text: `${t("line_paused")} · ${left}${problems}` };
  if (running || retrying || facts.records) return { state: "syncing", text: `${t("line_syncing")} · ${left}${problems}` };
  return { state: "originals", text: `${t("line_originals")} · ${left}${problems}` };
}

let downTimer = null;
let peakBytes = 0;

async function renderLine(line, progress) {
  const facts = await pendingFacts();
  // Read after the facts, right before writing: a success that came meanwhile counts.
  const { state, text } = describe(facts, { ...flow, down: linkDown() });
  // The exact figures ride along for diagnostics and tests (the text rounds to 0.1 MB).
  line.dataset.bytesLeft = String(facts.bytesLeft);
  line.dataset.items = String(facts.records + facts.originals);
  if (line.textContent !== text || line.dataset.state !== state) {
    line.textContent = text;
    line.title = text; // a narrow header cuts the line short; a long press shows it whole
    line.dataset.state = state;
  }
  // The bar fills as the bytes left shrink, from the most there were since all was last synced.
  peakBytes = facts.bytesLeft ? Math.max(peakBytes, facts.bytesLeft) : 0;
  progress.hidden = !peakBytes || state === "offline";
  progress.max = Math.max(peakBytes, 1);
  progress.value = peakBytes - facts.bytesLeft;
  // Nothing else may happen before the link counts as down: look again at that moment.
  clearTimeout(downTimer);
  const at = linkDownAt();
  if (at) downTimer = setTimeout(() => window.dispatchEvent(new CustomEvent("fieldapp:link")), at - Date.now() + 20);
}

// ---- a lead's return ---------------------------------------------------------------------------

function shanghaiTime(iso) {
  if (!iso) return "";
  const lang = document.documentElement.lang || "zh-CN";
  return new Date(iso).toLocaleString(lang, { timeZone: "Asia/Shanghai", month: "numeric", day: "numeric",
                                              hour: "2-digit", minute: "2-digit" });
}

async function activityName(activity) {
  const local = await get("records", activity.parent_id);
  const party = local?.payload?.party_name
    || (await getMeta("server_cases", [])).find((c) => c.id === activity.parent_id)?.party_name || "";
  return [party, shanghaiTime(activity.payload?.arrived_at)].filter(Boolean).join(" · ");
}

// Returns not yet answered on this phone (an answer is a revision of the activity naming the review).
async function openReturns() {
  const reviews = Object.values(await getMeta("reviews", {})).filter((r) => r.action === "returned");
  const open = [];
  for (const review of reviews) {
    const activity = await get("records", review.record_id);
    if (!activity) continue;
    if ((activity.payload?.review_answers || []).some((a) => a.review_id === review.id)) continue;
    open.push({ review, activity, name: await activityName(activity) });
  }
  return open.sort((a, b) => b.review.id - a.review.id);
}

// Above every screen until answered, except on the returned activity itself (which shows it whole).
async function renderReturns(box) {
  if (!box) return;
  const hash = window.location.hash || "#/";
  const shown = (await openReturns()).filter(({ activity }) => !hash.startsWith(`#/activities/${activity.id}`));
  box.hidden = shown.length === 0;
  box.replaceChildren(...shown.map(({ review, activity, name }) => {
    const item = document.createElement("p");
    item.className = "return-item";
    item.dataset.activityId = activity.id;
    const title = document.createElement("strong");
    title.textContent = fill(t("return_notice"), { name });
    const comment = document.createElement("span");
    comment.className = "return-comment";
    comment.textContent = review.comment || "";
    const open = document.createElement("a");
    open.className = "button primary";
    open.href = `#/activities/${activity.id}`;
    open.dataset.testid = "return-open";
    open.textContent = t("return_open");
    item.append(title, " ", comment, " ", open);
    return item;
  }));
}

// ---- after a restore of the server ---------------------------------------------------------------

// One line under the header after the phone offered again what a restored server had acknowledged
// (epoch.js), until the officer has read it.
function reofferNotice(after) {
  const box = document.createElement("div");
  box.className = "banner";
  box.setAttribute("role", "status");
  box.dataset.testid = "reoffer-notice";
  box.hidden = true;
  after.after(box);
  return box;
}

export function describeReoffer(report) {
  const parts = [fill(t("reoffer_notice"), { n: report.records ?? report.revisions ?? 0 })];
  if (report.beyond_window) parts.push(fill(t("reoffer_beyond"), { n: report.beyond_window }));
  const lost = report.lost_originals_total ?? report.lost_originals?.length ?? 0;
  if (lost) parts.push(fill(t("reoffer_lost"), { n: lost }));
  return parts.join(" · ");
}

async function renderReoffer(box) {
  const report = await getMeta("reoffer");
  if (!report || (await getMeta("reoffer_seen")) === report.at) {
    box.hidden = true;
    return;
  }
  const text = document.createElement("span");
  text.dataset.testid = "reoffer-text";
  text.textContent = `${describeReoffer(report)} `;
  const ok = document.createElement("button");
  ok.type = "button";
  ok.className = "button";
  ok.textContent = t("reoffer_dismiss");
  ok.addEventListener("click", async () => {
    box.hidden = true;
    await putMeta("reoffer_seen", report.at);
  });
  box.replaceChildren(text, ok);
  box.hidden = false;
}

// ---- signing in again ----------------------------------------------------------------------------

function showSignIn(banner) {
  banner.hidden = false;
  banner.replaceChildren();
  const text = document.createElement("span");
  text.textContent = `${t("signin_again_text")} `;
  const go = document.createElement("button");
  go.type = "button";
  go.className = "button primary";
  go.textContent = t("signin_again");
  go.dataset.testid = "signin-again-button";
  const note = document.createElement("span");
  note.className = "message";
  go.addEventListener("click", async () => {
    go.disabled = true;
    note.textContent = t("working");
    try {
      // A fresh CSRF token for the new ceremony; the old one belonged to the expired session.
      const session = await send("GET", "/api/v1/session", { timeoutMs: 15_000 });
      if (!session.data?.csrf_token) throw new Error("no session answer");
      document.querySelector('meta[name="csrf-token"]')?.setAttribute("content", session.data.csrf_token);
      const options = await postJSON("/auth/signin/options");
      const credential = await getPasskey(options);
      await postJSON("/auth/signin/verify", { credential });
      banner.hidden = true;
      flow.paused = false;
      await resumeAfterSignIn();
    } catch (error) {
      note.textContent = error?.body?.message || t("failed");
    } finally {
      go.disabled = false;
    }
  });
  banner.append(text, go, note);
}
