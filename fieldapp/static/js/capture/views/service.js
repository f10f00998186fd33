// Service by leaving (留置送达), one step per screen: the document and recipient, the refusal, the
// witnesses, photos or video of the document left, the officers' signatures. On one page it was
// six screens tall with signature pads too small to sign on; each step now fits a phone and every
// signature gets a pad the width of the screen. Nothing is saved until the last step (one record,
// one durable write); photos are stored the moment they are taken, as in every form.

import { field, fromLocalInput, h, isChinese, label, mount, toLocalInput } from "../dom.js";
import { formatCitation, t } from "../../i18n.js";
import { newId, saveRevision } from "../records.js";
import { get } from "../store.js";
import { currentCatalogue } from "../server.js";
import { findCase } from "./cases.js";
import { attachments } from "../photos.js";
import { idNumberField } from "./idfield.js";
import { avQuestion, isClip } from "./av.js";
import { signatureMedia, signaturePad } from "../signature.js";
import { stepper } from "./stepper.js";
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


export const ORG_KINDS = ["grassroots", "employer", "other"];
const CONFIRMATIONS = ["signed", "confirmed", "refused"];

// A witness signs on the pad, confirms without signing (and how), or refuses (and why): none is
// chosen beforehand, and the pad is offered only to one who signs.
function witnessRow(n) {
  const name = h("input", { name: "witness_name", maxlength: 80 });
  const org = h("input", { name: "witness_org", maxlength: 120 });
  // Nothing chosen beforehand: whom the witness represents decides whether the service holds.
  const orgKind = h("select", { name: "witness_org_kind" }, h("option", { value: "" }, ""),
    ORG_KINDS.map((k) => h("option", { value: k }, t(`org_${k}`))));
  const role = h("input", { name: "witness_role", maxlength: 80 });
  const idNo = idNumberField("witness_id_no");
  const radios = CONFIRMATIONS.map((value) => h("input", { type: "radio", name: `witness_confirmation_${n}`, value }));
  const confirmedHow = h("input", { name: "witness_confirmed_how", maxlength: 300 });
  const refusedReason = h("input", { name: "witness_refused_reason", maxlength: 300 });
  const pad = signaturePad(t("witness_signature"));
  const signing = h("div", {}, h("p", { class: "pad-label" }, t("witness_signature")), pad.element);
  const howField = field(t("confirmed_how"), confirmedHow);
  const reasonField = field(t("refusal_reason"), refusedReason);
  const chosen = () => radios.find((r) => r.checked)?.value || null;
  const follow = () => {
    const value = chosen();
    signing.hidden = value !== "signed";
    howField.hidden = value !== "confirmed";
    reasonField.hidden = value !== "refused";
  };
  radios.forEach((r) => r.addEventListener("change", follow));
  follow();
  const row = h("fieldset", { class: "witness-block", "data-testid": "witness" }, h("legend", {}, `${t("witness")} ${n}`),
    field(t("witness_name"), name), field(t("witness_org"), org), field(t("witness_org_kind"), orgKind),
    field(t("witness_role"), role), idNo.element,
    h("fieldset", { "data-testid": "witness-confirmation" }, h("legend", {}, t("witness_confirmation")),
      radios.map((r) => h("label", { class: "check" }, r, t(`confirmation_${r.value}`)))),
    howField, reasonField, signing);
  row.read = () => {
    const confirmation = chosen();
    return { name: name.value.trim(), org: org.value.trim() || null, org_kind: orgKind.value || null, role: role.value.trim() || null,
             id_no: idNo.read(), confirmation,
             confirmed_how: confirmation === "confirmed" ? confirmedHow.value.trim() || null : null,
             refused_reason: confirmation === "refused" ? refusedReason.value.trim() || null : null, pad };
  };
  return row;
}

// What a witness must have said before the record is saved (a string key), or null.
function witnessProblem(w) {
  if (!w.org_kind) return "witness_org_kind_needed";
  if (!w.confirmation) return "confirmation_needed";
  if (w.confirmation === "confirmed" && !w.confirmed_how) return "confirmed_how_needed";
  if (w.confirmation === "signed" && w.pad.isEmpty()) return "witness_signature_needed";
  return null;
}

// Lawful by witnesses: a grassroots organisation's or the employer's representative who signed or
// confirmed (民事诉讼法第八十九条); otherwise photos or video of the document left must show it.
export const qualifiedWitness = (w) => ["grassroots", "employer"].includes(w.org_kind)
  && ["signed", "confirmed"].includes(w.confirmation);

