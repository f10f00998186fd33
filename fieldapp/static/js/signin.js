import { t } from "./i18n.js";
import { getPasskey, postJSON, HttpError, webauthnSupported } from "./webauthn.js";

const button = document.getElementById("signin-button");
const message = document.getElementById("signin-message");

function say(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

async function signIn() {
  if (!webauthnSupported()) return say(t("webauthn_unsupported"), true);
  button.disabled = true;
  say(t("working"));
  try {
    const options = await postJSON("/auth/signin/options");
    const credential = await getPasskey(options);
    const result = await postJSON("/auth/signin/verify", { credential, next: button.dataset.next });
    window.location.assign(result.redirect || "/");
  } catch (error) {
    if (error instanceof HttpError) say(error.body?.message || t("failed"), true);
    else if (error?.name === "NotAllowedError" || error?.name === "AbortError") say(t("cancelled"), true);
    else if (error instanceof TypeError) say(t("network"), true);
    else say(t("failed"), true);
  } finally {
    button.disabled = false;
  }
}

button?.addEventListener("click", signIn);
