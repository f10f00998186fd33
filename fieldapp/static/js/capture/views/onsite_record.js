// 现场笔录 and 询问笔录, made and signed on site with no signal (行政强制法 18(七)(八)(九); 行政处罚法 55):
// the header, the notice (credentials shown, recusal), the record itself, then the whole text shown
// for the party to read, their signature (or their refusal with a witness, or their absence with a
// witness), and each officer's signature. The signatures are for exactly the text shown: its SHA-256
// (RFC 8785 bytes of signedContent: the record, the party's outcome and confirmation words, the
// witness's identity and the officers named — not the images) is saved with them; if the text
// changes after it was shown, or the words signed under or the witness change after signing, the
// pads concerned are cleared, so nobody's signature ends up under words they did not read. The
// server prints the record as the 笔录 only when fieldapp/rules/onsite_records.toml is met.

import { field, fromLocalInput, h, mount, showTime, toLocalInput } from "../dom.js";
import { t } from "../../i18n.js";
import { newId, saveRevision } from "../records.js";
import { get } from "../store.js";
import { findCase } from "./cases.js";
import { idNumberField } from "./idfield.js";
import { signatureMedia, signaturePad } from "../signature.js";
import { canonicalBytes } from "../canonical.js";
import { sha256Hex } from "../media.js";
import { stepper } from "./stepper.js";
import { backLink, navigate, saveWithFeedback, screen, setCaptureInProgress } from "../ui.js";

// The words the party signs under, as the national forms have them; what was shown travels in the
// record (signing.party.confirmation), so the paper prints what the party saw.
const CONFIRMATION = {
  scene: "以上笔录我已看过，与现场情况相符。",
  inquiry: "以上笔录我已看过（或已向我宣读过），与我所说的相符。",
};
const OUTCOMES = { scene: ["signed", "refused", "absent"], inquiry: ["signed", "refused"] };

// What the signatures are for; mirrors fieldapp/rules/onsite_records.py signed_content.
const UNSIGNED_KEYS = ["signing", "withdrawn", "withdrawn_reason"];
export function signedContent(payload) {
  const body = Object.fromEntries(Object.entries(payload).filter(([k]) => !UNSIGNED_KEYS.includes(k)));
  const signing = payload.signing;
  if (signing && typeof signing === "object" && !Array.isArray(signing)) {
    const withoutImage = (entry) => (entry && typeof entry === "object" && !Array.isArray(entry)
      ? Object.fromEntries(Object.entries(entry).filter(([k]) => k !== "signature")) : entry);
    body.signing = {
      party: withoutImage(signing.party), witness: withoutImage(signing.witness),
      officers: Array.isArray(signing.officers)
        ? signing.officers.map((o) => (o && typeof o === "object" && !Array.isArray(o)
          ? { name: o.name ?? null, cert_no: o.cert_no ?? null } : o))
        : signing.officers,
    };
  }
  return body;
}

const input = (name, attrs = {}) => h("input", { name, maxlength: 200, ...attrs });
const area = (name, rows = 6) => h("textarea", { name, rows, maxlength: 20000 });
const radios = (name, legend, values, labelOf) => {
  const list = values.map((value) => h("input", { type: "radio", name, value }));
  const element = h("fieldset", { "data-testid": name }, h("legend", {}, legend),
    list.map((r) => h("label", { class: "check" }, r, labelOf(r.value))));
  return { element, list, value: () => list.find((r) => r.checked)?.value || null };
};

function qaRow() {
  const q = h("textarea", { name: "question", rows: 2, maxlength: 4000, "aria-label": t("question") });
  const a = h("textarea", { name: "answer", rows: 3, maxlength: 8000, "aria-label": t("answer") });
  const row = h("div", { class: "qa-row", "data-testid": "qa-row" }, field(t("question"), q), field(t("answer"), a));
  row.read = () => ({ q: q.value.trim(), a: a.value.trim() });
  return row;
}

