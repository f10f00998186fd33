// The case page's footage bars: a click (or Enter) on a segment opens the original — the server
// registers who opened which file and why before a byte is sent — then plays it in the page from
// the moment clicked. The link answers byte ranges, so seeking does not register again.
import { t } from "./i18n.js";

const OPEN_TIMEOUT_MS = 15_000;

function csrfToken() {
  return document.querySelector('input[name="csrf_token"]')?.value || "";
}

async function openSegment(segmentId, reason) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), OPEN_TIMEOUT_MS);
  try {
    const response = await fetch(`/footage/segments/${segmentId}/open`, {
      method: "POST", credentials: "same-origin", signal: controller.signal,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(reason ? { reason } : {}),
    });
    const body = await response.json().catch(() => ({}));
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

// Where in the segment the click fell, in seconds from its start.
function offsetOf(bar, event) {
  const seconds = Number(bar.dataset.seconds) || 0;
  if (!event || event.type !== "click" || !bar.getBoundingClientRect) return 0;
  const box = bar.getBoundingClientRect();
  const fraction = box.width > 0 ? (event.clientX - box.left) / box.width : 0;
  return Math.max(0, Math.min(seconds, fraction * seconds));
}

async function play(bar, event) {
  const figure = bar.closest("figure");
  const video = figure.querySelector("video");
  const status = figure.querySelector(".footage-status");
  const at = offsetOf(bar, event);
  status.textContent = t("footage_opening");
  try {
    let { status: code, body } = await openSegment(bar.dataset.segment);
    if (code === 400 && body.error === "reason_required") {
      const reason = window.prompt(body.message || t("footage_reason"));
      if (!reason) { status.textContent = ""; return; }
      ({ status: code, body } = await openSegment(bar.dataset.segment, reason));
    }
    if (code !== 200 || !body.url) {
      status.textContent = body.message || t("footage_open_failed");
      return;
    }
    figure.querySelectorAll("rect.seg.playing").forEach((r) => r.classList.remove("playing"));
    bar.classList.add("playing");
    video.hidden = false;
    video.src = `${body.url}#t=${at.toFixed(1)}`;
    video.dataset.segment = bar.dataset.segment;
    status.textContent = "";
    await video.play().catch(() => {}); // autoplay may be refused; the controls are there
  } catch {
    status.textContent = t("footage_open_failed");
  }
}

for (const bar of document.querySelectorAll('rect.seg[data-segment]')) {
  bar.addEventListener("click", (event) => play(bar, event));
  bar.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); play(bar, null); }
  });
}
