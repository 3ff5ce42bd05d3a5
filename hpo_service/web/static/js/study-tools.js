// The study page's tools beyond lifecycle control, each one API call:
//  - budget: PATCH /api/studies/{name} {n_trials} (a completed study given more runs again);
//  - queue a fixed configuration: POST .../trials {params} (blank fields are sampled as usual);
//  - CSV export: GET .../trials.csv, downloaded with the token;
//  - predict: POST .../predict {inputs, trial?} from a text box or a CSV file's column.

import { api, download } from "./api.js";
import { fill, fmtNumber, fmtParam, h } from "./util.js";

function showError(el, error) {
  fill(el, h("span", { class: "error" }, (error.messages || [String(error.message || error)]).join("; ")));
}

/** "Budget: [N] trials [Set budget]"; onChange(study) after a successful PATCH. */
export function budgetForm(base, summary, onChange) {
  const input = h("input", { type: "number", name: "n_trials", min: "1", value: String(summary.total), class: "narrow", "aria-label": "trial budget" });
  const message = h("span", { class: "form-message inline-message", role: "status" });
  const form = h("form", { class: "inline-form budget-form", onsubmit: async (event) => {
    event.preventDefault();
    fill(message);
    try {
      const study = await api(base, { method: "PATCH", body: { n_trials: Number(input.value) } });
      const idle = study.state === "running" && !(study.counts && study.counts.RUNNING);
      fill(message, h("span", { class: "ok" }, `Budget set to ${fmtNumber(study.n_trials)} trials.${idle ? " Start workers to run the new ones." : ""}`));
      onChange(study);
    } catch (error) {
      showError(message, error);
    }
  } }, h("label", { class: "inline" }, "Budget ", input, " trials"), h("button", { type: "submit", class: "secondary", "data-action": "set-budget" }, "Set budget"), message);
  return { el: form, update: (s) => { if (document.activeElement !== input) input.value = String(s.total); } };
}

/** The CSV export button (all trials, or only the states the table filter shows). */
export function exportButton(base, name, message, states) {
  return h("button", { class: "secondary", "data-action": "export-csv", onclick: async () => {
    fill(message);
    try {
      await download(`${base}/trials.csv`, `${name}-trials.csv`, { state: states() });
    } catch (error) {
      showError(message, error);
    }
  } }, "Export CSV");
}

/** Turn a typed value into what the spec means: numbers, booleans, else the text. */
function typed(text) {
  const v = text.trim();
  if (v === "true" || v === "false") return v === "true";
  return v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
}

function spaceHint(entry) {
  if (Array.isArray(entry)) return entry.map(fmtParam).join(" | ");
  if (entry && typeof entry === "object" && "low" in entry) return `${fmtParam(entry.low)} … ${fmtParam(entry.high)}${entry.log ? " (log)" : ""}`;
  return `fixed ${fmtParam(entry)}`;
}

/** One field per search-space entry; POST .../trials with the filled ones. */
export function queueCard(base, spec, onQueued) {
  const space = (spec && spec.search_space) || {};
  const message = h("div", { class: "form-message", role: "status" });
  const inputs = Object.entries(space).map(([key, entry]) => {
    const input = h("input", { type: "text", name: `params.${key}`, placeholder: spaceHint(entry) });
    return { key, input, field: h("label", { class: "queue-field", dataset: { path: `params.${key}` } }, h("span", { class: "field-label" }, key), input, h("span", { class: "field-error error small" })) };
  });
  const form = h("form", { class: "queue-form", id: "queue-form", onsubmit: async (event) => {
    event.preventDefault();
    fill(message);
    inputs.forEach((i) => { i.field.classList.remove("invalid"); fill(i.field.querySelector(".field-error")); });
    const params = Object.fromEntries(inputs.filter((i) => i.input.value.trim()).map((i) => [i.key, typed(i.input.value)]));
    try {
      const answer = await api(`${base}/trials`, { method: "POST", body: { params } });
      fill(message, h("span", { class: "ok" }, `Queued; ${answer.waiting} configuration(s) waiting to run first.`));
      onQueued();
    } catch (error) {
      const fields = (error.body && error.body.errors) || [];
      for (const problem of fields) {
        const hit = inputs.find((i) => `params.${i.key}` === problem.field);
        if (hit) {
          hit.field.classList.add("invalid");
          fill(hit.field.querySelector(".field-error"), problem.message);
        }
      }
      showError(message, error);
    }
  } }, h("div", { class: "queue-grid" }, inputs.map((i) => i.field)),
  h("div", { class: "actions" }, h("button", { type: "submit", "data-action": "queue" }, "Queue configuration")), message);
  return h("details", { class: "card tool", id: "queue-card" }, h("summary", {}, h("h2", {}, "Queue a configuration")),
    h("p", { class: "muted small" }, "Evaluated before any sampled trial. Leave a field blank to let the sampler choose it."), form);
}

