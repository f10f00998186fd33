// Every page: register the service worker, show connectivity, offer app updates safely.
import { t } from "./i18n.js";

const status = document.getElementById("sync-status");
const PROBE_INTERVAL_MS = 30_000;
const PROBE_TIMEOUT_MS = 5_000;

function showConnectivity(online) {
  if (!status) return;
  status.textContent = online ? "" : t("offline");
  status.dataset.state = online ? "online" : "offline";
}

// navigator.onLine only says that some network exists; ask our server instead. Any HTTP answer
// means it is reachable; a network error or a timeout means it is not.
export async function serverReachable() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  try {
    await fetch("/api/v1/session", { cache: "no-store", credentials: "same-origin", signal: controller.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function probe() {
  showConnectivity(await serverReachable());
}
window.addEventListener("online", probe);
window.addEventListener("offline", () => showConnectivity(false));
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") probe(); });
setInterval(probe, PROBE_INTERVAL_MS);
probe();

// A capture screen sets this while the officer is in the middle of something; an update waits.
export function captureInProgress() {
  return document.body.dataset.captureInProgress === "true";
}

function offerUpdate(worker) {
  const banner = document.getElementById("update-banner");
  if (!banner) return;
  if (captureInProgress()) {
    // Never interrupt a capture: offer the update once the officer has saved or left the form.
    window.addEventListener("fieldapp:capture-idle", () => offerUpdate(worker), { once: true });
    return;
  }
  if (!banner.hidden) return;
  banner.hidden = false;
  banner.textContent = t("update_ready") + " ";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button";
  button.textContent = t("update_now");
  button.addEventListener("click", () => worker.postMessage({ type: "SKIP_WAITING" }));
  banner.append(button);
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const incoming = registration.installing;
    incoming?.addEventListener("statechange", () => {
      if (incoming.state === "installed" && navigator.serviceWorker.controller) offerUpdate(incoming);
    });
  });
  // Keep this page for offline use: it loaded before the worker controlled it, so the worker
  // did not see it go by.
  navigator.serviceWorker.ready.then((ready) => {
    if (!navigator.serviceWorker.controller) ready.active?.postMessage({ type: "CLAIM" });
    ready.active?.postMessage({ type: "CACHE_PAGES", urls: [window.location.pathname] });
  });
  // Ask for a Background Sync after each save, where the browser offers it (a bonus: the page's
  // own engine also syncs on 'online', on visibility and on the button).
  window.addEventListener("fieldapp:saved-record", () => {
    navigator.serviceWorker.ready.then((ready) => ready.sync?.register("fieldapp-outbox")).catch(() => {});
  });
  // Reload when an *update* takes over; the very first worker claiming the page needs no reload.
  const hadController = !!navigator.serviceWorker.controller;
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (reloading || !hadController) return;
    reloading = true;
    window.location.reload();
  });
}

// Signing out must not leave this user's pages in the offline cache for the next person.
document.getElementById("signout-form")?.addEventListener("submit", () => {
  navigator.serviceWorker?.controller?.postMessage({ type: "FORGET_PAGES" });
});

registerServiceWorker().catch((error) => console.warn("service worker not registered", error));

// iPhones: Safari may erase a site's storage after seven days without use unless the app is on
// the home screen. Ask before the officer captures anything.
const isIOS = /iPhone|iPad|iPod/.test(navigator.userAgent);
const standalone = window.matchMedia?.("(display-mode: standalone)").matches || navigator.standalone === true;
if (isIOS && !standalone) document.getElementById("ios-banner")?.removeAttribute("hidden");
