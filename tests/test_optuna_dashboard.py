"""optuna-dashboard on a database the service made: our metric names, small trial attributes.

A real study (two trials trained by a real worker on an SQLite file) is opened with
optuna-dashboard's own server (``optuna_dashboard.wsgi``, the app its CLI runs), first through
its JSON API in process, then in Debian's Chromium, where its trial page must fit the window.
A control trial written the old way (curves as a user attribute) shows what the check catches:
its page is thousands of pixels wide.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import optuna
import pytest

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.db import dispose_engines, migrate
from hpo_service.store.studies import create_study
from tests.conftest import make_settings, tiny_spec
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, DOCS_SHOTS, OUTPUT

optuna_dashboard = pytest.importorskip("optuna_dashboard")

#: Longest attribute value (as optuna-dashboard shows it) that keeps a table cell narrow.
MAX_ATTR_CHARS = 120
VIEWPORT = 1360


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = make_settings(f"sqlite:///{tmp / 'hpo.db'}", tmp, poll_interval_s=0.1)
    migrate(settings)
    create_study(settings, parse_spec(tiny_spec("eco", n_trials=2)), start=True)
    assert Worker(settings, WorkerOptions(study="eco", exit_when_idle=True)).serve() == 2
    # The control: a trial with curves as a user attribute, as the service wrote them before 0004.
    before = optuna.create_study(study_name="before-0004", storage=settings.database_url)
    curves = {f"val_{m}": [round(1 / (e + 1), 6) for e in range(200)] for m in ("loss", "rmse")}
    before.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"curves": curves}))
    dispose_engines()
    return settings


@pytest.fixture(scope="module")
def dashboard(database: Settings) -> Iterator[httpx.Client]:
    app = optuna_dashboard.wsgi(database.database_url)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://dash") as client:
        yield client
#: The small scalars a trained trial keeps on Optuna's side (store/trial_data.py keeps the rest).
SMALL_ATTRS = {"stop_reason", "best_epoch", "n_params", "train_n", "val_n", "test_n"}


def study_ids(client: httpx.Client) -> dict[str, int]:
    studies = client.get("/api/studies").json()["study_summaries"]
    return {s["study_name"]: s["study_id"] for s in studies}


def test_the_dashboard_shows_our_metric_names_and_small_attributes(
    dashboard: httpx.Client,
) -> None:
    ours = study_ids(dashboard)["eco"]
    detail: dict[str, Any] = dashboard.get(f"/api/studies/{ours}").json()
    assert detail["objective_names"] == ["rmse"]  # not "Objective 0"
    assert len(detail["trials"]) == 2
    for trial in detail["trials"]:
        assert trial["state"] == "Complete"
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert set(attrs) == SMALL_ATTRS
        assert all(len(v) <= MAX_ATTR_CHARS for v in attrs.values()), attrs
    keys = {a["key"] for a in detail["union_user_attrs"]}
    assert keys == SMALL_ATTRS


def test_the_control_study_has_the_wide_attribute(dashboard: httpx.Client) -> None:
    control = study_ids(dashboard)["before-0004"]
    trial = dashboard.get(f"/api/studies/{control}").json()["trials"][0]
    assert max(len(a["value"]) for a in trial["user_attrs"]) > 1000


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(database: Settings) -> Iterator[str]:
    server: WSGIServer = make_server(
        "127.0.0.1", 0, optuna_dashboard.wsgi(database.database_url), handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def page_width(base: str, study_id: int, shot: Path) -> int:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": VIEWPORT, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{base}/dashboard/studies/{study_id}/trials?numbers=0")
            page.get_by_text("User Attributes").first.wait_for()
            page.wait_for_load_state("networkidle")
            shot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            return int(page.evaluate("document.documentElement.scrollWidth"))
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt-get install chromium)"
)
def test_its_trial_page_fits_the_window(served: str, dashboard: httpx.Client) -> None:
    ids = study_ids(dashboard)
    ours = page_width(served, ids["eco"], OUTPUT / "optuna-dashboard-trial.png")
    control = page_width(served, ids["before-0004"], OUTPUT / "optuna-dashboard-trial-before.png")
    widths = json.dumps({"ours": ours, "before_0004": control})
    assert ours <= VIEWPORT, widths
    assert control > 2 * VIEWPORT, widths  # the check would catch the old layout
    if os.environ.get("HPO_UPDATE_SCREENSHOTS") == "1":  # the README shows it
        shutil.copy(
            OUTPUT / "optuna-dashboard-trial.png", DOCS_SHOTS / "optuna-dashboard-trial.png"
        )
