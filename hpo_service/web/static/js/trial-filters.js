// The trial table's filter bar: state, objective value range and one range (or choice) per
// searched parameter. The API applies them (GET .../trials?state=&value_min=&value_max=&param=),
// so a 10,000-trial study is filtered in the database, not in the browser; its 422 messages
// (a bound that is not a number, low above high) are shown under the bar.

import { fill, fmtParam, h } from "./util.js";

const STATES = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"];

function rangeInputs(key, entry) {
  if (Array.isArray(entry)) {
    return h("select", { name: `filter.${key}`, "aria-label": `${key} choice` },
      h("option", { value: "" }, "any"), entry.map((c) => h("option", { value: String(c) }, fmtParam(c))));
  }
  const low = h("input", { type: "text", inputmode: "decimal", name: `filter.${key}.low`, placeholder: `≥ ${fmtParam(entry.low)}`, class: "tiny" });
  const high = h("input", { type: "text", inputmode: "decimal", name: `filter.${key}.high`, placeholder: `≤ ${fmtParam(entry.high)}`, class: "tiny" });
  return h("span", { class: "range" }, low, "–", high);
}

/** The bar; onApply(query or null) with the API's query parameters (null: no filter). */
export function filterBar(spec, params, metric, onApply) {
  const space = (spec && spec.search_space) || {};
  const state = h("select", { name: "filter.state", "aria-label": "state" }, h("option", { value: "" }, "all states"),
    STATES.map((s) => h("option", { value: s }, s.toLowerCase())));
  const vmin = h("input", { type: "text", inputmode: "decimal", name: "filter.value_min", placeholder: "min", class: "tiny" });
  const vmax = h("input", { type: "text", inputmode: "decimal", name: "filter.value_max", placeholder: "max", class: "tiny" });
  const fields = params.filter((p) => p in space).map((p) => ({ key: p, entry: space[p], el: rangeInputs(p, space[p]) }));
  const message = h("div", { class: "form-message filter-message", role: "status" });
  const summary = h("span", { class: "muted small filter-summary" });

  const query = () => {
    const param = [];
    for (const f of fields) {
      if (Array.isArray(f.entry)) {
        if (f.el.value) param.push(`${f.key}=${f.el.value}`);
      } else {
        const [low, high] = f.el.querySelectorAll("input");
        if (low.value.trim() || high.value.trim()) param.push(`${f.key}:${low.value.trim()}:${high.value.trim()}`);
      }
    }
    const q = { state: state.value, value_min: vmin.value.trim(), value_max: vmax.value.trim(), param };
    const active = q.state || q.value_min || q.value_max || param.length;
    return active ? q : null;
  };
  const apply = async (event) => {
    if (event) event.preventDefault();
    fill(message);
    const q = query();
    summary.textContent = q ? "filtered by the server" : "";
    try {
      await onApply(q);
    } catch (error) {
      fill(message, h("span", { class: "error" }, (error.messages || [String(error)]).join("; ")));
    }
  };
  const reset = () => {
    state.value = ""; vmin.value = ""; vmax.value = "";
    for (const f of fields) {
      if (Array.isArray(f.entry)) f.el.value = "";
      else f.el.querySelectorAll("input").forEach((i) => { i.value = ""; });
    }
    apply();
  };
  const form = h("form", { class: "filter-bar", id: "trial-filters", onsubmit: apply },
    h("label", {}, "State ", state),
    h("label", {}, `${metric} `, h("span", { class: "range" }, vmin, "–", vmax)),
    fields.map((f) => h("label", { dataset: { param: f.key } }, `${f.key} `, f.el)),
    h("span", { class: "actions" }, h("button", { type: "submit", class: "secondary", "data-action": "filter" }, "Filter"),
      h("button", { type: "button", class: "secondary", "data-action": "clear-filter", onclick: reset }, "Clear")), summary);
  return { el: h("div", { class: "filters" }, form, message), states: () => state.value };
}
