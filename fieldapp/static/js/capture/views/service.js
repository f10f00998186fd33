// Service by leaving (留置送达), one step per screen: the document and recipient, the refusal, the
// witnesses, photos or video of the document left, the officers' signatures. On one page it was
// six screens tall with signature pads too small to sign on; each step now fits a phone and every
// signature gets a pad the width of the screen. Nothing is saved until the last step (one record,
// one durable write); photos are stored the moment they are taken, as in every form.

import { field, fromLocalInput, h, label, mount, toLocalInput } from "../dom.js";
import { t } from "../../i18n.js";
import { newId, saveRevision } from "../records.js";
import { get } from "../store.js";
import { currentCatalogue } from "../server.js";
import { attachments } from "../photos.js";
import { signaturePad } from "../signature.js";
import { sha256Hex } from "../media.js";
import { backLink, navigate, saveWithFeedback, screen, setCaptureInProgress } from "../ui.js";

function repeatable(makeRow, addLabel) {
  const box = h("div", { class: "repeatable" }, makeRow(1));
  const add = h("button", { type: "button", class: "button", onclick: () => box.append(makeRow(box.children.length + 1)) }, addLabel);
  return { element: h("div", {}, box, add), rows: () => Array.from(box.children) };
}

function documentRow() {
  const name = h("input", { name: "doc_name", maxlength: 120, list: "document-names", "aria-label": t("document_name") });
  const number = h("input", { name: "doc_number", maxlength: 60, "aria-label": t("document_number") });
  const row = h("div", { class: "doc-row" }, field(t("document_name"), name), field(t("document_number"), number));
  row.read = () => ({ name: name.value.trim(), number: number.value.trim() || null });
  return row;
}

// A witness either signs on the pad or refuses: the pad is offered only while they have not
// refused, and the reason for refusing only once they have.
function witnessRow(n) {
  const name = h("input", { name: "witness_name", maxlength: 80 });
  const org = h("input", { name: "witness_org", maxlength: 120 });
  const role = h("input", { name: "witness_role", maxlength: 80 });
  const refused = h("input", { type: "checkbox", name: "witness_refused" });
  const refusedReason = h("input", { name: "witness_refused_reason", maxlength: 300 });
  const pad = signaturePad(t("witness_signature"));
  const signing = h("div", {}, h("p", { class: "pad-label" }, t("witness_signature")), pad.element);
  const reasonField = field(t("refusal_reason"), refusedReason);
  const follow = () => { signing.hidden = refused.checked; reasonField.hidden = !refused.checked; };
  refused.addEventListener("change", follow);
  follow();
  const row = h("fieldset", { class: "witness-block", "data-testid": "witness" }, h("legend", {}, `${t("witness")} ${n}`),
    field(t("witness_name"), name), field(t("witness_org"), org), field(t("witness_role"), role),
    h("label", { class: "check" }, refused, t("witness_refused")), reasonField, signing);
  row.read = () => ({ name: name.value.trim(), org: org.value.trim() || null, role: role.value.trim() || null,
                      refused: refused.checked, refused_reason: refused.checked ? refusedReason.value.trim() || null : null, pad });
  return row;
}

async function signatureMedia(pad, ownerId) {
  if (pad.isEmpty()) return null;
  const blob = await pad.toBlob();
  const hash = await sha256Hex(await blob.arrayBuffer());
  return { alg: "sha-256", hash, size: blob.size, type: "image/png", blob, preview: blob, exif: null,
           name: "signature.png", captured_at: new Date().toISOString(), owner_id: ownerId };
}

// Steps as sections of one form, one shown at a time; 上一步 keeps everything typed. (The buttons
// are not pinned to the bottom of the screen: there they would cover part of a signature pad.)
function stepper(sections, { onShow }) {
  let current = 0;
  const progress = h("p", { class: "step-progress", "data-testid": "service-progress", "aria-live": "polite" });
  const back = h("button", { type: "button", class: "button", onclick: () => show(current - 1) }, t("previous_step"));
  const next = h("button", { type: "button", class: "button primary", onclick: () => show(current + 1) }, t("next_step"));
  function show(index) {
    current = Math.max(0, Math.min(sections.length - 1, index));
    sections.forEach((section, i) => { section.element.hidden = i !== current; });
    progress.textContent = t("step_n_of").replace("{i}", String(current + 1)).replace("{n}", String(sections.length));
    back.hidden = current === 0;
    next.hidden = current === sections.length - 1;
    onShow(sections[current].id);
    window.scrollTo(0, 0);
  }
  return { progress, nav: h("div", { class: "step-nav" }, back, next), show, isLast: () => current === sections.length - 1 };
}

