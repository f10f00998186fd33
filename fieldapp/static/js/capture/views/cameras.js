// 执法记录仪: the unit's body cameras (cached while online, cameras.js), who carries each as the
// server's register said when last online, and which ones this officer has taken and not returned
// (from the camera_use records on this phone). 领用 and 归还 are signed records saved here and synced
// later, so both work with no signal.

import { h, mount, showTime } from "../dom.js";
import { t } from "../../i18n.js";
import { request } from "../http.js";
import { me } from "../session.js";
import { AlreadyHeld, camerasFetchedAt, camerasListed, myHandouts, refreshCameras, returnCamera, takeCamera,
         unitCameras } from "../cameras.js";
import { tc } from "../camerastrings.js";
import { badge, backLink, saveWithFeedback, screen, setCaptureInProgress } from "../ui.js";

const ROUTE = "#/cameras";
// What was just done stays said when a sync redraws the screen a moment later.
const NOTICE_KEPT_MS = 20_000;
let lastNotice = { text: null, at: 0 };
window.addEventListener("hashchange", () => { if (window.location.hash !== ROUTE) lastNotice = { text: null, at: 0 }; });

// What the officer sees of one camera: "mine" (taken here, not returned), "other" (the register
// says someone else carries it), "register_me" (the register says this officer does, with no
// record of it on this phone: taken on another phone or written at the desk) or "available".
function cameraState(camera, user, mine, handouts) {
  if (mine) return "mine";
  const carrier = camera.carried_by;
  if (!carrier) return "available";
  if (carrier.user_id !== user?.id) return "other";
  // Returned here after the register's hand-out began, not synced yet: the register is behind.
  const since = Date.parse(carrier.since);
  const returnedHere = handouts.some((r) => r.payload.camera_serial === camera.serial && r.payload.returned_at
                                        && !(Date.parse(r.payload.returned_at) < since));
  return returnedHere ? "available" : "register_me";
}

function stateLine(state, camera, mine) {
  const carrier = camera.carried_by;
  const attrs = { class: "meta", "data-testid": "camera-state", dataset: { state } };
  if (state === "mine") {
    return h("p", attrs, h("span", { class: "tag ok" }, tc("camera_mine", { time: showTime(mine.payload.taken_at) })), " ",
      badge(mine),
      mine.status === "problem" ? h("a", { href: `#/records/${mine.id}/problem`, class: "small-link" }, ` ${t("see_problem")}`) : null);
  }
  if (state === "other") {
    return h("p", attrs, h("span", { class: "tag warn" },
      tc("camera_carried_by", { name: carrier.name, cert: carrier.cert_no, time: showTime(carrier.since) })));
  }
  if (state === "register_me") return h("p", attrs, tc("camera_register_says_you", { time: showTime(carrier.since) }));
  return h("p", attrs, tc("camera_available"));
}

