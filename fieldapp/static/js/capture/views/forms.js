// Forms for what happens during an activity: steps, recording interruptions, and withdrawing an
// item saved by mistake (service by leaving, 留置送达, is in service.js).

import { stepTypesFor } from "../steptypes.js";
import { field, fromLocalInput, h, isChinese, label, mount, toLocalInput } from "../dom.js";
import { formatCitation, t } from "../../i18n.js";
import { newId, saveRevision, withdraw } from "../records.js";
import { get } from "../store.js";
import { currentCatalogue } from "../server.js";
import { findCase } from "./cases.js";
import { attachments } from "../photos.js";
import { avQuestion, isClip } from "./av.js";
import { documentsChecklist } from "./checklist.js";
import { stepTypeFields } from "./stepfields.js";
import { backLink, navigate, saveWithFeedback, screen, setCaptureInProgress, warning, withEditLock } from "../ui.js";

async function activityAndCase(activityId) {
  const activity = await get("records", activityId);
  const found = activity ? await findCase(activity.parent_id) : null;
  return { activity, found };
}

function messageEl() {
  return h("p", { class: "message", role: "status", "data-testid": "save-message" });
}

function busy(root, back) {
  mount(root, backLink(back), screen(t("locked_elsewhere")));
}

export async function stepForm(root, activityId) {
  const [{ activity, found }, catalogue] = await Promise.all([activityAndCase(activityId), currentCatalogue()]);
  if (!activity || !catalogue) return mount(root, backLink("#/"), screen(t("not_found")));
  const stepId = newId();
  const types = stepTypesFor(catalogue, found?.kind, { field: true });
  const stepType = h("select", { name: "step_type" }, types.map((s) => h("option", { value: s.id }, label(s))));
  const at = h("input", { type: "datetime-local", name: "at", value: toLocalInput() });
  const place = h("input", { name: "place", maxlength: 300, value: activity.payload.place?.text || "" });
  const notes = h("textarea", { name: "notes", rows: 3, maxlength: 4000 });
  const docs = documentsChecklist(catalogue);
  const av = avQuestion({ cameras: (activity.payload.cameras || []).map((c) => c.camera_id) });
  const extra = h("div", {});
  let typeFields = stepTypeFields(null);
  const photos = attachments(stepId, { labelText: t("photos") });
  const message = messageEl();

  const renderType = () => {
    const type = types.find((s) => s.id === stepType.value);
    docs.render(type);
    // "须音像记录，依据第二十四条" in Chinese, "Audio/video required by art. 24" in English.
    av.setNote(type?.av_required ? `${t("av_required_by")}${isChinese() ? "" : " "}${formatCitation(type.av_article)}` : "",
               Boolean(type?.av_required));
    typeFields = stepTypeFields(type?.id);
    extra.replaceChildren(...[typeFields.element].filter(Boolean));
  };
  stepType.addEventListener("change", renderType);
  renderType();

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const media = photos.items();
    // Nothing typed is lost: the form stays as it is, with what is missing said plainly.
    const problem = av.problem(media.some(isClip)) || docs.problem() || typeFields.problem();
    if (problem) {
      message.textContent = t(problem);
      message.classList.add("error");
      message.dataset.state = "error";
      return;
    }
    const payload = {
      activity_id: activityId, case_id: activity.parent_id, step_type: stepType.value,
      at: fromLocalInput(at.value) || new Date().toISOString(), place: place.value.trim() || null,
      notes: notes.value.trim() || null,
      ...docs.read(),
      ...av.read(),
      ...typeFields.read(),
      photos: media.map((m) => ({ hash: m.hash, exif_taken_at: m.exif?.takenAt || null,
                                  exif_offset: m.exif?.offset || null,
                                  exif_lat_e6: m.exif?.latE6 ?? null, exif_lon_e6: m.exif?.lonE6 ?? null })),
    };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: stepId, type: "step", parentId: activityId, payload, media }));
    if (saved) { setCaptureInProgress(false); navigate(`#/activities/${activityId}`); }
  } },
    field(t("step_type"), stepType), field(t("time"), at), field(t("place"), place), field(t("notes"), notes),
    h("fieldset", {}, h("legend", {}, t("documents")), docs.element),
    extra,
    av.element,
    photos.element,
    h("button", { type: "submit", class: "button primary big" }, t("save_step")), message);
  setCaptureInProgress(true);
  mount(root, backLink(`#/activities/${activityId}`), screen(t("add_step"), form));
}

