// A note card (study or trial): GET .../notes shows the markdown rendered safely (markdown.js),
// "Edit" swaps in a textarea, "Save" sends PUT .../notes (needs the token; the API asks for it).
// The note is fetched when the card scrolls into view, so a page's first view asks for no more
// than it shows.

import { api } from "./api.js";
import { renderMarkdown } from "./markdown.js";
import { fill, fmtTime, h } from "./util.js";

/** A card for the note at `path` (…/notes), filled when it first becomes visible. */
export function notesCard(path, title = "Notes") {
  const view = h("div", { class: "note-view" });
  const meta = h("span", { class: "muted small note-meta" });
  const message = h("div", { class: "form-message", role: "status" });
  const edit = h("button", { class: "secondary", "data-action": "edit-note" }, "Edit");
  const card = h("section", { class: "card notes" }, h("div", { class: "card-head" }, h("h2", {}, title), meta, edit), view, message);
  let note = { text: "", updated_at: null };

  const show = () => {
    fill(view, note.text ? renderMarkdown(note.text) : h("p", { class: "muted" }, "No note yet. Notes are markdown; anyone with the API token can edit them."));
    meta.textContent = note.updated_at ? `edited ${fmtTime(note.updated_at)}` : "";
    edit.hidden = false;
  };
  edit.addEventListener("click", () => {
    const area = h("textarea", { name: "note", rows: "6", class: "note-text", "aria-label": title }, note.text);
    const save = h("button", { "data-action": "save-note", onclick: async () => {
      fill(message);
      try {
        note = await api(path, { method: "PUT", body: { text: area.value } });
        show();
      } catch (error) {
        fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
      }
    } }, "Save");
    const cancel = h("button", { class: "secondary", onclick: () => { fill(message); show(); } }, "Cancel");
    fill(view, area, h("div", { class: "actions" }, cancel, save), h("p", { class: "muted small" }, "Markdown: # heading, **bold**, *italic*, `code`, - lists, [link](https://…). HTML is shown as text."));
    edit.hidden = true;
    area.focus();
  });
  const load = async () => {
    try {
      note = await api(path);
      show();
      card.dataset.loaded = "true";
    } catch (error) {
      fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
    }
  };
  fill(view, h("p", { class: "muted" }, "Loading the note…"));
  edit.hidden = true;
  const watcher = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) {
      watcher.disconnect();
      load();
    }
  });
  watcher.observe(card);
  return card;
}
