// Requests to our server from the sync engine, and what the latest of them said about the link.
//
// On a flaky link a request can fail in many ways: refused, never answered (a dead kept-alive
// connection), or answered with a status and headers and then cut (an empty or partial body). All
// of them are the same thing to the app — a network failure, retried later — so every request has
// a timeout, and the body is read whole *inside* it. Only an answer that arrived whole and parses
// can say anything, "signed out" included.

export class Unauthenticated extends Error {}

// No whole answer: refused, timed out, or cut. `timedOut` tells a slow link from a dead one.
export class NetworkFailure extends Error {
  constructor(message, { timedOut = false } = {}) {
    super(message);
    this.name = "NetworkFailure";
    this.timedOut = timedOut;
  }
}

export const REQUEST_TIMEOUT_MS = 30_000;
// The status line says 离线 only when requests fail and none has succeeded for this long: one cut
// answer on a link that works most of the time is not "offline".
export const OFFLINE_AFTER_MS = 10_000;

const csrf = { token: null };

export function setCsrfToken(token) { csrf.token = token; }

// When the latest whole answer and the latest failure came (Date.now() values; 0: none yet).
export const link = { lastSuccessAt: 0, lastFailureAt: 0 };

function note(ok) {
  const at = Date.now();
  if (ok) link.lastSuccessAt = at;
  else link.lastFailureAt = at;
  window.dispatchEvent(new CustomEvent("fieldapp:link", { detail: { ok, at } }));
}

// The browser saying it has no network at all counts as a failure, never as more than one.
export function noteBrowserOffline() { note(false); }

export function linkDown(now = Date.now()) {
  return link.lastFailureAt > link.lastSuccessAt && now - link.lastSuccessAt >= OFFLINE_AFTER_MS;
}

// When linkDown() will turn true if nothing succeeds meanwhile (null: it is already, or never will).
export function linkDownAt() {
  if (link.lastFailureAt <= link.lastSuccessAt) return null;
  const at = link.lastSuccessAt + OFFLINE_AFTER_MS;
  return at > Date.now() ? at : null;
}

function isJson(response) {
  return /\bjson\b/i.test(response.headers.get("Content-Type") || "");
}

// A request that failed fast (refused, or cut after its headers or mid-body) is sent again after a
// short pause: every request of the sync protocol is idempotent (the server answers a repeated push
// as a duplicate, a repeated chunk with its offset), and on a flaky link the next try usually gets
// through, where failing the whole sync attempt would start it over from the session probe. A
// request that timed out is not repeated here: the link is too slow or dead, and the caller decides
// (a chunk is made smaller; the attempt backs off). Requests carrying media bytes opt out
// (`quickRetry: false`): sending a megabyte blindly again costs the bytes a cut already cost,
// where the uploader asks the server what it holds and resumes from there.
const QUICK_RETRY_PAUSES_MS = [300, 1_000];

export async function send(method, url, options = {}) {
  const retries = options.quickRetry === false ? 0 : QUICK_RETRY_PAUSES_MS.length;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await sendOnce(method, url, options);
    } catch (error) {
      const again = error instanceof NetworkFailure && !error.timedOut && attempt < retries
        && navigator.onLine !== false;
      if (!again) throw error;
      await new Promise((resolve) => { setTimeout(resolve, QUICK_RETRY_PAUSES_MS[attempt]); });
    }
  }
}

async function sendOnce(method, url, { json = null, body = null, headers = {}, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const unsafe = method !== "GET" && method !== "HEAD";
  let response;
  let text;
  try {
    response = await fetch(url, {
      method, credentials: "same-origin", cache: "no-store", signal: controller.signal,
      headers: { ...(json ? { "Content-Type": "application/json" } : {}),
                 ...(unsafe ? { "X-CSRFToken": csrf.token || "" } : {}), ...headers },
      body: json ? JSON.stringify(json) : body ?? undefined,
    });
    text = await response.text(); // rejects when the body is cut short of its Content-Length
  } catch (error) {
    note(false);
    const timedOut = error?.name === "AbortError";
    throw new NetworkFailure(`${method} ${url}: ${timedOut ? "timed out" : error?.message || error}`, { timedOut });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (isJson(response)) {
    try {
      data = JSON.parse(text);
    } catch {
      // A JSON answer that does not parse was cut on the way (a body closed early without a length).
      note(false);
      throw new NetworkFailure(`${method} ${url}: HTTP ${response.status} with a body that does not parse`);
    }
  }
  // A gateway's 502/503/504 while the app restarts says the server is not reachable either.
  note(response.status < 500);
  // Signed out only when our server says so in words: a 401 page from anything else between here
  // and the server is not believed.
  if (response.status === 401 && data?.error) throw new Unauthenticated();
  return { status: response.status, data };
}

// The JSON requests of record sync.
export function request(method, url, json = null, options = {}) {
  return send(method, url, { json, ...options });
}
