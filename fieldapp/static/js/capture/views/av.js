// The audio/video answer of a step or a service by leaving: a clip attached, a named body camera, or
// not recorded (with the reason). No answer is chosen beforehand: where the rules require audio or
// video, the officer must say which it was; a pre-selected "yes" would say it for them.

import { field, h } from "../dom.js";
import { t } from "../../i18n.js";

export const AV_CHOICES = ["clip", "body_camera", "not_recorded"];
const OTHER = ""; // the select's "another camera" option: the camera number is then typed

export const isClip = (item) => /^(video|audio)\//.test(item?.type || "");

// cameras: the activity's body camera ids. Returns { element, setNote(text, required), read(),
// problem(hasClip) } where problem() names the string to show, or null when the answer is complete.
export function avQuestion({ cameras = [], testId = "av-question" } = {}) {
  let required = false;
  const radios = AV_CHOICES.map((value) => h("input", { type: "radio", name: "av", value }));
  const note = h("p", { class: "hint", "data-testid": "av-note" });
  const cameraSelect = h("select", { name: "av_camera_id" },
    cameras.map((id) => h("option", { value: id }, id)), h("option", { value: OTHER }, t("av_camera_other")));
  const otherCamera = h("input", { name: "av_camera_other", maxlength: 60 });
  const otherField = field(t("av_camera_other_id"), otherCamera);
  const cameraField = h("div", {}, field(t("camera_id"), cameraSelect), otherField);
  const reason = h("input", { name: "av_reason", maxlength: 300 });
  // Plainly: not recording is not a way out of the rule, only something a lead may accept.
  const reasonField = field(t("av_reason"), reason,
    h("p", { class: "warning", "data-testid": "av-not-recorded-note" }, t("av_not_recorded_note")));

  const chosen = () => radios.find((r) => r.checked)?.value || null;
  const follow = () => {
    const value = chosen();
    cameraField.hidden = value !== "body_camera";
    otherField.hidden = cameraSelect.value !== OTHER;
    reasonField.hidden = value !== "not_recorded";
  };
  radios.forEach((r) => r.addEventListener("change", follow));
  cameraSelect.addEventListener("change", follow);
  follow();

  const labels = { clip: "av_clip", body_camera: "av_body_camera", not_recorded: "av_not_recorded" };
  const element = h("fieldset", { "data-testid": testId }, h("legend", {}, t("av_question")), note,
    radios.map((r) => h("label", { class: "check" }, r, t(labels[r.value]))), cameraField, reasonField);

  const camera = () => (cameraSelect.value === OTHER ? otherCamera.value.trim() : cameraSelect.value) || null;
  return {
    element,
    setNote(text, isRequired) {
      required = Boolean(isRequired);
      note.textContent = text || (required ? "" : t("av_optional"));
    },
    read() {
      const value = chosen();
      return { av: value, av_camera_id: value === "body_camera" ? camera() : null,
               av_reason: value === "not_recorded" ? reason.value.trim() || null : null };
    },
    problem(hasClip) {
      const answer = this.read();
      if (!answer.av) return required ? "av_answer_needed" : null;
      if (answer.av === "clip" && !hasClip) return "av_clip_needed";
      if (answer.av === "body_camera" && !answer.av_camera_id) return "av_camera_needed";
      if (answer.av === "not_recorded" && !answer.av_reason) return "av_reason_missing";
      return null;
    },
    focus() { (radios.find((r) => r.checked) || radios[0]).focus(); },
  };
}

// How a saved answer reads (old phones wrote av_recorded true/false).
export function avSummary(p) {
  if (p.av === "clip") return t("av_clip");
  if (p.av === "body_camera") return `${t("av_body_camera")}${p.av_camera_id ? ` · ${p.av_camera_id}` : ""}`;
  if (p.av === "not_recorded") return t("av_not_recorded");
  if (p.av_recorded === true) return t("av_body_camera");
  if (p.av_recorded === false) return t("av_not_recorded");
  return null;
}
