"""The dashboard's screens for what the API does, in Chromium (see test_browser.py for the set-up):
a trial at its own address (metrics, curves or a message, saved files, notes rendered safely),
trial filters served by the API, CSV export, budget extension, queueing a configuration,
predictions from a text box and a CSV file, dataset upload with the API's messages, the workers
page, dark mode and phone width. Screenshots go to test-output/ and, with
HPO_UPDATE_SCREENSHOTS=1, to docs/screenshots/."""

from __future__ import annotations

import csv
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pytest
import sqlalchemy as sa

from tests.test_browser import (
    BIG_STUDY,
    DOCS_SHOTS,
    OUTPUT,
    TOKEN,
    Server,
    browser,  # noqa: F401 - a fixture
    go,
    open_page,
    page,  # noqa: F401 - a fixture
    plot_rendered,
    server,  # noqa: F401 - a fixture
    shoot,
    tiny_spec,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TRAINED = "scr-train"
IDLE = "scr-idle"
XSS = (
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> '
    "**kept** [x](javascript:alert(1))"
)
SERIES = [83, 132, 131, 118, 62, 38, 34, 21, 11, 5, 2, 6, 15, 30, 50, 70, 90, 100, 110, 100]


@pytest.fixture(scope="module")
def trained(server: Server) -> dict[str, Any]:  # noqa: F811
    """A study whose 3 trials were trained by a worker the server started (artifacts, curves)."""
    assert (
        server.api("POST", "/api/studies", json=tiny_spec(TRAINED, n_trials=3)).status_code == 201
    )
    started = server.api(
        "POST", f"/api/studies/{TRAINED}/workers", json={"processes": 1, "device": "cpu"}
    )
    assert started.status_code < 300, started.text
    server.wait_for(
        f"{TRAINED} to complete", lambda: server.study(TRAINED)["state"] == "completed", 300
    )
    return server.study(TRAINED)


@pytest.fixture(scope="module")
def idle(server: Server) -> optuna.Study:  # noqa: F811
    """A created study (no workers) with one failed trial written through Optuna."""
    assert server.api("POST", "/api/studies", json=tiny_spec(IDLE)).status_code == 201
    study = optuna.load_study(study_name=IDLE, storage=server.database_url)
    trial = study.ask()
    trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
    trial.set_user_attr("fail_reason", "RuntimeError: out of memory")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return study


def shoot_between(page: Page, name: str, first: str, last: str) -> None:  # noqa: F811
    """A docs screenshot from the top of ``first`` to the bottom of ``last`` (smaller than the
    whole page), when HPO_UPDATE_SCREENSHOTS=1; always into test-output/."""
    top = page.evaluate(f"document.querySelector('{first}').getBoundingClientRect().top + scrollY")
    bottom = page.evaluate(
        f"document.querySelector('{last}').getBoundingClientRect().bottom + scrollY"
    )
    path = OUTPUT / f"{name}.png"
    width = page.viewport_size["width"] if page.viewport_size else 1360
    clip = {"x": 0, "y": top - 8, "width": width, "height": bottom - top + 16}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    if os.environ.get("HPO_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")


def complete_trial(server: Server, name: str) -> int:  # noqa: F811
    items = server.api("GET", f"/api/studies/{name}/trials?state=COMPLETE").json()["items"]
    assert items, "no complete trial"
    return int(items[0]["number"])


def test_trial_page_metrics_files_and_safe_notes(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    trained: dict[str, Any],
    tmp_path: Path,
) -> None:
    number = complete_trial(server, TRAINED)
    go(page, server, f"/studies/{TRAINED}/trials/{number}")
    plot_rendered(page, "#trial-curves")
    cells = page.locator("#trial-metrics tr[data-metric=rmse] td.num").all_inner_texts()
    assert len(cells) == 3 and all(c.strip() not in ("", "\u2013") for c in cells), cells
    header = page.inner_text("#trial-metrics thead").lower()  # the CSS capitalises headers
    assert "best epoch (n=" in header and "test (n=" in header, header  # what figures rest on
    facts = page.inner_text("#trial-facts")
    for label in ("best epoch", "stop reason", "parameters", "hyperparameters"):
        assert label in facts.lower(), facts
    assert page.locator("a[data-nav=next]").count() == 1

    with page.expect_download() as info:
        page.click("[data-action=download-zip]")
    saved = tmp_path / "trial.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert {"weights.pt", "config.json"} <= names, names

    page.locator(".notes").scroll_into_view_if_needed()
    page.wait_for_selector(".notes[data-loaded]")
    page.click(".notes [data-action=edit-note]")
    page.fill(".notes textarea", f"# Tried\n{XSS}\n- one\n- two")
    page.click(".notes [data-action=save-note]")
    page.wait_for_selector(".notes .markdown strong:has-text('kept')")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None, "a note ran script"
    assert page.locator(".notes .markdown img, .notes .markdown script").count() == 0
    assert "<img src=x" in page.inner_text(".notes .markdown")
    assert page.locator(".notes .markdown a").count() == 0, "javascript: links are not links"
    assert page.locator(".notes .markdown li").count() == 2
    stored = server.api("GET", f"/api/studies/{TRAINED}/trials/{number}/notes").json()
    assert XSS in stored["text"]
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "trial", docs=True)


