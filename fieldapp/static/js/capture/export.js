// "Export unsynced records": every revision still in the outbox and every media file they
// reference, as one JSON file the admin can import on the server when a phone cannot sync.

import { StoreUpgradeFailed, openStore, openStoreAsItIs } from "./store.js";

// Reads go through a handle of their own: after a failed upgrade the store is still at the older
// release's version, and what that release wrote must be exportable as it is.
async function readableStore() {
  try {
    return await openStore();
  } catch (error) {
    if (error instanceof StoreUpgradeFailed) return openStoreAsItIs();
    throw error;
  }
}

function read(db, storeName, key) {
  return new Promise((resolve, reject) => {
    const request = key === undefined ? db.transaction(storeName).objectStore(storeName).getAll()
      : db.transaction(storeName).objectStore(storeName).get(key);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export async function buildExport() {
  const db = await readableStore();
  const get = (storeName, key) => read(db, storeName, key);
  const outbox = await read(db, "outbox");
  // Records the server did not take (有问题) left the outbox but are no less unsynced.
  const problems = (await read(db, "records")).filter((r) => r.status === "problem");
  const keys = new Set([...outbox.map((item) => item.key), ...problems.map((r) => `${r.id}:${r.revision}`)]);
  const revisions = [];
  const hashes = new Set();
  for (const key of keys) {
    const revision = await get("revisions", key);
    if (!revision) continue;
    revisions.push(revision);
    for (const m of revision.media) hashes.add(m.hash);
  }
  const media = [];
  for (const hash of hashes) {
    const row = await get("media", hash);
    if (row?.blob) {
      media.push({ alg: row.alg, hash: row.hash, size: row.size, type: row.type, data_base64: await blobToBase64(row.blob) });
    }
  }
  return { format: "fieldapp-unsynced-export", format_version: 1, exported_at: new Date().toISOString(), revisions, media };
}

export async function exportUnsynced() {
  const data = await buildExport();
  const blob = new Blob([JSON.stringify(data)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `fieldapp-unsynced-${data.exported_at.replace(/[:.]/g, "-")}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return data.revisions.length;
}
