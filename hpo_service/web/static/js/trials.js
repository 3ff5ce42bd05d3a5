// The study page's trial table: paged and sortable, kept live from the API's polling cursor.
//
// The API pages trials by number only (GET .../trials?order=asc|desc&offset=&limit=), and filters
// them (state, value and parameter ranges; see trial-filters.js). So:
//  - a study with at most ALL_LIMIT trials is loaded whole once (one request) and then kept up
//    to date from polls (GET .../trials?after=CURSOR returns only new or changed trials, merged
//    by number): every column sorts over all trials, pages are cut in the browser;
//  - a bigger study (10,000 trials) is paged by the server: the number column sorts there, and
//    the other columns sort the page on screen (the header says so);
//  - a filtered table is always paged by the server, whatever the study's size.

import { api, itemsOf, normTrial, totalOf } from "./api.js";
import { badge, fill, fmtDuration, fmtNumber, fmtParam, fmtTime, h } from "./util.js";

export const PAGE_SIZE = 50;
export const ALL_LIMIT = 1000;

const STATE_ORDER = { COMPLETE: 0, PRUNED: 1, RUNNING: 2, WAITING: 3, FAIL: 4 };

export class TrialTable {
  /**
   * @param {object} options base: the study's API path; metrics: objective names;
   *   directions: per objective; params: parameter names (one column each); onOpen(number);
   *   link(number): the trial's address, so the number is a real link (keyboard, new tab).
   */
  constructor({ base, metrics, directions, params, onOpen, link }) {
    Object.assign(this, { base, metrics, directions, params, onOpen, link });
    this.mode = "all";
    this.filter = null; // the API's filter query, or null
    this.trials = new Map(); // number -> trial (mode "all")
    this.page = []; // the server's page (mode "paged")
    this.total = 0;
    this.offset = 0;
    this.sortKey = "number";
    this.desc = true;
    this.thead = h("thead");
    this.tbody = h("tbody");
    this.pager = h("div", { class: "pager" });
    this.note = h("span", { class: "muted small sort-note" });
    this.el = h("div", {}, h("div", { class: "table-wrap" }, h("table", { class: "table trials-table" }, this.thead, this.tbody)), this.pager);
  }

  /** Take the first page (newest first, from the first view) and pick the mode. */
  async init(firstPage) {
    const items = itemsOf(firstPage, "trials").map(normTrial);
    this.total = totalOf(firstPage, items.length);
    if (this.total > ALL_LIMIT) {
      this.mode = "paged";
      this.page = items;
    } else {
      for (const t of items) this.trials.set(t.number, t);
      this.render(new Set());
      if (this.total > items.length) {
        const all = await api(`${this.base}/trials`, { query: { limit: ALL_LIMIT, order: "asc" } });
        for (const t of itemsOf(all, "trials").map(normTrial)) this.trials.set(t.number, t);
        this.total = Math.max(this.total, this.trials.size);
      }
    }
    this.render(new Set());
  }

  /** Merge a poll's new or changed trials; resolves to the numbers of those that differ. */
  async apply(changes, total) {
    // The cursor may deliver a trial again (at least once): only real differences count.
    const fresh = changes.map(normTrial).filter((t) => {
      const known = this.mode === "all" ? this.trials.get(t.number) : this.page.find((p) => p.number === t.number);
      return !known || known.state !== t.state || JSON.stringify(known.values) !== JSON.stringify(t.values)
        || (known.complete || null) !== (t.complete || null);
    });
    const changed = new Set(fresh.map((t) => t.number));
    if (!changed.size && (total === this.total || this.filter)) return changed;
    if (this.mode === "all") {
      for (const t of fresh) this.trials.set(t.number, t);
      this.total = Math.max(total ?? 0, this.trials.size);
      this.render(changed);
    } else {
      await this.reload(changed);
    }
    return changed;
  }

  /** Filter on the server (query: the API's parameters) or, with null, show everything again. */
  async setFilter(query) {
    const page = await api(`${this.base}/trials`, { query: { ...(query || {}), limit: PAGE_SIZE, order: "desc" } });
    this.filter = query;
    this.offset = 0;
    this.trials.clear();
    this.mode = "all";
    if (query) {
      this.mode = "paged";
      this.sortKey = "number";
      this.desc = true;
      this.page = itemsOf(page, "trials").map(normTrial);
      this.total = totalOf(page, this.page.length);
      this.render(new Set());
      return;
    }
    await this.init(page);
  }

  async reload(changed = new Set()) {
    if (this.mode === "all") {
      this.render(changed);
      return;
    }
    const serverDesc = this.sortKey === "number" ? this.desc : true;
    const page = await api(`${this.base}/trials`, { query: { ...(this.filter || {}), offset: this.offset, limit: PAGE_SIZE, order: serverDesc ? "desc" : "asc" } });
    this.page = itemsOf(page, "trials").map(normTrial);
    this.total = totalOf(page, this.total);
    this.render(changed);
  }

