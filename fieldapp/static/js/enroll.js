// Enrolment: find out what this phone can do, offer the right kind of passkey, and tell the admin
// (through the server) when it fails, because many phones in use lack platform passkeys.
import { t } from "./i18n.js";
import {
  createPasskey, failureReason, HttpError, platformAuthenticatorAvailable, postJSON, webauthnSupported,
} from "./webauthn.js";

const root = document.getElementById("enroll");
const code = root.dataset.code;
const capability = document.getElementById("capability");
const message = document.getElementById("enroll-message");
const platformButton = document.getElementById("enroll-platform");
const keyButton = document.getElementById("enroll-key");
const labelInput = document.getElementById("passkey-label");

function report(outcome, reason, detail = "") {
  return postJSON(`/enroll/${code}/events`, { outcome, reason, detail }).catch(() => {});
}

function say(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

async function enrol(attachment) {
  platformButton.disabled = keyButton.disabled = true;
  say(t("working"));
  try {
    const options = await postJSON(`/enroll/${code}/options`, { attachment });
    const credential = await createPasskey(options);
    const result = await postJSON(`/enroll/${code}/verify`, { credential, label: labelInput.value });
    window.location.assign(result.redirect || "/");
  } catch (error) {
    const reason = failureReason(error);
    // The server records its own refusals; report only what happened on the phone.
    if (!(error instanceof HttpError)) report("failed", reason, `${attachment}: ${error?.message || ""}`);
    if (error instanceof HttpError) say(error.body?.message || t("failed"), true);
    else if (reason === "NotAllowedError" || reason === "AbortError") say(t("cancelled"), true);
    else if (reason === "network") say(t("network"), true);
    else say(t("failed"), true);
  } finally {
    platformButton.disabled = keyButton.disabled = false;
  }
}

async function detect() {
  if (!webauthnSupported()) {
    capability.textContent = t("neither");
    capability.classList.add("error");
    report("capability", "no_webauthn", "PublicKeyCredential missing");
    return;
  }
  const platform = await platformAuthenticatorAvailable();
  capability.textContent = platform ? t("platform_ok") : t("no_platform");
  platformButton.hidden = !platform;
  keyButton.hidden = false;
  keyButton.classList.toggle("primary", !platform);
  if (!platform) report("capability", "no_platform_authenticator", "security key offered");
}

platformButton.addEventListener("click", () => enrol("platform"));
keyButton.addEventListener("click", () => enrol("cross-platform"));
detect();
