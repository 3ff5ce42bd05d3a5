// Hash router: #/ (studies), #/new, #/studies/NAME, #/studies/NAME/trials/N, #/compare?studies=a,b,
// #/workers, #/datasets.

import { askToken, getToken, setToken, traffic } from "./api.js";
import { PageScope, fill, h, parseHash } from "./util.js";
import * as studies from "./pages/studies.js";
import * as create from "./pages/create.js";
import * as study from "./pages/study.js";
import * as compare from "./pages/compare.js";
import * as workers from "./pages/workers.js";
import * as trial from "./pages/trial.js";
import * as datasets from "./pages/datasets.js";

const root = document.getElementById("app");
let scope = null;

function route(parts) {
  const [head, name, sub, number] = parts;
  if (!head || head === "studies") {
    if (name && sub === "trials" && /^\d+$/.test(number || "")) return { page: trial, nav: "studies", args: { name, number } };
    if (name && sub) return null;
    return name ? { page: study, nav: "studies", args: { name } } : { page: studies, nav: "studies", args: {} };
  }
  if (head === "datasets") return { page: datasets, nav: "datasets", args: {} };
  if (head === "new") return { page: create, nav: "new", args: {} };
  if (head === "compare") return { page: compare, nav: "compare", args: {} };
  if (head === "workers") return { page: workers, nav: "workers", args: {} };
  return null;
}

async function render() {
  if (scope) scope.close();
  scope = new PageScope();
  const { parts, query } = parseHash(location.hash);
  const target = route(parts);
  for (const link of document.querySelectorAll("nav a[data-nav]")) {
    link.classList.toggle("active", Boolean(target) && link.dataset.nav === target.nav);
  }
  fill(root);
  root.removeAttribute("data-ready");
  if (!target) {
    fill(root, h("section", { class: "card" }, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the studies"))));
    root.dataset.ready = "true";
    return;
  }
  const current = scope;
  try {
    await target.page.render(root, { ...target.args, query }, current);
  } catch (error) {
    if (!current.alive) return;
    fill(root, h("section", { class: "card error" }, h("h1", {}, "Could not load this page"),
      ...(error.messages || [String(error.message || error)]).map((m) => h("p", {}, m))));
  }
  if (current.alive) root.dataset.ready = "true";
}

function updateTokenLink() {
  const link = document.getElementById("token-link");
  link.textContent = getToken() ? "API token ✓" : "API token";
}

document.getElementById("token-link").addEventListener("click", async (event) => {
  event.preventDefault();
  const token = await askToken("Token for this browser tab (kept in session storage):");
  if (token === null && !getToken()) setToken(null);
  updateTokenLink();
});

window.addEventListener("hashchange", render);
window.addEventListener("storage", updateTokenLink);
// Expose a little state for debugging and the browser tests.
window.hpoDashboard = { traffic };
updateTokenLink();
setInterval(updateTokenLink, 2000);
render();
