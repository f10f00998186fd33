// What an officer reads when a save fails. A full disk is the one failure they can act on.
import { t } from "../i18n.js";

export function describeSaveError(error) {
  const name = error?.name || "";
  if (name === "QuotaExceededError" || /quota/i.test(error?.message || "")) return t("storage_full");
  if (name === "ChangedElsewhere") return t("changed_elsewhere");
  return `${t("save_failed")} (${name || error?.message || "?"})`;
}
