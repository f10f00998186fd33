// An on-site enforcement activity (现场执法活动): who was there, where, the recording log of each
// body camera, and everything recorded during the visit.

import { latestReview, reviewBanner } from "./review.js";
import { field, fromLocalInput, h, label, mount, showTime, toLocalInput } from "../dom.js";
import { t } from "../../i18n.js";
import { children, saveRevision, toMicroDegrees } from "../records.js";
import { get, getAll } from "../store.js";
import { currentCatalogue } from "../server.js";
import { findCase } from "./cases.js";
import { badge, backLink, navigate, saveWithFeedback, screen, setCaptureInProgress, warning, withEditLock } from "../ui.js";
import { me } from "../session.js";
import { enrolledOfficers, officersListed } from "../officers.js";
import { lookups, openAsked, openableItem } from "./saved.js";
import { heldByMe, unitCameras } from "../cameras.js";
import { footageBadge, footageByActivity, refreshBadgesWhenOnline } from "../footage.js";
import { tc } from "../camerastrings.js";
import { request } from "../http.js";

// An enrolled officer of the unit (from the cached list): ticked when present, with their
// certificate shown or not.
function enrolledRow(officer, picked) {
  const pick = h("input", { type: "checkbox", name: "officer_pick", value: officer.id, checked: picked });
  const shown = h("input", { type: "checkbox", name: "cert_shown", checked: true });
  const shownLabel = h("label", { class: "check" }, shown, t("cert_shown"));
  const follow = () => { shownLabel.hidden = !pick.checked; };
  pick.addEventListener("change", follow);
  follow();
  const row = h("div", { class: "officer-row", "data-testid": "officer-choice", dataset: { certNo: officer.cert_no } },
    h("label", { class: "check" }, pick, `${officer.name} ${officer.cert_no}`), shownLabel);
  row.read = () => (pick.checked ? { user_id: officer.id, name: officer.name, cert_no: officer.cert_no,
                                     unit_name: officer.unit_name ?? null, cert_shown: shown.checked } : null);
  return row;
}

// An officer of another unit, typed in: certificate number and name (and unit).
function otherOfficerRow() {
  const cert = h("input", { name: "officer_cert", maxlength: 40, autocomplete: "off" });
  const name = h("input", { name: "officer_name", maxlength: 80, autocomplete: "off" });
  const unit = h("input", { name: "officer_unit", maxlength: 120 });
  const shown = h("input", { type: "checkbox", name: "cert_shown", checked: true });
  const row = h("div", { class: "officer-row", "data-testid": "officer-row" },
    field(t("cert_no"), cert), field(t("officer_name"), name), field(t("officer_unit"), unit),
    h("label", { class: "check" }, shown, t("cert_shown")));
  row.read = () => ({ user_id: null, name: name.value.trim(), cert_no: cert.value.trim(),
                      unit_name: unit.value.trim() || null, cert_shown: shown.checked });
  return row;
}

// A body camera by its serial (产品序号): the server links footage by it. The unit's cameras (cached
// while online) are offered; a serial not on the list can still be typed, with a note.
const CAMERA_OPTIONS_ID = "unit-camera-options";

function cameraOptions(unitList) {
  return h("datalist", { id: CAMERA_OPTIONS_ID, "data-testid": "camera-options" },
    unitList.map((c) => h("option", { value: c.serial }, c.label ? `${c.serial} — ${c.label}` : c.serial)));
}

function cameraRow(cameraId = "", unitList = []) {
  const input = h("input", { name: "camera_id", value: cameraId, maxlength: 60, "aria-label": t("camera_id"),
                             list: CAMERA_OPTIONS_ID, autocomplete: "off", autocapitalize: "characters" });
  const note = h("p", { class: "hint", role: "status", "data-testid": "camera-note" });
  const check = () => {
    const serial = input.value.trim();
    note.textContent = unitList.length && serial && !unitList.some((c) => c.serial === serial) ? tc("camera_unknown_serial") : "";
  };
  input.addEventListener("change", check);
  input.addEventListener("blur", check);
  check();
  const row = h("div", { class: "camera-row" }, field(t("camera_id"), input, note));
  row.read = () => input.value.trim();
  return row;
}

