import { t } from "./i18n.js";
import { createPasskey, HttpError, postJSON, webauthnSupported } from "./webauthn.js";

const message = document.getElementById("passkey-message");
const labelInput = document.getElementById("passkey-label");

async function add(attachment) {
  if (!webauthnSupported()) {
    message.textContent = t("webauthn_unsupported");
    return;
  }
  message.textContent = t("working");
  try {
    const options = await postJSON("/account/passkeys/options", { attachment });
    const credential = await createPasskey(options);
    await postJSON("/account/passkeys/verify", { credential, label: labelInput.value });
    message.textContent = t("added");
    window.location.reload();
  } catch (error) {
    if (error instanceof HttpError) message.textContent = error.body?.message || t("failed");
    else if (error?.name === "NotAllowedError" || error?.name === "InvalidStateError") message.textContent = t("cancelled");
    else message.textContent = t("failed");
  }
}

document.getElementById("add-passkey")?.addEventListener("click", () => add("platform"));
document.getElementById("add-key")?.addEventListener("click", () => add("cross-platform"));
