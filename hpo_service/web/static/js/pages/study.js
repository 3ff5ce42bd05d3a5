// One study: summary (GET /api/studies/{name}), controls (POST .../pause|resume|stop,
// POST/DELETE .../workers, DELETE the study, PATCH the budget), the best trial, plot tabs
// (GET .../plots/{kind}, fetched when a tab is opened), a paged, sortable, filterable trial table
// (see trials.js) kept live by polling GET .../trials?after=CURSOR, which returns only new or
// changed trials, CSV export, queueing a configuration, predictions and the study's note
// (study-tools.js, notes.js). A trial opens at its own address (pages/trial.js).
//
// First view of a 10,000-trial study: the summary, one page of 50 trials and one aggregated
// figure (about 120 kB); nothing else is fetched until asked for.

import { ApiError, api, cursorOf, itemsOf, normStudy, normTrial } from "../api.js";
import { PAGE_SIZE, TrialTable } from "../trials.js";
import { KIND_LABELS, PLOT_KINDS, imageDownloads, loadPlotly, purge, showPlot } from "../plots.js";
import { notesCard } from "../notes.js";
import { budgetForm, exportButton, predictCard, queueCard } from "../study-tools.js";
import { filterBar } from "../trial-filters.js";
import { badge, fill, fmtDuration, fmtNumber, fmtParam, h, progressBar } from "../util.js";
import { deviceSelect, startWorkers } from "../workers-control.js";
import { trialHref } from "./trial.js";

const POLL_MS = 2000;
const PLOT_REFRESH_MS = 10000;

function studyPath(name) {
  return `/api/studies/${encodeURIComponent(name)}`;
}

/** Names of the parameters the spec searches over (lists of 2+ choices, or ranges). */
function searchedParams(spec, trials) {
  const space = (spec && spec.search_space) || {};
  const names = Object.entries(space)
    .filter(([, v]) => (Array.isArray(v) && v.length > 1) || (v && typeof v === "object" && !Array.isArray(v) && "low" in v && v.low !== v.high))
    .map(([k]) => k);
  if (names.length) return names;
  const seen = new Set();
  for (const t of trials) Object.keys(t.params).forEach((k) => seen.add(k));
  return [...seen];
}