async function locate(placeNote, state) {
  if (!navigator.geolocation) { placeNote.textContent = t("no_geolocation"); return; }
  placeNote.textContent = t("locating");
  navigator.geolocation.getCurrentPosition((pos) => {
    state.coords = { lat_e6: toMicroDegrees(pos.coords.latitude), lon_e6: toMicroDegrees(pos.coords.longitude),
                     accuracy_m: Math.round(pos.coords.accuracy), datum: "WGS-84", source: "gps" };
    placeNote.textContent = `${t("located")} ±${state.coords.accuracy_m} m`;
  }, () => { placeNote.textContent = t("no_fix"); }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
}

export async function newActivityForm(root, caseId) {
  const [found, catalogue] = await Promise.all([findCase(caseId), currentCatalogue()]);
  if (!found) return mount(root, backLink("#/"), screen(t("not_found")));
  const user = await me();
  const [enrolled, listed] = await Promise.all([enrolledOfficers(user), officersListed(user)]);
  const enrolledRows = enrolled.map((o) => enrolledRow(o, o.id === user?.id));
  const others = h("div", { class: "officers" });
  // The first camera is the one this officer took (and has not returned), if any.
  const [unitList, held] = await Promise.all([unitCameras(user), heldByMe(user)]);
  const heldSerials = Array.from(new Set(held.map((r) => r.payload.camera_serial)));
  const cameras = h("div", { class: "cameras" }, cameraRow(heldSerials[0] || "", unitList));
  const arrived = h("input", { type: "datetime-local", name: "arrived_at", value: toLocalInput() });
  const placeText = h("input", { name: "place_text", maxlength: 300 });
  const placeNote = h("p", { class: "hint", role: "status" });
  const state = { coords: null };
  const continuous = h("input", { type: "checkbox", name: "continuous",
                                  checked: continuousFlags(found.flags, lookups(catalogue).flags).length > 0 });
  const officerWarning = h("p", { class: "warning", role: "status", "data-testid": "officer-warning" });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });

  // Everyone present once: an officer typed in who is on the unit's list counts as that officer.
  const readOfficers = () => {
    const list = enrolledRows.map((r) => r.read()).filter(Boolean);
    for (const typed of Array.from(others.children).map((r) => r.read())) {
      if (!typed.name && !typed.cert_no) continue;
      const known = enrolled.find((o) => o.cert_no === typed.cert_no);
      const officer = known ? { ...typed, user_id: known.id, name: known.name, unit_name: known.unit_name ?? null } : typed;
      if (!list.some((o) => o.cert_no && o.cert_no === officer.cert_no)) list.push(officer);
    }
    return list;
  };
  const incomplete = () => Array.from(others.children).map((r) => r.read())
    .some((o) => (o.name || o.cert_no) && !(o.name && o.cert_no));
  const checkOfficers = () => {
    const list = readOfficers();
    officerWarning.textContent = list.length < 2 ? t("fewer_than_two") : list.some((o) => !o.cert_shown) ? t("cert_not_shown") : "";
  };
  const officersBox = h("fieldset", {}, h("legend", {}, t("officers_present")),
    h("p", { class: "hint" }, listed ? t("officers_pick_hint") : t("officers_none_cached")),
    h("div", { class: "officers", "data-testid": "enrolled-officers" }, enrolledRows),
    h("p", { class: "hint" }, t("other_officer_hint")), others,
    h("button", { type: "button", class: "button", "data-testid": "add-other-officer",
                  onclick: () => { others.append(otherOfficerRow()); checkOfficers(); others.lastChild.querySelector("input").focus(); } },
      t("add_other_officer")),
    officerWarning);
  officersBox.addEventListener("input", checkOfficers);
  officersBox.addEventListener("change", checkOfficers);
  checkOfficers();

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (incomplete()) {
      message.textContent = t("officer_details_needed"); message.classList.add("error"); message.dataset.state = "error";
      return;
    }
    const arrivedAt = fromLocalInput(arrived.value) || new Date().toISOString();
    const payload = {
      case_id: caseId,
      arrived_at: arrivedAt,
      departed_at: null,
      returned_at: null,
      officers: readOfficers(),
      place: { ...(state.coords || { source: "typed" }), text: placeText.value.trim() || null },
      continuous_required: continuous.checked,
      // Recording starts on arrival by default; stops and restarts are interruption records.
      cameras: Array.from(cameras.children).map((r) => r.read()).filter(Boolean)
        .map((id) => ({ camera_id: id, started_at: arrivedAt })),
    };
    const saved = await saveWithFeedback(message, () => saveRevision({ type: "activity", parentId: caseId, payload }));
    if (saved) { setCaptureInProgress(false); navigate(`#/activities/${saved.id}`); }
  } },
    field(t("arrived_at"), arrived),
    officersBox,
    h("fieldset", {}, h("legend", {}, t("place")),
      h("button", { type: "button", class: "button", onclick: () => locate(placeNote, state) }, t("use_location")), placeNote,
      field(t("place_text"), placeText)),
    h("label", { class: "check" }, continuous, t("continuous_required")),
    h("fieldset", {}, h("legend", {}, t("body_cameras")),
      heldSerials.length ? h("p", { class: "hint", "data-testid": "cameras-held" },
        tc("camera_held_hint", { serials: heldSerials.join("、") })) : null,
      cameras, cameraOptions(unitList),
      h("button", { type: "button", class: "button", onclick: () => cameras.append(cameraRow("", unitList)) }, t("add_camera"))),
    h("button", { type: "submit", class: "button primary big" }, t("start_activity")), message);
  setCaptureInProgress(true);
  mount(root, backLink(`#/cases/${caseId}`), screen(`${t("new_activity")} · ${found.party_name}`, form));
}

