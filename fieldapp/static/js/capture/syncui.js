// What the officer sees of sync: progress in the header, the 立即同步 button, and the one-tap
// sign-in when the session expired (WebAuthn needs a user gesture, so it cannot happen by itself).

import { t } from "../i18n.js";
import { getPasskey, postJSON } from "../webauthn.js";
import { resumeAfterSignIn, syncNow } from "./sync.js";

export function mountSyncUi() {
  const status = document.getElementById("sync-status");
  const button = document.getElementById("sync-now");
  const progress = document.getElementById("sync-progress");
  const banner = document.getElementById("signin-again");
  if (!button || !progress || !banner) return;
  button.hidden = false;
  button.addEventListener("click", () => syncNow("button"));

  window.addEventListener("fieldapp:sync", async (event) => {
    const { phase, done, total, message } = event.detail;
    if (phase === "progress" && event.detail.bytesTotal !== undefined) {
      // Originals: the bar moves with bytes (what takes the time), the text gives both.
      const { mediaDone, mediaTotal, bytesDone, bytesTotal } = event.detail;
      progress.hidden = bytesTotal === 0;
      progress.max = Math.max(bytesTotal, 1);
      progress.value = bytesDone;
      const text = `${t("uploading_originals")} ${mediaDone}/${mediaTotal} · ${megabytes(bytesDone)}/${megabytes(bytesTotal)} MB`;
      progress.textContent = text;
      if (status) { status.textContent = text; status.dataset.state = "syncing"; }
    } else if (phase === "progress") {
      progress.hidden = total === 0;
      progress.max = Math.max(total, 1);
      progress.value = done;
      progress.textContent = `${done}/${total}`;
      if (status) { status.textContent = `${t("status_syncing")} ${done}/${total}`; status.dataset.state = "syncing"; }
    } else if (phase === "done") {
      progress.hidden = true;
      if (status) { status.textContent = ""; status.dataset.state = "online"; }
    } else if (phase === "offline") {
      progress.hidden = true;
      if (status) { status.textContent = t("offline"); status.dataset.state = "offline"; }
    } else if (phase === "refused") {
      if (status) { status.textContent = `${t("device_refused")} ${message || ""}`; status.dataset.state = "refused"; }
    } else if (phase === "signin") {
      showSignIn(banner);
    }
  });
}

function megabytes(bytes) {
  return (bytes / 1_000_000).toFixed(1);
}

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
      const session = await (await fetch("/api/v1/session", { credentials: "same-origin", cache: "no-store" })).json();
      document.querySelector('meta[name="csrf-token"]')?.setAttribute("content", session.csrf_token);
      const options = await postJSON("/auth/signin/options");
      const credential = await getPasskey(options);
      await postJSON("/auth/signin/verify", { credential });
      banner.hidden = true;
      await resumeAfterSignIn();
    } catch (error) {
      note.textContent = error?.body?.message || t("failed");
    } finally {
      go.disabled = false;
    }
  });
  banner.append(text, go, note);
}
