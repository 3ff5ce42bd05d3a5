// The dashboard's only door to the server: the REST API under /api (see the API's OpenAPI docs).
// Adds the bearer token when one is stored, asks for it once on a 401, and turns every error body
// into a list of readable messages (the API's 422 messages start with the dotted field path).

const TOKEN_KEY = "hpo.apiToken";

export class ApiError extends Error {
  constructor(status, messages, body) {
    super(messages.join("\n") || `HTTP ${status}`);
    this.status = status;
    this.messages = messages;
    this.body = body;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives for this page only */
  }
  memoryToken = token || null;
}

let memoryToken = null;
let pendingPrompt = null;

/** Show the token dialog (one at a time, shared by concurrent 401s); resolves to the token or null. */
export function askToken(reason) {
  if (pendingPrompt) return pendingPrompt;
  const dialog = document.getElementById("token-dialog");
  if (!dialog) return Promise.resolve(null);
  const form = dialog.querySelector("form");
  const input = dialog.querySelector("input[name=token]");
  const note = dialog.querySelector(".token-reason");
  note.textContent = reason || "";
  input.value = "";
  pendingPrompt = new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("cancel", onCancel);
      dialog.querySelector("[data-action=cancel]").removeEventListener("click", onCancel);
      if (dialog.open) dialog.close();
      pendingPrompt = null;
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      setToken(token);
      done(token || null);
    };
    const onCancel = (event) => {
      event.preventDefault();
      done(null);
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("cancel", onCancel);
    dialog.querySelector("[data-action=cancel]").addEventListener("click", onCancel);
    dialog.showModal();
    input.focus();
  });
  return pendingPrompt;
}

function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, String(v)));
    else params.set(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** Every readable message in an error body, whatever shape the server chose. */
export function errorMessages(body, status) {
  const out = [];
  // The API's shape: {detail: "a: x; b: y; other", errors: [{field, message}, ...]}. Each field
  // problem becomes "field: message"; what detail says beyond them is kept as one more message.
  if (body && typeof body === "object" && Array.isArray(body.errors) && body.errors.length
      && body.errors.every((e) => e && typeof e.message === "string")) {
    let rest = typeof body.detail === "string" ? body.detail : "";
    for (const e of body.errors) {
      const line = e.field ? `${e.field}: ${e.message}` : e.message;
      out.push(line);
      rest = rest.replace(line, "");
    }
    rest = rest.replace(/^(\s*;\s*)+|(\s*;\s*)+$/g, "").replace(/(\s*;\s*){2,}/g, "; ");
    if (rest) out.push(rest);
    return [...new Set(out)];
  }
  const visit = (item) => {
    if (item === null || item === undefined) return;
    if (typeof item === "string") {
      out.push(item);
    } else if (Array.isArray(item)) {
      item.forEach(visit);
    } else if (typeof item === "object") {
      if (typeof item.msg === "string") {
        // FastAPI's default {loc, msg}: drop the leading "body"/"query" part of the location.
        const loc = Array.isArray(item.loc)
          ? item.loc.filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p))).join(".")
          : "";
        const msg = item.msg.replace(/^Value error, /, "");
        out.push(loc && !msg.startsWith(`${loc}:`) ? `${loc}: ${msg}` : msg);
      } else if (typeof item.message === "string" && (item.field || item.path || item.loc)) {
        const where = item.field || item.path || item.loc;
        out.push(item.message.startsWith(`${where}:`) ? item.message : `${where}: ${item.message}`);
      } else {
        for (const key of ["detail", "errors", "messages", "message", "error"]) {
          if (key in item) {
            visit(item[key]);
            return;
          }
        }
      }
    }
  };
  visit(body);
  if (!out.length) out.push(`request failed (HTTP ${status})`);
  return [...new Set(out)];
}

/** Bytes of API data received by this page (shown in the footer; the tests read it). */
export const traffic = { bytes: 0, requests: 0 };

/**
 * Call the API. `query` values that are empty are left out (arrays repeat the key). `body` is
 * sent as JSON, or as multipart when it is a FormData (uploads). Resolves to the decoded JSON
 * body (null for an empty body); rejects with ApiError carrying the server's messages.
 * `raw: true` resolves to the Response itself (downloads) once it is known to be OK.
 */
