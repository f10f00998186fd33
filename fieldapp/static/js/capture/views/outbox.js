// What is still only on this phone: the outbox, storage health, and the export that gets it off a
// broken phone by other means.

import { h, mount, showTime } from "../dom.js";
import { t } from "../../i18n.js";
import { get, getAll } from "../store.js";
import { currentCatalogue } from "../server.js";
import { allCases } from "./cases.js";
import { askToOpen, lookups, recordName } from "./saved.js";
import { backLink, screen } from "../ui.js";
import { exportUnsynced } from "../export.js";
import { storageStatus } from "../storage.js";

// What a waiting revision is, in words: "执法环节：现场检查 · 新建 · 12-04 13:11 · 1.2 MB" (or
// "修改（第 2 版）", "撤回"), linking to the screen that shows it (opened there, read-only).
async function outboxRow(entry, look, parties) {
  const record = await get("records", entry.record_id);
  const when = showTime(entry.queued_at);
  const size = entry.bytes ? ` · ${entry.bytes >= 1_048_576 ? `${(entry.bytes / 1_048_576).toFixed(1)} MB` : `${Math.max(1, Math.round(entry.bytes / 1024))} KB`}` : "";
  if (!record) return h("li", { "data-testid": "outbox-item" }, `${t("not_found")} · ${when}`);
  const change = record.withdrawn && entry.revision === record.revision ? t("withdraw")
    : entry.revision === 1 ? t("outbox_new") : t("outbox_change").replace("{n}", String(entry.revision));
  // A camera hand-out belongs to no case; a record with no parent is never looked up by a null key.
  const caseId = record.type === "case" || record.type === "camera_use" ? null
    : record.type === "activity" ? record.parent_id
      : record.parent_id ? (await get("records", record.parent_id))?.parent_id : record.payload?.case_id || null;
  const party = caseId ? parties.get(caseId) : null;
  const href = record.type === "case" ? `#/cases/${record.id}`
    : record.type === "activity" ? `#/activities/${record.id}` : record.type === "camera_use" ? "#/cameras"
      : record.parent_id ? `#/activities/${record.parent_id}` : `#/cases/${caseId}`;
  return h("li", { class: "row", "data-testid": "outbox-item" },
    h("a", { href, class: "row-link", onclick: () => { if (!["case", "activity", "camera_use"].includes(record.type)) askToOpen(record.id); } },
      h("strong", {}, recordName(record, look)),
      h("span", { class: "meta" }, [party, change, when].filter(Boolean).join(" · ") + size)));
}

export async function outboxView(root) {
  const [outbox, status, catalogue] = await Promise.all([getAll("outbox"), storageStatus(), currentCatalogue()]);
  const look = lookups(catalogue);
  const parties = new Map((await allCases()).map((c) => [c.id, c.party_name]));
  const rows = [];
  for (const entry of outbox.sort((a, b) => a.queued_at.localeCompare(b.queued_at))) rows.push(await outboxRow(entry, look, parties));
  const bytes = outbox.reduce((sum, item) => sum + (item.bytes || 0), 0);
  const exportMessage = h("p", { class: "message", role: "status" });
  mount(root, backLink("#/"), screen(t("unsynced_items"),
    h("p", { "data-testid": "outbox-count" }, `${t("unsynced_items")}: ${outbox.length} · ${Math.round(bytes / 1024)} KB`),
    h("p", { class: "hint" }, t("outbox_explained")),
    h("ul", { class: "list", "data-testid": "outbox-items" }, rows),
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
    h("p", { class: "meta", "data-testid": "storage-estimate" }, status.text)));
}
