// One trial at its own address, #/studies/NAME/trials/N: GET .../trials/N (values, parameters,
// validation/final/test metrics, best epoch, stop reason, parameter count, curves), its saved
// files (GET .../trials/N/artifacts, downloaded with the token) and its note. A running trial's
// page redraws when it records an epoch or finishes.

import { api, download, normStudy, normTrial } from "../api.js";
import { notesCard } from "../notes.js";
import { drawFigure, purge } from "../plots.js";
import { badge, fill, fmtDuration, fmtNumber, fmtParam, fmtTime, h, studyHref } from "../util.js";

export function trialHref(name, number) {
  return `#/studies/${encodeURIComponent(name)}/trials/${number}`;
}

export async function render(root, { name, number }, scope) {
  const base = `/api/studies/${encodeURIComponent(name)}`;
  const path = `${base}/trials/${number}`;
  const [summaryRaw, raw, files] = await Promise.all([api(base), api(path), api(`${path}/artifacts`).catch(() => null)]);
  if (!scope.alive) return;
  const summary = normStudy(summaryRaw);
  const t = normTrial(raw);
  const curveEl = h("div", { class: "plot small-plot", id: "trial-curves" });
  const notes = notesCard(`${path}/notes`, "Trial notes");
  const n = Number(number);
  fill(root,
    h("section", { class: "card trial-page" },
      h("div", { class: "card-head" },
        h("h1", {}, `Trial #${t.number} `, badge(t.state)),
        h("nav", { class: "trial-nav" },
          h("a", { href: studyHref(name) }, `← ${name}`),
          n > 0 ? h("a", { href: trialHref(name, n - 1), "data-nav": "previous" }, "‹ previous") : null,
          h("a", { href: trialHref(name, n + 1), "data-nav": "next" }, "next ›"))),
      h("div", { class: "detail-grid trial-grid" },
        h("div", {}, factsList(t, summary), metricsTable(t, summary.metrics)),
        h("div", {}, h("h2", {}, "Learning curves"), curveEl))),
    artifactsCard(path, name, t.number, files),
    notes);
  scope.onCleanup(() => purge(curveEl));
  await drawCurves(curveEl, t, summary.metrics);
  if (["RUNNING", "WAITING"].includes(t.state)) {
    // Still going: look again every few seconds and redraw the page once it moved on.
    const seen = `${t.state}/${(t.intermediate_values || []).length}`;
    scope.every(POLL_MS, async () => {
      const fresh = await api(path);
      if (scope.alive && `${fresh.state}/${(fresh.intermediate_values || []).length}` !== seen) {
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      }
    });
  }
}

const POLL_MS = 3000;

function row(label, value, cls) {
  return [h("dt", {}, label), h("dd", { class: cls || null }, value)];
}

function factsList(t, summary) {
  const reason = t.fail_reason;
  return h("dl", { class: "params", id: "trial-facts" },
    summary.metrics.map((m, i) => row(`${m} (${summary.directions[i] || "objective"})`, fmtNumber(t.values[i]))),
    row("best epoch", t.best_epoch ?? "–"),
    row("stop reason", t.stop_reason || "–"),
    row("parameters", t.n_params === null || t.n_params === undefined ? "–" : fmtNumber(t.n_params)),
    row("duration", fmtDuration(t.duration)),
    row("started", fmtTime(t.start)),
    t.worker ? row("worker", t.worker, "mono") : null,
    t.retries ? row("retries", t.retries) : null,
    reason ? row("reason", reason, "error") : null,
    h("dt", { class: "group" }, "hyperparameters"),
    Object.entries(t.params).map(([k, v]) => row(k, fmtParam(v))));
}

