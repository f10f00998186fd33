// Photos and clips: the original kept byte for byte, its SHA-256 computed here at capture, a small
// preview for display, and the capture time and place from EXIF where the camera wrote them.

import { readExif } from "./exif.js";

export const PREVIEW_MAX_PX = 320;
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif"]);

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function makePreview(blob) {
  try {
    // One decode, resized on the way (width only: the height follows the aspect ratio). A full
    // decode of a 12-MP photo just to learn its size would double the time to "已保存".
    const bitmap = await createImageBitmap(blob, { resizeWidth: PREVIEW_MAX_PX, resizeQuality: "medium" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    return await canvas.convertToBlob({ type: "image/jpeg", quality: 0.7 });
  } catch {
    return null; // an image the browser cannot decode (HEIC on Chromium): kept, shown without preview
  }
}

// Everything about one captured file, ready to store. `file` is kept as it is: never re-encoded.
export async function ingest(file) {
  const buffer = await file.arrayBuffer();
  const type = file.type || "application/octet-stream";
  const isImage = IMAGE_TYPES.has(type);
  const [hash, preview] = await Promise.all([sha256Hex(buffer), isImage ? makePreview(file) : null]);
  const exif = type === "image/jpeg" ? readExif(buffer) : null;
  return {
    alg: "sha-256",
    hash,
    size: file.size,
    type,
    blob: file,
    preview,
    exif,
    name: file.name || "",
    captured_at: new Date().toISOString(),
  };
}

// The preview sent ahead of the original, so a lead can review on a bad link: the longest side at
// most REVIEW_PREVIEW_MAX_PX, orientation applied. Made at sync time, not at capture, so that
// "已保存" stays fast; null when the browser cannot decode the photo (then the small preview goes).
export const REVIEW_PREVIEW_MAX_PX = 1280;

export async function reviewPreview(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    return null;
  }
  try {
    const scale = Math.min(1, REVIEW_PREVIEW_MAX_PX / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, width, height);
    return await canvas.convertToBlob({ type: "image/jpeg", quality: 0.75 });
  } finally {
    bitmap.close();
  }
}