/** Rows of a small CSV (quoted fields, commas inside quotes), header first. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => r.some((v) => v.trim() !== ""));
}

/** Inputs for /predict from the text box: numbers for a series, one text per line, or JSON. */
function inputsFromText(kind, text) {
  if (kind === "forecasting") return text.split(/[\s,;]+/).filter(Boolean).map(Number);
  if (kind === "text_classification") return text.split("\n").map((l) => l.trim()).filter(Boolean);
  return JSON.parse(text);
}

export function predictCard(base, spec) {
  const kind = (spec && spec.task && spec.task.kind) || "forecasting";
  const hint = kind === "forecasting" ? `A series of numbers (at least ${spec.task.lookback ?? "lookback"}), separated by commas, spaces or new lines; the model predicts what follows.`
    : kind === "text_classification" ? "One text per line; each gets a predicted label." : "JSON: a list of sequences ([steps][features]).";
  const box = h("textarea", { name: "predict-inputs", rows: "4", placeholder: hint, "aria-label": "inputs" });
  const file = h("input", { type: "file", name: "predict-file", accept: ".csv,text/csv" });
  const column = h("select", { name: "predict-column", "aria-label": "CSV column", hidden: true });
  const trial = h("input", { type: "number", name: "predict-trial", min: "0", placeholder: "best", class: "narrow", "aria-label": "trial number" });
  const result = h("div", { class: "predict-result", id: "predict-result" });
  let csvRows = null;
  file.addEventListener("change", async () => {
    csvRows = file.files.length ? parseCsv(await file.files[0].text()) : null;
    const header = csvRows && csvRows.length ? csvRows[0] : [];
    fill(column, header.map((c, i) => h("option", { value: String(i), selected: /^(value|text|y)$/i.test(c) }, c)));
    column.hidden = !header.length;
  });
  const run = async (event) => {
    event.preventDefault();
    fill(result);
    try {
      let inputs;
      if (csvRows && csvRows.length > 1) {
        const index = Number(column.value || 0);
        const cells = csvRows.slice(1).map((r) => r[index] ?? "");
        inputs = kind === "forecasting" ? cells.map(Number) : cells;
      } else {
        inputs = inputsFromText(kind, box.value);
      }
      const body = { inputs, ...(trial.value.trim() ? { trial: Number(trial.value) } : {}) };
      const answer = await api(`${base}/predict`, { method: "POST", body });
      showPredictions(result, answer, inputs);
    } catch (error) {
      showError(result, error instanceof SyntaxError ? { messages: [`inputs: not valid JSON (${error.message})`] } : error);
    }
  };
  return h("details", { class: "card tool", id: "predict-card" }, h("summary", {}, h("h2", {}, "Predict")),
    h("p", { class: "muted small" }, hint, " Or pick a CSV file and the column to use."),
    h("form", { class: "predict-form", onsubmit: run }, box,
      h("div", { class: "inline-form" }, h("label", {}, "CSV ", file), column, h("label", {}, "Trial ", trial),
        h("button", { type: "submit", "data-action": "predict" }, "Predict"))),
    result);
}

function showPredictions(el, answer, inputs) {
  const preds = answer.predictions || [];
  const textual = answer.kind !== "forecasting" && preds.length === inputs.length;
  fill(el, h("p", { class: "ok" }, `${preds.length} prediction(s) from trial #${answer.trial}.`),
    h("div", { class: "table-wrap" }, h("table", { class: "table predictions" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), textual ? h("th", {}, "input") : null, h("th", {}, "prediction"))),
      h("tbody", {}, preds.slice(0, 200).map((p, i) => h("tr", {}, h("td", { class: "num" }, i + 1),
        textual ? h("td", { class: "clip" }, typeof inputs[i] === "string" ? inputs[i] : JSON.stringify(inputs[i])) : null,
        h("td", { class: "num" }, typeof p === "object" && p !== null ? JSON.stringify(p) : fmtParam(p))))))));
}
