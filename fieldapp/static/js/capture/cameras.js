// The body cameras (执法记录仪) of the officer's own unit, fetched while online (GET /api/v1/cameras)
// and kept in the meta store under "cameras", so that a camera is taken, returned and named on a
// visit from a list even with no signal. Like officers.js: the list is fetched after each pull, and
// read from the cache only if it was fetched for the signed-in officer.
//
// Taking a camera and returning it are a signed `camera_use` record on this phone (revision 1 with
// taken_at, revision 2 with returned_at), queued in the outbox like every other record; the
// server turns it into the unit's hand-out register.

import { get } from "./store.js";
import { me } from "./session.js";
import { nowIso, recordsOfType, saveRevision } from "./records.js";
import { userCache } from "./usercache.js";

export const META_KEY = "cameras";
export const USE_TYPE = "camera_use";
// Fetched after each pull of cases (start, visible, every few minutes), but not twice in a minute.
const cache = userCache({ key: META_KEY, url: "/api/v1/cameras", field: "cameras", everyMs: 60_000 });

export async function refreshCameras(request, options = {}) {
  return (await cache.refresh(request, options)).stored;
}

export const storeCameras = cache.store;

// The cached list (only if it was fetched for this user: never another unit's), by serial.
export async function unitCameras(user = null) {
  return (await cache.read(user)).filter((c) => c && typeof c.serial === "string")
    .sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
}

// Whether the unit's list was fetched for this user at least once, and when last.
export const camerasListed = cache.listed;
export const camerasFetchedAt = cache.fetchedAt;

// This officer's hand-outs logged on this phone (records keep no author; their first revision,
// which is what was signed, does), newest first. Withdrawn ones are left out.
export async function myHandouts(user = null) {
  if (!user?.id) return [];
  const rows = (await recordsOfType(USE_TYPE)).filter((r) => !r.withdrawn && r.payload?.camera_serial);
  const authors = await Promise.all(rows.map((r) => get("revisions", `${r.id}:1`).then((rev) => rev?.author ?? null)));
  return rows.filter((_, i) => authors[i] === user.id)
    .sort((a, b) => String(b.payload.taken_at).localeCompare(String(a.payload.taken_at)));
}

// The cameras this officer has taken and not returned (according to this phone), newest first.
export async function heldByMe(user = null) {
  return (await myHandouts(user)).filter((r) => !r.payload.returned_at);
}

export class AlreadyHeld extends Error {
  constructor(serial) {
    super(`camera ${serial} is already taken and not returned`);
    this.name = "AlreadyHeld";
    this.serial = serial;
  }
}

// Revision 1 of a new camera_use record. At most one unreturned hand-out per camera and officer.
export async function takeCamera(serial, user = null) {
  const clean = String(serial || "").trim();
  if (!clean || clean.length > 40) throw new Error("a camera serial has 1 to 40 characters");
  if ((await heldByMe(user || (await me()))).some((r) => r.payload.camera_serial === clean)) throw new AlreadyHeld(clean);
  return saveRevision({ type: USE_TYPE, payload: { camera_serial: clean, taken_at: nowIso(), returned_at: null } });
}

// The next revision of the hand-out, with the time of return. A phone clock set back since the
// camera was taken never makes a return before the taking (the server refuses that).
export async function returnCamera(record) {
  const head = await get("records", record.id);
  if (!head || head.payload.returned_at) return head;
  const now = nowIso();
  const takenAt = head.payload.taken_at;
  const returnedAt = Date.parse(now) < Date.parse(takenAt) ? takenAt : now;
  return saveRevision({ id: head.id, type: USE_TYPE, head, payload: { ...head.payload, returned_at: returnedAt } });
}
