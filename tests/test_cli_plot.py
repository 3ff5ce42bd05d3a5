"""``hpo plot`` writes standalone HTML for a study and for a comparison."""

from __future__ import annotations

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


def test_optuna_still_reads_the_study(two_studies: Settings) -> None:
    assert len(optuna.load_study(study_name="a", storage=two_studies.database_url).trials) == 5
