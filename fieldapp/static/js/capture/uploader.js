// Bringing media to the server after their records: previews first (so a lead can review on a
// bad link), then the originals in chunks that resume where the server's byte count says.
//
// Every original is known by its hash. The server is asked which of ours it lacks; only those
// go. A cut chunk costs at most that chunk: the next attempt asks the server how many bytes it
// holds (any app host answers the same) and continues from there. Local bytes are released only
// when the server has confirmed both the original (hash verified) and the record.

import { get, getAll, write } from "./store.js";
import { NetworkFailure, send } from "./http.js";
import { reviewPreview } from "./media.js";
import { awaitedByRecord, forgetServerBytes, noteServerBytes, originalsArrived } from "./status.js";

const PREVIEW_BATCH_BYTES = 1_500_000;
const MIN_CHUNK_BYTES = 64 * 1024;
const CHUNK_CUTS_IN_A_ROW = 3;  // then the attempt fails and sync backs off
// A chunk is given time for a slow link (1 MiB at 128 kbit/s is 66 s); one that still times out
// is halved for the next try, so a very poor link makes smaller steps instead of none.
const CHUNK_TIMEOUT_MS = 120_000;
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif"]);

class UploadRefused extends Error {
  constructor(code, message) { super(message || code); this.code = code; }
}

// Only these answers are about the file itself and final: content that is not media, or a file
// above the server's limit. Anything else — a refused CSRF token, a chunk larger than a lowered
// limit, a hash mismatch from a corrupted transfer — fails this attempt like a network error and
// the file is sent again; evidence is never set aside for a reason that is not its content.
const REFUSALS_OF_THE_FILE = new Set(["html", "svg", "script", "unknown_type", "empty", "too_large"]);

// The server's final refusal of this file, or null.
function refusal(answer) {
  const code = answer.data?.error;
  if (!REFUSALS_OF_THE_FILE.has(code)) return null;
  return new UploadRefused(code, answer.data.message_zh || answer.data.message);
}

async function updateMedia(hash, changes) {
  await write(["media"], ({ media }) => {
    const read = media.get(hash);
    read.onsuccess = () => { if (read.result) media.put({ ...read.result, ...changes }); };
  });
}

// A type the server did not know may be accepted after an upgrade (GIF was refused until it was
// stored as evidence): such a refusal is tried again a day later. Any other refusal is final.
const RETRY_UNKNOWN_TYPE_MS = 24 * 3600 * 1000;
function stillRefused(m) {
  if (!m.refused) return false;
  if (m.refused.code !== "unknown_type") return true;
  return Date.now() - (m.refused.at ? Date.parse(m.refused.at) : 0) < RETRY_UNKNOWN_TYPE_MS;
}

// Media whose records the server has seen (or is being sent), with bytes not yet confirmed.
async function candidates() {
  const records = new Map((await getAll("records")).map((r) => [r.id, r]));
  return (await getAll("media")).filter((m) => {
    const owner = records.get(m.owner_id);
    return m.blob && !m.confirmed_at && !stillRefused(m) && awaitedByRecord(m, records)
      && (owner.status === "syncing" || owner.status === "synced");
  });
}

async function askMissing(items) {
  const missing = new Set();
  const previews = new Set();
  for (let i = 0; i < items.length; i += 500) {
    const slice = items.slice(i, i + 500).map((m) => ({ alg: m.alg, hash: m.hash }));
    const { status, data } = await send("POST", "/api/v1/media/missing", { json: { items: slice } });
    if (status !== 200 || !data) throw new Error(`media/missing: HTTP ${status}`);
    data.missing.forEach((m) => missing.add(m.hash));
    data.previews_missing.forEach((m) => previews.add(m.hash));
  }
  return { missing, previews };
}

async function confirm(hashes) {
  if (!hashes.length) return;
  const at = new Date().toISOString();
  for (const hash of hashes) await updateMedia(hash, { confirmed_at: at });
  await originalsArrived(hashes);
  await forgetServerBytes(hashes);
}

async function postPreviews(batch) {
  const form = new FormData();
  for (const { item, blob } of batch) form.append(`${item.alg}:${item.hash}`, blob, "preview.jpg");
  const { status, data } = await send("POST", "/api/v1/media/previews", { body: form, quickRetry: false });
  if (status !== 200 || !Array.isArray(data?.results)) throw new Error(`media/previews: HTTP ${status}`);
  for (const result of data.results) {
    if (result.status === "stored") await updateMedia(result.hash, { preview_sent: true });
  }
}

// Previews are made one by one (decoding a 12-MP photo takes the phone a few hundred ms) while the
// previous batch is on the wire, and the first batch leaves with the first preview, so the link is
// never idle waiting for the phone. Batches stay within PREVIEW_BATCH_BYTES.
async function sendPreviews(items) {
  let batch = [];
  let batchBytes = 0;
  let inFlight = Promise.resolve();
  let first = true;
  const flush = async () => {
    const sending = batch;
    batch = [];
    batchBytes = 0;
    await inFlight;
    inFlight = postPreviews(sending);
  };
  for (const item of items) {
    const blob = (await reviewPreview(item.blob)) || item.preview;
    if (!blob) continue;
    if (batch.length && batchBytes + blob.size > PREVIEW_BATCH_BYTES) await flush();
    batch.push({ item, blob });
    batchBytes += blob.size;
    if (first) {
      first = false;
      await flush();
    }
  }
  if (batch.length) await flush();
  await inFlight;
}

