// A signature drawn with a finger on a canvas, kept as a PNG (media, hashed like a photo). The pad
// takes the whole width of a phone's screen at 2:1 (app.css), room enough to sign a Chinese name.

import { h } from "./dom.js";
import { t } from "../i18n.js";
import { sha256Hex } from "./media.js";

export function signaturePad(labelText) {
  const canvas = h("canvas", { class: "signature", width: 720, height: 360, role: "img",
                               "aria-label": labelText });
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = 4;
  ctx.lineCap = "round";
  ctx.strokeStyle = "#111";
  let drawing = false;
  let strokes = 0;
  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * (canvas.width / rect.width),
            (event.clientY - rect.top) * (canvas.height / rect.height)];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    ctx.beginPath();
    ctx.moveTo(...point(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    ctx.lineTo(...point(event));
    ctx.stroke();
    strokes += 1;
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  const clear = () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    strokes = 0;
  };
  const clearButton = h("button", { type: "button", class: "button small", onclick: clear }, t("clear_signature"));
  return {
    element: h("div", { class: "signature-box" }, canvas, clearButton),
    isEmpty: () => strokes === 0,
    clear,
    toBlob: () => new Promise((resolve) => canvas.toBlob(resolve, "image/png")),
  };
}

// The drawn signature as a file of the record (hashed like a photo), or null for an empty pad.
export async function signatureMedia(pad, ownerId) {
  if (pad.isEmpty()) return null;
  const blob = await pad.toBlob();
  const hash = await sha256Hex(await blob.arrayBuffer());
  return { alg: "sha-256", hash, size: blob.size, type: "image/png", blob, preview: blob, exif: null,
           name: "signature.png", captured_at: new Date().toISOString(), owner_id: ownerId };
}
