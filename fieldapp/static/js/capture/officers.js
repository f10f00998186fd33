// The enrolled officers of the officer's own unit, fetched while online (GET /api/v1/officers) and
// kept in the meta store under "officers", so that who is present on site is chosen from a list
// even with no signal. An officer of another unit is typed in instead (certificate number, name).

import { userCache } from "./usercache.js";

export const META_KEY = "officers";
// Fetched after each pull of cases (start, visible, every few minutes), but not twice in a minute.
const cache = userCache({ key: META_KEY, url: "/api/v1/officers", field: "officers", everyMs: 60_000 });

export async function refreshOfficers(request, options = {}) {
  return (await cache.refresh(request, options)).stored;
}

export const storeOfficers = cache.store;

// The cached list (only if it was fetched for this user: never another unit's), with the signed-in
// officer in it even before the first fetch.
export async function enrolledOfficers(user = null) {
  const list = await cache.read(user);
  if (user?.id && !list.some((o) => o.id === user.id)) {
    list.push({ id: user.id, name: user.name, cert_no: user.cert_no, unit_name: user.unit_name || null });
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// Whether the unit's list was fetched for this user at least once.
export const officersListed = cache.listed;
