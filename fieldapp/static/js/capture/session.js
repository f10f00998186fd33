// Who is signed in on this phone, from the page the server rendered (cached for offline use), and
// the probe that asks the server whether that session still holds.

import { NetworkFailure, send, Unauthenticated } from "./http.js";

// The probe is a few hundred bytes: a link that cannot bring it in this long is no link for sync.
const PROBE_TIMEOUT_MS = 10_000;

let cached = null;

export async function me() {
  if (cached) return cached;
  const node = document.getElementById("capture-context");
  cached = node ? JSON.parse(node.textContent).user : null;
  return cached;
}

// The server's word on the session: its JSON when signed in. Unauthenticated only when a whole,
// parsed answer says `authenticated: false` (or a 401 in the server's own words, see http.js);
// an empty or partial body, an error page or a timeout is a NetworkFailure, to be retried —
// asking the officer for a passkey ceremony because a link dropped a body is never right.
export async function probeSession() {
  const { status, data } = await send("GET", "/api/v1/session", { timeoutMs: PROBE_TIMEOUT_MS });
  if (status === 200 && data?.authenticated === true && data.csrf_token && data.user?.id) return data;
  if (status === 200 && data?.authenticated === false) throw new Unauthenticated();
  throw new NetworkFailure(`session probe: HTTP ${status}`);
}
