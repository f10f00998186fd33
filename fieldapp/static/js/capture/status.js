// A record's sync status as the officer sees it, and the log of every change shown (for whoever
// audits what the officer was told). 已同步 (synced) is set only when the server holds the
// record's revision and every original it references.

import { getAll, getMeta, write } from "./store.js";

export const statusLog = [];

// How many bytes of each original the server already holds ({hash: bytes}), as its upload answers
// said. Kept so that bytes resumed after a cut count as done: what is left to upload never jumps
// back up because an attempt failed.
const SERVER_BYTES = "upload_server_bytes";

export async function noteServerBytes(hash, bytes) {
  await write(["meta"], ({ meta }) => {
    const read = meta.get(SERVER_BYTES);
    read.onsuccess = () => {
      const held = read.result?.value || {};
      if (held[hash] === bytes) return;
      meta.put({ key: SERVER_BYTES, value: { ...held, [hash]: bytes } });
    };
  });
}

// Called once these originals are confirmed (confirmed_at written first, so nothing is counted twice
// or not at all in between).
export async function forgetServerBytes(hashes) {
  await write(["meta"], ({ meta }) => {
    const read = meta.get(SERVER_BYTES);
    read.onsuccess = () => {
      const held = { ...(read.result?.value || {}) };
      if (!hashes.some((h) => h in held)) return;
      for (const hash of hashes) delete held[hash];
      meta.put({ key: SERVER_BYTES, value: held });
    };
  });
}

// An original the server must receive: its record exists and still references it (a photo removed
// from a step, or one of a withdrawn item, is never uploaded; a photo of a form left unsaved has
// no record).
export function awaitedByRecord(m, records) {
  const owner = records.get(m.owner_id);
  if (!owner || owner.withdrawn) return false;
  return !owner.media || owner.media.some((ref) => ref.hash === m.hash);
}

// What is still only on this phone, from IndexedDB alone: revisions the server has not answered,
// originals it has not confirmed (with the bytes it does not hold yet), and records it refused or
// found in conflict. The status line is derived from these and from the last request's outcome.
export async function pendingFacts() {
  const [outbox, media, records, held] = await Promise.all([
    getAll("outbox"), getAll("media"), getAll("records"), getMeta(SERVER_BYTES, {})]);
  const byId = new Map(records.map((r) => [r.id, r]));
  const originals = media.filter((m) => m.blob && !m.confirmed_at && awaitedByRecord(m, byId));
  const bytesLeft = originals.reduce((sum, m) => sum + Math.max(0, (m.size || 0) - (held[m.hash] || 0)), 0);
  return {
    records: outbox.length,
    originals: originals.length,
    bytesLeft,
    problems: records.filter((r) => r.status === "problem").length,
    oldest: [...outbox.map((i) => i.queued_at), ...originals.map((m) => m.captured_at)].filter(Boolean).sort()[0] || null,
  };
}

export function emit(name, detail = {}) {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

// Exported for epoch.js, whose re-offer changes statuses too.
export function logged(record) {
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
// marks the record 有问题 with what the server said. A revision the server holds (created or
// duplicate) is marked with when it said so (`acked_at`, on the revision row, outside what was
// signed): should the server later be restored to an earlier point, the phone offers again what
// was acknowledged within the resend window (epoch.js). The time is the server's own (the answer's
// server_time), as the backup's time it is compared with is: a phone clock hours off would
// otherwise place an acknowledgement before a backup it came after.
export async function applyPushResults(results, serverTime = null) {
  const changed = [];
  const answered = results.filter((r) => ["created", "duplicate", "conflict", "rejected"].includes(r.status));
  const ackedAt = Number.isFinite(Date.parse(serverTime || "")) ? new Date(serverTime).toISOString() : new Date().toISOString();
  await write(["records", "outbox", "revisions"], ({ records, outbox, revisions }) => {
    for (const result of answered) outbox.delete(`${result.record_id}:${result.revision}`);
    for (const result of answered) {
      if (result.status !== "created" && result.status !== "duplicate") continue;
      const read = revisions.get(`${result.record_id}:${result.revision}`);
      read.onsuccess = () => { if (read.result) revisions.put({ ...read.result, acked_at: ackedAt }); };
    }
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
