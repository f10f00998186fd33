// What is still only on this phone: the outbox, storage health, and the export that gets it off a
// broken phone by other means.

import { h, mount, showTime } from "../dom.js";
import { t } from "../../i18n.js";
import { getAll } from "../store.js";
import { backLink, screen } from "../ui.js";
import { exportUnsynced } from "../export.js";
import { storageStatus } from "../storage.js";

export async function outboxView(root) {
  const [outbox, status] = await Promise.all([getAll("outbox"), storageStatus()]);
  const bytes = outbox.reduce((sum, item) => sum + (item.bytes || 0), 0);
  const exportMessage = h("p", { class: "message", role: "status" });
  mount(root, backLink("#/"), screen(t("unsynced_items"),
    h("p", { "data-testid": "outbox-count" }, `${t("unsynced_items")}: ${outbox.length} · ${Math.round(bytes / 1024)} KB`),
    h("p", { class: "hint" }, t("outbox_explained")),
    h("button", { type: "button", class: "button primary big", "data-testid": "export-button", onclick: async () => {
      exportMessage.textContent = t("exporting");
      try {
        const count = await exportUnsynced();
        exportMessage.textContent = `${t("exported")} ${count}`;
      } catch (error) {
        exportMessage.textContent = `${t("export_failed")} ${error?.message || ""}`;
      }
    } }, t("export_unsynced")), exportMessage,
    h("h2", {}, t("storage")),
    h("p", { "data-testid": "storage-persisted" }, status.persisted ? t("storage_persistent") : t("storage_not_persistent")),
    h("p", { class: "meta", "data-testid": "storage-estimate" }, status.text),
    h("ul", { class: "list" }, outbox.map((item) => h("li", {}, `${item.key.split(":")[0].slice(0, 8)}… #${item.key.split(":")[1]} · ${showTime(item.queued_at)}`)))));
}
