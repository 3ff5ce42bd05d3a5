// Compare studies: pick studies (GET /api/studies), then GET /api/compare/plots/{kind}?studies=a,b
// for each comparison kind. The selection lives in the URL (#/compare?studies=a,b) so it can be shared.

import { api, itemsOf, normStudy } from "../api.js";
import { COMPARE_KINDS, KIND_LABELS, imageDownloads, loadPlotly, purge, showPlot } from "../plots.js";
import { badge, fill, fmtNumber, h } from "../util.js";

const MAX = 12;

export async function render(root, { query }, scope) {
  const picked = new Set((query.get("studies") || "").split(",").map((s) => s.trim()).filter(Boolean));
  if (picked.size >= 2) loadPlotly().catch(() => {});
  const page = await api("/api/studies", { query: { limit: 200 } });
  if (!scope.alive) return;
  const studies = itemsOf(page, "studies").map(normStudy);

  const message = h("div", { class: "form-message", role: "status" });
  const list = h("div", { class: "study-picks" }, studies.length
    ? studies.map((s) => h("label", { class: "pick" },
      h("input", { type: "checkbox", name: "studies", value: s.name, checked: picked.has(s.name) }),
      h("span", { class: "pick-name" }, s.name), badge(s.state),
      h("span", { class: "muted small" }, [
        `${fmtNumber(s.finished)}/${fmtNumber(s.total)}`,
        s.spec && s.spec.sampler && s.spec.sampler.type,
        s.spec && s.spec.pruner && s.spec.pruner.type !== "none" ? `${s.spec.pruner.type} pruner` : null,
        s.best && s.best.value !== undefined && s.best.value !== null ? `best ${fmtNumber(s.best.value)}` : null,
      ].filter(Boolean).join(" · "))))
    : h("p", { class: "muted" }, "No studies yet."));
  const form = h("form", { id: "compare-form", onsubmit: (event) => {
    event.preventDefault();
    const names = [...form.querySelectorAll("input[name=studies]:checked")].map((el) => el.value);
    if (names.length < 2) {
      fill(message, h("span", { class: "error" }, "Pick at least two studies."));
      return;
    }
    if (names.length > MAX) {
      fill(message, h("span", { class: "error" }, `Pick at most ${MAX} studies.`));
      return;
    }
    location.hash = `#/compare?studies=${names.map(encodeURIComponent).join(",")}`;
  } }, list, h("div", { class: "actions" }, h("button", { type: "submit", id: "compare-submit" }, "Compare")), message);

  const plotsSection = h("section", { class: "card plots" });
  fill(root,
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h1", {}, "Compare studies")),
      h("p", { class: "muted" }, "Best value so far against trial number and wall time, and the distribution of objective values (EDF), for several studies on one chart: TPE against random, pruning on against off. Studies are compared only when they optimise the same metric in the same direction."),
      form),
    plotsSection);

  if (picked.size < 2) {
    fill(plotsSection, h("p", { class: "muted" }, "Pick two or more studies and press Compare."));
    return;
  }
  const names = [...picked].join(",");
  const els = COMPARE_KINDS.map((kind) => h("div", { class: "plot", id: `compare-${kind}`, dataset: { kind } }));
  fill(plotsSection, h("h2", {}, `Comparing ${[...picked].join(", ")}`),
    COMPARE_KINDS.map((kind, i) => [h("h3", {}, KIND_LABELS[kind] || kind), els[i],
      imageDownloads(() => ({ path: `/api/compare/plots/${kind}`, query: { studies: names }, stem: `compare-${kind}` }))]));
  scope.onCleanup(() => els.forEach(purge));
  await Promise.all(COMPARE_KINDS.map((kind, i) => showPlot(els[i], `/api/compare/plots/${kind}`, { studies: names })));
}
