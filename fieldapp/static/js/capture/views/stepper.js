// A form in steps, one section shown at a time, for forms too tall for a phone's screen (留置送达,
// 现场笔录, 询问笔录).

import { h } from "../dom.js";
import { t } from "../../i18n.js";

// Steps as sections of one form, one shown at a time; 上一步 keeps everything typed. (The buttons
// are not pinned to the bottom of the screen: there they would cover part of a signature pad.)
export function stepper(sections, { onShow, testid = "service-progress" }) {
  let current = 0;
  const progress = h("p", { class: "step-progress", "data-testid": testid, "aria-live": "polite" });
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