/** Validation at the best epoch, at the last epoch, and on the test split, one row per metric. */
function metricsTable(t, objectives) {
  const sets = t.metrics || {};
  const names = [...new Set(["best", "final", "test"].flatMap((k) => Object.keys(sets[k] || {})))];
  if (!names.length) return h("p", { class: "muted", id: "trial-metrics" }, "No stored metrics: the trial did not finish an epoch.");
  names.sort((a, b) => (objectives.includes(b) - objectives.includes(a)) || a.localeCompare(b));
  const cell = (k, m) => h("td", { class: "num" }, fmtNumber((sets[k] || {})[m]));
  // How many examples each figure rests on (absent for trials stored before counts were kept).
  const count = (n) => (n == null ? "" : ` (n=${n})`);
  const testLabel = t.test_n === 0 ? "test: none" : `test${count(t.test_n)}`;
  return h("div", { class: "table-wrap metrics-wrap" }, h("h2", {}, "Metrics"), h("table", { class: "table metrics-table", id: "trial-metrics" },
    h("thead", {}, h("tr", {}, h("th", {}, "metric"), h("th", { class: "num", title: "validation split, at the best epoch (the stored model)" }, `best epoch${count(t.val_n)}`),
      h("th", { class: "num", title: "validation split, at the last epoch" }, "last epoch"), h("th", { class: "num", title: "test split, with the stored model" }, testLabel))),
    h("tbody", {}, names.map((m) => h("tr", { dataset: { metric: m } }, h("td", {}, m), cell("best", m), cell("final", m), cell("test", m))))));
}

function artifactsCard(path, name, number, listing) {
  const message = h("div", { class: "form-message", role: "status" });
  const files = (listing && listing.files) || [];
  const save = async (url, filename) => {
    fill(message);
    try {
      await download(url, filename);
    } catch (error) {
      fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
    }
  };
  return h("section", { class: "card artifacts" },
    h("div", { class: "card-head" }, h("h2", {}, "Saved files"),
      files.length ? h("button", { "data-action": "download-zip", onclick: () => save(listing.zip_url, `${name}-trial-${number}.zip`) }, "Download all (zip)") : null),
    files.length
      ? h("ul", { class: "file-list" }, files.map((f) => h("li", {},
        h("button", { class: "linkish", "data-file": f.name, onclick: () => save(f.url, f.name) }, f.name),
        h("span", { class: "muted small" }, ` ${fmtNumber(f.size_bytes)} bytes`))))
      : h("p", { class: "muted" }, "No saved files: only trials that finished an epoch keep their model."),
    message);
}

async function drawCurves(el, t, metrics) {
  const traces = curveTraces(t.curves, t.intermediate_values, metrics);
  if (!traces.length) {
    const why = t.state === "FAIL" ? "This trial failed before it recorded an epoch" : t.state === "RUNNING" || t.state === "WAITING" ? "No epoch has finished yet" : "No per-epoch values were recorded";
    fill(el, h("p", { class: "no-curves muted" }, `No learning curves. ${why}${t.fail_reason ? `: ${t.fail_reason}` : "."}`));
    el.classList.add("empty-plot");
    return;
  }
  const epochs = Math.max(...traces.map((tr) => tr.x.length));
  const twoAxes = traces.some((tr) => tr.yaxis === "y2");
  await drawFigure(el, {
    data: traces,
    layout: {
      height: 320,
      margin: { t: 30, l: 55, r: twoAxes ? 60 : 15, b: 45 },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: { title: { text: "epoch" }, tickformat: "d", ...(epochs <= 20 ? { dtick: 1 } : {}) },
      yaxis: { title: { text: twoAxes ? "loss" : "value" } },
      ...(twoAxes ? { yaxis2: { title: { text: metrics.join(", ") }, overlaying: "y", side: "right", showgrid: false } } : {}),
    },
  }, `trial-${t.number}`);
  el.dataset.shown = "curves";
}

/** Losses on the left axis, the study's objective metrics (val_<metric>) on the right. */
function curveTraces(curves, intermediate, metrics) {
  const traces = [];
  const wanted = new Set(["train_loss", "val_loss", ...metrics.map((m) => `val_${m}`)]);
  for (const [key, ys] of Object.entries(curves || {})) {
    if (!wanted.has(key) || !Array.isArray(ys) || !ys.length) continue;
    traces.push({ type: "scatter", mode: "lines+markers", name: key, x: ys.map((_, i) => i + 1), y: ys,
      yaxis: key.endsWith("loss") ? "y" : "y2" });
  }
  if (!traces.length && Array.isArray(intermediate) && intermediate.length) {
    traces.push({ type: "scatter", mode: "lines+markers", name: "reported value",
      x: intermediate.map((p) => p.step + 1), y: intermediate.map((p) => p.value) });
  }
  if (traces.some((tr) => tr.yaxis === "y2")) traces.forEach((tr) => { if (tr.yaxis === "y2") tr.line = { dash: "dot" }; });
  else traces.forEach((tr) => delete tr.yaxis);
  return traces;
}
