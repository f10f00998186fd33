// fieldapp service worker. The server prepends SHELL_VERSION and PRECACHE_URLS (see ops/pwa.py).
//
// Records never live here: they are in IndexedDB. This worker only keeps the app shell (static
// files, cached at install) and the pages the user has opened (network first, cache when offline),
// so that a signed-in officer can reopen the app with no signal at all.

const SHELL_CACHE = `shell-${SHELL_VERSION}`;
const PAGES_CACHE = "pages-v1";
const NAVIGATION_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(PRECACHE_URLS)));
  // No skipWaiting() here: an update waits until the page says no capture is in progress.
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith("shell-") && n !== SHELL_CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const type = event.data?.type;
  if (type === "SKIP_WAITING") self.skipWaiting();
  else if (type === "FORGET_PAGES") event.waitUntil(caches.delete(PAGES_CACHE));
  else if (type === "CACHE_PAGES") event.waitUntil(cachePages(event.data.urls || []));
  // A page that loaded while this worker was activating is not controlled; it asks to be claimed.
  else if (type === "CLAIM") event.waitUntil(self.clients.claim());
});

async function cachePages(urls) {
  const cache = await caches.open(PAGES_CACHE);
  await Promise.all(urls.map(async (url) => {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      await keepPage(cache, url, response);
    } catch { /* offline: nothing to keep */ }
  }));
}

async function keepPage(cache, url, response) {
  // Redirects (to sign-in) and errors are not the page; a redirected response also cannot be
  // replayed to a navigation.
  if (response.ok && !response.redirected && response.type === "basic") {
    await cache.put(url, response.clone());
  }
}

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

async function handleNavigation(request) {
  const cache = await caches.open(PAGES_CACHE);
  const url = new URL(request.url);
  try {
    const response = await withTimeout(fetch(request), NAVIGATION_TIMEOUT_MS);
    await keepPage(cache, url.pathname, response);
    return response;
  } catch {
    const cached = (await cache.match(url.pathname)) || (await cache.match("/"));
    if (cached) return cached;
    return new Response(
      "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
      "<title>离线</title><p>当前无网络，且此页面尚未保存到本机。请联网后再打开。</p>" +
      "<p>No network, and this page was not saved on this phone yet.</p>",
      { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } },
    );
  }
}

async function handleShellAsset(request) {
  const cached = await caches.match(request, { ignoreSearch: true });
  return cached || fetch(request);
}

// Background Sync (where the browser has it): wake the open app to push its outbox. The outbox
// lives in IndexedDB and the engine in the page, so the worker only passes the word on.
self.addEventListener("sync", (event) => {
  if (event.tag !== "fieldapp-outbox") return;
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((clients) => {
    for (const client of clients) client.postMessage({ type: "SYNC" });
  }));
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(handleNavigation(request));
  } else if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(handleShellAsset(request));
  }
  // The API is never cached: the phone's sync engine must see the network as it is.
});