// The case's flags that make continuous recording mandatory. A catalogue before version 2 does not
// say which: every flag did then.
export function continuousFlags(flags, flagLookup) {
  return (flags || []).filter((f) => flagLookup[f]?.continuous ?? true);
}

// Why the activity must be recorded without a break (art. 9): its own flag, the case's flags, an
// emergency inspection recorded, or an interruption because the officers were obstructed.
export function continuousRequired(activity, found, items, look) {
  const live = items.filter((i) => !i.payload.withdrawn);
  return Boolean(activity.payload.continuous_required)
    || continuousFlags(found?.flags, look.flags).length > 0
    || live.some((i) => i.type === "step" && (look.stepTypes[i.payload.step_type]?.sets_continuous
                                              ?? i.payload.step_type === "inspection_emergency"))
    || live.some((i) => i.type === "interruption" && (look.reasons[i.payload.reason]?.sets_continuous
                                                      ?? i.payload.reason === "obstruction"));
}

function officerText(o) {
  const unit = o.user_id === null && o.unit_name ? `（${o.unit_name}）` : "";
  return `${o.name} ${o.cert_no}${unit}${o.cert_shown ? "" : ` (${t("cert_not_shown_short")})`}`;
}

// Spans of recording per camera, derived from arrival, interruptions and departure.
export function recordingLog(activity, interruptions) {
  return (activity.payload.cameras || []).map((camera) => {
    const stops = interruptions.filter((i) => !i.payload.withdrawn && i.payload.camera_id === camera.camera_id)
      .sort((a, b) => a.payload.stopped_at.localeCompare(b.payload.stopped_at));
    const spans = [];
    let start = camera.started_at;
    for (const stop of stops) {
      spans.push({ from: start, to: stop.payload.stopped_at });
      start = stop.payload.resumed_at || null;
      if (!start) break;
    }
    if (start) spans.push({ from: start, to: activity.payload.departed_at || null });
    return { camera_id: camera.camera_id, spans, open: stops.filter((s) => !s.payload.resumed_at) };
  });
}

