// What a saved record holds, shown read-only: the activity list opens any item in place to check
// what was saved (with its photos and signatures), the outbox names each waiting item, and the
// conflict screen compares two versions with the same labels. Nothing here edits a record.

import { h, label, showTime } from "../dom.js";
import { t } from "../../i18n.js";
import { mediaOf } from "../photos.js";
import { avSummary } from "./av.js";
import { tc } from "../camerastrings.js";

const byId = (list) => Object.fromEntries((list || []).map((entry) => [entry.id, entry]));

// Catalogue lookups the renderers need, built once per screen.
export function lookups(catalogue) {
  return {
    kinds: byId(catalogue?.kinds), stepTypes: byId(catalogue?.step_types), flags: byId(catalogue?.case_flags),
    reasons: byId(catalogue?.interruption_reasons), relations: byId(catalogue?.service_relations),
  };
}

// A short name for a record, e.g. "执法环节：现场检查" or "留置送达：王某".
export function recordName(record, look) {
  const p = record.payload || {};
  switch (record.type) {
    case "case": return `${t("case_record")}：${p.party_name || ""}`;
    case "activity": return `${t("activity")} · ${showTime(p.arrived_at)}`;
    case "step": return `${t("step_type")}：${label(look.stepTypes[p.step_type]) || p.step_type || ""}`;
    case "interruption": return `${t("interruption")}：${p.camera_id || ""} · ${showTime(p.stopped_at)}`;
    case "service": return `${t("service_by_leaving")}：${p.recipient?.name || ""}`;
    case "onsite_record": return `${t(`${p.form}_record`)}：${p.subject?.name || ""}`;
    case "camera_use": return `${tc("camera_use_record")}：${p.camera_serial || ""} · ${showTime(p.taken_at)}`;
    default: return record.type;
  }
}

const yesNo = (value) => (value === undefined || value === null ? null : value ? t("yes") : t("no"));

// The answers only some step types ask (views/stepfields.js).
function stepTypeRows(p) {
  return [
    [t("measure"), p.measure ? t(`measure_${p.measure}`) : null], [t("emergency_on_the_spot"), p.emergency ? t("yes") : null],
    [t("notified_in_advance"), yesNo(p.notified_in_advance)], [t("handed_over_on_spot"), yesNo(p.handed_over_on_spot)],
    [t("notified_at"), showTime(p.notified_at)], [t("period_from"), showTime(p.period_from)],
    [t("period_to"), showTime(p.period_to)], [t("party_told_at"), showTime(p.party_told_at)]];
}
const text = (value) => (value === null || value === undefined || value === "" ? null : String(value));

// [label, value] rows for each kind of record; empty values are left out.
function rows(type, p, look) {
  switch (type) {
    case "case": return [
      [t("case_kind"), label(look.kinds[p.kind]) || p.kind], [t("party_name"), p.party_name],
      [t("credit_code"), p.credit_code], [t("party_address"), p.address], [t("case_number_optional"), p.case_number],
      [t("continuous_flags"), (p.flags || []).map((f) => label(look.flags[f]) || f).join("、")]];
    case "activity": return [
      [t("arrived_at"), showTime(p.arrived_at)], [t("departed_at"), showTime(p.departed_at)],
      [t("returned_at"), showTime(p.returned_at)],
      [t("officers_present"), (p.officers || []).map((o) => [o.name, o.cert_no, o.user_id === null && o.unit_name ? `（${o.unit_name}）` : ""]
        .filter(Boolean).join(" ")).join("、")],
      [t("place"), p.place?.text], [t("continuous_required"), p.continuous_required ? t("yes") : null],
      [t("body_cameras"), (p.cameras || []).map((c) => c.camera_id).join("、")]];
    case "step": return [
      [t("step_type"), label(look.stepTypes[p.step_type]) || p.step_type], [t("time"), showTime(p.at)],
      [t("place"), p.place], [t("notes"), p.notes], [t("documents"), (p.documents || []).join("、")],
      [t("documents_na"), (p.documents_na || []).map((d) => `${d.name}：${d.reason || ""}`).join("；")],
      ...stepTypeRows(p),
      [t("av_question"), avSummary(p)], [t("av_reason"), p.av === "clip" || p.av === "body_camera" || p.av_recorded ? null : p.av_reason]];
    case "interruption": return [
      [t("camera_id"), p.camera_id], [t("stopped_at"), showTime(p.stopped_at)],
      [t("reason"), label(look.reasons[p.reason]) || p.reason], [t("note"), p.note],
      [t("resumed_at"), p.resumed_at ? showTime(p.resumed_at) : t("not_resumed")],
      [t("explanation_on_resume"), p.explanation], [t("cannot_continue"), p.cannot_continue ? t("yes") : null],
      [t("reported_to_head"), p.reported_to], [t("written_explanation"), p.written_explanation]];
    case "service": return [
      [t("documents_served"), (p.documents || []).map((d) => [d.name, d.number].filter(Boolean).join(" ")).join("、")],
      [t("recipient_name"), p.recipient?.name],
      [t("recipient_relation"), label(look.relations[p.recipient?.relation]) || p.recipient?.relation],
      [t("id_no"), p.recipient?.id_no],
      [t("place"), p.place], [t("refusal_words"), p.refusal?.words], [t("refusal_acts"), p.refusal?.acts],
      [t("served_at"), showTime(p.at)], [t("av_question"), avSummary(p)],
      [t("av_reason"), p.av === "not_recorded" ? p.av_reason : null]];
    case "onsite_record": return [
      [t("record_started"), showTime(p.started_at)], [t("place"), p.place],
      [t(p.form === "inquiry" ? "interviewee" : "party_name"), p.subject?.name], [t("recorder"), p.recorder],
      [t("scene_content"), p.content], [t("party_opinion"), p.opinion],
      [t("questions_and_answers"), (p.qa || []).map((x) => `问：${x.q} 答：${x.a}`).join("\n")],
      [t("party_outcome"), p.signing?.party?.outcome ? t(`party_${p.signing.party.outcome}`) : null],
      [t("witness"), p.signing?.witness?.name]];
    case "camera_use": return [
      [tc("camera_serial"), p.camera_serial], [tc("camera_taken_at"), showTime(p.taken_at)],
      [tc("camera_returned_at"), p.returned_at ? showTime(p.returned_at) : tc("camera_not_returned")]];
    default: return Object.entries(p).map(([key, value]) => [key, typeof value === "object" ? JSON.stringify(value) : value]);
  }
}

