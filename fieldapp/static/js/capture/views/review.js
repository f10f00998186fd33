// The lead's decision on an activity, as the officer sees it, and the officer's answer: always a
// new revision (never an overwrite) — of the items it fixes, and of the activity itself carrying
// the answer, which puts the activity back in the lead's review queue.

import { field, h, mount } from "../dom.js";
import { t } from "../../i18n.js";
import { children, saveRevision } from "../records.js";
import { get, getMeta } from "../store.js";
import { backLink, navigate, saveWithFeedback, screen } from "../ui.js";
import { currentCatalogue } from "../server.js";
import { lookups, recordName } from "./saved.js";

export async function latestReview(activityId) {
  const reviews = await getMeta("reviews", {});
  return reviews[activityId] || null;
}

// What the activity view shows above the items: a return with its comment, or the approval.
export function reviewBanner(activityId, review) {
  if (!review) return null;
  if (review.action === "returned") {
    return h("div", { class: "banner warning", role: "alert", "data-testid": "review-returned" },
      h("strong", {}, t("returned_by_lead")), " ", review.comment || "",
      h("a", { href: `#/activities/${activityId}/answer`, class: "button", "data-testid": "answer-review" }, t("answer_review")));
  }
  if (review.action === "approved") return h("p", { class: "tag", "data-testid": "review-approved" }, t("approved_by_lead"));
  return null;
}

const needsReason = (r) => r.type === "step" && (r.payload.av_recorded === false || r.payload.av === "not_recorded")
  && !r.payload.av_reason;
const needsExplanation = (r) => r.type === "interruption" && !r.payload.cannot_continue && !r.payload.explanation;

export async function answerForm(root, activityId) {
  const activity = await get("records", activityId);
  const review = await latestReview(activityId);
  if (!activity || !review) return mount(root, backLink(`#/activities/${activityId}`), screen(t("not_found")));
  const items = (await children(activityId)).filter((r) => !r.payload.withdrawn);
  const look = lookups(await currentCatalogue());
  const fixes = items.filter((r) => needsReason(r) || needsExplanation(r)).map((record) => {
    const input = h("textarea", { rows: 2, maxlength: 2000, name: `fix-${record.id}`, "data-testid": "answer-fix" });
    const text = needsReason(record) ? t("av_reason") : t("explanation_on_resume");
    return { record, input, element: field(`${text} · ${recordName(record, look)}`, input) };
  });
  const answer = h("textarea", { rows: 3, maxlength: 2000, name: "answer", required: true, "data-testid": "answer-text" });
  const message = h("p", { class: "message", role: "status", "data-testid": "save-message" });
  const form = h("form", { class: "stack", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const text = answer.value.trim();
    if (!text) { message.textContent = t("answer_needed"); message.classList.add("error"); return; }
    const reason = `${t("answer_review")}: ${text}`;
    const saved = await saveWithFeedback(message, async () => {
      for (const { record, input } of fixes) {
        const value = input.value.trim();
        if (!value) continue;
        const payload = needsReason(record) ? { ...record.payload, av_reason: value } : { ...record.payload, explanation: value };
        await saveRevision({ id: record.id, type: record.type, head: record, payload, media: record.media, reason });
      }
      const head = await get("records", activityId);
      const answers = [...(head.payload.review_answers || []), { review_id: review.id, answer: text }];
      return saveRevision({ id: activityId, type: "activity", head, payload: { ...head.payload, review_answers: answers },
                            media: head.media, reason });
    });
    if (saved) navigate(`#/activities/${activityId}`);
  } },
  h("p", { "data-testid": "review-comment" }, `${t("returned_by_lead")} ${review.comment || ""}`),
  fixes.map((f) => f.element),
  field(t("your_answer"), answer),
  h("button", { type: "submit", class: "button primary big" }, t("save")), message);
  mount(root, backLink(`#/activities/${activityId}`), screen(t("answer_review"), form));
}
