"""The dashboard's plots in Chromium (see test_browser.py for the set-up): whole-number trial ticks
and the metric's name as plotly actually draws them, the rank tab, a download button per plot that
saves a real PNG/SVG/PDF drawn by the server, and a comparison of different metrics refused with
the reason shown in place of the plot.

Trials are written through Optuna (no training), so the figures are known exactly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest

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
RMSE_STUDY = "plt-rmse"
ACC_STUDY = "plt-acc"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg", "pdf": b"%PDF-"}


@pytest.fixture(scope="module")
def studies(server: Server) -> str:  # noqa: F811
    """A 5-trial RMSE study (few trials: plotly alone would put 0.5 steps on the trial axis) and
    an accuracy study, both written through Optuna."""
    assert server.api("POST", "/api/studies", json=tiny_spec(RMSE_STUDY)).status_code == 201
    acc = tiny_spec(ACC_STUDY)
    acc["task"] = {"dataset": "digits", "kind": "sequence_classification", "metric": "accuracy"}
    assert server.api("POST", "/api/studies", json=acc).status_code == 201
    for name, values in ((RMSE_STUDY, (40.0, 31.5, 35.0, 28.2, 30.0)), (ACC_STUDY, (0.7, 0.9))):
        study = optuna.load_study(study_name=name, storage=server.database_url)
        for i, value in enumerate(values):
            trial = study.ask()
            trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
            trial.suggest_categorical("batch_size", [32, 64])
            trial.suggest_categorical("optimizer", ["adam", "rmsprop", "sgd"])
            trial.report(value + 5, 0)
            trial.report(value + i, 1)
            study.tell(trial, value)
    return RMSE_STUDY


def svg_texts(tab: Page, selector: str) -> list[str]:
    """Text of SVG elements (inner_text does not apply to SVG)."""
    found = tab.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")
    return [str(t) for t in found]


def tick_texts(tab: Page, selector: str, axis: str) -> list[str]:
    return svg_texts(tab, f"{selector} .{axis}tick text")


def test_trial_axis_ticks_and_metric_names_as_drawn(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    studies: str,
) -> None:
    go(page, server, f"/studies/{studies}")
    page.click(".tabs .tab[data-kind=history]")
    page.wait_for_selector("#study-plot[data-shown=history]")
    plot_rendered(page, "#study-plot")
    ticks = tick_texts(page, "#study-plot", "x")
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks), ticks  # no "1, 1, 2, 2" from rounded half steps
    titles = svg_texts(page, "#study-plot .g-ytitle, #study-plot .g-xtitle")
    assert "RMSE (lower is better)" in titles and "trial number" in titles, titles
    page.click(".tabs .tab[data-kind=intermediate_values]")
    page.wait_for_selector("#study-plot[data-shown=intermediate_values]")
    plot_rendered(page, "#study-plot")
    epochs = tick_texts(page, "#study-plot", "x")
    assert epochs and all(re.fullmatch(r"\d+", t) for t in epochs), epochs
    page.click(".tabs .tab[data-kind=rank]")
    page.wait_for_selector("#study-plot[data-shown=rank]")
    plot_rendered(page, "#study-plot")
    assert "best (28.2)" in svg_texts(page, "#study-plot .colorbar text")
    page.click(".tabs .tab[data-kind=history]")
    plot_rendered(page, "#study-plot")
    shoot(page, "plot-history-ticks", until=".plots")


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_download_button_saves_a_real_image(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    studies: str,
    fmt: str,
    tmp_path: Path,
) -> None:
    go(page, server, f"/studies/{studies}")
    page.click(".tabs .tab[data-kind=edf]")
    page.wait_for_selector("#study-plot[data-shown=edf]")
    with page.expect_download(timeout=90_000) as info:
        page.click(f".plots [data-action=download-{fmt}]")
    download = info.value
    assert download.suggested_filename == f"{studies}-edf.{fmt}"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(MAGIC[fmt]) and len(data) > 2_000
    if fmt == "svg":
        assert b"RMSE (lower is better)" in data
    page.wait_for_selector(f".plots .plot-downloads:has-text('Saved {studies}-edf.{fmt}')")


def test_compare_of_different_metrics_says_why(
    page: Page,  # noqa: F811
    server: Server,  # noqa: F811
    studies: str,
) -> None:
    go(page, server, f"/compare?studies={studies},{ACC_STUDY}")
    page.wait_for_selector("#compare-history .plot-error")
    reason = page.inner_text("#compare-history .plot-error")
    assert "cannot compare" in reason
    assert f"{studies}: RMSE (lower is better)" in reason
    assert f"{ACC_STUDY}: accuracy (higher is better)" in reason
