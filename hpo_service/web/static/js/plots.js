// plotly.js is loaded on first use from the installed plotly package (served by the app at
// /vendor/plotly.min.js: no CDN, works offline), so pages without plots stay light.

import { api, download } from "./api.js";
import { h, fill } from "./util.js";

export const PLOTLY_URL = "/vendor/plotly.min.js";

/** Plot kinds for one study, in tab order (hpo_service.plots.PLOT_KINDS). */
export const PLOT_KINDS = [
  "history",
  "intermediate_values",
  "parallel_coordinate",
  "slice",
  "contour",
  "rank",
  "param_importances",
  "edf",
  "timeline",
  "pareto_front",
  "optimizer_comparison",
  "lr_batch_heatmap",
];

/** Kinds for several studies at once (hpo_service.plots.COMPARE_KINDS). */
export const COMPARE_KINDS = ["history", "edf"];

export const KIND_LABELS = {
  history: "History",
  intermediate_values: "Learning curves",
  parallel_coordinate: "Parallel coordinates",
  slice: "Slice",
  contour: "Contour",
  rank: "Rank",
  param_importances: "Importances",
  edf: "EDF",
  timeline: "Timeline",
  pareto_front: "Pareto front",
  optimizer_comparison: "Optimizers",
  lr_batch_heatmap: "LR × batch",
};

let loading = null;

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        loading = null;
        reject(new Error(`could not load ${PLOTLY_URL}`));
      };
      document.head.append(script);
    });
  }
  return loading;
}

/** In dark mode (the system setting), figures drawn for a light page get a dark page's colours. */
function darken(layout) {
  if (!window.matchMedia || !window.matchMedia("(prefers-color-scheme: dark)").matches) return layout;
  const grid = { gridcolor: "#2e3646", zerolinecolor: "#3a4356", linecolor: "#3a4356" };
  const out = { ...layout, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { ...(layout.font || {}), color: "#d0d6e2" } };
  for (const key of Object.keys(out)) {
    if (/^[xy]axis\d*$/.test(key)) out[key] = { ...out[key], ...grid };
  }
  for (const key of ["xaxis", "yaxis"]) out[key] = { ...grid, ...(out[key] || {}) };
  if (out.legend) out.legend = { ...out.legend, bgcolor: "rgba(0,0,0,0)" };
  return out;
}

/** Draw (or redraw in place) a plotly figure dict into `el`. */
export async function drawFigure(el, figure, revision = "plot") {
  const Plotly = await loadPlotly();
  const layout = darken({ ...(figure.layout || {}), autosize: true, uirevision: revision });
  delete layout.width;
  if (!layout.height) layout.height = 460;
  await Plotly.react(el, figure.data || [], layout, {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d"],
  });
  el.dataset.rendered = "true";
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}

/**
 * Fetch a figure and draw it into `el`, updating a figure already there in place (no flicker
 * on live refreshes); errors are shown in place of the plot. `el.dataset.shown` names what is
 * drawn (`key`) once it is, and `el.dataset.rendered` says a figure (not an error) is there.
 * `prefetched`: a promise of the figure, already requested.
 */
export async function showPlot(el, path, query, key = path, prefetched = null) {
  // Only the latest request for an element may draw into it (tabs switched mid-request).
  const seq = (el.plotSeq = (el.plotSeq || 0) + 1);
  el.classList.add("loading");
  try {
    const figure = await (prefetched || api(path, { query }));
    if (el.plotSeq !== seq) return null;
    const error = el.querySelector(":scope > .plot-error");
    if (error) error.remove();
    await drawFigure(el, figure, key);
    el.dataset.shown = key;
    return figure;
  } catch (error) {
    if (el.plotSeq !== seq) return null;
    purge(el);
    delete el.dataset.rendered;
    el.dataset.shown = key;
    fill(el, h("div", { class: "plot-error error" }, ...(error.messages || [String(error.message || error)]).map((m) => h("p", {}, m))));
    return null;
  } finally {
    if (el.plotSeq === seq) el.classList.remove("loading");
  }
}

/** Image formats the plot routes export (hpo_service.plots.IMAGE_FORMATS). */
export const IMAGE_FORMATS = ["png", "svg", "pdf"];

/**
 * "Download PNG / SVG / PDF" for a plot: the server draws the image (?format=...) and it is
 * saved with the token (a plain link would not carry it). `current()` returns the plot's
 * {path, query, stem} at the moment of the click, so tabs and options are followed.
 */
export function imageDownloads(current) {
  const message = h("span", { class: "form-message inline-message", role: "status" });
  const save = async (fmt, button) => {
    const { path, query, stem } = current();
    const filename = `${stem}.${fmt}`;
    button.disabled = true;
    fill(message, h("span", { class: "muted" }, `Drawing ${filename}…`));
    try {
      const size = await download(path, filename, { ...(query || {}), format: fmt });
      fill(message, h("span", { class: "muted" }, `Saved ${filename} (${Math.max(1, Math.round(size / 1024))} kB)`));
    } catch (error) {
      fill(message, h("span", { class: "error" }, ...(error.messages || [String(error.message || error)])));
    } finally {
      button.disabled = false;
    }
  };
  const buttons = IMAGE_FORMATS.map((fmt) => {
    const button = h("button", { type: "button", class: "secondary small", "data-action": `download-${fmt}`,
      title: `Download this plot as ${fmt.toUpperCase()}`, onclick: () => save(fmt, button) }, fmt.toUpperCase());
    return button;
  });
  return h("div", { class: "plot-downloads toolbar" }, h("span", { class: "muted small" }, "Download"), ...buttons, message);
}
