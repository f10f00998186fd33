// Pieces every screen uses: status badges, save feedback, the "capture in progress" flag and
// per-record edit locks across tabs.

import { h } from "./dom.js";
import { t } from "../i18n.js";
import { describeSaveError } from "./errors.js";

export const STATUS_LABEL = { unsynced: "status_unsynced", syncing: "status_syncing", synced: "status_synced", problem: "status_problem" };

export function badge(record) {
  return h("span", { class: `badge badge-${record.status}`, "data-testid": "record-status",
                     dataset: { status: record.status } }, t(STATUS_LABEL[record.status] || "status_unsynced"));
}

export function navigate(hash) {
  window.location.hash = hash;
}

export function setCaptureInProgress(active) {
  const was = document.body.dataset.captureInProgress === "true";
  document.body.dataset.captureInProgress = active ? "true" : "false";
  // An app update waits for this moment (see app.js).
  if (was && !active) window.dispatchEvent(new CustomEvent("fieldapp:capture-idle"));
}

// Run save(); show 已保存 only after it resolved (the IndexedDB transaction completed).
export async function saveWithFeedback(messageEl, save) {
  messageEl.textContent = t("saving");
  messageEl.classList.remove("error");
  try {
    const result = await save();
    messageEl.textContent = t("saved");
    messageEl.dataset.state = "saved";
    // Let 已保存 reach the screen before anything else (the header count, leaving the form) runs.
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    window.dispatchEvent(new CustomEvent("fieldapp:saved"));
    window.dispatchEvent(new CustomEvent("fieldapp:saved-record"));
    return result;
  } catch (error) {
    messageEl.textContent = describeSaveError(error);
    messageEl.dataset.state = "error";
    messageEl.classList.add("error");
    return null;
  }
}

// One tab at a time may edit a record (Web Locks): a second tab is told instead of racing. The lock
// is held while the form is on screen and released when the officer leaves it.
let releaseHeldLock = null;

export function releaseEditLock() {
  if (releaseHeldLock) releaseHeldLock();
  releaseHeldLock = null;
}

export async function withEditLock(recordId, onLocked, onBusy) {
  releaseEditLock();
  if (!navigator.locks) return onLocked();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const granted = await new Promise((resolve) => {
    navigator.locks.request(`edit:${recordId}`, { ifAvailable: true }, (lock) => {
      resolve(Boolean(lock));
      return lock ? held : undefined;
    });
  });
  if (!granted) return onBusy();
  releaseHeldLock = release;
  return onLocked();
}

export function screen(title, ...children) {
  return h("section", { class: "card", "data-testid": "screen" }, h("h1", {}, title), ...children);
}

export function backLink(hash) {
  return h("p", {}, h("a", { href: hash, class: "back" }, `‹ ${t("back")}`));
}

export function warning(text) {
  return h("p", { class: "warning", role: "alert" }, text);
}
