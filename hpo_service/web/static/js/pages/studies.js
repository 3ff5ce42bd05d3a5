// Studies list: GET /api/studies?state=&offset=&limit= (paged), refreshed every few seconds.

import { api, itemsOf, normStudy, totalOf } from "../api.js";
import { badge, fill, fmtNumber, fmtTime, h, progressBar, studyHref } from "../util.js";

const PAGE = 25;
const STATES = ["", "created", "running", "paused", "completed", "failed", "stopped"];

export async function render(root, { query }, scope) {
  let state = query.get("state") || "";
  let offset = Number(query.get("offset")) || 0;

  const filter = h("select", { id: "state-filter", "aria-label": "Filter by state",
    onchange: () => { state = filter.value; offset = 0; load(); } },
    STATES.map((s) => h("option", { value: s, selected: s === state }, s || "all states")));
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const table = h("table", { class: "table studies-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Study"), h("th", {}, "State"), h("th", { class: "w-progress" }, "Progress"),
      h("th", { class: "num" }, "Best"), h("th", {}, "Metric"), h("th", {}, "Sampler / pruner"),
      h("th", {}, "Created"))),
    body);

  fill(root,
    h("section", { class: "card" },
      h("div", { class: "card-head" },
        h("h1", {}, "Studies"),
        h("div", { class: "toolbar" }, filter, h("a", { class: "button", href: "#/new" }, "New study"))),
      h("div", { class: "table-wrap" }, table),
      pager));

  async function load() {
    const page = await api("/api/studies", { query: { state, offset, limit: PAGE } });
    if (!scope.alive) return;
    const rows = itemsOf(page, "studies").map(normStudy);
    const total = totalOf(page, offset + rows.length);
    if (!rows.length) {
      fill(body, h("tr", {}, h("td", { colspan: "7", class: "muted empty" },
        state ? `No ${state} studies.` : "No studies yet: create one with “New study”.")));
    } else {
      fill(body, rows.map(row));
    }
    fill(pager,
      h("span", { class: "muted" }, total ? `${fmtNumber(offset + 1)}–${fmtNumber(offset + rows.length)} of ${fmtNumber(total)}` : ""),
      h("button", { class: "secondary", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "‹ Previous"),
      h("button", { class: "secondary", disabled: offset + rows.length >= total, onclick: () => { offset += PAGE; load(); } }, "Next ›"));
  }

  function row(s) {
    const spec = s.spec || {};
    const best = s.best && (s.best.value ?? (s.best.values || [])[0]);
    const running = s.counts.RUNNING || 0;
    return h("tr", { dataset: { study: s.name } },
      h("td", {}, h("a", { href: studyHref(s.name), class: "study-link" }, s.name)),
      h("td", {}, badge(s.state)),
      h("td", {}, progressBar(s.finished, s.total, `${fmtNumber(s.finished)} / ${fmtNumber(s.total)}${running ? ` · ${running} running` : ""}`)),
      h("td", { class: "num" }, best === undefined || best === null ? "–" : fmtNumber(best)),
      h("td", {}, s.metrics.map((m, i) => `${m} ${arrow(s.directions[i])}`).join(", ")),
      h("td", { class: "muted" }, [spec.sampler && spec.sampler.type, spec.pruner && spec.pruner.type].filter(Boolean).join(" / ") || "–"),
      h("td", { class: "muted" }, fmtTime(s.created_at)));
  }

  await load();
  scope.every(4000, load);
}

function arrow(direction) {
  return direction === "maximize" ? "↑" : direction === "minimize" ? "↓" : "";
}