export function fieldList(type, payload, look) {
  return h("dl", { class: "versions" }, rows(type, payload || {}, look)
    .filter(([, value]) => text(value) !== null)
    .flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, text(value))]));
}

function picture(item, altText) {
  const blob = item?.preview || item?.blob;
  if (!blob) return h("span", { class: "thumb-placeholder" }, item?.type?.split("/")[0] || "?");
  return h("img", { src: URL.createObjectURL(blob), alt: altText });
}

// Witnesses and officers of a service by leaving, each with the signature they drew or their refusal.
function signers(p, media) {
  const signature = (hash, who) => (hash ? h("div", { class: "signed" }, picture(media.get(hash), `${t("witness_signature")} ${who}`))
    : h("span", { class: "meta" }, t("not_signed")));
  return [
    (p.witnesses || []).length ? h("h3", {}, t("witnesses")) : null,
    (p.witnesses || []).map((w) => h("div", { class: "signer" },
      h("strong", {}, [w.name, w.org, w.org_kind ? t(`org_${w.org_kind}`) : null, w.role].filter(Boolean).join(" · ")),
      w.id_no ? h("p", { class: "meta" }, `${t("id_no")} ${w.id_no}`) : null,
      // Old phones wrote refused_to_sign; new ones say how the witness confirmed.
      w.confirmation === "refused" || w.refused_to_sign
        ? h("p", {}, `${t("confirmation_refused")}${w.refused_reason ? `：${w.refused_reason}` : ""}`)
        : w.confirmation === "confirmed" ? h("p", {}, `${t("confirmation_confirmed")}${w.confirmed_how ? `：${w.confirmed_how}` : ""}`)
          : signature(w.signature, w.name))),
    (p.officers || []).length ? h("h3", {}, t("officer_signatures")) : null,
    (p.officers || []).map((o) => h("div", { class: "signer" },
      h("strong", {}, `${o.name} ${o.cert_no || ""}`), signature(o.signature, o.name))),
  ];
}

// The body of an opened item: its fields, photos (previews kept on this phone) and signatures.
export async function savedItemBody(record, look) {
  const media = new Map((await mediaOf(record.id)).map((m) => [m.hash, m]));
  const p = record.payload || {};
  const signatureHashes = new Set([...(p.witnesses || []), ...(p.officers || [])].map((s) => s.signature).filter(Boolean));
  const photos = (record.media || []).filter((m) => !signatureHashes.has(m.hash));
  return h("div", { class: "saved-item", "data-testid": "saved-item-view" },
    fieldList(record.type, p, look),
    record.type === "service" ? signers(p, media) : null,
    photos.length ? h("h3", {}, record.type === "service" ? t("document_left_media") : t("photos")) : null,
    photos.length ? h("ul", { class: "thumbs" }, photos.map((m) => h("li", { class: "thumb" },
      picture(media.get(m.hash) || m, t("photo_preview")),
      h("span", { class: "meta" }, `${Math.round(m.size / 1024)} KB`)))) : null);
}

// A list row's text that opens, in place, into the read-only body (drawn on first opening, so a
// long list does not read every photo).
export function openableItem(record, summaryText, look) {
  const details = h("details", { class: "saved-details", dataset: { recordId: record.id } },
    h("summary", { "data-testid": "open-item" }, summaryText));
  let drawn = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || drawn) return;
    drawn = true;
    details.append(await savedItemBody(record, look));
  });
  return details;
}

// The outbox links to the screen holding an item and asks that screen to open it.
const OPEN_KEY = "fieldapp:open-item";

export function askToOpen(recordId) {
  try { sessionStorage.setItem(OPEN_KEY, recordId); } catch { /* private mode: the item just stays closed */ }
}

export function openAsked(container) {
  let wanted = null;
  try { wanted = sessionStorage.getItem(OPEN_KEY); sessionStorage.removeItem(OPEN_KEY); } catch { return; }
  const details = wanted && container.querySelector(`details[data-record-id="${CSS.escape(wanted)}"]`);
  if (!details) return;
  details.open = true;
  details.scrollIntoView({ block: "center" });
}
