// A list the server gives the signed-in user (the unit's officers, its cameras, the user's footage
// state), fetched while online and kept in the meta store beside who it was fetched for and when:
// read with no signal, and never shown to another user signed in on the same phone later.

import { getMeta, putMeta } from "./store.js";
import { me } from "./session.js";

// `key`: the meta key; `url`: what to GET; `field`: the answer's list; `everyMs`: a fresh cache is
// not fetched again (unless forced).
export function userCache({ key, url, field, everyMs }) {
  const atKey = `${key}_at`;
  const forKey = `${key}_for`; // the user the list was fetched for

  async function store(items, user = null) {
    const who = user || (await me());
    await putMeta(key, items);
    await putMeta(forKey, who?.id || null);
    await putMeta(atKey, new Date().toISOString());
  }

  return {
    store,
    // `request` is http.js's request (the sync engine's), passed in so callers hold no network code.
    // Answers {stored, changed}: whether a new answer was stored, and whether it differs.
    async refresh(request, { force = false } = {}) {
      const user = await me();
      const [fetchedAt, fetchedFor] = await Promise.all([getMeta(atKey), getMeta(forKey)]);
      const fresh = fetchedAt && Date.now() - Date.parse(fetchedAt) < everyMs;
      if (!force && fresh && fetchedFor === (user?.id || null)) return { stored: false, changed: false };
      const { status, data } = await request("GET", url);
      if (status !== 200 || !Array.isArray(data?.[field])) return { stored: false, changed: false };
      const before = JSON.stringify(fetchedFor === (user?.id || null) ? await getMeta(key, []) : null);
      await store(data[field], user);
      return { stored: true, changed: JSON.stringify(data[field]) !== before };
    },
    // The cached list, only if it was fetched for this user; else empty.
    async read(user = null) {
      const fetchedFor = await getMeta(forKey);
      return user?.id && fetchedFor === user.id ? (await getMeta(key, [])).slice() : [];
    },
    async listed(user = null) {
      return Boolean(user?.id) && (await getMeta(forKey)) === user.id;
    },
    fetchedAt: () => getMeta(atKey),
  };
}
