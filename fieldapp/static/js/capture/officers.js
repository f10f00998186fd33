// The enrolled officers of the officer's own unit, fetched while online (GET /api/v1/officers) and
// kept in the meta store under "officers", so that who is present on site is chosen from a list
// even with no signal. An officer of another unit is typed in instead (certificate number, name).

import { getMeta, putMeta } from "./store.js";
import { me } from "./session.js";

export const META_KEY = "officers";
const FETCHED_AT_KEY = "officers_at";
const FETCHED_FOR_KEY = "officers_for"; // the user whose unit the list is of
// Fetched after each pull of cases (start, visible, every few minutes), but not twice in a minute.
const REFRESH_EVERY_MS = 60_000;

// `request` is http.js's request (the sync engine's), passed in so this module holds no network code.
export async function refreshOfficers(request, { force = false } = {}) {
  const user = await me();
  const [fetchedAt, fetchedFor] = await Promise.all([getMeta(FETCHED_AT_KEY), getMeta(FETCHED_FOR_KEY)]);
  const fresh = fetchedAt && Date.now() - Date.parse(fetchedAt) < REFRESH_EVERY_MS;
  if (!force && fresh && fetchedFor === (user?.id || null)) return false;
  const { status, data } = await request("GET", "/api/v1/officers");
  if (status !== 200 || !Array.isArray(data?.officers)) return false;
  await storeOfficers(data.officers, user);
  return true;
}

export async function storeOfficers(officers, user = null) {
  const who = user || (await me());
  await putMeta(META_KEY, officers);
  await putMeta(FETCHED_FOR_KEY, who?.id || null);
  await putMeta(FETCHED_AT_KEY, new Date().toISOString());
}

// The cached list (only if it was fetched for this user: never another unit's), with the signed-in
// officer in it even before the first fetch.
export async function enrolledOfficers(user = null) {
  const fetchedFor = await getMeta(FETCHED_FOR_KEY);
  const list = fetchedFor && fetchedFor === user?.id ? (await getMeta(META_KEY, [])).slice() : [];
  if (user?.id && !list.some((o) => o.id === user.id)) {
    list.push({ id: user.id, name: user.name, cert_no: user.cert_no, unit_name: user.unit_name || null });
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// Whether the unit's list was fetched for this user at least once.
export async function officersListed(user = null) {
  return Boolean(user?.id) && (await getMeta(FETCHED_FOR_KEY)) === user.id;
}