export async function serviceForm(root, activityId) {
  const [activity, catalogue] = await Promise.all([get("records", activityId), currentCatalogue()]);
  if (!activity) return mount(root, screen(t("not_found")));
  const serviceId = newId();
  const documentNames = [...new Set((catalogue?.step_types || []).flatMap((s) => s.documents || []))];
  const datalist = h("datalist", { id: "document-names" }, documentNames.map((d) => h("option", { value: d })));
  const docs = repeatable(documentRow, t("add_document"));
  const recipient = h("input", { name: "recipient_name", maxlength: 80 });
  const recipientId = idNumberField("recipient_id_no");
  const relation = h("select", { name: "relation" }, (catalogue?.service_relations || []).map((r) => h("option", { value: r.id }, label(r))));
  const place = h("input", { name: "service_place", maxlength: 300, value: activity.payload.place?.text || "" });
  const words = h("textarea", { name: "refusal_words", rows: 3, maxlength: 2000 });
  const acts = h("textarea", { name: "refusal_acts", rows: 3, maxlength: 2000 });
  const at = h("input", { type: "datetime-local", name: "served_at", value: toLocalInput() });
  const witnesses = repeatable(witnessRow, t("add_witness"));
  const officerPads = activity.payload.officers.map((o) => ({ officer: o, pad: signaturePad(`${t("officer_signature")} ${o.name}`) }));
  const photos = attachments(serviceId, { labelText: t("document_left_media") });
  // Service by leaving carries the audio/video duty of its case's kind (arts. 19, 22, 24): the
  // catalogue's kind names its 留置送达 step type (older catalogues: "<kind>_service_by_leaving").
  const found = await findCase(activity.parent_id);
  const kind = (catalogue?.kinds || []).find((k) => k.id === found?.kind);
  const serviceStepId = kind?.service_by_leaving || `${found?.kind}_service_by_leaving`;
  const serviceStep = (catalogue?.step_types || []).find((s) => s.id === serviceStepId);
  const avRequired = Boolean(serviceStep?.av_required);
  const av = avQuestion({ cameras: (activity.payload.cameras || []).map((c) => c.camera_id) });
  av.setNote(avRequired ? `${t("av_required_by")}${isChinese() ? "" : " "}${formatCitation(serviceStep.av_article)}` : "",
    avRequired);
  const pathWarning = h("p", { class: "warning", role: "status", "data-testid": "service-path-warning" });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const namedWitnesses = () => witnesses.rows().map((r) => r.read()).filter((w) => w.name);
  // Either lawful path will do: a qualified witness who confirmed, or photo/video of the document left.
  const checkPath = () => {
    pathWarning.textContent = namedWitnesses().some(qualifiedWitness) || photos.items().length ? "" : t("service_path_warning");
  };
  photos.element.addEventListener("attachment-saved", checkPath);

  const section = (id, title, ...body) => ({ id, element: h("section", { class: "service-step" }, h("h2", {}, title), ...body) });
  const sections = [
    section("document", t("service_step_document"), h("fieldset", {}, h("legend", {}, t("documents_served")), docs.element),
      field(t("recipient_name"), recipient), field(t("recipient_relation"), relation), recipientId.element,
      field(t("place"), place), field(t("served_at"), at)),
    section("refusal", t("service_step_refusal"), field(t("refusal_words"), words), field(t("refusal_acts"), acts)),
    section("witnesses", t("witnesses"), witnesses.element),
    section("photos", t("document_left_media"), photos.element, pathWarning, av.element),
    section("officers", t("officer_signatures"), officerPads.map(({ officer, pad }) => h("div", { "data-testid": "officer-signature" },
      h("p", { class: "pad-label" }, `${officer.name} ${officer.cert_no}`), pad.element))),
  ];
  const saveButton = h("button", { type: "submit", class: "button primary", "data-testid": "save-service" }, t("save_service"));
  const steps = stepper(sections, { onShow: (id) => {
    saveButton.hidden = id !== sections.at(-1).id; // saving belongs to the last step, in place of 下一步
    if (id === "photos") checkPath();
  } });
  const refuse = (index, key) => {
    steps.show(index);
    message.textContent = t(key); message.classList.add("error"); message.dataset.state = "error";
  };

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    // Enter in a field moves on a step rather than saving half a record.
    if (!steps.isLast()) { steps.show(sections.findIndex((s) => !s.element.hidden) + 1); return; }
    const witnessRows = namedWitnesses();
    const media = photos.items();
    const documents = docs.rows().map((r) => r.read()).filter((d) => d.name);
    if (!documents.length) return refuse(0, "service_document_needed");
    if (!place.value.trim()) return refuse(0, "service_place_needed");
    if (!words.value.trim() && !acts.value.trim()) return refuse(1, "refusal_needed");
    const unfinished = witnessRows.map(witnessProblem).find(Boolean);
    if (unfinished) return refuse(2, unfinished);
    const avProblem = av.problem(media.some(isClip));
    if (avProblem) return refuse(3, avProblem);
    const signatures = [];
    const witnessData = [];
    for (const { pad, ...w } of witnessRows) {
      const sig = w.confirmation === "signed" ? await signatureMedia(pad, serviceId) : null;
      if (sig) signatures.push(sig);
      witnessData.push({ name: w.name, org: w.org, org_kind: w.org_kind, role: w.role, id_no: w.id_no,
                         confirmation: w.confirmation, confirmed_how: w.confirmed_how, signature: sig?.hash || null,
                         refused_reason: w.refused_reason });
    }
    const officerData = [];
    for (const { officer, pad } of officerPads) {
      const sig = await signatureMedia(pad, serviceId);
      if (sig) signatures.push(sig);
      officerData.push({ name: officer.name, cert_no: officer.cert_no, signature: sig?.hash || null });
    }
    const payload = {
      activity_id: activityId, case_id: activity.parent_id,
      documents,
      recipient: { name: recipient.value.trim(), relation: relation.value, id_no: recipientId.read() },
      place: place.value.trim(), refusal: { words: words.value.trim() || null, acts: acts.value.trim() || null },
      at: fromLocalInput(at.value) || new Date().toISOString(),
      witnesses: witnessData, officers: officerData, media: media.map((m) => m.hash),
      ...av.read(),
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
