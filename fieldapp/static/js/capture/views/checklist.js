// The documents checklist of a step, from the catalogue: every document the step type names, the
// one-of groups shown together ("one of: A / B"), conditional ones with the condition they depend
// on, and for each document not produced a "not applicable" mark with its reason. A catalogue from
// before version 2 has no one_of / conditional / document_conditions: every document is then
// required, as it always was.

import { field, h, label } from "../dom.js";
import { t } from "../../i18n.js";

function documentRow(name, { condition = null, required = false }) {
  const produced = h("input", { type: "checkbox", name: "documents", value: name });
  const na = h("input", { type: "checkbox", name: "document_na", value: name });
  const reason = h("input", { name: "document_na_reason", maxlength: 300, "aria-label": `${t("document_na_reason")} · ${name}` });
  const reasonField = field(t("document_na_reason"), reason,
    required ? h("p", { class: "hint", "data-testid": "document-na-lead" }, t("document_na_lead")) : null);
  // Produced and not applicable exclude each other: only a document not ticked can be marked.
  const follow = () => {
    na.disabled = produced.checked;
    produced.disabled = na.checked;
    reasonField.hidden = !na.checked;
  };
  produced.addEventListener("change", follow);
  na.addEventListener("change", follow);
  follow();
  const row = h("div", { class: "doc-row", "data-testid": "document-row", dataset: { document: name } },
    h("label", { class: "check" }, produced, name),
    condition ? h("p", { class: "hint", "data-testid": "document-condition" }, `${t("document_applies_when")}：${condition}`) : null,
    h("label", { class: "check" }, na, t("document_na")), reasonField);
  row.read = () => ({ name, produced: produced.checked, na: na.checked, reason: reason.value.trim() });
  return row;
}

export function documentsChecklist(catalogue) {
  const element = h("div", { class: "documents", "data-testid": "documents" });
  let rows = [];
  const conditions = Object.fromEntries((catalogue?.document_conditions || []).map((c) => [c.id, c]));

  function render(type) {
    const names = type?.documents || [];
    const groups = (type?.one_of || []).filter((g) => Array.isArray(g) && g.length);
    const conditional = new Map((type?.conditional || []).map((c) => [c.document, c.when]));
    const grouped = new Set(groups.flat());
    const plain = names.filter((d) => !grouped.has(d) && !conditional.has(d));
    rows = [];
    const make = (name, options) => { const row = documentRow(name, options); rows.push(row); return row; };
    element.replaceChildren(
      ...plain.map((d) => make(d, { required: true })),
      ...groups.map((group) => h("fieldset", { class: "one-of", "data-testid": "document-one-of" },
        h("legend", {}, `${t("documents_one_of")}：${group.join(" / ")}`),
        group.map((d) => make(d, { required: true })))),
      ...[...conditional.keys()].filter((d) => !grouped.has(d)).map((d) => {
        const when = conditional.get(d);
        return make(d, { condition: label(conditions[when]) || when });
      }));
  }

  return {
    element,
    render,
    read() {
      const all = rows.map((r) => r.read());
      return { documents: all.filter((r) => r.produced).map((r) => r.name),
               documents_na: all.filter((r) => r.na).map((r) => ({ name: r.name, reason: r.reason })) };
    },
    problem() {
      return rows.some((r) => { const x = r.read(); return x.na && !x.reason; }) ? "document_na_reason_needed" : null;
    },
  };
}
