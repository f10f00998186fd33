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
import { lookups, openAsked, openableItem } from "./saved.js";

function officerRow(officer = {}) {
  const name = h("input", { name: "officer_name", value: officer.name || "", maxlength: 80, "aria-label": t("officer_name") });
  const cert = h("input", { name: "officer_cert", value: officer.cert_no || "", maxlength: 40, "aria-label": t("cert_no") });
  const shown = h("input", { type: "checkbox", name: "cert_shown", checked: officer.cert_shown ?? true });
  const row = h("div", { class: "officer-row", "data-testid": "officer-row" },
    field(t("officer_name"), name), field(t("cert_no"), cert),
    h("label", { class: "check" }, shown, t("cert_shown")));
  row.read = () => ({ name: name.value.trim(), cert_no: cert.value.trim(), cert_shown: shown.checked });
  return row;
}

function cameraRow(cameraId = "") {
  const input = h("input", { name: "camera_id", value: cameraId, maxlength: 60, "aria-label": t("camera_id") });
  const row = h("div", { class: "camera-row" }, field(t("camera_id"), input));
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
  const found = await findCase(caseId);
  if (!found) return mount(root, backLink("#/"), screen(t("not_found")));
  const user = await me();
  const officers = h("div", { class: "officers" }, officerRow({ name: user?.name, cert_no: user?.cert_no }));
  const cameras = h("div", { class: "cameras" }, cameraRow(""));
  const arrived = h("input", { type: "datetime-local", name: "arrived_at", value: toLocalInput() });
  const placeText = h("input", { name: "place_text", maxlength: 300 });
  const placeNote = h("p", { class: "hint", role: "status" });
  const state = { coords: null };
  const continuous = h("input", { type: "checkbox", name: "continuous", checked: (found.flags || []).length > 0 });
  const officerWarning = h("p", { class: "warning", role: "status", "data-testid": "officer-warning" });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });

  const readOfficers = () => Array.from(officers.children).map((r) => r.read()).filter((o) => o.name);
  const checkOfficers = () => {
    const list = readOfficers();
    officerWarning.textContent = list.length < 2 ? t("fewer_than_two") : list.some((o) => !o.cert_shown) ? t("cert_not_shown") : "";
  };
  officers.addEventListener("input", checkOfficers);
  officers.addEventListener("change", checkOfficers);
  checkOfficers();

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const arrivedAt = fromLocalInput(arrived.value) || new Date().toISOString();
    const payload = {
      case_id: caseId,
      arrived_at: arrivedAt,
      departed_at: null,
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
    h("fieldset", {}, h("legend", {}, t("officers_present")), officers,
      h("button", { type: "button", class: "button", onclick: () => { officers.append(officerRow()); checkOfficers(); } }, t("add_officer")),
      officerWarning),
    h("fieldset", {}, h("legend", {}, t("place")),
      h("button", { type: "button", class: "button", onclick: () => locate(placeNote, state) }, t("use_location")), placeNote,
      field(t("place_text"), placeText)),
    h("label", { class: "check" }, continuous, t("continuous_required")),
    h("fieldset", {}, h("legend", {}, t("body_cameras")), cameras,
      h("button", { type: "button", class: "button", onclick: () => cameras.append(cameraRow()) }, t("add_camera"))),
    h("button", { type: "submit", class: "button primary big" }, t("start_activity")), message);
  setCaptureInProgress(true);
  mount(root, backLink(`#/cases/${caseId}`), screen(`${t("new_activity")} · ${found.party_name}`, form));
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
  const [found, catalogue, items, review, allMedia] = await Promise.all([findCase(activity.parent_id), currentCatalogue(),
    children(activityId), latestReview(activityId), getAll("media")]);
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
    else text = item.type;
    // The line opens in place into what was saved, read-only, with its photos.
    return h("li", { class: "row", "data-testid": `item-${item.type}` },
      openableItem(item, [text, item.media.length ? ` · ${item.media.length} ${t("attachments_count")}` : ""], look),
      badge(item),
      item.type === "interruption" && item.payload.cannot_continue && !item.payload.written_explanation
        ? h("a", { href: `#/interruptions/${item.id}/explain`, class: "button small" }, t("written_explanation_due")) : null,
      item.status === "unsynced" ? h("a", { href: `#/records/${item.id}/withdraw`, class: "small-link" }, t("withdraw")) : null,
      item.status === "problem" ? h("a", { href: `#/records/${item.id}/problem`, class: "small-link" }, t("see_problem")) : null,
      item.pending_media?.length ? h("span", { class: "tag", "data-testid": "originals-pending" }, t("originals_pending")) : null,
      item.media.filter((m) => refused.has(m.hash)).map((m) => h("span", { class: "tag danger", "data-testid": "media-refused" },
        `${t("upload_refused")}: ${refused.get(m.hash).message || refused.get(m.hash).code}`)));
  };

  mount(root, backLink(`#/cases/${activity.parent_id}`), screen(`${t("activity")} · ${found?.party_name || ""}`,
    h("p", {}, badge(activity), " ", `${t("arrived")} ${showTime(p.arrived_at)}`, ended ? ` · ${t("departed")} ${showTime(p.departed_at)}` : "",
      activity.status === "problem" ? h("a", { href: `#/records/${activity.id}/problem`, class: "small-link" }, ` ${t("see_problem")}`) : null),
    reviewBanner(activityId, review),
    p.officers.length < 2 ? warning(t("fewer_than_two")) : null,
    h("p", { class: "meta" }, p.officers.map((o) => `${o.name} ${o.cert_no}${o.cert_shown ? "" : ` (${t("cert_not_shown_short")})`}`).join("、")),
    p.continuous_required ? h("p", { class: "tag" }, t("continuous_required")) : null,
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
      h("a", { class: "tile", href: `#/activities/${activityId}/end` }, t("end_activity"))),
    h("h2", {}, t("recorded_items")),
    h("ul", { class: "list", "data-testid": "activity-items" }, live.length ? live.map(itemRow) : h("li", {}, t("nothing_yet")))));
  // After the router has scrolled to the top: open the item the outbox asked for.
  requestAnimationFrame(() => openAsked(root));
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
