// Starting local workers, shared by the study page and the workers page (one module, so the two
// pages do not import each other).
import { api } from "./api.js";
import { h } from "./util.js";

/** Start local worker processes (the API starts a created or paused study first). */
export async function startWorkers(name, processes, device) {
  return api(`/api/studies/${encodeURIComponent(name)}/workers`, { method: "POST", body: { processes, device } });
}

/** The device choice for a worker start. */
export function deviceSelect(value = "cpu") {
  return h("select", { name: "device", "aria-label": "Device" },
    ["cpu", "auto", "cuda"].map((d) => h("option", { value: d, selected: d === value }, d)));
}
