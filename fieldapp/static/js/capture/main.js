// The officer's capture app: a hash-routed single page that works entirely from IndexedDB, so it
// runs the same with or without signal.

import { deskStepForm } from "./views/desk.js";
import { answerForm } from "./views/review.js";
import { t } from "../i18n.js";
import { StoreUpgradeFailed, count, openStore } from "./store.js";
import { exportUnsynced } from "./export.js";
import { h } from "./dom.js";
import { setContext } from "./records.js";
import { currentCatalogue } from "./server.js";
import { requestPersistence } from "./storage.js";
import { me } from "./session.js";
import { caseView, casesView, newCaseForm } from "./views/cases.js";
import { activityView, endActivityForm, newActivityForm, returnedForm } from "./views/activity.js";
import { interruptionForm, resumeForm, serviceForm, stepForm, withdrawForm, writtenExplanationForm } from "./views/forms.js";
import { onsiteRecordForm } from "./views/onsite_record.js";
import { outboxView } from "./views/outbox.js";
import { camerasView } from "./views/cameras.js";
import { paintFootageBadges } from "./footage.js";
import { problemView } from "./views/problem.js";
import { pullNow, startSyncTriggers } from "./sync.js";
import { mountSyncUi } from "./syncui.js";
import { releaseEditLock, setCaptureInProgress } from "./ui.js";

const root = document.getElementById("capture");
// How long the start waits for the first pull (cases, catalogue) before saying it is ready; the
// pull goes on (with its own timeouts) and the screen is redrawn when it lands.
const START_PULL_WAIT_MS = 8_000;

const ROUTES = [
  [/^#?\/?$/, () => casesView(root)],
  [/^#\/cases\/new$/, () => newCaseForm(root)],
  [/^#\/cases\/new\?from=([\w-]+)$/, (id) => newCaseForm(root, id)],
  [/^#\/cases\/([\w-]+)$/, (id) => caseView(root, id)],
  [/^#\/cases\/([\w-]+)\/activity\/new$/, (id) => newActivityForm(root, id)],
  [/^#\/cases\/([\w-]+)\/desk-step\/new$/, (id) => deskStepForm(root, id)],
  [/^#\/activities\/([\w-]+)$/, (id) => activityView(root, id)],
  [/^#\/activities\/([\w-]+)\/step\/new$/, (id) => stepForm(root, id)],
  [/^#\/activities\/([\w-]+)\/service\/new$/, (id) => serviceForm(root, id)],
  [/^#\/activities\/([\w-]+)\/record\/(scene|inquiry)\/new$/, (id, form) => onsiteRecordForm(root, id, form)],
  [/^#\/activities\/([\w-]+)\/end$/, (id) => endActivityForm(root, id)],
  [/^#\/activities\/([\w-]+)\/return$/, (id) => returnedForm(root, id)],
  [/^#\/activities\/([\w-]+)\/answer$/, (id) => answerForm(root, id)],
  [/^#\/activities\/([\w-]+)\/interruption\/new\?camera=(.*)$/, (id, camera) => interruptionForm(root, id, decodeURIComponent(camera))],
  [/^#\/interruptions\/([\w-]+)\/resume$/, (id) => resumeForm(root, id)],
  [/^#\/interruptions\/([\w-]+)\/explain$/, (id) => writtenExplanationForm(root, id)],
  [/^#\/records\/([\w-]+)\/withdraw$/, (id) => withdrawForm(root, id)],
  [/^#\/outbox$/, () => outboxView(root)],
  [/^#\/cameras$/, () => camerasView(root)],
  [/^#\/records\/([\w-]+)\/problem$/, (id) => problemView(root, id)],
];

let rendering = 0;

async function route() {
  rendering += 1;
  try {
    await drawRoute();
  } finally {
    rendering -= 1;
  }
}

async function drawRoute() {
  releaseEditLock();
  setCaptureInProgress(false);
  const hash = window.location.hash || "#/";
  // The menu belongs to the start screen; inside a form it would only be in the thumb's way.
  const menu = document.querySelector(".menu");
  if (menu) menu.hidden = !/^#?\/?$/.test(hash);
  for (const [pattern, view] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      await view(...match.slice(1));
      root.dataset.ready = "true";
      window.scrollTo(0, 0);
      return;
    }
  }
  window.location.hash = "#/";
}

// Records the server has not answered yet (originals are in the status line, in MB). Hidden at
// zero: "0 not synced" beside originals still uploading would read as "done".
async function showUnsyncedCount() {
  const el = document.getElementById("unsynced-count");
  if (!el) return;
  const n = await count("outbox");
  el.textContent = `${t("unsynced_records")} ${n}`;
  el.dataset.count = String(n);
  el.hidden = n === 0;
}

function listScreen() {
  const hash = window.location.hash || "#/";
  return /^#?\/?$|^#\/(cases|activities)\/[\w-]+$|^#\/cameras$/.test(hash);
}

async function start() {
  await openStore();
  const user = await me();
  const catalogue = await currentCatalogue();
  setContext({ author: user?.id || null, catalogueVersion: catalogue?.version ?? null });
  // The status line and 立即同步 come before any request: a request that hangs must never
  // leave the officer without them.
  mountSyncUi();
  window.addEventListener("hashchange", route);
  window.addEventListener("fieldapp:saved", showUnsyncedCount);
  window.addEventListener("fieldapp:status", showUnsyncedCount);
  // The server's newer word on the visits' footage: only the badges on screen change.
  window.addEventListener("fieldapp:footage", () => { paintFootageBadges(root).catch(() => {}); });
  await route();
  await showUnsyncedCount();
  requestPersistence();
  window.addEventListener("fieldapp:sync", async (event) => {
    const { phase } = event.detail;
    if (phase === "pulled" && event.detail.changed) {
      // A newer catalogue is what new records are made with from now on; a form drawn without
      // any catalogue (the very first start) is drawn again with it.
      const fresh = await currentCatalogue();
      setContext({ author: user?.id || null, catalogueVersion: fresh?.version ?? null });
      if (!catalogue && fresh && !listScreen() && rendering === 0) route();
    }
    // Statuses on screen follow the sync: only list and detail screens are redrawn, never a form
    // (the officer may be typing in it) and never while another screen is being drawn.
    const redraw = phase === "done" || (phase === "pulled" && event.detail.changed);
    if (redraw && listScreen() && rendering === 0 && document.body.dataset.captureInProgress !== "true") route();
  });
  // Fresh catalogue, cases and returns when the server answers; the cached copies serve until then.
  const pulled = pullNow("start");
  await Promise.race([pulled, new Promise((resolve) => { setTimeout(resolve, START_PULL_WAIT_MS); })]);
  document.body.dataset.captureReady = "true";
  await startSyncTriggers();
}

// The store could not be brought to this release's shape: nothing was changed (the upgrade rolled
// back), so the officer is told what to do and can still export what the older release wrote.
function showStoreUpgradeFailed(error) {
  const button = h("button", { type: "button", class: "button primary", "data-testid": "export-after-failure",
                               onclick: () => exportUnsynced() }, t("export_unsynced"));
  root.replaceChildren(h("section", { class: "card", role: "alert", "data-testid": "store-upgrade-failed" },
    h("h1", {}, t("store_upgrade_failed_title")), h("p", {}, t("store_upgrade_failed")), button,
    h("p", { class: "meta" }, String(error?.cause?.message || error?.message || error))));
}

if (root) start().catch((error) => {
  if (error instanceof StoreUpgradeFailed) {
    showStoreUpgradeFailed(error);
    return;
  }
  root.textContent = `${t("start_failed")} ${error?.message || error}`;
});
