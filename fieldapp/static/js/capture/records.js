// Records as chains of immutable revisions, shaped for signed sync: ids made here (UUIDs), each
// revision names its parent and the catalogue version it was made with, lists its media by hash,
// size and type, and holds no floating-point number (coordinates are integer micro-degrees).

import { getAll, get, write } from "./store.js";

export const STATUS = { UNSYNCED: "unsynced", SYNCING: "syncing", SYNCED: "synced", PROBLEM: "problem" };

let context = { author: null, catalogueVersion: null };

export function setContext({ author, catalogueVersion }) {
  context = { author, catalogueVersion };
}

export function newId() {
  return crypto.randomUUID();
}

export function nowIso() {
  return new Date().toISOString();
}

export function toMicroDegrees(value) {
  return Math.round(value * 1e6);
}

// Floats would not survive canonical JSON unchanged across platforms; refuse them at the door.
export function assertNoFloats(value, path = "payload") {
  if (typeof value === "number" && !Number.isInteger(value)) {
    throw new TypeError(`${path} is not an integer: ${value}`);
  }
  if (Array.isArray(value)) value.forEach((v, i) => assertNoFloats(v, `${path}[${i}]`));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) assertNoFloats(v, `${path}.${k}`);
  }
}

function mediaRef(m) {
  return { alg: m.alg, hash: m.hash, size: m.size, type: m.type };
}

// Save a new revision of a record (revision 1 creates it), its outbox entry and any new media, in
// one durable transaction. `media` lists every media item the revision references; `newMedia` the
// items whose bytes are stored now.
export async function saveRevision({ id, type, parentId = null, payload, media = [], newMedia = [],
                                     reason = null, withdrawnMedia = [] }) {
  assertNoFloats(payload);
  const recordId = id || newId();
  const deviceTime = nowIso();
  // The head is read inside the same transaction that writes the next revision: one round trip
  // to the disk instead of two, and no other tab can slip a revision in between.
  return write(["records", "revisions", "outbox", "media"], (stores) => {
    let record = null;
    const read = stores.records.get(recordId);
    read.onsuccess = () => {
      const head = read.result;
      const revisionNumber = head ? head.revision + 1 : 1;
      const revision = {
        key: `${recordId}:${revisionNumber}`,
        record_id: recordId,
        record_type: type,
        revision: revisionNumber,
        parent: head ? head.revision : null,
        catalogue_version: context.catalogueVersion,
        author: context.author,
        device_time: deviceTime,
        reason,
        payload,
        media: media.map(mediaRef),
        withdrawn_media: withdrawnMedia.map(mediaRef),
      };
      record = {
        id: recordId,
        type,
        parent_id: parentId ?? head?.parent_id ?? null,
        revision: revisionNumber,
        payload,
        media: revision.media,
        withdrawn: Boolean(payload.withdrawn),
        status: STATUS.UNSYNCED,
        created_at: head?.created_at || deviceTime,
        updated_at: deviceTime,
      };
      stores.revisions.add(revision); // add, not put: a revision is never overwritten
      stores.records.put(record);
      stores.outbox.put({ key: revision.key, record_id: recordId, queued_at: deviceTime,
                          bytes: revision.media.reduce((sum, m) => sum + m.size, 0) });
      for (const m of newMedia) stores.media.put({ ...m, owner_id: recordId });
    };
    return () => record;
  });
}

// Withdraw an item saved by mistake before it was synced: a revision with a reason, whose photos
// are listed as withdrawn so their bytes never need to be uploaded.
export async function withdraw(recordId, reason) {
  const head = await get("records", recordId);
  if (!head) throw new Error("no such record");
  if (head.status === STATUS.SYNCED) throw new Error("synced records are corrected by a new revision");
  return saveRevision({
    id: recordId, type: head.type,
    payload: { ...head.payload, withdrawn: true, withdrawn_reason: reason },
    media: [], withdrawnMedia: head.media, reason,
  });
}

export async function children(parentId, type = null) {
  const rows = await getAll("records", "by_parent", parentId);
  return rows.filter((r) => !type || r.type === type).sort((a, b) => a.created_at.localeCompare(b.created_at));
}

export async function recordsOfType(type) {
  return getAll("records", "by_type", type);
}

export async function revisionsOf(recordId) {
  const rows = await getAll("revisions", "by_record", recordId);
  return rows.sort((a, b) => a.revision - b.revision);
}