// The record as the party reads it: every fact that will be printed, in the form's order.
function readingView(form, p) {
  const line = (labelText, value) => (value ? h("p", {}, h("strong", {}, `${labelText}：`), value) : null);
  const s = p.subject;
  return h("div", { class: "reading", "data-testid": "reading-view" },
    h("h3", {}, t(`${form}_record`)),
    line(t("record_time"), `${showTime(p.started_at)} – ${showTime(p.ended_at)}`), line(t("place"), p.place),
    line(t("officers_present"), p.officers.map((o) => `${o.name} ${o.cert_no}`).join("、")),
    line(t("recorder"), p.recorder),
    line(t(form === "inquiry" ? "interviewee" : "party_name"), s.name), line(t(form === "inquiry" ? "id_no" : "credit_code"), s.id_no),
    line(t("sex"), s.sex ? t(`sex_${s.sex}`) : null), line(t("employer"), s.employer), line(t("position"), s.position),
    line(t("representative"), s.representative), line(t("phone"), s.phone), line(t("address"), s.address),
    line(t("relation_to_case"), s.relation),
    line(t("notice_given"), `${p.notice.credentials_shown ? t("credentials_shown_yes") : t("credentials_shown_no")}；${p.notice.recusal ? t(`recusal_${p.notice.recusal}`) : ""}`),
    form === "inquiry"
      ? h("div", { class: "qa" }, p.qa.map((x) => [h("p", {}, h("strong", {}, "问："), x.q), h("p", {}, h("strong", {}, "答："), x.a)]))
      : [line(t("scene_content"), p.content), line(t("party_opinion"), p.opinion)]);
}

