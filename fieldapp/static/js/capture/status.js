// A record's sync status as the officer sees it, and the log of every change shown (for whoever
// audits what the officer was told). 已同步 (synced) is set only when the server holds the
// record's revision and every original it references.

import { getAll, write } from "./store.js";

export const statusLog = [];

export function emit(name, detail = {}) {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

function logged(record) {
  const entry = { at: new Date().toISOString(), record_id: record.id, revision: record.revision, status: record.status };
  statusLog.push(entry);
  emit("fieldapp:status", entry);
}

export async function setStatus(recordId, status, extra = {}) {
  let changed = null;
  await write(["records"], ({ records }) => {
    const read = records.get(recordId);
    read.onsuccess = () => {
      const record = read.result;
      if (!record) return;
      changed = { ...record, ...extra, status };
      records.put(changed);
    };
  });
  if (changed) logged(changed);
}

// The server now holds these originals: records waiting only for them become 已同步.
export async function originalsArrived(hashes) {
  const arrived = new Set(hashes);
  const waiting = (await getAll("records")).filter((r) => r.pending_media?.some((h) => arrived.has(h)));
  if (!waiting.length) return;
  const changed = [];
  await write(["records"], ({ records }) => {
    for (const stale of waiting) {
      const read = records.get(stale.id);
      read.onsuccess = () => {
        const record = read.result;
        if (!record?.pending_media) return;
        const pending = record.pending_media.filter((h) => !arrived.has(h));
        const status = pending.length === 0 && record.status === "syncing" ? "synced" : record.status;
        const next = { ...record, pending_media: pending, status };
        records.put(next);
        if (status !== record.status) changed.push(next);
      };
    }
  });
  changed.forEach(logged);
}
