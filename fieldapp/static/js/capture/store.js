// The phone's durable store: IndexedDB only (never the Cache API) for records, revisions, the
// outbox, media blobs and cached server data. A save resolves only after its transaction has
// completed with strict durability, so "已保存" on screen means it is on disk.

const DB_NAME = "fieldapp";

// The store is a published format: a phone may hold a week of unsynced work written by an older
// release when a new one arrives. Its shape changes only by numbered steps, each turning the shape
// before it into the next — never by recreating stores — and every step ships with a test on a
// store filled by the release that wrote the previous shape (tests/e2e/test_store_migrations.py).
// A step that throws aborts the whole upgrade: IndexedDB rolls it back and the data stays as it
// was, at its old version, where export can still read it.
export const MIGRATIONS = [
  // 1 (release 1.0.0): the first shape.
  function createFirstShape(db) {
    // Current head of every record (one row per record id).
    const records = db.createObjectStore("records", { keyPath: "id" });
    records.createIndex("by_type", "type");
    records.createIndex("by_parent", "parent_id");
    // Immutable revisions, keyed "<record id>:<revision>".
    const revisions = db.createObjectStore("revisions", { keyPath: "key" });
    revisions.createIndex("by_record", "record_id");
    // Revisions not yet acknowledged by the server, in the order they were made.
    db.createObjectStore("outbox", { keyPath: "key" });
    // Media by content hash: the original bytes, the phone's preview, what EXIF said.
    const media = db.createObjectStore("media", { keyPath: "hash" });
    media.createIndex("by_owner", "owner_id");
    // Cached server data (catalogue, cases, session) and device settings.
    db.createObjectStore("meta", { keyPath: "key" });
  },
];
export const DB_VERSION = MIGRATIONS.length;

// The upgrade of the store to this release's shape failed; the old data is untouched.
export class StoreUpgradeFailed extends Error {
  constructor(fromVersion, cause) {
    super(`store upgrade from version ${fromVersion} failed: ${cause?.message || cause}`);
    this.name = "StoreUpgradeFailed";
    this.fromVersion = fromVersion;
    this.cause = cause;
  }
}

let dbPromise = null;

function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// Open the store at this release's shape, running the migration steps it lacks. ``migrations``
// is for tests (a step that throws); the app always uses MIGRATIONS.
export function openStore(migrations = MIGRATIONS) {
  if (dbPromise) return dbPromise;
  dbPromise = new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, migrations.length);
    let fromVersion = null;
    let failure = null;
    request.onupgradeneeded = (event) => {
      fromVersion = event.oldVersion;
      const db = request.result;
      for (let version = event.oldVersion; version < migrations.length; version += 1) {
        try {
          migrations[version](db, request.transaction);
        } catch (error) {
          failure = error;
          request.transaction.abort();  // all steps or none: the old shape and data stay
          return;
        }
      }
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema must not be blocked by us, and we must reopen after.
      db.onversionchange = () => { db.close(); dbPromise = null; };
      resolve(db);
    };
    request.onerror = () => {
      dbPromise = null;
      reject(fromVersion === null ? request.error : new StoreUpgradeFailed(fromVersion, failure || request.error));
    };
    request.onblocked = () => reject(new Error("database upgrade blocked by another tab"));
  });
  return dbPromise;
}

// The store as it is on disk, whatever its version, without upgrading it: after a failed upgrade
// the officer can still export what the older release wrote (export.js reads through this).
export async function openStoreAsItIs() {
  const db = await promisify(indexedDB.open(DB_NAME));
  db.onversionchange = () => db.close();
  return db;
}

// Run fn(stores) in one read-write transaction; resolve when it has *completed* (durable), reject
// with the transaction's error (QuotaExceededError on a full disk) when it aborts. Nothing of a
// failed save is kept, and nothing saved before is touched. fn may return a function, called after
// completion for the result, when the result is only known in a request callback.
export async function write(storeNames, fn) {
  const db = await openStore();
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(storeNames, "readwrite", { durability: "strict" });
    } catch (error) {
      reject(error);
      return;
    }
    const stores = Object.fromEntries(storeNames.map((n) => [n, tx.objectStore(n)]));
    let result;
    tx.oncomplete = () => resolve(typeof result === "function" ? result() : result);
    // A failed request (a revision key that exists already: add, never put) aborts the whole
    // transaction; onabort then reports the cause and nothing of the save is kept.
    tx.onabort = () => reject(tx.error || new DOMException("transaction aborted", "AbortError"));
    try {
      result = fn(stores);
    } catch (error) {
      tx.abort();
      reject(error);
    }
  });
}

export async function get(storeName, key) {
  const db = await openStore();
  return promisify(db.transaction(storeName).objectStore(storeName).get(key));
}

export async function getAll(storeName, indexName = null, query = undefined) {
  const db = await openStore();
  const store = db.transaction(storeName).objectStore(storeName);
  return promisify((indexName ? store.index(indexName) : store).getAll(query));
}

export async function count(storeName) {
  const db = await openStore();
  return promisify(db.transaction(storeName).objectStore(storeName).count());
}

export async function getMeta(key, fallback = null) {
  const row = await get("meta", key);
  return row ? row.value : fallback;
}

export function putMeta(key, value) {
  return write(["meta"], ({ meta }) => { meta.put({ key, value }); });
}
