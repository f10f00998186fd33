// Records as chains of immutable revisions, shaped for signed sync: ids made here (UUIDs), each
// revision names its parent and the catalogue version it was made with, lists its media by hash,
// size and type, and holds no floating-point number (coordinates are integer micro-degrees).

import { getAll, get, write } from "./store.js";
import { deviceIdentity, signCanonical } from "./device.js";

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

export class ChangedElsewhere extends Error {
  constructor() {
    super("this record was changed in another tab; reopen it");
    this.name = "ChangedElsewhere";
  }
}

// Save a new revision of a record (revision 1 creates it), its outbox entry and any new media, in
// one durable transaction. The revision is signed with this device's key before it is written, so
// what is stored is already the evidence: `head` is the record as the caller saw it (null for a new
// record); if another tab saved a revision in between, nothing is written (ChangedElsewhere).
// `media` lists every media item the revision references; `newMedia` the items stored now.
export async function saveRevision({ id, type, head = null, parentId = null, payload, media = [], newMedia = [],
                                     reason = null, withdrawnMedia = [], localRevision = undefined }) {
  assertNoFloats(payload);
  const recordId = id || newId();
  const expected = head ? head.revision : 0;
  // Normally the new revision builds on the local head; resolving a conflict builds on the
  // server's head instead while the local head is another revision.
  const expectedLocal = localRevision ?? expected;
  const identity = await deviceIdentity();
  const envelope = {
    record_id: recordId,
    record_type: type,
    revision: expected + 1,
    parent: expected || null,
    parent_id: parentId ?? head?.parent_id ?? null,
    catalogue_version: context.catalogueVersion,
    author: context.author,
    device_id: identity.deviceId,
    device_time: nowIso(),
    reason,
    payload,
    media: media.map(mediaRef),
    withdrawn_media: withdrawnMedia.map(mediaRef),
  };
  const { signature } = await signCanonical(envelope);
  const revision = { key: `${recordId}:${envelope.revision}`, ...envelope, signature };
  const record = {
    id: recordId,
    type,
    parent_id: envelope.parent_id,
    revision: envelope.revision,
    payload,
    media: envelope.media,
    withdrawn: Boolean(payload.withdrawn),
    status: STATUS.UNSYNCED,
    created_at: head?.created_at || envelope.device_time,
    updated_at: envelope.device_time,
  };
  return write(["records", "revisions", "outbox", "media"], (stores) => {
    const read = stores.records.get(recordId);
    read.onsuccess = () => {
      if ((read.result?.revision ?? 0) !== expectedLocal) {
        read.transaction.abort();
        return;
      }
      stores.revisions.add(revision); // add, not put: what was signed is never overwritten (only acked_at is noted on it later)
      stores.records.put(record);
      stores.outbox.put({ key: revision.key, record_id: recordId, revision: envelope.revision,
                          queued_at: envelope.device_time, bytes: envelope.media.reduce((sum, m) => sum + m.size, 0) });
      for (const m of newMedia) stores.media.put({ ...m, owner_id: recordId });
    };
    return () => record;
  }).catch((error) => {
    if (error?.name === "AbortError") throw new ChangedElsewhere();
    throw error;
  });
}

// Withdraw an item saved by mistake: a revision with a reason (the server refuses a withdrawal
// without one), whose photos are listed as withdrawn so their bytes never need to be uploaded. A
// synced item is withdrawn the same way: the revision builds on the head this phone holds, which is
// the one the server has.
export async function withdraw(recordId, reason) {
  const head = await get("records", recordId);
  if (!head) throw new Error("no such record");
  if (!reason || !String(reason).trim()) throw new Error("a withdrawal needs a reason");
  return saveRevision({
    id: recordId, type: head.type, head,
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