export async function activityView(root, activityId) {
  const activity = await get("records", activityId);
  if (!activity) return mount(root, backLink("#/"), screen(t("not_found")));
  const [found, catalogue, items, review, allMedia, footage] = await Promise.all([findCase(activity.parent_id), currentCatalogue(),
    children(activityId), latestReview(activityId), getAll("media"), footageByActivity()]);
  // Files the server refused (not media, or bytes that do not match their hash) stay here, with why.
  const refused = new Map(allMedia.filter((m) => m.refused).map((m) => [m.hash, m.refused]));
  const look = lookups(catalogue);
  const stepTypes = look.stepTypes;
  const interruptions = items.filter((i) => i.type === "interruption");
  const log = recordingLog(activity, interruptions);
  const p = activity.payload;
  const ended = Boolean(p.departed_at);
  const live = items.filter((i) => !i.payload.withdrawn);

  const itemRow = (item) => {
    let text;
    if (item.type === "step") text = `${label(stepTypes[item.payload.step_type]) || item.payload.step_type} · ${showTime(item.payload.at)}`;
    else if (item.type === "interruption") text = `${t("interruption")} ${item.payload.camera_id} · ${showTime(item.payload.stopped_at)}${item.payload.resumed_at ? ` – ${showTime(item.payload.resumed_at)}` : ` (${t("not_resumed")})`}`;
    else if (item.type === "service") text = `${t("service_by_leaving")} · ${item.payload.recipient?.name || ""} · ${showTime(item.payload.at)}`;
    else if (item.type === "onsite_record") text = `${t(`${item.payload.form}_record`)} · ${item.payload.subject?.name || ""} · ${showTime(item.payload.started_at)}`;
    else text = item.type;
    // The line opens in place into what was saved, read-only, with its photos.
    return h("li", { class: "row", "data-testid": `item-${item.type}` },
      openableItem(item, [text, item.media.length ? ` · ${item.media.length} ${t("attachments_count")}` : ""], look),
      badge(item),
      item.type === "interruption" && item.payload.cannot_continue && !item.payload.written_explanation
        ? h("a", { href: `#/interruptions/${item.id}/explain`, class: "button small" }, t("written_explanation_due")) : null,
      item.status === "unsynced" || item.status === "synced"
        ? h("a", { href: `#/records/${item.id}/withdraw`, class: "small-link" }, t("withdraw")) : null,
      item.status === "problem" ? h("a", { href: `#/records/${item.id}/problem`, class: "small-link" }, t("see_problem")) : null,
      item.pending_media?.length ? h("span", { class: "tag", "data-testid": "originals-pending" }, t("originals_pending")) : null,
      item.media.filter((m) => refused.has(m.hash)).map((m) => h("span", { class: "tag danger", "data-testid": "media-refused" },
        `${t("upload_refused")}: ${refused.get(m.hash).message || refused.get(m.hash).code}`)));
  };

  mount(root, backLink(`#/cases/${activity.parent_id}`), screen(`${t("activity")} · ${found?.party_name || ""}`,
    h("p", {}, badge(activity), " ", `${t("arrived")} ${showTime(p.arrived_at)}`, ended ? ` · ${t("departed")} ${showTime(p.departed_at)}` : "",
      p.returned_at ? h("span", { "data-testid": "returned-at" }, ` · ${t("returned_to_unit")} ${showTime(p.returned_at)}`) : null,
      activity.status === "problem" ? h("a", { href: `#/records/${activity.id}/problem`, class: "small-link" }, ` ${t("see_problem")}`) : null,
      " ", h("span", { dataset: { footageFor: activityId } }, footageBadge(footage.get(activityId)))),
    reviewBanner(activityId, review),
    p.officers.length < 2 ? warning(t("fewer_than_two")) : null,
    h("p", { class: "meta" }, p.officers.map(officerText).join("、")),
    continuousRequired(activity, found, items, look) ? h("p", { class: "tag", "data-testid": "continuous-required" }, t("continuous_required")) : null,
    h("h2", {}, t("recording_log")),
    h("ul", { class: "list", "data-testid": "recording-log" }, log.map((camera) => h("li", {},
      h("strong", {}, camera.camera_id), " ",
      camera.spans.map((s) => `${showTime(s.from)}–${s.to ? showTime(s.to) : "…"}`).join("，"),
      ended ? null : camera.open.length
        ? camera.open.map((o) => h("a", { href: `#/interruptions/${o.id}/resume`, class: "button" }, t("resume_recording")))
        : h("a", { href: `#/activities/${activityId}/interruption/new?camera=${encodeURIComponent(camera.camera_id)}`, class: "button" }, t("recording_stopped"))))),
    ended ? null : h("nav", { class: "tiles" },
      h("a", { class: "tile", href: `#/activities/${activityId}/step/new` }, t("add_step")),
      h("a", { class: "tile", href: `#/activities/${activityId}/service/new` }, t("service_by_leaving")),
      h("a", { class: "tile", href: `#/activities/${activityId}/record/scene/new`, "data-testid": "new-scene-record" }, t("scene_record")),
      h("a", { class: "tile", href: `#/activities/${activityId}/record/inquiry/new`, "data-testid": "new-inquiry-record" }, t("inquiry_record")),
      h("a", { class: "tile", href: `#/activities/${activityId}/end` }, t("end_activity"))),
    ended && !p.returned_at ? h("nav", { class: "tiles" },
      h("a", { class: "tile", href: `#/activities/${activityId}/return`, "data-testid": "return-to-unit" }, t("returned_to_unit"))) : null,
    h("h2", {}, t("recorded_items")),
    h("ul", { class: "list", "data-testid": "activity-items" }, live.length ? live.map(itemRow) : h("li", {}, t("nothing_yet")))));
  // After the router has scrolled to the top: open the item the outbox asked for.
  requestAnimationFrame(() => openAsked(root));
  refreshBadgesWhenOnline(request);
}