def test_failed_trial_says_why_instead_of_empty_axes(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    idle: optuna.Study,
) -> None:
    go(page, server, f"/studies/{IDLE}/trials/0")
    message = page.inner_text("#trial-curves .no-curves")
    assert "failed before it recorded an epoch" in message and "out of memory" in message
    assert page.locator("#trial-curves svg, #trial-curves canvas").count() == 0
    assert "No stored metrics" in page.inner_text("#trial-metrics")
    assert "No saved files" in page.inner_text(".artifacts")


def test_a_running_trial_page_follows_the_trial(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    idle: optuna.Study,
) -> None:
    trial = idle.ask()
    trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
    go(page, server, f"/studies/{IDLE}/trials/{trial.number}")
    assert "No epoch has finished yet" in page.inner_text("#trial-curves")
    trial.report(12.5, 0)
    trial.report(11.0, 1)
    idle.tell(trial, 11.0)
    page.wait_for_selector(".trial-page h1 .badge:has-text('complete')", timeout=15_000)
    plot_rendered(page, "#trial-curves")  # the reported values, drawn without a reload


def test_trial_filters_are_served_by_the_api(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    go(page, server, f"/studies/{BIG_STUDY}")
    page.wait_for_selector("tr.trial-row")
    page.fill("input[name='filter.value_max']", "0.5")
    page.fill("input[name='filter.learning_rate.low']", "0.001")
    page.select_option("select[name='filter.optimizer']", "adam")
    query = "value_max=0.5&param=learning_rate:0.001:&param=optimizer=adam&limit=1"
    expected = server.api("GET", f"/api/studies/{BIG_STUDY}/trials?{query}").json()["total"]
    assert 0 < expected < 10_000
    with page.expect_response(lambda r: "value_max=0.5" in r.url) as answer:
        page.click("[data-action=filter]")
    assert "param=optimizer%3Dadam" in answer.value.url
    page.wait_for_function(
        "(n) => document.getElementById('trial-range').textContent.replace(/\\D/g, '')"
        ".endsWith(String(n))",
        arg=expected,
    )
    values = page.eval_on_selector_all(
        "tr.trial-row td:nth-child(3)", "tds => tds.map(td => Number(td.textContent))"
    )
    assert values and all(v <= 0.5 for v in values), values

    page.fill("input[name='filter.learning_rate.high']", "0.0001")
    page.click("[data-action=filter]")
    page.wait_for_selector(".filter-message .error")
    assert "must not exceed high" in page.inner_text(".filter-message")
    page.click("[data-action=clear-filter]")
    page.wait_for_function(
        "document.getElementById('trial-range').textContent.replace(/\\D/g, '').endsWith('10000')"
    )


def test_export_budget_queue_and_predict_on_the_study_page(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    trained: dict[str, Any],
    idle: optuna.Study,
    tmp_path: Path,
) -> None:
    go(page, server, f"/studies/{TRAINED}")
    with page.expect_download() as info:
        page.click("[data-action=export-csv]")
    saved = tmp_path / "trials.csv"
    info.value.save_as(saved)
    rows = list(csv.DictReader(saved.open()))
    assert len(rows) == 3 and rows[0]["rmse"], rows

    page.click("#predict-card summary")
    page.fill("textarea[name=predict-inputs]", ", ".join(map(str, SERIES)))
    page.click("[data-action=predict]")
    page.wait_for_selector("#predict-result .ok")
    assert "prediction(s) from trial" in page.inner_text("#predict-result")
    body = "year,value\n" + "\n".join(f"{1900 + i},{v}" for i, v in enumerate(SERIES))
    page.set_input_files(
        "input[name=predict-file]",
        {"name": "series.csv", "mimeType": "text/csv", "buffer": body.encode()},
    )
    page.wait_for_selector("select[name=predict-column]:not([hidden])")
    assert page.eval_on_selector(
        "select[name=predict-column]", "s => s.selectedOptions[0].text"
    ) == ("value")
    page.fill("textarea[name=predict-inputs]", "")
    page.click("[data-action=predict]")
    page.wait_for_selector("#predict-result .ok")
    page.fill("input[name=predict-trial]", "99")
    page.click("[data-action=predict]")
    page.wait_for_selector("#predict-result .error")
    assert "has no trial 99" in page.inner_text("#predict-result")
    page.fill("input[name=predict-trial]", "")
    page.click("[data-action=predict]")
    page.wait_for_selector("#predict-result .ok")

    shoot_between(page, "study-tools", ".trials", "#predict-card")

    page.fill("input[name=n_trials]", "2")
    page.click("[data-action=set-budget]")
    page.wait_for_selector(".budget-form .error")
    assert "below the 3 trial(s) already used" in page.inner_text(".budget-form")
    page.fill("input[name=n_trials]", "4")
    page.click("[data-action=set-budget]")
    page.wait_for_selector(".budget-form .ok")
    assert server.study(TRAINED)["n_trials"] == 4
    assert "/ 4 trials" in page.inner_text(".study-head .progress")

    go(page, server, f"/studies/{IDLE}")
    page.click("#queue-card summary")
    page.fill("input[name='params.learning_rate']", "5")
    page.click("[data-action=queue]")
    page.wait_for_selector(".queue-field.invalid[data-path='params.learning_rate']")
    assert "outside the range" in page.inner_text("[data-path='params.learning_rate']")
    page.fill("input[name='params.learning_rate']", "0.01")
    page.fill("input[name='params.optimizer']", "adam")
    page.click("[data-action=queue]")
    page.wait_for_selector("#queue-card .ok")
    assert "1 configuration(s) waiting" in page.inner_text("#queue-card")
    page.wait_for_selector("tr.trial-row[data-state=WAITING]")


def test_upload_shows_the_api_validation_messages(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    go(page, server, "/datasets")
    bad = "when,level\n" + "\n".join(f"{i},{i * 2}" for i in range(40))
    page.set_input_files(
        "input[name=file]", {"name": "levels.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    page.click("#upload-submit")
    page.wait_for_selector(".field[data-path=value_column].invalid")
    shown = page.inner_text(".field[data-path=value_column] .field-error")
    assert "column 'value' is not in the CSV" in shown, shown
    shoot(page, "upload-error", docs=True)
    page.fill("input[name=value_column]", "level")
    page.click("#upload-submit")
    page.wait_for_selector("#upload-message .ok")
    assert "upload:" in page.inner_text("table.datasets-table tbody")
    assert "40 rows" in page.inner_text("#upload-message")


def test_workers_page_defaults_to_a_runnable_study_and_counts_failures(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    trained: dict[str, Any],
    idle: optuna.Study,
) -> None:
    engine = sa.create_engine(server.database_url)
    with engine.begin() as conn:
        worker = conn.scalar(
            sa.text("SELECT worker_id FROM hpo_trial_runs WHERE worker_id IS NOT NULL")
        )
        sid = conn.scalar(sa.text("SELECT id FROM hpo_studies WHERE name = :n"), {"n": IDLE})
        conn.execute(
            sa.text(
                "INSERT INTO hpo_trial_runs (study_id, worker_id, status, retries, started_at, "
                "heartbeat_at) VALUES (:s, :w, 'failed', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"s": sid, "w": worker},
        )
    engine.dispose()
    server.api("POST", f"/api/studies/{TRAINED}/stop")  # extended earlier: make it final
    go(page, server, "/workers")
    page.wait_for_selector("table.workers-table tbody tr td.mono")
    options = page.eval_on_selector_all("select[name=study] option", "os => os.map(o => o.text)")
    assert options and not any("(completed)" in o or "(stopped)" in o for o in options), options
    chosen = page.eval_on_selector("select[name=study]", "s => s.selectedOptions[0].text")
    assert chosen.endswith("(running)") or chosen.endswith("(created)"), chosen
    row = page.locator("table.workers-table tbody tr", has_text=str(worker))
    cells = row.locator("td.num").all_inner_texts()  # pid, done, failed
    assert cells[2] == "1", cells
    api_row = next(
        w for w in server.api("GET", "/api/workers").json()["items"] if w["id"] == worker
    )
    outcomes = api_row["outcomes"]
    assert int(cells[1]) == outcomes.get("complete", 0) + outcomes.get("pruned", 0)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", locale="en-GB"
    )
    context.add_init_script(f"sessionStorage.setItem('hpo.apiToken', '{TOKEN}')")
    tab = context.new_page()
    yield tab
    context.close()


def test_dark_mode_and_phone_width(phone: Page, server: Server) -> None:  # noqa: F811
    go(phone, server, "/")
    background = phone.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert sum(channels) < 120, background  # dark, following prefers-color-scheme
    widths = phone.evaluate(
        "[document.documentElement.scrollWidth, document.querySelector('.topbar').scrollWidth]"
    )
    assert max(widths) <= 390, widths
    box = phone.locator("#token-link").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    phone.click("#token-link")
    phone.wait_for_selector("#token-dialog[open]")
    phone.keyboard.press("Escape")
    shoot(phone, "phone-dark", docs=True)
    go(phone, server, f"/studies/{BIG_STUDY}")
    plot_rendered(phone, "#study-plot")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "phone-study-dark", until=".plots")


def test_light_mode_stays_light(browser: Browser, server: Server) -> None:  # noqa: F811
    tab, errors = open_page(browser)
    try:
        go(tab, server, "/")
        background = tab.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert background != "rgba(0, 0, 0, 0)"
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert sum(channels) > 600, background
    finally:
        tab.context.close()
    assert not errors, errors


def test_a_study_without_one_complete_trial_shows_failed_not_completed(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    """Every trial fails (a lookback longer than the series): the study ends 'failed', with a
    red badge in the list and on its page and a sentence instead of a best trial."""
    name = "scr-failed"
    spec = tiny_spec(name, n_trials=2)
    spec["task"] = {**spec["task"], "lookback": 400}  # sunspots has ~300 points
    assert server.api("POST", "/api/studies", json=spec).status_code == 201
    started = server.api("POST", f"/api/studies/{name}/workers", json={"processes": 1})
    assert started.status_code < 300, started.text
    server.wait_for(f"{name} to end", lambda: server.study(name)["state"] != "running", 300)
    summary = server.study(name)
    assert summary["state"] == "failed" and summary["counts"]["FAIL"] == 2, summary
    go(page, server, f"/studies/{name}")
    page.wait_for_selector("h1 .badge.state-failed:has-text('failed')")
    assert "ended without one complete trial" in page.inner_text("section.best")
    go(page, server, "/")
    row = page.locator("tr", has_text=name)
    row.locator(".badge.state-failed").wait_for()
    assert row.locator(".badge").inner_text() == "failed"
    color = row.locator(".badge").evaluate("b => getComputedStyle(b).color")
    completed = page.evaluate(
        "() => { const b = document.createElement('span'); b.className = 'badge state-completed';"
        " document.body.append(b); const c = getComputedStyle(b).color; b.remove(); return c; }"
    )
    assert color != completed  # not drawn like a completed study
    shoot(page, "failed-study")