export async function onsiteRecordForm(root, activityId, form) {
  const activity = await get("records", activityId);
  if (!activity || !OUTCOMES[form]) return mount(root, screen(t("not_found")));
  const found = await findCase(activity.parent_id);
  const recordId = newId();
  const officers = activity.payload.officers || [];
  const startedAt = h("input", { type: "datetime-local", name: "started_at", value: toLocalInput() });
  const place = input("place", { value: activity.payload.place?.text || "", maxlength: 300 });
  const recorder = h("select", { name: "recorder" }, officers.map((o) => h("option", { value: o.name }, o.name)));
  if (officers[1]) recorder.value = officers[1].name;
  const subject = {
    name: input("subject_name", { value: form === "scene" ? found?.party_name || "" : "" }),
    idNo: form === "scene" ? input("subject_id_no", { value: found?.party_credit_code || found?.record?.payload?.party_id_number || "", maxlength: 40 })
      : null,
    personId: form === "inquiry" ? idNumberField("subject_id_no") : null,
    sex: h("select", { name: "subject_sex" }, ["", "male", "female"].map((v) => h("option", { value: v }, v ? t(`sex_${v}`) : ""))),
    representative: input("subject_representative"), phone: input("subject_phone", { type: "tel", maxlength: 30 }),
    address: input("subject_address", { value: form === "scene" ? found?.party_address || "" : "", maxlength: 300 }),
    employer: input("subject_employer"), position: input("subject_position"), relation: input("subject_relation"),
  };
  const credentials = h("input", { type: "checkbox", name: "credentials_shown",
                                   checked: officers.length > 0 && officers.every((o) => o.cert_shown !== false) });
  const recusal = radios("recusal", t("recusal_question"), ["not_requested", "requested"], (v) => t(`recusal_${v}`));
  const content = area("scene_content", 10);
  const opinion = area("party_opinion", 3);
  const qaBox = h("div", { class: "repeatable" }, qaRow());
  const addQa = h("button", { type: "button", class: "button", onclick: () => qaBox.append(qaRow()) }, t("add_question"));

  const outcome = radios("party_outcome", t("party_outcome"), OUTCOMES[form], (v) => t(`party_${v}`));
  const confirmation = input("confirmation", { value: CONFIRMATION[form], maxlength: 300 });
  const partyPad = signaturePad(t("party_signature"));
  const refusedReason = area("refused_reason", 3);
  const witness = { name: input("witness_name", { maxlength: 80 }), org: input("witness_org", { maxlength: 120 }),
                    idNo: idNumberField("witness_id_no"), pad: signaturePad(t("witness_signature")) };
  const partyBlock = h("div", { "data-testid": "party-signs" }, field(t("confirmation_words"), confirmation),
    h("p", { class: "pad-label" }, t("party_signature")), partyPad.element);
  const refusalBlock = field(t("refusal_note"), refusedReason);
  // 行政强制法 18(八) asks only that a refusal be noted; a witness who is there signs (18(九) makes
  // one necessary when the party is absent).
  const witnessOptional = h("p", { class: "hint", "data-testid": "witness-optional" }, t("witness_optional_on_refusal"));
  const witnessBlock = h("fieldset", { class: "witness-block", "data-testid": "witness" }, h("legend", {}, t("witness")),
    witnessOptional, field(t("witness_name"), witness.name), field(t("witness_org"), witness.org), witness.idNo.element,
    h("p", { class: "pad-label" }, t("witness_signature")), witness.pad.element);
  // The words signed under and the witness are part of what is signed: changing them clears the pad.
  confirmation.addEventListener("input", () => partyPad.clear());
  [witness.name, witness.org].forEach((el) => el.addEventListener("input", () => witness.pad.clear()));
  const followOutcome = () => {
    partyPad.clear();
    witness.pad.clear();
    const value = outcome.value();
    partyBlock.hidden = value !== "signed";
    refusalBlock.hidden = value !== "refused";
    witnessBlock.hidden = !["refused", "absent"].includes(value);
    witnessOptional.hidden = value !== "refused";
  };
  outcome.list.forEach((r) => r.addEventListener("change", followOutcome));
  followOutcome();
  witness.idNo.element.addEventListener("input", () => witness.pad.clear());
  const officerPads = officers.map((o) => ({ officer: o, pad: signaturePad(`${t("officer_signature")} ${o.name}`) }));
  const allPads = () => [partyPad, witness.pad, ...officerPads.map((x) => x.pad)];

  let endedAt = null;
  const payload = () => ({
    activity_id: activityId, case_id: activity.parent_id, form,
    started_at: fromLocalInput(startedAt.value) || activity.payload.arrived_at, ended_at: endedAt,
    place: place.value.trim(),
    subject: Object.fromEntries(Object.entries({
      name: subject.name.value.trim(), id_no: subject.personId ? subject.personId.read() : subject.idNo.value.trim(),
      sex: form === "inquiry" ? subject.sex.value : "", representative: form === "scene" ? subject.representative.value.trim() : "",
      phone: subject.phone.value.trim(), address: subject.address.value.trim(),
      employer: form === "inquiry" ? subject.employer.value.trim() : "", position: form === "inquiry" ? subject.position.value.trim() : "",
      relation: form === "inquiry" ? subject.relation.value.trim() : "",
    }).filter(([, v]) => v)),
    officers: officers.map((o) => ({ name: o.name, cert_no: o.cert_no })),
    recorder: recorder.value,
    notice: { credentials_shown: credentials.checked, recusal: recusal.value() },
    ...(form === "inquiry"
      ? { qa: Array.from(qaBox.children).map((r) => r.read()).filter((x) => x.q || x.a) }
      : { content: content.value.trim(), opinion: opinion.value.trim() }),
  });
  const contentHash = async (p) => sha256Hex(canonicalBytes(p));

  const reading = h("div", { "data-testid": "reading" });
  let shownHash = null;
  // Shown to the party: freeze the end time, and if the text is not the one already signed under,
  // clear every pad.
  async function showForReading() {
    endedAt = new Date().toISOString();
    const p = payload();
    const hash = await contentHash({ ...p, ended_at: null });
    if (hash !== shownHash) {
      allPads().forEach((pad) => pad.clear());
      shownHash = hash;
    }
    mount(reading, readingView(form, p));
  }

  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const section = (id, title, ...body) => ({ id, element: h("section", { class: "service-step" }, h("h2", {}, title), ...body) });
  const subjectFields = form === "inquiry"
    ? [field(t("interviewee"), subject.name), field(t("sex"), subject.sex), subject.personId.element,
       field(t("employer"), subject.employer), field(t("position"), subject.position), field(t("phone"), subject.phone),
       field(t("address"), subject.address), field(t("relation_to_case"), subject.relation)]
    : [field(t("party_name"), subject.name), field(t("credit_code"), subject.idNo),
       field(t("representative"), subject.representative), field(t("phone"), subject.phone), field(t("address"), subject.address)];
  const sections = [
    section("header", t(`${form}_record`), field(t("record_started"), startedAt), field(t("place"), place),
      field(t("recorder"), recorder), ...subjectFields),
    section("notice", t("notice_given"), h("label", { class: "check" }, credentials, t("credentials_shown_yes")),
      recusal.element),
    form === "inquiry"
      ? section("content", t("questions_and_answers"), qaBox, addQa)
      : section("content", t("scene_content"), field(t("scene_content"), content), field(t("party_opinion"), opinion)),
    section("read", t("read_and_sign"), h("p", { class: "hint" }, t("read_and_sign_hint")), reading,
      outcome.element, partyBlock, refusalBlock, witnessBlock),
    section("officers", t("officer_signatures"), officerPads.map(({ officer, pad }) => h("div", { "data-testid": "officer-signature" },
      h("p", { class: "pad-label" }, `${officer.name} ${officer.cert_no}`), pad.element))),
  ];
  const saveButton = h("button", { type: "submit", class: "button primary", "data-testid": "save-onsite-record" }, t("save_onsite_record"));
  const steps = stepper(sections, { testid: "onsite-progress", onShow: (id) => {
    saveButton.hidden = id !== sections.at(-1).id;
    if (id === "read") showForReading();
  } });
  const refuse = (index, key) => {
    steps.show(index);
    message.textContent = t(key); message.classList.add("error"); message.dataset.state = "error";
  };

  const formEl = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!steps.isLast()) { steps.show(sections.findIndex((s) => !s.element.hidden) + 1); return; }
    const p = payload();
    if (!p.subject.name) return refuse(0, "subject_name_needed");
    if (!p.notice.recusal) return refuse(1, "recusal_needed");
    if (form === "inquiry" ? !p.qa.length : !p.content) return refuse(2, "record_content_needed");
    if (await contentHash({ ...p, ended_at: null }) !== shownHash) return refuse(3, "record_changed_sign_again");
    const chosen = outcome.value();
    if (!chosen) return refuse(3, "party_outcome_needed");
    if (chosen === "signed" && partyPad.isEmpty()) return refuse(3, "party_signature_needed");
    if (chosen === "refused" && !refusedReason.value.trim()) return refuse(3, "refusal_note_needed");
    // Anything entered of a witness to a refusal makes them the record's witness: named, and signing.
    const witnessGiven = chosen === "absent" || Boolean(witness.name.value.trim() || witness.org.value.trim()
      || witness.idNo.read()) || !witness.pad.isEmpty();
    if (chosen !== "signed" && witnessGiven) {
      if (!witness.name.value.trim()) return refuse(3, "witness_name_needed");
      if (witness.pad.isEmpty()) return refuse(3, "witness_signature_needed");
    }
    if (officerPads.some(({ pad }) => pad.isEmpty())) return refuse(4, "officer_signature_needed");
    const signatures = [];
    const sign = async (pad) => {
      const sig = await signatureMedia(pad, recordId);
      if (sig) signatures.push(sig);
      return sig?.hash || null;
    };
    const party = chosen === "signed"
      ? { outcome: chosen, signature: await sign(partyPad), confirmation: confirmation.value.trim() || CONFIRMATION[form] }
      : { outcome: chosen, signature: null, refused_reason: chosen === "refused" ? refusedReason.value.trim() : null };
    const witnessData = chosen === "signed" || !witnessGiven ? null
      : { name: witness.name.value.trim(), org: witness.org.value.trim() || null, id_no: witness.idNo.read(),
          signature: await sign(witness.pad) };
    const officerData = [];
    for (const { officer, pad } of officerPads) {
      officerData.push({ name: officer.name, cert_no: officer.cert_no, signature: await sign(pad) });
    }
    const full = { ...p, signing: { party, witness: witnessData, officers: officerData } };
    full.signing.content_sha256 = await contentHash(signedContent(full));
    const saved = await saveWithFeedback(message, () => saveRevision({ id: recordId, type: "onsite_record",
      parentId: activityId, payload: full, media: signatures, newMedia: signatures }));
    if (saved) { setCaptureInProgress(false); navigate(`#/activities/${activityId}`); }
  } }, steps.progress, sections.map((s) => s.element), steps.nav, message);
  steps.nav.append(saveButton);
  setCaptureInProgress(true);
  mount(root, backLink(`#/activities/${activityId}`), screen(t(`${form}_record`), formEl));
  steps.show(0);
}