export async function endActivityForm(root, activityId) {
  const activity = await get("records", activityId);
  if (!activity) return mount(root, screen(t("not_found")));
  const departed = h("input", { type: "datetime-local", name: "departed_at", value: toLocalInput() });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const form = h("form", { class: "stack", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { ...activity.payload, departed_at: fromLocalInput(departed.value) || new Date().toISOString() };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: activityId, type: "activity", head: activity, payload, media: activity.media }));
    if (saved) navigate(`#/activities/${activityId}`);
  } }, field(t("departed_at"), departed), h("button", { type: "submit", class: "button primary big" }, t("end_activity")), message);
  await withEditLock(activityId,
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("end_activity"), form)),
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("locked_elsewhere"))));
}

// Back at the unit after the visit: a new revision of the activity with the time of return (the 24
// hours of art. 25 for handing in the recordings run from it).
export async function returnedForm(root, activityId) {
  const activity = await get("records", activityId);
  if (!activity) return mount(root, screen(t("not_found")));
  const returned = h("input", { type: "datetime-local", name: "returned_at", value: toLocalInput() });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const returnedAt = fromLocalInput(returned.value) || new Date().toISOString();
    if (activity.payload.departed_at && returnedAt < activity.payload.departed_at) {
      message.textContent = t("returned_before_departure"); message.classList.add("error"); message.dataset.state = "error";
      return;
    }
    const payload = { ...activity.payload, returned_at: returnedAt };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: activityId, type: "activity", head: activity, payload,
                                                                       media: activity.media }));
    if (saved) navigate(`#/activities/${activityId}`);
  } }, field(t("returned_at"), returned),
    h("button", { type: "submit", class: "button primary big", "data-testid": "save-return" }, t("returned_to_unit")), message);
  await withEditLock(activityId,
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("returned_to_unit"), form)),
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("locked_elsewhere"))));
}
