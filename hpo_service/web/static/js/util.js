// Small DOM and formatting helpers shared by the pages (no framework).

/** h("a", {href: "#/"}, "text", child) -> element. Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtNumber(value, digits = 5) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return value.toLocaleString("en");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(Math.max(1, digits - 2));
  return String(Number(value.toPrecision(digits)));
}

export function fmtParam(value) {
  if (typeof value === "number") return fmtNumber(value, 4);
  if (value === null || value === undefined) return "–";
  return String(value);
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  const hrs = Math.floor(m / 60);
  return `${hrs} h ${m % 60} min`;
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium" });
}

/** "12 s ago" for a timestamp. */
export function fmtAgo(iso) {
  if (!iso) return "–";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return String(iso);
  const s = Math.max(0, (Date.now() - t) / 1000);
  return `${fmtDuration(s)} ago`;
}

export function badge(state) {
  const s = String(state || "unknown").toLowerCase();
  return h("span", { class: `badge state-${s}` }, s);
}

export function progressBar(done, total, label) {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  return h(
    "div",
    { class: "progress", title: label || `${done} / ${total}`, role: "progressbar",
      "aria-valuenow": String(Math.round(pct)), "aria-valuemin": "0", "aria-valuemax": "100" },
    h("div", { class: "progress-fill", style: { width: `${pct.toFixed(1)}%` } }),
    h("span", { class: "progress-label" }, label || `${done} / ${total}`),
  );
}

/** Parse "#/path?x=1" into {parts: ["path"], query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(search) };
}

export function studyHref(name) {
  return `#/studies/${encodeURIComponent(name)}`;
}

/** A page's lifetime: timers and listeners registered here stop when the page is left. */
export class PageScope {
  constructor() {
    this.alive = true;
    this.cleanups = [];
  }
  /** Run fn now-ish and then every ms after each run finishes (skips while the tab is hidden). */
  every(ms, fn) {
    let timer = null;
    const tick = async () => {
      if (!this.alive) return;
      if (!document.hidden) {
        try {
          await fn();
        } catch (error) {
          console.warn("poll failed", error);
        }
      }
      if (this.alive) timer = setTimeout(tick, ms);
    };
    timer = setTimeout(tick, ms);
    this.cleanups.push(() => clearTimeout(timer));
  }
  onCleanup(fn) {
    this.cleanups.push(fn);
  }
  close() {
    this.alive = false;
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (error) {
        console.warn(error);
      }
    }
  }
}
