// Create a study: a form over the study spec, sent as JSON to POST /api/studies. The API's 422
// messages start with the dotted field path ("search_space.learning_rate: low (0.1) must not
// exceed high (0.01)"); each is shown next to the field whose data-path is its longest prefix.
// Inputs are plain text so that whatever the user typed reaches the API and its message.

import { api, itemsOf } from "../api.js";
import { fill, h, studyHref } from "../util.js";
import { deviceSelect, startWorkers } from "../workers-control.js";

const BUILTIN = {
  sunspots: "forecasting",
  co2: "forecasting",
  digits: "sequence_classification",
  sst2: "text_classification",
  sms_spam: "text_classification",
};
const KINDS = ["forecasting", "sequence_classification", "text_classification"];
const CLASSIFICATION = ["accuracy", "f1", "f1_macro", "precision", "recall", "precision_macro", "recall_macro", "loss", "n_params"];
const METRICS = {
  forecasting: ["rmse", "mae", "mape", "loss", "n_params"],
  sequence_classification: CLASSIFICATION,
  text_classification: CLASSIFICATION,
};
const OPTIMIZERS = ["sgd", "momentum", "adam", "adamw", "rmsprop"];
const CELLS = ["lstm", "gru"];
const SAMPLERS = ["tpe", "random", "grid", "cmaes", "gp", "nsga2"];
const PRUNERS = ["median", "successive_halving", "hyperband", "none"];

function text(name, value = "", attrs = {}) {
  return h("input", { type: "text", name, id: `f-${name}`, value, autocomplete: "off", spellcheck: false, ...attrs });
}
function num(name, value = "", attrs = {}) {
  return text(name, value, { inputmode: "decimal", class: "narrow", ...attrs });
}
function select(name, options, value) {
  return h("select", { name, id: `f-${name}` }, options.map((o) => h("option", { value: o, selected: o === value }, o || "—")));
}
function checks(name, options, checked) {
  return h("div", { class: "checks", role: "group" }, options.map((o) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name, value: o, checked: checked.includes(o) }), ` ${o}`)));
}
/** A labelled field; `path` is the spec path whose errors appear under it. */
function field(path, label, control, hint) {
  return h("div", { class: "field", dataset: { path } },
    h("label", { class: "field-label", for: control.id || undefined }, label),
    h("div", { class: "field-control" }, control),
    hint ? h("div", { class: "hint" }, hint) : null,
    h("div", { class: "field-error", role: "alert" }));
}
function group(path, title, ...fields) {
  return h("fieldset", { class: "group", dataset: path ? { path } : undefined },
    h("legend", {}, title), ...fields, h("div", { class: "field-error group-error", role: "alert" }));
}
function range(prefix, low, high, extra) {
  return h("div", { class: "range" }, num(`${prefix}.low`, low, { "aria-label": `${prefix} low` }),
    h("span", { class: "muted" }, "to"), num(`${prefix}.high`, high, { "aria-label": `${prefix} high` }), extra || null);
}

/** "32, 64,128" -> [32, 64, 128]; items that are not numbers stay strings (the API says why). */
function list(raw) {
  return raw.split(/[\s,]+/).filter(Boolean).map((s) => (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(s) ? Number(s) : s));
}
function value(raw) {
  const s = raw.trim();
  if (s === "") return undefined;
  return /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : s;
}

/** One choice is a fixed value, not a search dimension. */
function oneOrMany(values) {
  return values.length === 1 ? values[0] : values;
}

