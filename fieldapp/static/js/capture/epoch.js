// The server's epoch: which history its database continues. A restore to an earlier point starts a
// new one, and revisions the server had acknowledged — shown here as 已同步, and never to be sent
// again — may be gone from it. Every push, pull and session answer names the epoch; when it is not
// the one this phone last saw, the phone offers again, in one transaction, what it still holds:
//
// - every revision the server acknowledged within the resend window (the session says how many
//   days; 30 until it has) goes back into the outbox at its original place in the order, and its
//   record shows 未同步 again — also revisions an older release synced without noting when;
// - originals still on the phone are no longer taken as confirmed, so the uploader asks the server
//   again which it lacks and sends those;
// - the pull starts over from cursor 0, so the phone resyncs what the restored server holds;
// - the device is registered again (a device registered after the backup is unknown to it);
// - meta `reoffer` records what was offered and what could not be: acknowledged revisions older
//   than the window, and originals already released from the phone (the server may lack them).
//   The heartbeat reports it to the server; the status line tells the officer.
//
// The server answers the revisions again as created or duplicate: it stores each (record id,
// revision, content) once, whatever is offered twice.

import { getMeta, write } from "./store.js";
import { emit, logged } from "./status.js";

export const DEFAULT_RESEND_WINDOW_DAYS = 30;
const INSTALL_EPOCH = "00000000-0000-0000-0000-000000000000";
// The backup's time and the acknowledgement times are both the server's clock (status.js notes the
// push answer's server_time; an older release noted the phone's): an hour's margin all the same.
const CLOCK_MARGIN_MS = 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const MAX_LOST_REPORTED = 500; // the server keeps at most this many hashes of one report
const SHA256_HEX = /^[0-9a-f]{64}$/;

function windowDaysOf(value) {
  return Number.isInteger(value) && value >= 0 ? value : null;
}

// Run done(results) once every request has succeeded (requests of one transaction).
function whenAll(requests, done) {
  const results = new Array(requests.length);
  let left = requests.length;
  requests.forEach((request, i) => {
    request.onsuccess = () => {
      results[i] = request.result;
      left -= 1;
      if (left === 0) done(results);
    };
  });
}

function outboxRow(revision) {
  // As saveRevision writes it: queued at the revision's own time, so that a record goes before its
  // children and revision 1 before revision 2, as when they were made.
  return { key: revision.key, record_id: revision.record_id, revision: revision.revision,
           queued_at: revision.device_time, bytes: (revision.media || []).reduce((sum, m) => sum + (m.size || 0), 0) };
}

// What to offer again, from the rows read in the transaction. When the server says when the backup
// it was restored from was taken (``since``), everything acknowledged after it (less a margin for the
// clocks) is offered, however long ago — the phone still holds its revisions — and what was
// acknowledged before it is in the backup, so neither offered nor counted as lost; only originals
// released after it count as lost. Otherwise the resend window decides, and what was acknowledged
// before the window is counted as possibly lost.
export function plan({ revisions, records, outboxKeys, media, windowDays, now, since = null }) {
  const byId = new Map(records.map((r) => [r.id, r]));
  const queued = new Set(outboxKeys);
  const from = since === null ? null : since - CLOCK_MARGIN_MS;
  const cutoff = from ?? now - windowDays * DAY_MS;
  const offer = [];
  let beyondWindow = 0;
  for (const revision of revisions) {
    const record = byId.get(revision.record_id);
    if (!record || queued.has(revision.key)) continue;
    if (revision.acked_at) {
      const acked = Date.parse(revision.acked_at);
      if (!Number.isFinite(acked) || acked >= cutoff) offer.push(revision); // unreadable: offer, to be sure
      else if (from === null) beyondWindow += 1;
    } else if (record.status === "synced") {
      offer.push(revision); // synced by a release that did not note when: offer it, to be sure
    }
  }
  offer.sort((a, b) => String(a.device_time).localeCompare(String(b.device_time)) || a.revision - b.revision);
  const releasedAfter = (m) => from === null || !m.released_at || Date.parse(m.released_at) >= from;
  const released = media.filter((m) => !m.blob && SHA256_HEX.test(m.hash || "") && releasedAfter(m))
    .sort((a, b) => String(b.released_at || "").localeCompare(String(a.released_at || "")));
  return {
    offer,
    records: [...new Set(offer.map((r) => r.record_id))].map((id) => byId.get(id)),
    unconfirm: media.filter((m) => m.blob && m.confirmed_at),
    beyondWindow,
    lost: released.map((m) => m.hash),
  };
}

