"""The study page in Chromium (see test_browser.py for the set-up): the verdict against the
best baseline under the best trial, in green when the study beats it and red when it does not,
and one dashed reference line per baseline on the history plot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from hpo_service.store.baselines import save_baselines
from tests.test_browser import (
    Server,
    browser,  # noqa: F401 - a fixture
    go,
    page,  # noqa: F401 - a fixture
    plot_rendered,
    server,  # noqa: F401 - a fixture
    shoot,
    tiny_spec,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ORACLE = [{"name": "oracle", "label": "oracle", "val": {"rmse": 0.5}, "test": {"rmse": 0.5}}]


def _train(server: Server, name: str) -> None:  # noqa: F811
    assert server.api("POST", "/api/studies", json=tiny_spec(name, n_trials=2)).status_code == 201
    started = server.api(
        "POST", f"/api/studies/{name}/workers", json={"processes": 1, "device": "cpu"}
    )
    assert started.status_code < 300, started.text
    server.wait_for(f"{name} to complete", lambda: server.study(name)["state"] == "completed", 300)


def test_verdict_and_reference_lines(page: Page, server: Server) -> None:  # noqa: F811
    _train(server, "bl-web")
    study = server.study("bl-web")
    verdict = study["best_vs_baseline"]
    assert verdict is not None, study["baselines_note"]
    go(page, server, "/studies/bl-web")
    shown = page.locator("#baseline-verdict")
    assert shown.inner_text() == verdict["text"]
    classes = (shown.get_attribute("class") or "").split()
    assert ("beats" if verdict["beats"] else "loses") in classes
    plot_rendered(page, "#study-plot")
    names = page.evaluate("document.querySelector('#study-plot').data.map((t) => t.name)")
    labels = [b["label"] for b in study["baselines"]]
    assert [n for n in names if n.startswith("baseline: ")] == [f"baseline: {x}" for x in labels]
    shoot(page, "study-baselines")


def test_a_study_that_loses_is_shown_in_red(page: Page, server: Server) -> None:  # noqa: F811
    assert (
        server.api("POST", "/api/studies", json=tiny_spec("bl-lose", n_trials=1)).status_code == 201
    )
    save_baselines(sa.create_engine(server.database_url), "bl-lose", ORACLE)
    started = server.api(
        "POST", "/api/studies/bl-lose/workers", json={"processes": 1, "device": "cpu"}
    )
    assert started.status_code < 300, started.text
    server.wait_for("bl-lose", lambda: server.study("bl-lose")["state"] == "completed", 300)
    go(page, server, "/studies/bl-lose")
    shown = page.locator("#baseline-verdict.verdict.loses")
    assert shown.inner_text().startswith("does not beat the best baseline (")
    color = shown.evaluate("(el) => getComputedStyle(el).color")
    assert color == "rgb(198, 40, 40)"


def test_the_ensemble_that_serves_is_named_under_the_best_trial(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    """task.ensemble_trials 2: the study page names the members (links to their trials) and
    the ensemble's figure; the verdict sentence carries it too."""
    spec = tiny_spec("ens-web", n_trials=3)
    spec["task"]["ensemble_trials"] = 2
    assert server.api("POST", "/api/studies", json=spec).status_code == 201
    started = server.api(
        "POST", "/api/studies/ens-web/workers", json={"processes": 1, "device": "cpu"}
    )
    assert started.status_code < 300, started.text
    server.wait_for("ens-web", lambda: server.study("ens-web")["state"] == "completed", 300)
    ensemble = server.study("ens-web")["best"]["ensemble"]
    go(page, server, "/studies/ens-web")
    line = page.locator("#ensemble-line")
    members = ", ".join(f"#{n}" for n in ensemble["members"])
    assert line.inner_text().startswith(f"Ensemble of trials {members} serves predictions: rmse ")
    assert f"({ensemble['test_n']} examples)" in line.inner_text()
    links = line.locator("a").evaluate_all("(els) => els.map((a) => a.getAttribute('href'))")
    assert [h.rsplit("/", 1)[-1] for h in links] == [str(n) for n in ensemble["members"]]
    assert "the ensemble of trials" in page.locator("#baseline-verdict").inner_text()