export function buildSpec(form) {
  const get = (name) => (form.elements.namedItem(name) ? form.elements.namedItem(name).value : "");
  const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((el) => el.value);
  const prune = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
  const rangeOf = (prefix, extra = {}) => {
    const low = value(get(`${prefix}.low`));
    const high = value(get(`${prefix}.high`));
    if (low === undefined && high === undefined) return undefined;
    if (high === undefined) return low; // a fixed value
    return prune({ low, high, ...extra });
  };
  const metric2 = get("task.metric2");
  const spec = {
    name: get("name").trim(),
    description: get("description").trim() || undefined,
    task: prune({
      dataset: get("task.dataset").trim(),
      kind: get("task.kind"),
      metric: metric2 ? [get("task.metric"), metric2] : get("task.metric"),
      lookback: get("task.kind") === "forecasting" ? value(get("task.lookback")) : undefined,
      max_train_samples: value(get("task.max_train_samples")),
    }),
    search_space: prune({
      learning_rate: rangeOf("search_space.learning_rate", { log: form.elements.namedItem("search_space.learning_rate.log").checked }),
      batch_size: get("search_space.batch_size").trim() ? list(get("search_space.batch_size")) : undefined,
      hidden_units: rangeOf("search_space.hidden_units"),
      num_layers: rangeOf("search_space.num_layers"),
      dropout: rangeOf("search_space.dropout"),
      optimizer: oneOrMany(checked("search_space.optimizer")),
      cell: oneOrMany(checked("search_space.cell")),
    }),
    budget: prune({
      n_trials: value(get("budget.n_trials")),
      max_epochs: value(get("budget.max_epochs")),
      timeout_s: value(get("budget.timeout_s")),
      patience: value(get("budget.patience")),
    }),
    sampler: prune({ type: get("sampler.type"), seed: value(get("sampler.seed")) }),
    pruner: prune({
      type: get("pruner.type"),
      n_startup_trials: value(get("pruner.n_startup_trials")),
      n_warmup_steps: value(get("pruner.n_warmup_steps")),
    }),
  };
  return prune(spec);
}

/** The dotted path a message blames ("search_space.batch_size[1]: ..." -> that path), or "". */
export function messagePath(message) {
  const match = /^([A-Za-z_][\w.[\]]*):\s/.exec(message);
  return match ? match[1].replace(/\[\d+\]/g, "") : "";
}

/** Show messages next to the fields; returns the ones no field claimed. */
export function showErrors(form, messages) {
  clearErrors(form);
  const targets = [...form.querySelectorAll("[data-path]")];
  const unplaced = [];
  for (const message of messages) {
    const path = messagePath(message);
    let best = null;
    for (const el of targets) {
      const p = el.dataset.path;
      if ((path === p || path.startsWith(`${p}.`)) && (!best || p.length > best.dataset.path.length)) best = el;
    }
    if (!best) {
      unplaced.push(message);
      continue;
    }
    best.classList.add("invalid");
    const slot = best.querySelector(":scope > .field-error");
    slot.append(h("div", { class: "error-message" }, message));
  }
  const first = form.querySelector(".invalid");
  if (first) first.scrollIntoView({ block: "center", behavior: "instant" });
  return unplaced;
}

function clearErrors(form) {
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll(".field-error")) fill(el);
}

