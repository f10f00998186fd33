// Body-camera footage of the officer's own visits, as the server last said while online (GET
// /api/v1/footage/visits): linked (n segments, s seconds), still waiting for footage, or none
// expected. Kept in the meta store under "footage_visits" so that the visits show their state with
// no signal; fetched after each sync and when a screen listing visits opens.

import { h } from "./dom.js";
import { me } from "./session.js";
import { tc } from "./camerastrings.js";
import { userCache } from "./usercache.js";

export const META_KEY = "footage_visits";
// A screen opened again within 15 s shows the cache (a sync always asks).
const cache = userCache({ key: META_KEY, url: "/api/v1/footage/visits", field: "visits", everyMs: 15_000 });

// `request` is http.js's request. True when a new, different answer was stored; screens showing
// visits then paint their badges again (main.js listens), nothing else is redrawn.
export async function refreshFootageVisits(request, options = {}) {
  const { changed } = await cache.refresh(request, options);
  if (changed) window.dispatchEvent(new CustomEvent("fieldapp:footage"));
  return changed;
}

// The cached visits of this officer by activity id (empty if they were fetched for someone else).
export async function footageByActivity(user = null) {
  const visits = await cache.read(user || (await me()));
  return new Map(visits.filter((v) => v?.activity_id).map((v) => [v.activity_id, v]));
}

// 12:05, or 1:02:05 past an hour.
export function duration(seconds) {
  const total = Math.max(0, Math.round(Number(seconds) || 0));
  const pad = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  return hours ? `${hours}:${pad(minutes)}:${pad(total % 60)}` : `${pad(minutes)}:${pad(total % 60)}`;
}

// The badge of one visit: nothing when no footage is expected (or the server does not know it yet).
export function footageBadge(visit) {
  if (visit?.state === "linked") {
    return h("span", { class: "tag ok", "data-testid": "footage-badge", dataset: { state: "linked", segments: String(visit.segments) } },
      tc("footage_linked", { n: visit.segments, duration: duration(visit.seconds) }));
  }
  if (visit?.state === "waiting") {
    return h("span", { class: "tag warn", "data-testid": "footage-badge", dataset: { state: "waiting" } }, tc("footage_waiting"));
  }
  return null;
}

// Redraw, in place, the badges of a screen already shown (marked data-footage-for="<activity id>").
export async function paintFootageBadges(container, user = null) {
  const byActivity = await footageByActivity(user);
  for (const slot of container.querySelectorAll("[data-footage-for]")) {
    slot.replaceChildren(...[footageBadge(byActivity.get(slot.dataset.footageFor))].filter(Boolean));
  }
}

// On a screen listing visits: the cached state at once (the caller drew it), then the server's
// newer word when online, painted in place by the "fieldapp:footage" listener (main.js).
export function refreshBadgesWhenOnline(request) {
  if (navigator.onLine === false) return;
  refreshFootageVisits(request).catch(() => { /* offline or signed out: the cached state stays */ });
}
