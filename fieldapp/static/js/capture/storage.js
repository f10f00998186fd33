// Ask the browser to keep our storage (not evict it under pressure) and report how full it is.
import { t } from "../i18n.js";

export async function requestPersistence() {
  if (!navigator.storage?.persist) return false;
  if (await navigator.storage.persisted()) return true;
  try {
    return await navigator.storage.persist();
  } catch {
    return false;
  }
}

export async function storageStatus() {
  const persisted = navigator.storage?.persisted ? await navigator.storage.persisted() : false;
  let text = t("storage_unknown");
  if (navigator.storage?.estimate) {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    text = `${t("storage_used")} ${(usage / 1048576).toFixed(1)} MB / ${(quota / 1048576).toFixed(0)} MB`;
  }
  return { persisted, text };
}