export async function interruptionForm(root, activityId, cameraId) {
  const [{ activity }, catalogue] = await Promise.all([activityAndCase(activityId), currentCatalogue()]);
  if (!activity) return mount(root, screen(t("not_found")));
  const stopped = h("input", { type: "datetime-local", name: "stopped_at", value: toLocalInput() });
  const reason = h("select", { name: "reason" }, (catalogue?.interruption_reasons || []).map((r) => h("option", { value: r.id }, label(r))));
  const note = h("textarea", { name: "note", rows: 2, maxlength: 2000 });
  const message = messageEl();
  const form = h("form", { class: "stack", onsubmit: async (event) => {
    event.preventDefault();
    const payload = { activity_id: activityId, camera_id: cameraId, stopped_at: fromLocalInput(stopped.value),
                      reason: reason.value, note: note.value.trim() || null, resumed_at: null, explanation: null,
                      cannot_continue: false, reported_to: null, reported_at: null, written_explanation: null };
    const saved = await saveWithFeedback(message, () => saveRevision({ type: "interruption", parentId: activityId, payload }));
    if (saved) navigate(`#/activities/${activityId}`);
  } }, h("p", {}, `${t("camera_id")}: ${cameraId}`), field(t("stopped_at"), stopped), field(t("reason"), reason),
    field(t("note"), note), h("button", { type: "submit", class: "button primary big" }, t("save")), message);
  mount(root, backLink(`#/activities/${activityId}`), screen(t("recording_stopped"), form));
}

export async function resumeForm(root, interruptionId) {
  const record = await get("records", interruptionId);
  if (!record) return mount(root, screen(t("not_found")));
  const activityId = record.payload.activity_id;
  const resumed = h("input", { type: "datetime-local", name: "resumed_at", value: toLocalInput() });
  const explanation = h("textarea", { name: "explanation", rows: 3, maxlength: 2000 });
  const cannot = h("input", { type: "checkbox", name: "cannot_continue" });
  const reportedTo = h("input", { name: "reported_to", maxlength: 80 });
  const message = messageEl();
  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!cannot.checked && !explanation.value.trim()) {
      message.textContent = t("explanation_needed"); message.classList.add("error"); return;
    }
    const payload = cannot.checked
      ? { ...record.payload, cannot_continue: true, reported_to: reportedTo.value.trim() || null,
          reported_at: new Date().toISOString(), explanation: explanation.value.trim() || null }
      : { ...record.payload, resumed_at: fromLocalInput(resumed.value), explanation: explanation.value.trim() };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: interruptionId, type: "interruption", head: record, payload,
      reason: cannot.checked ? "cannot_continue" : "resumed" }));
    if (saved) navigate(`#/activities/${activityId}`);
  } }, field(t("resumed_at"), resumed), field(t("explanation_on_resume"), explanation),
    h("label", { class: "check" }, cannot, t("cannot_continue")),
    field(t("reported_to_head"), reportedTo, h("p", { class: "hint" }, t("cannot_continue_hint"))),
    h("button", { type: "submit", class: "button primary big" }, t("save")), message);
  await withEditLock(interruptionId,
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("resume_recording"), form)),
    () => busy(root, `#/activities/${activityId}`));
}

// "Cannot continue" asks for a written explanation afterwards (art. 9); it is added here, later.
export async function writtenExplanationForm(root, interruptionId) {
  const record = await get("records", interruptionId);
  if (!record) return mount(root, screen(t("not_found")));
  const activityId = record.payload.activity_id;
  const text = h("textarea", { name: "written_explanation", rows: 6, maxlength: 8000 });
  const message = messageEl();
  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!text.value.trim()) { message.textContent = t("explanation_needed"); message.classList.add("error"); return; }
    const payload = { ...record.payload, written_explanation: text.value.trim(), written_explanation_at: new Date().toISOString() };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: interruptionId, type: "interruption", head: record, payload,
      reason: "written_explanation" }));
    if (saved) navigate(`#/activities/${activityId}`);
  } }, h("p", { class: "hint" }, t("cannot_continue_hint")), field(t("written_explanation"), text),
    h("button", { type: "submit", class: "button primary big" }, t("save")), message);
  await withEditLock(interruptionId,
    () => mount(root, backLink(`#/activities/${activityId}`), screen(t("written_explanation"), form)),
    () => busy(root, `#/activities/${activityId}`));
}

// 留置送达 is a form of its own, in steps (views/service.js); the router finds it here.
export { serviceForm } from "./service.js";

export async function withdrawForm(root, recordId) {
  const record = await get("records", recordId);
  if (!record) return mount(root, screen(t("not_found")));
  const back = record.type === "case" ? "#/" : `#/activities/${record.parent_id}`;
  // A record the server refused or holds in another version is settled on its problem screen first.
  if (record.status === "problem") return mount(root, backLink(back), screen(t("withdraw"), warning(t("problem_kept"))));
  const synced = record.status !== "unsynced";
  const reason = h("textarea", { name: "reason", rows: 2, maxlength: 500, required: true });
  const message = messageEl();
  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) { message.textContent = t("reason_needed"); message.classList.add("error"); return; }
    const saved = await saveWithFeedback(message, () => withdraw(recordId, reason.value.trim()));
    if (saved) navigate(back);
  } }, h("p", { "data-testid": "withdraw-explained" }, t(synced ? "withdraw_synced_explained" : "withdraw_explained")),
    field(t("withdraw_reason"), reason),
    h("button", { type: "submit", class: "button danger big" }, t("withdraw")), message);
  await withEditLock(recordId, () => mount(root, backLink(back), screen(t("withdraw"), form)), () => busy(root, back));
}
