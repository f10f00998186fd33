// A record the server did not take as it is: a conflict (the server holds another head) shows both
// versions and lets the officer resolve it with a new revision on top of the server's head; a
// rejection shows why. The local revision is never thrown away.

import { h, mount } from "../dom.js";
import { t } from "../../i18n.js";
import { get, write } from "../store.js";
import { saveRevision, STATUS } from "../records.js";
import { backLink, navigate, saveWithFeedback, screen } from "../ui.js";
import { currentCatalogue } from "../server.js";
import { fieldList, lookups } from "./saved.js";

export async function problemView(root, recordId) {
  const record = await get("records", recordId);
  if (!record?.problem) return mount(root, backLink("#/"), screen(t("not_found")));
  const back = record.type === "activity" ? `#/activities/${record.id}`
    : record.type === "case" ? `#/cases/${record.id}` : record.type === "camera_use" ? "#/cameras"
      : `#/activities/${record.parent_id}`;
  const problem = record.problem;
  // Both versions with the field names an officer knows, not the payload's keys.
  const look = lookups(await currentCatalogue());
  const fields = (payload) => fieldList(record.type, payload, look);
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  if (problem.kind !== "conflict" || !problem.server_head) {
    return mount(root, backLink(back), screen(t("status_problem"),
      h("p", { class: "warning", "data-testid": "problem-reason" }, `${problem.error}: ${problem.message || ""}`),
      h("p", {}, t("problem_kept")), fields(record.payload)));
  }
  const server = problem.server_head;
  const keepMine = async () => {
    // A new revision on top of the server's head, carrying the officer's content, with a reason.
    const head = { ...record, revision: server.revision };
    const saved = await saveWithFeedback(message, () => saveRevision({
      id: recordId, type: record.type, head, localRevision: record.revision, payload: record.payload,
      media: record.media, reason: "conflict_resolved_keep_mine" }));
    if (saved) navigate(back);
  };
  const takeServer = async () => {
    await write(["records"], ({ records }) => {
      records.put({ ...record, revision: server.revision, payload: server.payload, status: STATUS.SYNCED, problem: null });
    });
    navigate(back);
  };
  mount(root, backLink(back), screen(t("conflict_title"),
    h("p", {}, t("conflict_explained")),
    h("div", { class: "compare" },
      h("section", { "data-testid": "mine" }, h("h2", {}, t("my_version")), fields(record.payload)),
      h("section", { "data-testid": "theirs" }, h("h2", {}, `${t("server_version")} #${server.revision}`), fields(server.payload))),
    h("button", { type: "button", class: "button primary big", onclick: keepMine }, t("keep_mine")),
    h("button", { type: "button", class: "button big", onclick: takeServer }, t("take_server")), message));
}