export async function serviceForm(root, activityId) {
  const [activity, catalogue] = await Promise.all([get("records", activityId), currentCatalogue()]);
  if (!activity) return mount(root, screen(t("not_found")));
  const serviceId = newId();
  const documentNames = [...new Set((catalogue?.step_types || []).flatMap((s) => s.documents || []))];
  const datalist = h("datalist", { id: "document-names" }, documentNames.map((d) => h("option", { value: d })));
  const docs = repeatable(documentRow, t("add_document"));
  const recipient = h("input", { name: "recipient_name", maxlength: 80 });
  const relation = h("select", { name: "relation" }, (catalogue?.service_relations || []).map((r) => h("option", { value: r.id }, label(r))));
  const place = h("input", { name: "service_place", maxlength: 300, value: activity.payload.place?.text || "" });
  const words = h("textarea", { name: "refusal_words", rows: 3, maxlength: 2000 });
  const acts = h("textarea", { name: "refusal_acts", rows: 3, maxlength: 2000 });
  const at = h("input", { type: "datetime-local", name: "served_at", value: toLocalInput() });
  const witnesses = repeatable(witnessRow, t("add_witness"));
  const officerPads = activity.payload.officers.map((o) => ({ officer: o, pad: signaturePad(`${t("officer_signature")} ${o.name}`) }));
  const photos = attachments(serviceId, { labelText: t("document_left_media") });
  const pathWarning = h("p", { class: "warning", role: "status" });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const namedWitnesses = () => witnesses.rows().map((r) => r.read()).filter((w) => w.name);

  const section = (id, title, ...body) => ({ id, element: h("section", { class: "service-step" }, h("h2", {}, title), ...body) });
  const sections = [
    section("document", t("service_step_document"), h("fieldset", {}, h("legend", {}, t("documents_served")), docs.element),
      field(t("recipient_name"), recipient), field(t("recipient_relation"), relation), field(t("place"), place),
      field(t("served_at"), at)),
    section("refusal", t("service_step_refusal"), field(t("refusal_words"), words), field(t("refusal_acts"), acts)),
    section("witnesses", t("witnesses"), witnesses.element),
    section("photos", t("document_left_media"), photos.element, pathWarning),
    section("officers", t("officer_signatures"), officerPads.map(({ officer, pad }) => h("div", { "data-testid": "officer-signature" },
      h("p", { class: "pad-label" }, `${officer.name} ${officer.cert_no}`), pad.element))),
  ];
  const saveButton = h("button", { type: "submit", class: "button primary", "data-testid": "save-service" }, t("save_service"));
  const steps = stepper(sections, { onShow: (id) => {
    saveButton.hidden = id !== sections.at(-1).id; // saving belongs to the last step, in place of 下一步
    // Either lawful path will do: witnesses, or photo/video of the document left (民事诉讼法第八十九条).
    if (id === "photos") pathWarning.textContent = namedWitnesses().length || photos.items().length ? "" : t("service_path_warning");
  } });

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    // Enter in a field moves on a step rather than saving half a record.
    if (!steps.isLast()) { steps.show(sections.findIndex((s) => !s.element.hidden) + 1); return; }
    const witnessRows = namedWitnesses();
    const media = photos.items();
    if (!words.value.trim() && !acts.value.trim()) {
      steps.show(1);
      message.textContent = t("refusal_needed"); message.classList.add("error"); return;
    }
    const signatures = [];
    const witnessData = [];
    for (const w of witnessRows) {
      const sig = w.refused ? null : await signatureMedia(w.pad, serviceId);
      if (sig) signatures.push(sig);
      witnessData.push({ name: w.name, org: w.org, role: w.role, signature: sig?.hash || null,
                         refused_to_sign: w.refused, refused_reason: w.refused_reason });
    }
    const officerData = [];
    for (const { officer, pad } of officerPads) {
      const sig = await signatureMedia(pad, serviceId);
      if (sig) signatures.push(sig);
      officerData.push({ name: officer.name, cert_no: officer.cert_no, signature: sig?.hash || null });
    }
    const payload = {
      activity_id: activityId, case_id: activity.parent_id,
      documents: docs.rows().map((r) => r.read()).filter((d) => d.name),
      recipient: { name: recipient.value.trim(), relation: relation.value },
      place: place.value.trim() || null, refusal: { words: words.value.trim() || null, acts: acts.value.trim() || null },
      at: fromLocalInput(at.value) || new Date().toISOString(),
      witnesses: witnessData, officers: officerData, media: media.map((m) => m.hash),
    };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: serviceId, type: "service", parentId: activityId,
      payload, media: [...media, ...signatures], newMedia: signatures }));
    if (saved) { setCaptureInProgress(false); navigate(`#/activities/${activityId}`); }
  } },
    datalist, steps.progress, sections.map((s) => s.element), steps.nav, message);
  steps.nav.append(saveButton);
  setCaptureInProgress(true);
  mount(root, backLink(`#/activities/${activityId}`), screen(t("service_by_leaving"), form));
  steps.show(0);
}
