// The phone's device identity: an ECDSA P-256 key pair made once by WebCrypto and kept in
// IndexedDB, which signs every record revision over its canonical JSON (canonical.js). The private
// key is generated non-extractable, so no script, export or backup of the page can copy it off the
// phone; IndexedDB stores the CryptoKey object itself (structured clone), not its bytes. The public
// key stays exportable (WebCrypto always allows that) and goes to the server as SPKI, base64url.

import { canonicalize } from "./canonical.js";
import { getMeta, write } from "./store.js";

const META_KEY = "device";
const LOCK_NAME = "device-key";
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALGORITHM = { name: "ECDSA", hash: "SHA-256" };

let identityPromise = null;

// Base64url without padding of an ArrayBuffer, a typed array or a DataView.
export function b64url(bytes) {
  const view = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  let binary = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function subtle() {
  // crypto.subtle exists only in secure contexts (https, or http://localhost).
  if (!globalThis.crypto?.subtle) {
    throw new Error("WebCrypto is unavailable: the page is not in a secure context");
  }
  return crypto.subtle;
}

async function generate() {
  // extractable false: applies to the private key; a public key can always be exported.
  const pair = await subtle().generateKey(KEY_ALGORITHM, false, ["sign", "verify"]);
  const spki = await subtle().exportKey("spki", pair.publicKey);
  return {
    deviceId: crypto.randomUUID(),
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    spki: b64url(spki),
    createdAt: new Date().toISOString(),
  };
}

// Store candidate unless an identity is stored already, and resolve with whichever is stored. The
// read and the add share one read-write transaction, which IndexedDB runs one at a time per store,
// so two tabs can never both store a key, even where Web Locks are missing. (The row has the shape
// putMeta writes, so getMeta("device") reads it.)
function storeUnlessPresent(candidate) {
  return write(["meta"], ({ meta }) => {
    let stored = null;
    const read = meta.get(META_KEY);
    read.onsuccess = () => {
      if (read.result) {
        stored = read.result.value;
      } else {
        meta.add({ key: META_KEY, value: candidate });
        stored = candidate;
      }
    };
    return () => stored;
  });
}

async function loadOrCreate() {
  const existing = await getMeta(META_KEY);
  if (existing) return existing;
  // The lock keeps a second tab from generating a key only to throw it away.
  const create = async () => (await getMeta(META_KEY)) || storeUnlessPresent(await generate());
  if (navigator.locks?.request) return navigator.locks.request(LOCK_NAME, create);
  return create();
}

function asIdentity(stored) {
  return Object.freeze({
    deviceId: stored.deviceId,
    privateKey: stored.privateKey,
    publicKey: stored.publicKey,
    publicKeySpkiB64url: stored.spki,
  });
}

// { deviceId, privateKey, publicKey, publicKeySpkiB64url }: made and stored on the first call,
// read back afterwards. Concurrent first calls in this page share one promise; other tabs are
// kept out by the lock and the transaction above. A failure is not cached, so a later call retries.
export function deviceIdentity() {
  if (!identityPromise) {
    identityPromise = loadOrCreate().then(asIdentity, (error) => {
      identityPromise = null;
      throw error;
    });
  }
  return identityPromise;
}

// Sign value's canonical JSON with the device key: { canonical, signature } where signature is the
// base64url of the raw 64-byte r‖s that WebCrypto returns. Throws TypeError (before touching the
// key) for a value that has no canonical form, e.g. one holding a float.
export async function signCanonical(value) {
  const canonical = canonicalize(value);
  const { privateKey } = await deviceIdentity();
  const signature = await subtle().sign(SIGN_ALGORITHM, privateKey, new TextEncoder().encode(canonical));
  return { canonical, signature: b64url(signature) };
}
