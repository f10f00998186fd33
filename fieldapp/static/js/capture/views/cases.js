// The case list (server cases cached while online, plus cases opened on this phone) with the
// deadlines due soon above it, and the form to open a case on site.

import { h, field, label, mount, showTime } from "../dom.js";
import { t } from "../../i18n.js";
import { recordsOfType, saveRevision, children } from "../records.js";
import { currentCatalogue, serverCases } from "../server.js";
import { checkCreditCode } from "../creditcode.js";
import { idNumberField } from "./idfield.js";
import { caseDeadlines, deadlinesOf, dueSoon } from "../deadlines.js";
import { badge, backLink, navigate, saveWithFeedback, screen, setCaptureInProgress } from "../ui.js";
import { footageBadge, footageByActivity, refreshBadgesWhenOnline } from "../footage.js";
import { request } from "../http.js";

export async function allCases() {
  const [server, local] = await Promise.all([serverCases(), recordsOfType("case")]);
  const serverById = new Map(server.map((c) => [c.id, c]));
  const fromServer = server.map((c) => ({ id: c.id, source: "server", kind: c.kind, party_name: c.party_name,
                                          case_number: c.case_number, flags: c.flags || [], record: null,
                                          party_credit_code: c.party_credit_code || null, party_address: c.party_address || null,
                                          assigned: Boolean(c.assigned_to_me), deadlines: deadlinesOf(c),
                                          desk_steps: Array.isArray(c.desk_steps) ? c.desk_steps : [] }));
  // A case opened here that the server already holds runs the deadlines the server sent for it.
  const fromPhone = local.filter((r) => !r.payload.withdrawn).map((r) => ({
    id: r.id, source: "phone", kind: r.payload.kind, party_name: r.payload.party_name,
    case_number: r.payload.case_number, flags: r.payload.flags || [], record: r,
    party_credit_code: r.payload.credit_code || null, party_address: r.payload.address || null,
    deadlines: deadlinesOf(serverById.get(r.id)),
    desk_steps: Array.isArray(serverById.get(r.id)?.desk_steps) ? serverById.get(r.id).desk_steps : [] }));
  return [...fromPhone, ...fromServer];
}

export async function findCase(caseId) {
  return (await allCases()).find((c) => c.id === caseId) || null;
}

const DEADLINE_TAG = {
  overdue: ["tag danger", "deadline_overdue"], due_today: ["tag warn", "deadline_due_today"],
  due_soon: ["tag warn", "deadline_due_soon"],
};

// The status of a deadline as a tag; a deadline not yet warned of ("later") has none.
function deadlineTag(status) {
  const tag = DEADLINE_TAG[status];
  return tag ? h("span", { class: tag[0], "data-testid": "deadline-tag" }, t(tag[1])) : null;
}

const deadlineText = (deadline) =>
  `${label(deadline) || deadline.key || ""} · ${t("deadline_due_by")} ${showTime(deadline.due_at)}`;

// The deadlines of the unit's open cases that warn now, from the cases of the last pull (so also
// offline): nothing at all when none does.
function dueSoonSection(cases) {
  const due = dueSoon(cases.filter((c) => c.source === "server"), new Date());
  if (!due.length) return null;
  return h("section", { class: "due-soon", "aria-labelledby": "due-soon-title" },
    h("h2", { id: "due-soon-title" }, t("deadlines_due_soon")),
    h("ul", { class: "list", "data-testid": "due-soon" }, due.map(({ case: c, deadline, status }) =>
      h("li", { class: "row", "data-testid": "due-soon-item", "data-status": status },
        h("a", { href: `#/cases/${c.id}`, class: "row-link" },
          h("strong", {}, c.party_name), h("span", { class: "meta" }, deadlineText(deadline))),
        deadlineTag(status)))));
}

export async function casesView(root) {
  const [cases, catalogue] = await Promise.all([allCases(), currentCatalogue()]);
  const kinds = Object.fromEntries((catalogue?.kinds || []).map((k) => [k.id, k]));
  const items = cases.map((c) => h("li", { class: "row" },
    h("a", { href: `#/cases/${c.id}`, class: "row-link", "data-testid": "case-link" },
      h("strong", {}, c.party_name),
      h("span", { class: "meta" }, ` ${label(kinds[c.kind])} ${c.case_number || t("no_case_number")}`)),
    c.record ? badge(c.record) : h("span", { class: "tag" }, t("from_server")),
    c.assigned ? h("span", { class: "tag", "data-testid": "assigned-to-me" }, t("assigned_to_me")) : null));
  mount(root, screen(t("cases"),
    catalogue ? null : h("p", { class: "warning" }, t("no_catalogue")),
    dueSoonSection(cases),
    h("a", { href: "#/cases/new", class: "button primary big" }, t("new_case")),
    h("ul", { class: "list" }, items.length ? items : h("li", {}, t("no_cases")))));
  // The visits' footage state, fetched now (when online) so a case opened next shows it.
  refreshBadgesWhenOnline(request);
}