export async function render(root, { name, query }, scope) {
  const base = studyPath(name);

  let cursor = null;
  let lastCounts = "";
  let plotStale = false;
  let lastPlotAt = 0;
  let activeKind = null;
  let objective = 0;
  let contourX = "";
  let contourY = "";

  // --- first view: summary, newest page of trials and the first plot, all in parallel ---
  const wanted = query.get("plot");
  const firstKind = PLOT_KINDS.includes(wanted) && !["contour", "pareto_front"].includes(wanted) ? wanted : "history";
  let firstFigure = api(`${base}/plots/${firstKind}`);
  firstFigure.catch(() => {}); // shown (or its error) when the tab draws
  const summaryAsked = api(base);
  const pageAsked = api(`${base}/trials`, { query: { limit: PAGE_SIZE, order: "desc" } });
  // Parsing plotly.js (4.8 MB, cached after the first visit) must not delay those requests.
  loadPlotly().catch(() => {});
  const [summaryRaw, firstPage] = await Promise.all([summaryAsked, pageAsked]);
  if (!scope.alive) return;
  let summary = normStudy(summaryRaw);
  cursor = cursorOf(firstPage);
  const params = searchedParams(summary.spec, itemsOf(firstPage, "trials").map(normTrial));
  const multi = summary.directions.length > 1;
  const kinds = PLOT_KINDS.filter((k) => k !== "pareto_front" || multi);

  // --- header & controls ---
  const head = h("section", { class: "card study-head" });
  const flash = sessionStorage.getItem("hpo.flash");
  if (flash) sessionStorage.removeItem("hpo.flash");
  const actionMessage = h("div", { class: "form-message", role: "status" }, flash ? h("span", { class: "error" }, flash) : null);
  const processes = h("input", { type: "text", inputmode: "numeric", name: "processes", value: "1", class: "narrow", "aria-label": "worker processes" });
  const device = deviceSelect();
  const buttons = {
    pause: h("button", { class: "secondary", "data-action": "pause", onclick: () => act("pause") }, "Pause"),
    resume: h("button", { class: "secondary", "data-action": "resume", title: "Let workers claim trials again (a created study starts)", onclick: () => act("resume") }, "Resume"),
    stop: h("button", { class: "secondary danger", "data-action": "stop", onclick: () => { if (confirm(`Stop study ${name}? Running trials stop at their next epoch; no new ones start.`)) act("stop"); } }, "Stop"),
    workers: h("button", { "data-action": "start-workers", onclick: onStartWorkers }, "Start workers"),
    stopWorkers: h("button", { class: "secondary", "data-action": "stop-workers", title: "Stop the worker processes this server started for the study", onclick: onStopWorkers }, "Stop workers"),
    remove: h("button", { class: "secondary danger", "data-action": "delete", onclick: onDelete }, "Delete"),
  };
  const budget = budgetForm(base, summary, (fresh) => { summary = normStudy(fresh); renderSummary(); });
  const controls = h("div", { class: "controls" },
    buttons.pause, buttons.resume, buttons.stop,
    h("span", { class: "sep" }),
    h("label", { class: "inline" }, processes, " processes on ", device), buttons.workers, buttons.stopWorkers,
    h("span", { class: "sep" }), buttons.remove, budget.el);

  // --- best trial ---
  const best = h("section", { class: "card best" });

  // --- plots ---
  const tabBar = h("div", { class: "tabs", role: "tablist" });
  const plotOptions = h("div", { class: "plot-options" });
  const plotEl = h("div", { class: "plot", id: "study-plot" });
  const downloads = imageDownloads(() => ({ path: `${base}/plots/${activeKind}`, query: plotQuery(), stem: `${name}-${activeKind}` }));
  const plots = h("section", { class: "card plots" }, h("h2", {}, "Plots"), tabBar, plotOptions, plotEl, downloads);
  const tabs = {};
  for (const kind of kinds) {
    tabs[kind] = h("button", { class: "tab", role: "tab", dataset: { kind }, onclick: () => openTab(kind) }, KIND_LABELS[kind] || kind);
    tabBar.append(tabs[kind]);
  }

  // --- trials ---
  const liveNote = h("span", { class: "live muted", id: "live-note" });
  const showTrial = (number) => { location.hash = trialHref(name, number); };
  const table = new TrialTable({ base, metrics: summary.metrics, directions: summary.directions, params, onOpen: showTrial, link: (n) => trialHref(name, n) });
  const filters = filterBar(summary.spec, params, summary.metrics[0], (q) => table.setFilter(q));
  const exportMessage = h("span", { class: "form-message inline-message", role: "status" });
  const trialsCard = h("section", { class: "card trials" },
    h("div", { class: "card-head" }, h("h2", {}, "Trials"), liveNote,
      h("span", { class: "toolbar" }, exportButton(base, name, exportMessage, filters.states), exportMessage)),
    filters.el, table.el);
  const tools = [queueCard(base, summary.spec, () => poll(true)), predictCard(base, summary.spec)];
  const notes = notesCard(`${base}/notes`, "Study notes");

  fill(root, head, best, plots, trialsCard, ...tools, notes);

  renderSummary();
  renderHead();
  openTab(wanted && kinds.includes(wanted) ? wanted : "history");
  await table.init(firstPage);
  scope.every(POLL_MS, poll);
  scope.onCleanup(() => purge(plotEl));

  function renderSummary() {
    const s = summary;
    const spec = s.spec || {};
    const task = spec.task || {};
    const c = s.counts;
    const running = c.RUNNING || 0;
    fill(head,
      h("div", { class: "card-head" },
        h("h1", {}, s.name, " ", badge(s.state)),
        h("a", { class: "muted small", href: `#/compare?studies=${encodeURIComponent(s.name)}` }, "compare with…")),
      s.description || spec.description ? h("p", { class: "muted" }, s.description || spec.description) : null,
      h("div", { class: "meta" },
        meta("Dataset", task.dataset || "–"), meta("Objective", s.metrics.map((m, i) => `${m} (${s.directions[i] || "?"})`).join(", ")),
        meta("Budget", `${fmtNumber(s.total)} trials`),
        meta("Sampler", (spec.sampler && spec.sampler.type) || "–"), meta("Pruner", (spec.pruner && spec.pruner.type) || "–"),
        meta("Epochs", (spec.budget && spec.budget.max_epochs) ?? "–"),
        meta("Elapsed", fmtDuration(s.elapsed)), meta("Time left", s.state !== "running" || s.eta === undefined || s.eta === null ? "–" : `≈ ${fmtDuration(s.eta)}`)),
      progressBar(s.finished, s.total, `${fmtNumber(s.finished)} / ${fmtNumber(s.total)} trials finished`),
      h("div", { class: "counts", id: "trial-counts" },
        ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"].map((k) => h("span", { class: `count count-${k.toLowerCase()}` }, h("b", {}, c[k] || 0), ` ${k.toLowerCase()}`)),
        running ? h("span", { class: "pulse", title: "trials are running" }) : null),
      controls, actionMessage);
    const st = s.state;
    buttons.pause.disabled = st !== "running";
    buttons.resume.disabled = !["created", "paused"].includes(st);
    buttons.resume.textContent = st === "created" ? "Start" : "Resume";
    buttons.stop.disabled = !["created", "running", "paused"].includes(st);
    buttons.workers.disabled = ["completed", "failed", "stopped"].includes(st);
    buttons.stopWorkers.disabled = !running && st !== "running";
    budget.update(s);
  }

  function renderHead() {
    const b = summary.best;
    if (!b) {
      fill(best, h("h2", {}, "Best trial"), h("p", { class: "muted" },
        multi ? "Several objectives: see the Pareto front plot for the best trade-offs."
          : summary.state === "failed" ? "The study ended without one complete trial: see the failed trials' reasons below, fix the cause and extend the budget to run again."
          : "No completed trial yet."));
      return;
    }
    const values = Array.isArray(b.values) ? b.values : [b.value];
    fill(best,
      h("div", { class: "card-head" },
        h("h2", {}, "Best trial ", h("a", { href: trialHref(name, b.number) }, `#${b.number}`)),
        h("span", { class: "best-value", id: "best-value" }, summary.metrics.map((m, i) => `${m} = ${fmtNumber(values[i])}`).join(", "))),
      h("div", { class: "kv-list" }, Object.entries(b.params || {}).map(([k, v]) =>
        h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", h("b", {}, fmtParam(v))))),
      ensembleLine(b.ensemble, summary.metrics[0]),
      baselineVerdict(summary));
  }

  /** The ensemble of the study's best trials (task.ensemble_trials), which serves predictions. */
  function ensembleLine(e, metric) {
    if (!e) return null;
    const split = e.test && e.test[metric] != null ? "test" : "validation";
    const figure = (e[split] || {})[metric];
    const rests = split === "test" ? ` (${e.test_n} examples)` : "";
    return h("p", { id: "ensemble-line" }, "Ensemble of trials ",
      e.members.flatMap((n, i) => [i ? ", " : "", h("a", { href: trialHref(name, n) }, `#${n}`)]),
      ` serves predictions: ${metric} ${fmtNumber(figure)} on ${split}${rests}.`);
  }

  /** The API's verdict sentence against the best baseline (or why there is none yet). */
  function baselineVerdict(s) {
    const v = s.best_vs_baseline;
    if (v) return h("p", { class: `verdict ${v.beats ? "beats" : "loses"}`, id: "baseline-verdict" }, v.text);
    return s.baselines_note ? h("p", { class: "muted", id: "baseline-verdict" }, `Baselines: ${s.baselines_note}`) : null;
  }

  // --- plots ---

  function openTab(kind) {
    activeKind = kind;
    // Keep the open tab in the address (a link opens the same plot); no hashchange fires.
    const here = `#/studies/${encodeURIComponent(name)}${kind === "history" ? "" : `?plot=${kind}`}`;
    if (location.hash !== here) history.replaceState(null, "", here);
    for (const [k, el] of Object.entries(tabs)) {
      el.classList.toggle("active", k === kind);
      el.setAttribute("aria-selected", String(k === kind));
    }
    renderPlotOptions();
    refreshPlot();
  }

  function renderPlotOptions() {
    const parts = [];
    if (multi) {
      parts.push(h("label", {}, "Objective ", h("select", { onchange: (e) => { objective = Number(e.target.value); refreshPlot(); } },
        summary.metrics.map((m, i) => h("option", { value: String(i), selected: i === objective }, m)))));
    }
    if (activeKind === "contour" && params.length >= 2) {
      contourX = contourX || (params.includes("learning_rate") ? "learning_rate" : params[0]);
      contourY = contourY || params.find((p) => p !== contourX && p !== "optimizer") || params.find((p) => p !== contourX);
      const pick = (label, value, set) => h("label", {}, `${label} `, h("select", { name: `contour-${label}`, onchange: (e) => { set(e.target.value); refreshPlot(); } },
        params.map((p) => h("option", { value: p, selected: p === value }, p))));
      parts.push(pick("x", contourX, (v) => { contourX = v; }), pick("y", contourY, (v) => { contourY = v; }));
    }
    fill(plotOptions, parts);
    plotOptions.hidden = !parts.length;
  }

  function plotQuery() {
    const q = {};
    if (multi) q.objective = objective;
    if (activeKind === "contour" && contourX && contourY) Object.assign(q, { x: contourX, y: contourY });
    return q;
  }

  async function refreshPlot() {
    const kind = activeKind;
    const q = plotQuery();
    plotStale = false;
    lastPlotAt = Date.now();
    if (plotEl.dataset.kind !== kind) {
      // Another kind: drop the old figure so a half-drawn mix is never shown.
      purge(plotEl);
      fill(plotEl);
      delete plotEl.dataset.rendered;
      plotEl.dataset.kind = kind;
    }
    const prefetched = kind === firstKind && objective === 0 ? firstFigure : null;
    firstFigure = null; // used once: later refreshes ask again
    await showPlot(plotEl, `${base}/plots/${kind}`, q, kind, prefetched);
  }

  // --- live progress ---

  let quietTicks = 0;
  async function poll(now = false) {
    // Nothing runs (created, paused, over, no RUNNING trial): look every 5th tick only.
    const idle = summary.state !== "running" && !(summary.counts.RUNNING > 0);
    if (!now && idle && quietTicks++ % 5 !== 0) return;
    if (!idle) quietTicks = 0;
    const before = lastCounts;
    const [fresh, changes] = await Promise.all([api(base), pollTrials()]);
    if (!scope.alive) return;
    summary = normStudy(fresh);
    const counts = JSON.stringify(summary.counts);
    lastCounts = counts;
    const total = Object.values(summary.counts).reduce((a, b) => a + b, 0);
    renderSummary();
    const changed = await table.apply(changes, total);
    if (changed.size || (before && before !== counts)) {
      renderHead();
      plotStale = true;
      liveNote.textContent = `updated ${new Date().toLocaleTimeString("en-GB")}${changed.size ? ` · ${changed.size} new or changed trial(s)` : ""}`;
    }
    if (plotStale && Date.now() - lastPlotAt > PLOT_REFRESH_MS && activeKind) await refreshPlot();
  }

  /** New or changed trials since the last poll (following has_more for a few pages). */
  async function pollTrials() {
    const found = [];
    for (let i = 0; i < 5 && cursor !== null; i++) {
      const page = await api(`${base}/trials`, { query: { after: cursor, limit: 1000 } });
      found.push(...itemsOf(page, "trials"));
      cursor = cursorOf(page) ?? cursor;
      if (!page || !page.has_more) break;
    }
    return found;
  }

  // --- actions ---

  async function act(action) {
    fill(actionMessage);
    try {
      summary = normStudy(await api(`${base}/${action}`, { method: "POST" }).then((r) => r || api(base)));
      renderSummary();
    } catch (error) {
      showActionError(error);
    }
  }

  async function onStartWorkers() {
    fill(actionMessage);
    const n = Number(processes.value);
    try {
      await startWorkers(name, n, device.value);
      fill(actionMessage, h("span", { class: "ok" }, `Started ${n} worker process(es) on ${device.value}.`));
      summary = normStudy(await api(base));
      renderSummary();
    } catch (error) {
      showActionError(error);
    }
  }

  async function onStopWorkers() {
    fill(actionMessage);
    try {
      const answer = await api(`${base}/workers`, { method: "DELETE" });
      const n = answer && Array.isArray(answer.pids) ? answer.pids.length : 0;
      fill(actionMessage, h("span", { class: "ok" }, n ? `Asked ${n} worker process(es) to stop after their current epoch.` : "This server runs no workers for this study."));
    } catch (error) {
      showActionError(error);
    }
  }

  async function onDelete() {
    if (!confirm(`Delete study ${name} with all its trials and saved models? This cannot be undone.`)) return;
    try {
      try {
        await api(base, { method: "DELETE" });
      } catch (error) {
        // 409: trials still run. Offer to delete anyway (their workers are stopped first).
        if (!(error instanceof ApiError) || error.status !== 409 || !confirm(`${error.messages.join("; ")}\n\nDelete anyway?`)) throw error;
        await api(base, { method: "DELETE", query: { force: true } });
      }
      location.hash = "#/";
    } catch (error) {
      showActionError(error);
    }
  }

  function showActionError(error) {
    fill(actionMessage, h("span", { class: "error" }, (error.messages || [String(error.message || error)]).join("; ")));
  }
}

function meta(label, value) {
  return h("div", { class: "meta-item" }, h("span", { class: "meta-label" }, label), h("span", { class: "meta-value" }, value));
}
