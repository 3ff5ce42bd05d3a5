// Workers: GET /api/workers (heartbeat, current trial, finished runs by outcome), refreshed; start
// more with POST /api/studies/{name}/workers {processes, device}. The study choice lists only
// studies that can still run, running ones first, so it never defaults to a finished study.

import { api, itemsOf, normStudy } from "../api.js";
import { badge, fill, fmtAgo, fmtTime, h, studyHref } from "../util.js";
import { deviceSelect, startWorkers } from "../workers-control.js";

export async function render(root, _args, scope) {
  const body = h("tbody");
  const message = h("div", { class: "form-message", role: "status" });
  const studySelect = h("select", { name: "study", "aria-label": "Study" });
  const processes = h("input", { type: "number", name: "processes", min: "1", max: "64", value: "1", class: "narrow" });
  const device = deviceSelect();
  const form = h("form", { class: "inline-form", onsubmit: async (event) => {
    event.preventDefault();
    fill(message);
    if (!studySelect.value) return;
    try {
      await startWorkers(studySelect.value, Number(processes.value), device.value);
      fill(message, h("span", { class: "ok" }, `Started ${processes.value} worker(s) for ${studySelect.value}.`));
      load();
    } catch (error) {
      fill(message, h("span", { class: "error" }, error.messages ? error.messages.join("; ") : String(error)));
    }
  } },
  h("label", {}, "Study ", studySelect), h("label", {}, "Processes ", processes), h("label", {}, "Device ", device),
  h("button", { type: "submit" }, "Start workers"));

  fill(root,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h1", {}, "Workers")),
      h("p", { class: "muted" }, "Worker processes registered with this database: local ones started by the server and remote ones that joined by themselves."),
      h("div", { class: "table-wrap" }, h("table", { class: "table workers-table" },
        h("thead", {}, h("tr", {}, ["Worker", "Host", "PID", "Device", "State", "Study / trial", "Done", "Failed", "Heartbeat", "Started"]
          .map((c) => h("th", { class: ["PID", "Done", "Failed"].includes(c) ? "num" : "" }, c)))),
        body))),
    h("section", { class: "card" }, h("h2", {}, "Start workers"), form, message));

  async function load() {
    const page = await api("/api/workers");
    if (!scope.alive) return;
    const rows = itemsOf(page, "workers");
    if (!rows.length) {
      fill(body, h("tr", {}, h("td", { colspan: "10", class: "muted empty" }, "No workers registered yet.")));
      return;
    }
    fill(body, rows.map((w) => {
      const study = w.current_study || w.study_name || w.study;
      const trial = w.current_trial_number ?? w.current_trial;
      return h("tr", {},
        h("td", { class: "mono" }, w.id || w.worker_id || "–"),
        h("td", {}, w.host || "–"), h("td", { class: "num" }, w.pid ?? "–"), h("td", {}, w.device || "–"),
        h("td", {}, badge(w.state !== "stopped" && (w.live === false || w.alive === false) ? "lost" : w.state)),
        h("td", {}, study ? h("a", { href: studyHref(study) }, study) : "–", trial !== undefined && trial !== null ? ` #${trial}` : ""),
        ...outcomeCells(w),
        h("td", { class: "muted" }, fmtAgo(w.heartbeat_at || w.last_heartbeat)),
        h("td", { class: "muted" }, fmtTime(w.started_at)));
    }));
  }

  const studies = itemsOf(await api("/api/studies", { query: { limit: 200 } }), "studies").map(normStudy);
  const startable = studies.filter((s) => STARTABLE.includes(s.state))
    .sort((a, b) => STARTABLE.indexOf(a.state) - STARTABLE.indexOf(b.state));
  fill(studySelect, startable.length ? startable.map((s) => h("option", { value: s.name }, `${s.name} (${s.state})`))
    : h("option", { value: "" }, "no study can run: create one or extend a completed one"));
  form.querySelector("button[type=submit]").disabled = !startable.length;
  await load();
  scope.every(3000, load);
}

/** Preferred first: a running study (more workers help now), then created, then paused. */
const STARTABLE = ["running", "created", "paused"];

/** Done (complete or pruned) and failed runs; older servers only send trials_done. */
function outcomeCells(w) {
  const o = w.outcomes;
  if (!o || typeof o !== "object") return [h("td", { class: "num" }, w.trials_done ?? "–"), h("td", { class: "num" }, "–")];
  const done = (o.complete || 0) + (o.pruned || 0);
  const failed = o.failed || 0;
  return [h("td", { class: "num", title: `${o.complete || 0} complete, ${o.pruned || 0} pruned` }, done),
    h("td", { class: `num${failed ? " error" : ""}` }, failed)];
}
