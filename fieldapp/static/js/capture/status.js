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

// Before a batch goes: its records show 同步中. One transaction for the whole batch.
export async function markSending(revisions) {
  const changed = [];
  await write(["records"], ({ records }) => {
    for (const revision of revisions) {
      const read = records.get(revision.record_id);
      read.onsuccess = () => {
        const head = read.result;
        if (!head || head.status === "syncing" || head.revision !== revision.revision) return;
        const next = { ...head, status: "syncing" };
        records.put(next);
        changed.push(next);
      };
    }
  });
  changed.forEach(logged);
}

// The server's answers to one pushed batch, applied in one transaction: answered revisions leave
// the outbox; a record whose latest revision the server holds, with nothing else queued, becomes
// 已同步 — or stays 同步中 while originals it references are missing; a conflict or a refusal
// marks the record 有问题 with what the server said.
export async function applyPushResults(results) {
  const changed = [];
  const answered = results.filter((r) => ["created", "duplicate", "conflict", "rejected"].includes(r.status));
  await write(["records", "outbox"], ({ records, outbox }) => {
    for (const result of answered) outbox.delete(`${result.record_id}:${result.revision}`);
    for (const result of answered) {
      const read = records.get(result.record_id);
      read.onsuccess = () => {
        const head = read.result;
        if (!head) return;
        const put = (next) => { records.put(next); changed.push(next); };
        if (result.status === "conflict" || result.status === "rejected") {
          put({ ...head, status: "problem", problem: result.status === "conflict"
            ? { kind: "conflict", error: result.error, message: result.message, server_head: result.head || null,
                local_revision: result.revision }
            : { kind: "rejected", error: result.error, message: result.message, local_revision: result.revision } });
          return;
        }
        if (head.revision !== result.revision) return;
        const queued = outbox.getAllKeys(IDBKeyRange.bound(`${result.record_id}:`, `${result.record_id}:\uffff`));
        queued.onsuccess = () => {
          if (queued.result.length) return;
          const pending = result.missing_media || [];
          put({ ...head, status: pending.length ? "syncing" : "synced", pending_media: pending, problem: null });
        };
      };
    }
  });
  changed.forEach(logged);
}