async function uploadOriginal(item, onBytes) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const begun = await send("POST", "/api/v1/media/uploads",
                             { json: { alg: item.alg, hash: item.hash, size: item.size, type: item.type } });
    if (begun.status === 200 && begun.data?.status === "stored") return;
    const refused = refusal(begun);
    if (refused) throw refused;
    if (begun.status !== 201) throw new Error(`media/uploads: HTTP ${begun.status}`);
    const id = begun.data.upload_id;
    let offset = begun.data.offset;
    let chunk = (await get("meta", "upload_chunk_bytes"))?.value || begun.data.chunk_bytes;
    await noteServerBytes(item.hash, offset);
    onBytes(offset);
    let cuts = 0;
    while (offset < item.size) {
      const end = Math.min(item.size, offset + chunk);
      let answer;
      try {
        answer = await send("PUT", `/api/v1/media/uploads/${id}?offset=${offset}`, {
          body: item.blob.slice(offset, end), headers: { "Content-Type": "application/octet-stream" },
          timeoutMs: CHUNK_TIMEOUT_MS, quickRetry: false });
        cuts = 0;
      } catch (error) {
        if (error?.timedOut) await shrinkChunk(chunk);
        // A chunk cut on the way: ask what the server kept of it (it stores what arrived) and go
        // on from there, rather than send the whole chunk again or drop the sync attempt.
        if (!(error instanceof NetworkFailure) || error.timedOut || (cuts += 1) > CHUNK_CUTS_IN_A_ROW) throw error;
        await new Promise((resolve) => { setTimeout(resolve, 300 * cuts); });
        const held = await send("GET", `/api/v1/media/uploads/${id}`);
        if (held.status === 200 && Number.isInteger(held.data?.offset)) {
          offset = held.data.offset;
          await noteServerBytes(item.hash, offset);
          onBytes(offset);
          continue;
        }
        throw error;
      }
      if (answer.status === 200) {
        offset = answer.data.offset;
        // A chunk size halved after timeouts grows back while chunks get through.
        if (chunk < begun.data.chunk_bytes) chunk = await growChunk(chunk, begun.data.chunk_bytes);
      }
      else if (answer.status === 409 && Number.isInteger(answer.data?.offset)) offset = answer.data.offset;
      else if (answer.status === 404) break; // the upload vanished (swept): begin again
      else if (refusal(answer)) throw refusal(answer);
      else if (answer.data?.error === "chunk_too_large") {
        chunk = await shrinkTo(Math.min(chunk / 2, answer.data.chunk_max_bytes || chunk / 2));
        continue;
      } else throw new Error(`chunk: HTTP ${answer.status}`);
      await noteServerBytes(item.hash, offset);
      onBytes(offset);
    }
    if (offset < item.size) continue;
    const done = await send("POST", `/api/v1/media/uploads/${id}/complete`, { timeoutMs: CHUNK_TIMEOUT_MS });
    if (done.status === 200) return;
    if (done.status === 409 || done.status === 404) continue; // incomplete or restarted: ask again
    if (refusal(done)) throw refusal(done);
    throw new Error(`complete: HTTP ${done.status}`);
  }
  throw new Error("upload did not converge");
}

async function growChunk(chunk, largest) {
  const larger = Math.min(largest, chunk * 2);
  await write(["meta"], ({ meta }) => { meta.put({ key: "upload_chunk_bytes", value: larger }); });
  return larger;
}

async function shrinkTo(bytes) {
  const value = Math.max(MIN_CHUNK_BYTES, Math.floor(bytes));
  await write(["meta"], ({ meta }) => { meta.put({ key: "upload_chunk_bytes", value }); });
  return value;
}

async function shrinkChunk(chunk) {
  const smaller = Math.max(MIN_CHUNK_BYTES, Math.floor(chunk / 2));
  await write(["meta"], ({ meta }) => { meta.put({ key: "upload_chunk_bytes", value: smaller }); });
}

// Release the bytes of confirmed originals whose records are 已同步: the server holds both.
async function release() {
  const records = new Map((await getAll("records")).map((r) => [r.id, r]));
  const releasable = (await getAll("media")).filter((m) => m.blob && m.confirmed_at
    && records.get(m.owner_id)?.status === "synced");
  const at = new Date().toISOString();
  for (const m of releasable) await updateMedia(m.hash, { blob: null, released_at: at });
}

// Upload what the server lacks. `progress` gets {mediaDone, mediaTotal, bytesDone, bytesTotal}.
export async function uploadMedia(progress, between = async () => {}) {
  const items = await candidates();
  if (items.length) {
    const { missing, previews } = await askMissing(items);
    await confirm(items.filter((m) => !missing.has(m.hash)).map((m) => m.hash));
    const needed = items.filter((m) => missing.has(m.hash)).sort((a, b) => a.size - b.size);
    await sendPreviews(needed.filter((m) => previews.has(m.hash) && !m.preview_sent && IMAGE_TYPES.has(m.type)));
    const bytesTotal = needed.reduce((sum, m) => sum + m.size, 0);
    let bytesBefore = 0;
    let mediaDone = 0;
    progress({ mediaDone, mediaTotal: needed.length, bytesDone: 0, bytesTotal });
    for (const item of needed) {
      await between();
      try {
        await uploadOriginal(item, (held) => progress({ mediaDone, mediaTotal: needed.length,
                                                        bytesDone: bytesBefore + held, bytesTotal }));
        await confirm([item.hash]);
      } catch (error) {
        if (!(error instanceof UploadRefused)) throw error;
        // Refused content stays on the phone, with the reason shown; it is never dropped.
        await updateMedia(item.hash, { refused: { code: error.code, message: error.message,
                                                  at: new Date().toISOString() } });
      }
      bytesBefore += item.size;
      mediaDone += 1;
      progress({ mediaDone, mediaTotal: needed.length, bytesDone: bytesBefore, bytesTotal });
    }
  }
  await release();
}
