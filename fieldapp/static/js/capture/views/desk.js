// Steps made at the desk (案头环节): filing approval, approvals, the report after an emergency
// measure, extensions, testing periods, decisions, service by post or notice, execution, closing.
// They belong to the case, not to a visit: the payload names the case and the record has no parent.
// Saved like every record — a signed revision in the outbox, synced when the network allows — so
// the server verifies them as it verifies the phone's, and the deadlines that hang on them run.

import { field, fromLocalInput, h, label, mount, toLocalInput } from "../dom.js";
import { t } from "../../i18n.js";
import { newId, saveRevision } from "../records.js";
import { currentCatalogue } from "../server.js";
import { findCase } from "./cases.js";
import { documentsChecklist } from "./checklist.js";
import { stepTypesFor } from "../steptypes.js";
import { stepTypeFields } from "./stepfields.js";
import { backLink, navigate, saveWithFeedback, screen, setCaptureInProgress } from "../ui.js";

export async function deskStepForm(root, caseId) {
  const [found, catalogue] = await Promise.all([findCase(caseId), currentCatalogue()]);
  if (!found || !catalogue) return mount(root, backLink("#/"), screen(t("not_found")));
  const types = stepTypesFor(catalogue, found.kind, { field: false });
  const stepId = newId();
  const stepType = h("select", { name: "step_type" }, types.map((s) => h("option", { value: s.id }, label(s))));
  const at = h("input", { type: "datetime-local", name: "at", value: toLocalInput() });
  const notes = h("textarea", { name: "notes", rows: 3, maxlength: 4000 });
  const docs = documentsChecklist(catalogue);
  const extra = h("div", {});
  let typeFields = stepTypeFields(null);
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });

  const renderType = () => {
    const type = types.find((s) => s.id === stepType.value);
    docs.render(type);
    typeFields = stepTypeFields(type?.id);
    extra.replaceChildren(...[typeFields.element].filter(Boolean));
  };
  stepType.addEventListener("change", renderType);
  renderType();

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const problem = docs.problem() || typeFields.problem();
    if (problem) {
      message.textContent = t(problem);
      message.classList.add("error");
      message.dataset.state = "error";
      return;
    }
    const payload = {
      case_id: caseId, step_type: stepType.value, desk: true,
      at: fromLocalInput(at.value) || new Date().toISOString(), notes: notes.value.trim() || null,
      ...docs.read(), ...typeFields.read(),
    };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: stepId, type: "step", parentId: null, payload }));
    if (saved) { setCaptureInProgress(false); navigate(`#/cases/${caseId}`); }
  } },
    field(t("step_type"), stepType), field(t("time"), at), field(t("notes"), notes),
    h("fieldset", {}, h("legend", {}, t("documents")), docs.element),
    extra,
    h("button", { type: "submit", class: "button primary big" }, t("save_step")), message);
  setCaptureInProgress(true);
  mount(root, backLink(`#/cases/${caseId}`), screen(`${t("desk_step")} · ${found.party_name}`, form));
}