// The session, a push or a pull answered: note its epoch (and the session's resend window). On a
// change, offer again; resolves to the re-offer report then, else to null.
export async function noteServerAnswer(answer) {
  const epoch = answer?.server_epoch?.id;
  const windowDays = windowDaysOf(answer?.resend_window_days);
  if (typeof epoch !== "string" || !epoch) return null;
  const [held, heldWindow] = await Promise.all([getMeta("server_epoch"), getMeta("resend_window_days")]);
  if (held === epoch && (windowDays === null || windowDays === heldWindow)) return null;
  // Read again inside the transaction: of two answers noted at once, only one offers again.
  const changed = [];
  const report = await write(["meta", "revisions", "records", "outbox", "media"], (stores) => {
    let outcome = null;
    whenAll([stores.meta.get("server_epoch"), stores.meta.get("resend_window_days")], ([heldRow, windowRow]) => {
      if (windowDays !== null && windowRow?.value !== windowDays) {
        stores.meta.put({ key: "resend_window_days", value: windowDays });
      }
      if (heldRow?.value === epoch) return;
      stores.meta.put({ key: "server_epoch", value: epoch });
      // First contact with a server never restored: nothing was lost. With a restored one (an older
      // release ran until now, or the store's meta was cleared) offering again is safe: the server
      // keeps each revision once.
      if ((!heldRow || typeof heldRow.value !== "string") && epoch === INSTALL_EPOCH) return;
      const days = windowDays ?? windowDaysOf(windowRow?.value) ?? DEFAULT_RESEND_WINDOW_DAYS;
      whenAll([stores.revisions.getAll(), stores.records.getAll(), stores.outbox.getAllKeys(), stores.media.getAll()],
        ([revisions, records, outboxKeys, media]) => {
          const at = new Date();
          const taken = Date.parse(answer.server_epoch?.restored_from?.taken_at || "");
          const todo = plan({ revisions, records, outboxKeys, media, windowDays: days, now: at.getTime(),
                              since: Number.isFinite(taken) ? taken : null });
          for (const revision of todo.offer) stores.outbox.put(outboxRow(revision));
          for (const record of todo.records) {
            if (record.status === "problem" || record.status === "unsynced") continue;
            const next = { ...record, status: "unsynced" };
            stores.records.put(next);
            changed.push(next);
          }
          for (const m of todo.unconfirm) stores.media.put({ ...m, confirmed_at: null, preview_sent: false });
          stores.meta.put({ key: "pull_cursor", value: "0" });
          stores.meta.put({ key: "device_registered_for", value: null });
          // Bytes of unfinished uploads the old server held: the restored one says again.
          stores.meta.delete("upload_server_bytes");
          outcome = {
            epoch, at: at.toISOString(), revisions: todo.offer.length, records: todo.records.length,
            beyond_window: todo.beyondWindow, lost_originals: todo.lost.slice(0, MAX_LOST_REPORTED),
            lost_originals_total: todo.lost.length,
            restored_from: answer.server_epoch.restored_from || null,
          };
          stores.meta.put({ key: "reoffer", value: outcome });
        });
    });
    return () => outcome;
  });
  changed.forEach(logged);
  if (report) emit("fieldapp:reoffer", report);
  return report;
}

// What the heartbeat says of the last re-offer (the shape the server checks), or null.
export async function reofferReport() {
  const report = await getMeta("reoffer");
  if (!report) return null;
  const { epoch, at, revisions, records, beyond_window: beyondWindow, lost_originals: lost,
          lost_originals_total: lostTotal } = report;
  return { epoch, at, revisions, records, beyond_window: beyondWindow, lost_originals: lost,
           lost_originals_total: lostTotal };
}