export async function render(root, _args, scope) {
  const datasetList = h("datalist", { id: "dataset-options" }, Object.keys(BUILTIN).map((d) => h("option", { value: d }, BUILTIN[d])));
  const kind = select("task.kind", KINDS, "forecasting");
  const metric = select("task.metric", METRICS.forecasting, "rmse");
  const metric2 = select("task.metric2", ["", ...METRICS.forecasting], "");
  const dataset = text("task.dataset", "sunspots", { list: "dataset-options" });
  const lookbackField = field("task.lookback", "Lookback (steps)", num("task.lookback", "24"));
  const formMessage = h("div", { class: "form-message", role: "alert" });
  const preview = h("pre", { class: "spec-preview" });
  const processes = num("workers.processes", "1", { "aria-label": "worker processes" });
  const device = deviceSelect();
  const submit = h("button", { type: "submit", id: "create-submit" }, "Create study");

  const form = h("form", { id: "create-form", class: "spec-form", novalidate: true },
    group(null, "Study",
      field("name", "Name", text("name", "", { placeholder: "e.g. sunspots-tpe", required: true }), "Letters, digits, '_', '.', '-'; up to 100 characters."),
      field("description", "Description", text("description", ""))),
    group("task", "Task",
      field("task.dataset", "Dataset", dataset, "A built-in dataset, upload:<id> or a .csv path on the server."),
      field("task.kind", "Kind", kind),
      field("task.metric", "Metric", h("div", { class: "inline" }, metric, h("span", { class: "muted" }, " second objective "), metric2)),
      lookbackField,
      field("task.max_train_samples", "Max training samples", num("task.max_train_samples", ""), "Leave empty for all.")),
    group("search_space", "Search space",
      field("search_space.learning_rate", "Learning rate", range("search_space.learning_rate", "0.0001", "0.1",
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "search_space.learning_rate.log", checked: true }), " log scale"))),
      field("search_space.batch_size", "Batch sizes", text("search_space.batch_size", "32, 64, 128"), "Choices, comma-separated."),
      field("search_space.hidden_units", "Hidden units", range("search_space.hidden_units", "16", "128"), "Leave “to” empty for a fixed value."),
      field("search_space.num_layers", "Layers", range("search_space.num_layers", "1", "")),
      field("search_space.dropout", "Dropout", range("search_space.dropout", "0", "")),
      field("search_space.optimizer", "Optimizers", checks("search_space.optimizer", OPTIMIZERS, ["sgd", "momentum", "adam", "rmsprop"])),
      field("search_space.cell", "Cell", checks("search_space.cell", CELLS, ["lstm"]))),
    group("budget", "Budget",
      field("budget.n_trials", "Trials", num("budget.n_trials", "20")),
      field("budget.max_epochs", "Epochs per trial", num("budget.max_epochs", "10")),
      field("budget.timeout_s", "Time limit (s)", num("budget.timeout_s", ""), "Leave empty for none."),
      field("budget.patience", "Early-stopping patience", num("budget.patience", ""))),
    group("sampler", "Sampler",
      field("sampler.type", "Type", select("sampler.type", SAMPLERS, "tpe")),
      field("sampler.seed", "Seed", num("sampler.seed", ""))),
    group("pruner", "Pruner",
      field("pruner.type", "Type", select("pruner.type", PRUNERS, "median")),
      field("pruner.n_startup_trials", "Startup trials", num("pruner.n_startup_trials", "3")),
      field("pruner.n_warmup_steps", "Warm-up epochs", num("pruner.n_warmup_steps", "1"))),
    group(null, "Run",
      field("workers.processes", "Start workers", h("div", { class: "inline" }, processes, h("span", { class: "muted" }, " processes on "), device),
        "0 creates the study without starting it.")),
    formMessage,
    h("div", { class: "actions" }, submit),
    h("details", { class: "spec-details" }, h("summary", {}, "Spec as JSON (what the form sends to POST /api/studies)"), preview));

  const setMetrics = () => {
    const options = METRICS[kind.value] || METRICS.forecasting;
    const keep = metric.value;
    fill(metric, options.map((m) => h("option", { value: m, selected: m === keep }, m)));
    if (!options.includes(keep)) metric.value = options[0];
    fill(metric2, ["", ...options].map((m) => h("option", { value: m }, m || "—")));
    lookbackField.hidden = kind.value !== "forecasting";
  };
  dataset.addEventListener("input", () => {
    const builtin = BUILTIN[dataset.value.trim()];
    if (builtin && builtin !== kind.value) {
      kind.value = builtin;
      setMetrics();
    }
  });
  kind.addEventListener("change", setMetrics);
  const updatePreview = () => { preview.textContent = JSON.stringify(buildSpec(form), null, 2); };
  form.addEventListener("input", updatePreview);
  form.addEventListener("change", updatePreview);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    fill(formMessage);
    const spec = buildSpec(form);
    submit.disabled = true;
    try {
      const created = await api("/api/studies", { method: "POST", body: spec });
      const name = (created && created.name) || spec.name;
      const n = Number(processes.value);
      if (Number.isInteger(n) && n > 0) {
        try {
          await startWorkers(name, n, device.value);
        } catch (error) {
          sessionStorage.setItem("hpo.flash", `Study created, but starting workers failed: ${(error.messages || [error.message]).join("; ")}`);
        }
      }
      location.hash = studyHref(name);
    } catch (error) {
      if (!scope.alive) return;
      const messages = error.messages || [String(error.message || error)];
      const rest = showErrors(form, messages);
      fill(formMessage, rest.length ? rest.map((m) => h("div", { class: "error-message" }, m))
        : h("div", { class: "error-message" }, `The API refused the spec (HTTP ${error.status}); see the marked fields.`));
    } finally {
      submit.disabled = false;
    }
  });

  fill(root, h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h1", {}, "New study")),
    h("p", { class: "muted" }, "Each search-space entry is a range (low to high), a list of choices, or a fixed value. The server validates the spec; its messages appear next to the fields."),
    datasetList, form));
  updatePreview();

  // Uploaded datasets join the suggestions (GET /api/datasets); the form works without them.
  try {
    const uploads = itemsOf(await api("/api/datasets"), "datasets");
    for (const d of uploads) {
      const id = d.id || d.dataset_id;
      const ref = d.dataset || (id ? `upload:${id}` : null);
      if (ref) datasetList.append(h("option", { value: ref }, `${d.name || id} (${d.kind || "upload"}, ${d.rows ?? "?"} rows)`));
    }
  } catch {
    /* no datasets route or not allowed: built-ins only */
  }
}
