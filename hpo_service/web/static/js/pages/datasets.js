// Datasets: upload a CSV (POST /api/datasets, multipart: file, kind, name and the column mapping
// the kind needs), list uploads (GET /api/datasets) and delete one. The API validates the file
// (encoding, columns, rows, classes) and its messages are shown beside the field they name.

import { api, itemsOf } from "../api.js";
import { fill, fmtNumber, fmtTime, h } from "../util.js";

const KINDS = {
  forecasting: ["value_column", "time_column"],
  text_classification: ["text_column", "label_column"],
  sequence_classification: ["label_column", "feature_columns"],
};
const HINTS = {
  value_column: "default: value", time_column: "optional: sorts the rows", text_column: "default: text",
  label_column: "default: label", feature_columns: "comma-separated; default: every other column",
};

function field(name, label, control, hint) {
  return h("div", { class: "field", dataset: { path: name } }, h("span", { class: "field-label" }, label), control,
    hint ? h("span", { class: "hint" }, hint) : null, h("span", { class: "field-error error" }));
}

export async function render(root, _args, scope) {
  const body = h("tbody");
  const message = h("div", { class: "form-message", role: "status", id: "upload-message" });
  const kind = h("select", { name: "kind" }, Object.keys(KINDS).map((k) => h("option", { value: k }, k)));
  const columns = h("div", { class: "columns" });
  const renderColumns = () => fill(columns, KINDS[kind.value].map((c) => field(c, c.replace("_", " "), h("input", { type: "text", name: c }), HINTS[c])));
  kind.addEventListener("change", renderColumns);
  renderColumns();
  const form = h("form", { id: "upload-form", class: "upload-form", onsubmit: upload },
    field("file", "CSV file", h("input", { type: "file", name: "file", accept: ".csv,text/csv", required: true }), "UTF-8 with a header row"),
    field("kind", "Task kind", kind),
    field("name", "Name", h("input", { type: "text", name: "name", placeholder: "default: the file name" })),
    columns,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "upload-submit" }, "Upload")), message);

  fill(root,
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h1", {}, "Datasets")),
      h("p", { class: "muted" }, "Uploaded CSVs. Use a dataset in a study spec as ", h("code", {}, "task.dataset: upload:<id>"), "."),
      h("div", { class: "table-wrap" }, h("table", { class: "table datasets-table" },
        h("thead", {}, h("tr", {}, ["Dataset", "Name", "Kind", "Rows", "Columns", "Uploaded", ""].map((c) => h("th", {}, c)))), body))),
    h("section", { class: "card" }, h("h2", {}, "Upload a CSV"), form));

  async function upload(event) {
    event.preventDefault();
    fill(message);
    form.querySelectorAll(".field").forEach((f) => { f.classList.remove("invalid"); fill(f.querySelector(".field-error")); });
    const data = new FormData();
    for (const el of form.querySelectorAll("input, select")) {
      if (el.type === "file") {
        if (el.files.length) data.append("file", el.files[0]);
      } else if (el.value.trim()) {
        data.append(el.name, el.value.trim());
      }
    }
    try {
      const info = await api("/api/datasets", { method: "POST", body: data });
      await load();
      fill(message, h("span", { class: "ok" }, `Uploaded ${info.name}: ${fmtNumber(info.rows)} rows. Use `, h("code", {}, info.dataset), " as task.dataset."));
    } catch (error) {
      const problems = (error.body && error.body.errors) || [];
      for (const p of problems) {
        const target = form.querySelector(`.field[data-path='${CSS.escape(p.field)}']`);
        if (target) {
          target.classList.add("invalid");
          fill(target.querySelector(".field-error"), `${p.field}: ${p.message}`);
        }
      }
      fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
    }
  }

  async function remove(id) {
    if (!confirm(`Delete dataset ${id}?`)) return;
    try {
      await api(`/api/datasets/${encodeURIComponent(id)}`, { method: "DELETE" });
      await load();
    } catch (error) {
      fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
    }
  }

  async function load() {
    const rows = itemsOf(await api("/api/datasets"), "datasets");
    if (!scope.alive) return;
    fill(body, rows.length ? rows.map((d) => h("tr", { dataset: { dataset: d.id } },
      h("td", { class: "mono" }, d.dataset), h("td", {}, d.name), h("td", {}, d.kind), h("td", { class: "num" }, fmtNumber(d.rows)),
      h("td", { class: "muted clip" }, (d.header || []).join(", ")), h("td", { class: "muted" }, fmtTime(d.created_at)),
      h("td", {}, h("button", { class: "secondary danger", onclick: () => remove(d.id) }, "Delete"))))
      : h("tr", {}, h("td", { colspan: "7", class: "muted empty" }, "No uploads yet.")));
  }
  await load();
}