  columns() {
    const cols = [
      { key: "number", label: "#", cls: "num", sort: (t) => t.number,
        cell: (t) => (this.link ? h("a", { href: this.link(t.number), onclick: (e) => e.stopPropagation() }, t.number) : t.number) },
      { key: "state", label: "State", sort: (t) => STATE_ORDER[t.state] ?? 9, cell: (t) => badge(t.state) },
    ];
    this.metrics.forEach((m, i) => cols.push({
      key: i === 0 ? "value" : `value${i}`, label: m, cls: "num", sort: (t) => t.values[i], cell: (t) => fmtNumber(t.values[i]),
    }));
    for (const p of this.params) {
      cols.push({ key: `params.${p}`, label: p, cls: "num", sort: (t) => t.params[p], cell: (t) => fmtParam(t.params[p]) });
    }
    cols.push({ key: "duration", label: "Duration", cls: "num", sort: (t) => t.duration, cell: (t) => fmtDuration(t.duration) });
    cols.push({ key: "start", label: "Started", sort: (t) => t.start || null, cell: (t) => fmtTime(t.start) });
    return cols;
  }

  sortBy(key) {
    if (key === this.sortKey) {
      this.desc = !this.desc;
    } else {
      this.sortKey = key;
      // Best first for objectives; newest first for numbers and times.
      const objective = /^value(\d*)$/.exec(key);
      this.desc = objective ? this.directions[Number(objective[1] || 0)] === "maximize" : ["number", "start", "duration"].includes(key);
    }
    if (this.mode === "all" || key === "number") this.offset = 0;
    return this.reload();
  }

  goto(offset) {
    this.offset = Math.max(0, offset);
    return this.reload();
  }

  sorted(rows) {
    const col = this.columns().find((c) => c.key === this.sortKey) || this.columns()[0];
    const dir = this.desc ? -1 : 1;
    const missing = (v) => v === undefined || v === null || (typeof v === "number" && !Number.isFinite(v));
    return [...rows].sort((a, b) => {
      const x = col.sort(a);
      const y = col.sort(b);
      if (missing(x) || missing(y)) return missing(x) - missing(y) || a.number - b.number; // blanks last
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.number - b.number;
    });
  }

  render(changed) {
    const cols = this.columns();
    const pagedLocal = this.mode === "paged" && this.sortKey !== "number";
    fill(this.thead, h("tr", {}, cols.map((c) => {
      const active = c.key === this.sortKey;
      const title = this.mode === "paged" && c.key !== "number"
        ? "Sorts the trials on this page (the API orders big studies by number only)"
        : `Sort by ${c.label}`;
      return h("th", { scope: "col", class: `${c.cls || ""} sortable ${active ? (this.desc ? "desc" : "asc") : ""}`, dataset: { sort: c.key },
        title, "aria-sort": active ? (this.desc ? "descending" : "ascending") : "none", onclick: () => this.sortBy(c.key) }, c.label);
    })));
    let rows;
    if (this.mode === "all") {
      this.total = Math.max(this.total, this.trials.size);
      if (this.offset >= this.trials.size && this.offset > 0) this.offset = Math.max(0, Math.floor((this.trials.size - 1) / PAGE_SIZE) * PAGE_SIZE);
      rows = this.sorted([...this.trials.values()]).slice(this.offset, this.offset + PAGE_SIZE);
    } else {
      rows = pagedLocal ? this.sorted(this.page) : this.page;
    }
    if (!rows.length) {
      const empty = this.filter ? "No trials match the filter." : "No trials yet: start workers to run some.";
      fill(this.tbody, h("tr", {}, h("td", { colspan: String(cols.length), class: "muted empty" }, empty)));
    } else {
      fill(this.tbody, rows.map((t) => h("tr", {
        class: `trial-row${changed.has(t.number) ? " flash" : ""}`, dataset: { number: String(t.number), state: t.state },
        onclick: () => this.onOpen(t.number) }, cols.map((c) => h("td", { class: c.cls || "" }, c.cell(t))))));
    }
    this.note.textContent = pagedLocal ? "sorted within this page" : "";
    const total = this.total;
    fill(this.pager,
      h("span", { class: "muted", id: "trial-range" },
        total ? `${fmtNumber(this.offset + 1)}–${fmtNumber(this.offset + rows.length)} of ${fmtNumber(total)}` : "", " ", this.note),
      h("button", { class: "secondary", disabled: this.offset === 0, onclick: () => this.goto(0) }, "« First"),
      h("button", { class: "secondary", disabled: this.offset === 0, onclick: () => this.goto(this.offset - PAGE_SIZE) }, "‹ Previous"),
      h("button", { class: "secondary", disabled: this.offset + rows.length >= total, onclick: () => this.goto(this.offset + PAGE_SIZE) }, "Next ›"),
      h("button", { class: "secondary", disabled: this.offset + rows.length >= total,
        onclick: () => this.goto(Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE) }, "Last »"));
  }
}
