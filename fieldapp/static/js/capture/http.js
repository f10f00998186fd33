// Requests to our server from the sync engine. A timeout is a network failure like any other;
// a 401 means the session ended, which pauses sync until the officer signs in again.

export class Unauthenticated extends Error {}

export const REQUEST_TIMEOUT_MS = 30_000;
const csrf = { token: null };

export function setCsrfToken(token) { csrf.token = token; }

export async function send(method, url, { json = null, body = null, headers = {}, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const unsafe = method !== "GET" && method !== "HEAD";
  try {
    const response = await fetch(url, {
      method, credentials: "same-origin", cache: "no-store", signal: controller.signal,
      headers: { ...(json ? { "Content-Type": "application/json" } : {}),
                 ...(unsafe ? { "X-CSRFToken": csrf.token || "" } : {}), ...headers },
      body: json ? JSON.stringify(json) : body ?? undefined,
    });
    if (response.status === 401) throw new Unauthenticated();
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    return { status: response.status, data };
  } finally {
    clearTimeout(timer);
  }
}

// The JSON requests of record sync.
export function request(method, url, json = null) {
  return send(method, url, { json });
}
