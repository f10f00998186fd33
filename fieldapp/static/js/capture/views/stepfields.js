// Answers only some step types ask, shown only for that step type: the measure of a seal-up or
// seizure and whether it was taken on the spot in an emergency, whether a questioning was notified
// in advance, whether a decision was handed over on the spot, when the party was told of an
// extension or of a testing period.

import { field, fromLocalInput, h } from "../dom.js";
import { t } from "../../i18n.js";

const checkbox = (name, text) => {
  const input = h("input", { type: "checkbox", name });
  return { input, element: h("label", { class: "check" }, input, t(text)) };
};
const when = (name, text) => {
  const input = h("input", { type: "datetime-local", name });
  return { input, element: field(t(text), input) };
};

const FIELDS = {
  coercion_seal_seize() {
    const seal = h("input", { type: "radio", name: "measure", value: "seal" });
    const seize = h("input", { type: "radio", name: "measure", value: "seize" });
    const emergency = checkbox("emergency", "emergency_on_the_spot");
    return {
      element: [h("fieldset", {}, h("legend", {}, t("measure")),
        h("label", { class: "check" }, seal, t("measure_seal")), h("label", { class: "check" }, seize, t("measure_seize"))),
      emergency.element],
      read: () => ({ measure: seal.checked ? "seal" : seize.checked ? "seize" : null, emergency: emergency.input.checked }),
      problem: () => (seal.checked || seize.checked ? null : "measure_needed"),
    };
  },
  penalty_onsite_questioning() {
    const notified = checkbox("notified_in_advance", "notified_in_advance");
    return { element: notified.element, read: () => ({ notified_in_advance: notified.input.checked }) };
  },
  penalty_decision() {
    const handed = checkbox("handed_over_on_spot", "handed_over_on_spot");
    return { element: handed.element, read: () => ({ handed_over_on_spot: handed.input.checked }) };
  },
  coercion_extension() {
    const notified = when("notified_at", "notified_at");
    return { element: notified.element, read: () => ({ notified_at: fromLocalInput(notified.input.value) }) };
  },
  coercion_testing_period() {
    const from = when("period_from", "period_from");
    const to = when("period_to", "period_to");
    const told = when("party_told_at", "party_told_at");
    return { element: [from.element, to.element, told.element],
             read: () => ({ period_from: fromLocalInput(from.input.value), period_to: fromLocalInput(to.input.value),
                            party_told_at: fromLocalInput(told.input.value) }) };
  },
};
// 民事诉讼法 art. 95: service by public notice only when the party cannot be found or the other
// ways failed; the answer is required, with no default.
FIELDS.penalty_service_by_notice = () => {
  const radios = ["whereabouts_unknown", "other_methods_failed"].map((value) =>
    h("input", { type: "radio", name: "notice_reason", value }));
  return {
    element: h("fieldset", {}, h("legend", {}, t("notice_reason")),
      radios.map((r) => h("label", { class: "check" }, r, t(`notice_${r.value}`)))),
    read: () => ({ notice_reason: radios.find((r) => r.checked)?.value || null }),
    problem: () => (radios.some((r) => r.checked) ? null : "notice_reason_needed"),
  };
};
FIELDS.penalty_on_the_spot_decision = FIELDS.penalty_decision;

// { element, read() → the extra payload fields, problem() → a string key or null } for a step type.
export function stepTypeFields(stepTypeId) {
  const made = FIELDS[stepTypeId]?.();
  if (!made) return { element: null, read: () => ({}), problem: () => null };
  return { element: h("div", { class: "step-type-fields", "data-testid": "step-type-fields" }, made.element),
           read: made.read, problem: made.problem || (() => null) };
}
