// A 居民身份证 number field for people (parties, recipients, witnesses), with its check (GB 11643)
// as a warning beside it, never a block: the officer writes what the card shows.

import { field, h } from "../dom.js";
import { t } from "../../i18n.js";
import { checkIdNumber, normaliseIdNumber } from "../idcard.js";

export function idNumberField(name, labelKey = "id_no") {
  const input = h("input", { name, maxlength: 24, autocomplete: "off", autocapitalize: "characters" });
  const note = h("p", { class: "hint", role: "status", "data-testid": "id-note" });
  input.addEventListener("input", () => {
    const result = checkIdNumber(input.value);
    note.classList.toggle("warning", result.status !== "valid" && result.status !== "empty");
    note.textContent = result.status === "empty" ? "" : t(`id_${result.status}`);
  });
  return { element: field(t(labelKey), input, note), read: () => normaliseIdNumber(input.value) || null };
}
