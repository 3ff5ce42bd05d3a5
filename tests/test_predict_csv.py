"""Predicting from a CSV in the study's own format, with time stamps and multi-step forecasts
(hpo_service.data.predict_csv), through ``hpo predict`` and ``POST /predict``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hpo_service.api.app import create_app
from hpo_service.cli import predict
from hpo_service.cli.train import register
from hpo_service.config import get_settings
from hpo_service.data.predict_csv import future_times, inputs_from_csv
from hpo_service.data.sources import builtin_series
from hpo_service.spec import TaskSpec, parse_spec
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine, get_storage, migrate
from hpo_service.store.studies import create_study
from hpo_service.store.trial_data import TrialData


def test_future_times_follow_the_calendar_or_the_number_step() -> None:
    assert future_times(["2020-11-01", "2020-12-01", "2021-01-01"], 2) == [
        "2021-02-01",
        "2021-03-01",
    ]
    assert future_times(["1998", "1999", "2000"], 3) == ["2001", "2002", "2003"]
    assert future_times(["2021-01-01 00:00", "2021-01-01 06:00", "2021-01-01 12:00"], 1) == [
        "2021-01-01T18:00:00"
    ]
    assert future_times(["a", "b", "c"], 2) == [] and future_times(["1", "2"], 2) == []


def test_inputs_follow_the_spec_columns_and_sort_by_time() -> None:
    task = TaskSpec(dataset="m.csv", kind="forecasting", value_column="y", time_column="t")
    values, times = inputs_from_csv("t,y\n2020-03-01,3\n2020-01-01,1\n2020-02-01,2\n", task)
    assert values == [1.0, 2.0, 3.0] and times == ["2020-01-01", "2020-02-01", "2020-03-01"]
    with pytest.raises(ValueError, match=r"^csv: no column 'y'"):
        inputs_from_csv("t,value\n2020-01-01,1\n", task)
    text = TaskSpec(dataset="x.csv", kind="text_classification", text_column="msg")
    assert inputs_from_csv('msg,label\n"hi, there",ham\n', text) == (["hi, there"], [])


@pytest.fixture()
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, typer.Typer]]:
    """A monthly series (sunspot numbers on month dates) in the data directory, a model trained
    on it by ``hpo train`` and a study whose best trial serves that model."""
    data = tmp_path / "data"
    data.mkdir()
    values = builtin_series("sunspots")[:120]
    months = pd.date_range("2000-01-01", periods=120, freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"month": months, "spots": values}).to_csv(data / "m.csv", index=False)
    for key, value in {
        "HPO_DATABASE_URL": f"sqlite:///{tmp_path / 'hpo.db'}",
        "HPO_CACHE_DIR": str(tmp_path / "cache"),
        "HPO_DATA_DIR": str(data),
        "HPO_DEVICE": "cpu",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    spec = {
        "name": "monthly",
        "task": {"dataset": "m.csv", "kind": "forecasting", "metric": "rmse", "lookback": 12,
                 "value_column": "spots", "time_column": "month", "target_transform": "diff"},
        "search_space": {"batch_size": 16, "hidden_units": 8, "optimizer": "adam"},
        "budget": {"n_trials": 1, "max_epochs": 2},
    }  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    app = typer.Typer()
    register(app)
    predict.register(app)
    trained = CliRunner().invoke(
        app, ["train", str(tmp_path / "s.yaml"), "--save", str(tmp_path / "art")]
    )
    assert trained.exit_code == 0, trained.output
    cfg = get_settings()
    migrate(cfg)
    create_study(cfg, parse_spec(spec))
    stored = optuna.load_study(study_name="monthly", storage=get_storage(cfg))
    stored.add_trial(optuna.trial.create_trial(value=1.0))
    added = stored.trials[-1]
    kept = TrialData(artifact_dir=str(tmp_path / "art"))  # where the objective keeps it
    trial_data.save(get_engine(cfg), "monthly", added._trial_id, added.number, kept)
    yield data / "m.csv", app
    get_settings.cache_clear()


def test_cli_and_api_forecast_a_whole_csv_with_dates(study: tuple[Path, typer.Typer]) -> None:
    csv, app = study
    args = ["predict", "monthly", "--input", str(csv), "--steps", "3", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["times"] == ["2010-01-01", "2010-02-01", "2010-03-01"]  # after 2009-12
    assert len(payload["predictions"]) == 3
    table = CliRunner().invoke(app, args[:-1])
    assert table.exit_code == 0 and "2010-03-01" in table.stdout
    with TestClient(create_app(get_settings())) as api:
        url = "/api/studies/monthly/predict"
        body = api.post(url, json={"csv": csv.read_text(), "steps": 3}).json()
        assert body["times"] == payload["times"]
        assert body["predictions"] == pytest.approx(payload["predictions"])
        series = api.post(url, json={"inputs": pd.read_csv(csv)["spots"].tolist(), "steps": 3})
        assert series.json()["predictions"] == pytest.approx(payload["predictions"])
        assert series.json()["times"] is None
        for bad, field in [
            ({}, "inputs"),
            ({"csv": "a,b\n1,2\n"}, "csv"),
            ({"inputs": [1], "steps": 0}, "steps"),
        ]:
            refused = api.post(url, json=bad)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == field, refused.text
