"""``hpo plot`` writes standalone HTML, or a real PNG/SVG/PDF image drawn by the machine's
Chromium, for a study and for a comparison; every mistake is one error line and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpo_service.cli import app
from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.db import get_storage
from hpo_service.store.studies import create_study, load_optuna_study
from tests.conftest import tiny_spec


@pytest.fixture
def two_studies(migrated: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HPO_DATABASE_URL", migrated.database_url)
    from hpo_service.config import get_settings

    get_settings.cache_clear()
    for name, offset in (("a", 0.0), ("b", 1.0)):
        info = create_study(migrated, parse_spec(tiny_spec(name)), start=True)
        study = load_optuna_study(get_storage(migrated), info)
        for i in range(5):
            trial = study.ask()
            trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
            study.tell(trial, offset + 5 - i)
    yield migrated
    get_settings.cache_clear()


def test_plot_writes_offline_html(two_studies: Settings, tmp_path: Path) -> None:
    out = tmp_path / "history.html"
    result = CliRunner().invoke(app, ["plot", "a", "history", "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Plotly.newPlot" in html
    assert re.search(r"<script[^>]+src=", html) is None  # plotly.js is inlined, not fetched


def test_plot_compares_studies(two_studies: Settings, tmp_path: Path) -> None:
    out = tmp_path / "cmp.html"
    result = CliRunner().invoke(app, ["plot", "a,b", "history", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000


def test_plot_unknown_kind_is_a_usage_error(two_studies: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plot", "a", "pie", "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "pie" in result.output
    assert not (tmp_path / "x.html").exists()


MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_writes_a_real_image(two_studies: Settings, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"history.{fmt.upper() if fmt == 'pdf' else fmt}"  # the suffix's case is free
    result = CliRunner().invoke(app, ["plot", "a", "history", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if fmt == "svg":
        assert re.match(rb"<svg[^>]+xmlns=\"http://www.w3.org/2000/svg\"", data)
        assert b"RMSE (lower is better)" in data  # the metric's name is on the axis
        assert b"Plotly.newPlot" not in data
    else:
        assert data.startswith(MAGIC[fmt])
    assert 2_000 < len(data) < 2_000_000


def test_image_export_without_a_browser_is_one_error_line(
    two_studies: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium-here"))
    out = tmp_path / "h.png"
    result = CliRunner().invoke(app, ["plot", "a", "history", "-o", str(out)])
    assert result.exit_code == 2
    assert "image export needs Chrome or Chromium" in result.output
    assert "BROWSER_PATH" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("name", ["h.jpg", "h", "h.png.txt"])
def test_unknown_output_type_is_one_error_line(
    two_studies: Settings, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    result = CliRunner().invoke(app, ["plot", "a", "history", "-o", str(out)])
    assert result.exit_code == 2
    assert result.output.startswith("error: --output: unknown file type")
    assert ".html, .png, .svg or .pdf" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_html_names_the_metric(two_studies: Settings, tmp_path: Path) -> None:
    out = tmp_path / "history.html"
    result = CliRunner().invoke(app, ["plot", "a", "history", "-o", str(out)])
    assert result.exit_code == 0, result.output
    figure = json.loads(re.search(r"const figure = (\{.*\});", out.read_text()).group(1))
    assert figure["layout"]["yaxis"]["title"]["text"] == "RMSE (lower is better)"
    assert figure["layout"]["xaxis"]["tickformat"] == "d"


def test_compare_refuses_different_metrics(two_studies: Settings, tmp_path: Path) -> None:
    task = {"dataset": "digits", "kind": "sequence_classification", "metric": "accuracy"}
    create_study(two_studies, parse_spec(tiny_spec("c", task=task)))
    out = tmp_path / "cmp.html"
    result = CliRunner().invoke(app, ["plot", "a,c", "history", "-o", str(out)])
    assert result.exit_code == 2
    assert "cannot compare" in result.output
    assert "a: RMSE (lower is better)" in result.output
    assert "c: accuracy (higher is better)" in result.output
    assert not out.exists()


def test_optuna_still_reads_the_study(two_studies: Settings) -> None:
    assert len(optuna.load_study(study_name="a", storage=two_studies.database_url).trials) == 5


def test_help_lists_every_kind_and_format() -> None:
    from hpo_service.plots import COMPARE_KINDS, PLOT_KINDS

    result = CliRunner().invoke(app, ["plot", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for kind in (*PLOT_KINDS, *COMPARE_KINDS):
        assert kind in text, kind
    assert ".png, .svg, .pdf" in text