// ``fromCaseId``: a penalty case opened on the spot from an inspection (to take 先行登记保存 or a
// measure there): the party is carried over and the new case names the inspection it came from.
export async function newCaseForm(root, fromCaseId = null) {
  const [catalogue, source] = await Promise.all([currentCatalogue(), fromCaseId ? findCase(fromCaseId) : null]);
  if (!catalogue) return mount(root, screen(t("new_case"), h("p", { class: "warning" }, t("no_catalogue"))));
  const kind = h("select", { name: "kind", required: true },
    catalogue.kinds.map((k) => h("option", { value: k.id }, label(k))));
  const party = h("input", { name: "party_name", required: true, maxlength: 200, autocomplete: "off",
                             value: source?.party_name || "" });
  const credit = h("input", { name: "credit_code", maxlength: 18, autocomplete: "off", autocapitalize: "characters",
                              value: source?.party_credit_code || "" });
  if (source) kind.value = "penalty";
  const creditNote = h("p", { class: "hint", role: "status", "data-testid": "credit-code-note" });
  const address = h("input", { name: "address", maxlength: 300, value: source?.party_address || "" });
  const partyId = idNumberField("party_id_number", "party_id_number");
  const number = h("input", { name: "case_number", maxlength: 60 });
  const flags = catalogue.case_flags.map((f) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "flags", value: f.id }), label(f)));
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });

  credit.addEventListener("input", () => {
    const result = checkCreditCode(credit.value);
    creditNote.classList.toggle("warning", result.status === "bad_check" || result.status === "bad_format");
    creditNote.textContent = result.status === "empty" ? "" : t(`credit_${result.status}`);
  });

  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!party.value.trim()) { message.textContent = t("party_required"); message.classList.add("error"); return; }
    const payload = {
      kind: kind.value, party_name: party.value.trim(), credit_code: credit.value.trim().toUpperCase() || null,
      address: address.value.trim() || null, case_number: number.value.trim() || null,
      flags: flags.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value),
      linked_case_id: source ? source.id : null,
      party_id_number: partyId.read(),
    };
    const saved = await saveWithFeedback(message, () => saveRevision({ id: null, type: "case", payload }).then((r) => r));
    if (saved) { setCaptureInProgress(false); navigate(`#/cases/${saved.id}`); }
  } },
    field(t("case_kind"), kind), field(t("party_name"), party), field(t("credit_code"), credit, creditNote),
    partyId.element, field(t("party_address"), address), field(t("case_number_optional"), number),
    h("fieldset", {}, h("legend", {}, t("continuous_flags")), flags),
    h("button", { type: "submit", class: "button primary big" }, t("save")), message);
  setCaptureInProgress(true);
  mount(root, backLink("#/"), screen(t("new_case"), form));
}

export async function caseView(root, caseId) {
  const [found, catalogue] = await Promise.all([findCase(caseId), currentCatalogue()]);
  if (!found) return mount(root, backLink("#/"), screen(t("not_found")));
  const kinds = Object.fromEntries((catalogue?.kinds || []).map((k) => [k.id, k]));
  const [activities, footage] = await Promise.all([children(caseId, "activity"), footageByActivity()]);
  // Steps made at the desk belong to the case itself (no visit): the payload names it.
  // Made here (with their sync badge), and made elsewhere by the unit (from the last pull).
  const mine = (await recordsOfType("step")).filter((r) => !r.parent_id && r.payload.case_id === caseId);
  const known = new Set(mine.map((r) => r.id));
  const deskSteps = [...mine.filter((r) => !r.withdrawn),
    ...(found.desk_steps || []).filter((s) => !known.has(s.id))
      .map((s) => ({ id: s.id, payload: { step_type: s.step_type, at: s.at }, author: s.author }))]
    .sort((a, b) => (a.payload.at || "").localeCompare(b.payload.at || ""));
  const stepTypes = Object.fromEntries((catalogue?.step_types || []).map((s) => [s.id, s]));
  const deadlines = caseDeadlines(found, new Date());
  mount(root, backLink("#/"), screen(found.party_name,
    h("p", { class: "meta" }, `${label(kinds[found.kind])} · ${found.case_number || t("no_case_number")}`),
    found.record ? h("p", {}, badge(found.record), " ", t("case_proposal_note")) : null,
    deadlines.length ? [h("h2", {}, t("deadlines")), h("ul", { class: "list" }, deadlines.map(({ deadline, status }) =>
      h("li", { class: "row", "data-testid": "case-deadline", "data-status": status },
        h("span", { class: "row-text" }, deadlineText(deadline)), deadlineTag(status))))] : null,
    h("a", { href: `#/cases/${caseId}/activity/new`, class: "button primary big" }, t("start_activity")),
    h("a", { href: `#/cases/${caseId}/desk-step/new`, class: "button", "data-testid": "desk-step-link" }, t("desk_step")),
    found.kind === "inspection"
      ? h("a", { href: `#/cases/new?from=${caseId}`, class: "button", "data-testid": "open-penalty-case" }, t("open_penalty_case"))
      : null,
    deskSteps.length ? [h("h2", {}, t("desk_steps")), h("ul", { class: "list", "data-testid": "desk-steps" }, deskSteps.map((r) =>
      h("li", { class: "row", "data-testid": "desk-step" }, `${label(stepTypes[r.payload.step_type]) || r.payload.step_type} · ${showTime(r.payload.at)}`,
        r.author ? ` · ${r.author}` : "", r.status ? badge(r) : null)))] : null,
    h("h2", {}, t("activities")),
    h("ul", { class: "list" }, activities.length ? activities.map((a) => h("li", { class: "row" },
      h("a", { href: `#/activities/${a.id}`, class: "row-link", "data-testid": "activity-link" },
        `${t("arrived")} ${new Date(a.payload.arrived_at).toLocaleString()}`,
        a.payload.departed_at ? ` – ${new Date(a.payload.departed_at).toLocaleTimeString()}` : ` (${t("in_progress")})`),
      badge(a),
      // What became of the visit's body-camera footage, as the server said when last online.
      h("span", { dataset: { footageFor: a.id } }, footageBadge(footage.get(a.id))))) : h("li", {}, t("no_activities")))));
  if (activities.length) refreshBadgesWhenOnline(request);
}
