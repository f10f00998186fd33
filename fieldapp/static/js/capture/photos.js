// Photo and clip attachments for a form. Each file is stored the moment it is picked (hash,
// preview, EXIF, original bytes in one durable write), so a photo is safe before the form is saved.

import { h } from "./dom.js";
import { t } from "../i18n.js";
import { ingest } from "./media.js";
import { write, getAll } from "./store.js";
import { describeSaveError } from "./errors.js";

export function attachments(ownerId, { labelText, existing = [] } = {}) {
  const items = [...existing];
  const list = h("ul", { class: "thumbs", "data-testid": "attachments" });
  const status = h("p", { class: "message", role: "status" });

  function renderItem(item, note) {
    const thumb = item.preview
      ? h("img", { src: URL.createObjectURL(item.preview), alt: t("photo_preview"), width: 96 })
      : h("span", { class: "thumb-placeholder" }, item.type.split("/")[0]);
    const exifLine = item.exif?.takenAt ? `${t("exif_time")} ${item.exif.takenAt.replace("T", " ")}` : "";
    return h("li", { class: "thumb", dataset: { hash: item.hash } }, thumb,
      h("span", { class: "meta" }, `${Math.round(item.size / 1024)} KB`), h("span", { class: "meta" }, exifLine),
      h("span", { class: "saved-flag", "data-testid": "photo-saved" }, note));
  }

  async function onFiles(event) {
    const files = Array.from(event.target.files || []);
    event.target.value = "";
    for (const file of files) {
      status.textContent = t("saving");
      try {
        const item = await ingest(file);
        if (!items.some((i) => i.hash === item.hash)) {
          await write(["media"], ({ media }) => { media.put({ ...item, owner_id: ownerId }); });
          items.push(item);
          list.append(renderItem(item, t("saved")));
        }
        status.textContent = t("saved");
        list.dispatchEvent(new CustomEvent("attachment-saved", { bubbles: true, detail: item }));
      } catch (error) {
        status.textContent = describeSaveError(error);
        status.classList.add("error");
      }
    }
  }

  const photoInput = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true,
                                  class: "file-input", "data-testid": "photo-input", onchange: onFiles });
  const clipInput = h("input", { type: "file", accept: "video/*,audio/*", multiple: true,
                                 class: "file-input", "data-testid": "clip-input", onchange: onFiles });
  for (const item of items) list.append(renderItem(item, t("saved")));
  const element = h("fieldset", { class: "attachments" }, h("legend", {}, labelText || t("photos")),
    h("label", { class: "button" }, t("add_photo"), photoInput),
    h("label", { class: "button" }, t("add_clip"), clipInput),
    status, list);
  return { element, items: () => items.slice() };
}

// Media already stored for a record (for showing what an item holds).
export async function mediaOf(ownerId) {
  return getAll("media", "by_owner", ownerId);
}