export async function api(path, { method = "GET", body, query, signal, raw = false } = {}) {
  const url = path + queryString(query);
  const multipart = typeof FormData !== "undefined" && body instanceof FormData;
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: raw ? "*/*" : "application/json" };
    const token = getToken() || memoryToken;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined && !multipart) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined || multipart ? body : JSON.stringify(body),
      signal,
    });
    if (raw && response.ok) return response;
    const text = await response.text();
    traffic.bytes += text.length;
    traffic.requests += 1;
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (response.status === 401 && attempt < 3) {
      const reason = token
        ? "The server rejected the stored API token. Enter the right one:"
        : "This server needs its API token (HPO_API_TOKEN):";
      const entered = await askToken(reason);
      if (entered) continue;
    }
    if (!response.ok) throw new ApiError(response.status, errorMessages(data, response.status), data);
    return data;
  }
}

/**
 * Download an API resource as a file (CSV export, artifacts). A plain link would not carry the
 * bearer token, which a server with HPO_AUTH_READS needs, so the file is fetched and saved.
 */
export async function download(path, filename, query) {
  const response = await api(path, { query, raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob.size;
}

// --- response shapes ----------------------------------------------------------------------------
// The helpers below accept the few reasonable shapes a paged list can take, so the pages do not
// depend on one envelope's exact key names.

export function itemsOf(page, ...keys) {
  if (Array.isArray(page)) return page;
  if (!page || typeof page !== "object") return [];
  for (const key of [...keys, "items", "data", "results"]) {
    if (Array.isArray(page[key])) return page[key];
  }
  return [];
}

export function totalOf(page, fallback) {
  if (page && typeof page === "object" && !Array.isArray(page)) {
    for (const key of ["total", "count", "total_count"]) {
      if (Number.isFinite(page[key])) return page[key];
    }
  }
  return fallback;
}

/** The cursor to pass as `after` next time, if the response carries one. */
export function cursorOf(page) {
  if (!page || typeof page !== "object" || Array.isArray(page)) return null;
  for (const key of ["next_after", "cursor", "next_cursor", "after", "next"]) {
    const value = page[key];
    if (value !== undefined && value !== null && value !== "" && typeof value !== "object") {
      return String(value);
    }
  }
  return null;
}

function seconds(a, b) {
  if (!a || !b) return null;
  const d = (new Date(b).getTime() - new Date(a).getTime()) / 1000;
  return Number.isFinite(d) ? d : null;
}

function firstDefined(...values) {
  return values.find((v) => v !== undefined && v !== null);
}

function workerName(w) {
  if (!w) return null;
  if (typeof w === "object") return [w.id, w.device].filter(Boolean).join(" on ");
  return String(w);
}

/** A trial in one shape: {number, state, values, params, start, complete, duration, worker}. */
export function normTrial(t) {
  const values = Array.isArray(t.values) ? t.values : t.value !== undefined && t.value !== null ? [t.value] : [];
  const start = firstDefined(t.datetime_start, t.started_at, t.start);
  const complete = firstDefined(t.datetime_complete, t.finished_at, t.completed_at, t.complete);
  return {
    ...t,
    number: t.number,
    state: String(t.state || "").toUpperCase(),
    values,
    params: t.params || {},
    start,
    complete,
    duration: firstDefined(t.duration_s, t.duration_seconds, t.duration, seconds(start, complete)),
    worker: workerName(firstDefined(t.worker, t.worker_id)),
  };
}

/** A study summary in one shape. */
export function normStudy(s) {
  const counts = s.counts || {};
  const finished = firstDefined(
    s.finished,
    s.progress && s.progress.finished,
    (counts.COMPLETE || 0) + (counts.PRUNED || 0),
  );
  const total = firstDefined(s.n_trials, s.progress && s.progress.total, s.spec && s.spec.budget && s.spec.budget.n_trials, 0);
  const spec = s.spec || null;
  const elapsed = firstDefined(s.elapsed_s, s.elapsed_seconds, s.elapsed, s.progress && s.progress.elapsed_s,
    s.started_at ? seconds(s.started_at, s.finished_at || new Date().toISOString()) : null);
  return {
    ...s,
    counts,
    finished,
    total,
    spec,
    directions: s.directions || (s.direction ? [s.direction] : spec ? [] : ["minimize"]),
    metrics: s.metrics || (spec && spec.task ? [].concat(spec.task.metric) : ["value"]),
    best: s.best || s.best_trial || null,
    elapsed,
    eta: firstDefined(s.eta_s, s.estimated_time_left_s, s.time_left_s, s.remaining_s, s.eta, s.progress && s.progress.eta_s, guessEta(s.state, elapsed, finished, total)),
  };
}

/** Left when the API gives no estimate: the time per finished trial so far, times what is left. */
function guessEta(state, elapsed, finished, total) {
  if (state !== "running" || !elapsed || !finished || !(total > finished)) return null;
  return (elapsed / finished) * (total - finished);
}