export async function camerasView(root, notice = null) {
  if (notice) lastNotice = { text: notice, at: Date.now() };
  else if (Date.now() - lastNotice.at < NOTICE_KEPT_MS) notice = lastNotice.text;
  const user = await me();
  const [cameras, listed, fetchedAt, handouts] = await Promise.all([
    unitCameras(user), camerasListed(user), camerasFetchedAt(), myHandouts(user)]);
  const held = handouts.filter((r) => !r.payload.returned_at);
  const heldBySerial = new Map();
  for (const r of held) if (!heldBySerial.has(r.payload.camera_serial)) heldBySerial.set(r.payload.camera_serial, r);
  // A camera held here that the cached list does not name (not fetched yet, or deregistered)
  // is still listed, so that it can be returned.
  const listedSerials = new Set(cameras.map((c) => c.serial));
  const unlisted = Array.from(heldBySerial.keys()).filter((s) => !listedSerials.has(s))
    .map((serial) => ({ serial, label: null, carried_by: null, unlisted: true }));

  const message = h("p", { class: "message", role: "status", "data-testid": "save-message",
                           dataset: notice ? { state: "saved" } : {} }, notice || "");
  const redraw = (text) => camerasView(root, text);

  const take = async (serial, button) => {
    button.disabled = true;
    let refused = false;
    const saved = await saveWithFeedback(message, async () => {
      try {
        return await takeCamera(serial, user);
      } catch (error) {
        if (error instanceof AlreadyHeld) refused = true;
        throw error;
      }
    });
    if (saved) return redraw(`${tc("camera_taken_msg", { serial })}${tc("camera_sync_note")}`);
    if (refused) message.textContent = tc("camera_already_held");
    button.disabled = false;
    return null;
  };

  const giveBack = async (record, button) => {
    button.disabled = true;
    const saved = await saveWithFeedback(message, () => returnCamera(record));
    if (saved) return redraw(`${tc("camera_returned_msg", { serial: record.payload.camera_serial })}${tc("camera_sync_note")}`);
    button.disabled = false;
    return null;
  };

  // Taking a camera the register gives to someone else: said plainly, and asked once more.
  const confirmTake = (camera, item, button) => {
    if (item.querySelector("[data-testid=take-confirm]")) return;
    setCaptureInProgress(true); // a sync finishing now must not redraw the question away
    const close = () => { panel.remove(); button.hidden = false; setCaptureInProgress(false); };
    const yes = h("button", { type: "button", class: "button primary", "data-testid": "confirm-take",
                              onclick: async () => { yes.disabled = true; await take(camera.serial, yes); setCaptureInProgress(false); } },
      tc("camera_take_anyway"));
    const panel = h("div", { class: "warning", role: "alert", "data-testid": "take-confirm" },
      h("p", {}, tc("camera_confirm_other", { name: camera.carried_by.name, cert: camera.carried_by.cert_no })),
      yes, " ", h("button", { type: "button", class: "button", "data-testid": "cancel-take", onclick: close }, tc("camera_cancel")));
    button.hidden = true;
    item.append(panel);
    yes.focus();
  };

  const item = (camera) => {
    const mine = heldBySerial.get(camera.serial) || null;
    const state = cameraState(camera, user, mine, handouts);
    const row = h("li", { class: "row", "data-testid": "camera", dataset: { serial: camera.serial, state } });
    const actions = [];
    if (state === "mine") {
      const button = h("button", { type: "button", class: "button primary", "data-testid": "return-camera",
                                   onclick: () => giveBack(mine, button) }, tc("camera_return"));
      actions.push(button);
    } else if (state === "available" || state === "other") {
      const button = h("button", { type: "button", class: "button", "data-testid": "take-camera",
                                   onclick: () => (state === "other" ? confirmTake(camera, row, button) : take(camera.serial, button)) },
        tc("camera_take"));
      actions.push(button);
    }
    row.append(
      h("div", { class: "row-text" },
        h("strong", { translate: "no" }, camera.serial), " ",
        camera.label ? h("span", {}, camera.label) : null,
        camera.unlisted ? h("span", { class: "meta" }, ` ${tc("camera_not_listed")}`) : null,
        stateLine(state, camera, mine)),
      ...actions);
    return row;
  };

  const rows = [...cameras, ...unlisted].map(item);
  mount(root, backLink("#/"), screen(tc("cameras_title"),
    h("p", { class: "hint" }, tc("cameras_intro")),
    held.length ? h("p", { "data-testid": "cameras-held" },
      tc("camera_held_hint", { serials: Array.from(heldBySerial.keys()).join("、") })) : null,
    !listed ? h("p", { class: "warning", "data-testid": "cameras-not-cached" }, tc("cameras_none_cached"))
      : fetchedAt ? h("p", { class: "meta", "data-testid": "cameras-as-of" }, tc("cameras_as_of", { time: showTime(fetchedAt) })) : null,
    listed && !cameras.length ? h("p", {}, tc("cameras_none")) : null,
    message,
    h("ul", { class: "list", "data-testid": "camera-list" }, rows)));

  // Online, a newer list (who carries what) is fetched and the screen drawn again with it; not
  // while the officer is answering the question above.
  if (navigator.onLine !== false) {
    refreshCameras(request).then((changed) => {
      if (changed && window.location.hash === ROUTE && document.body.dataset.captureInProgress !== "true") {
        return camerasView(root);
      }
      return null;
    }).catch(() => { /* offline or signed out: the cached list stays */ });
  }
}
