// The officer's capture app: a hash-routed single page that works entirely from IndexedDB, so it
// runs the same with or without signal.

import { answerForm } from "./views/review.js";
import { t } from "../i18n.js";
import { count, openStore } from "./store.js";
import { setContext } from "./records.js";
import { currentCatalogue, refreshFromServer } from "./server.js";
import { requestPersistence } from "./storage.js";
import { me } from "./session.js";
import { caseView, casesView, newCaseForm } from "./views/cases.js";
import { activityView, endActivityForm, newActivityForm } from "./views/activity.js";
import { interruptionForm, resumeForm, serviceForm, stepForm, withdrawForm, writtenExplanationForm } from "./views/forms.js";
import { outboxView } from "./views/outbox.js";
import { problemView } from "./views/problem.js";
import { startSyncTriggers } from "./sync.js";
import { mountSyncUi } from "./syncui.js";
import { releaseEditLock, setCaptureInProgress } from "./ui.js";

const root = document.getElementById("capture");

const ROUTES = [
  [/^#?\/?$/, () => casesView(root)],
  [/^#\/cases\/new$/, () => newCaseForm(root)],
  [/^#\/cases\/([\w-]+)$/, (id) => caseView(root, id)],
  [/^#\/cases\/([\w-]+)\/activity\/new$/, (id) => newActivityForm(root, id)],
  [/^#\/activities\/([\w-]+)$/, (id) => activityView(root, id)],
  [/^#\/activities\/([\w-]+)\/step\/new$/, (id) => stepForm(root, id)],
  [/^#\/activities\/([\w-]+)\/service\/new$/, (id) => serviceForm(root, id)],
  [/^#\/activities\/([\w-]+)\/end$/, (id) => endActivityForm(root, id)],
  [/^#\/activities\/([\w-]+)\/answer$/, (id) => answerForm(root, id)],
  [/^#\/activities\/([\w-]+)\/interruption\/new\?camera=(.*)$/, (id, camera) => interruptionForm(root, id, decodeURIComponent(camera))],
  [/^#\/interruptions\/([\w-]+)\/resume$/, (id) => resumeForm(root, id)],
  [/^#\/interruptions\/([\w-]+)\/explain$/, (id) => writtenExplanationForm(root, id)],
  [/^#\/records\/([\w-]+)\/withdraw$/, (id) => withdrawForm(root, id)],
  [/^#\/outbox$/, () => outboxView(root)],
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

async function showUnsyncedCount() {
  const el = document.getElementById("unsynced-count");
  if (!el) return;
  const n = await count("outbox");
  el.textContent = `${t("status_unsynced")} ${n}`;
  el.dataset.count = String(n);
  el.hidden = false;
}

async function start() {
  await openStore();
  const user = await me();
  const catalogue = await currentCatalogue();
  setContext({ author: user?.id || null, catalogueVersion: catalogue?.version ?? null });
  window.addEventListener("hashchange", route);
  window.addEventListener("fieldapp:saved", showUnsyncedCount);
  await route();
  await showUnsyncedCount();
  requestPersistence();
  // Fresh catalogue and cases when the server answers; the cached copies serve until then.
  if (await refreshFromServer()) {
    const fresh = await currentCatalogue();
    setContext({ author: user?.id || null, catalogueVersion: fresh?.version ?? null });
    if (!catalogue || (window.location.hash || "#/") === "#/") await route();
  }
  document.body.dataset.captureReady = "true";
  mountSyncUi();
  window.addEventListener("fieldapp:status", showUnsyncedCount);
  window.addEventListener("fieldapp:sync", (event) => {
    // Statuses on screen follow the sync: only list and detail screens are redrawn, never a form
    // (the officer may be typing in it) and never while another screen is being drawn.
    const hash = window.location.hash || "#/";
    const listScreen = /^#?\/?$|^#\/(cases|activities)\/[\w-]+$/.test(hash);
    if (event.detail.phase === "done" && listScreen && rendering === 0
        && document.body.dataset.captureInProgress !== "true") route();
  });
  await startSyncTriggers();
}

if (root) start().catch((error) => {
  root.textContent = `${t("start_failed")} ${error?.message || error}`;
});
