"""Trial filters on GET /api/studies/{name}/trials (value range, parameter ranges and choices),
evaluated in SQL over real databases; bad filters are 422s naming the problem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from tests.conftest import tiny_spec

#: (learning_rate, batch_size, value or None for a failed trial)
TRIALS = [
    (0.001, 32, 5.0),
    (0.002, 64, 3.0),
    (0.01, 32, 1.0),
    (0.02, 64, 2.0),
    (0.04, 32, None),
    (0.005, 64, 4.0),
]


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        assert client.post("/api/studies", json=tiny_spec("f")).status_code == 201
        study = optuna.load_study(study_name="f", storage=migrated.database_url)
        for lr, batch, value in TRIALS:
            study.enqueue_trial({"learning_rate": lr, "batch_size": batch})
            trial = study.ask()
            trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
            trial.suggest_categorical("batch_size", [32, 64])
            study.tell(trial, value, state=TrialState.FAIL if value is None else None)
        yield client


def numbers(api: TestClient, **query: Any) -> list[int]:
    response = api.get("/api/studies/f/trials", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return [t["number"] for t in body["items"]]


def test_value_and_parameter_filters(api: TestClient) -> None:
    assert numbers(api, value_min=2, value_max=4) == [1, 3, 5]
    assert numbers(api, value_max=2.5, order="desc") == [3, 2]
    assert numbers(api, value_min=100) == []
    assert numbers(api, param="learning_rate:0.002:0.02") == [1, 2, 3, 5]
    assert numbers(api, param="learning_rate::0.002") == [0, 1]
    assert numbers(api, param="learning_rate:0.03:") == [4]
    assert numbers(api, param="batch_size=64") == [1, 3, 5]
    assert numbers(api, param="batch_size=32|64") == [0, 1, 2, 3, 4, 5]
    # Filters combine (AND) with each other and with the state filter; pages count the filtered.
    assert numbers(api, param=["batch_size=32", "learning_rate::0.02"], value_min=1) == [0, 2]
    assert numbers(api, param="batch_size=64", value_min=2.5) == [1, 5]
    assert numbers(api, param="batch_size=32|64", state="FAIL") == [4]
    page = api.get("/api/studies/f/trials", params={"value_min": 1, "limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["has_more"] is True


BAD_FILTERS: list[tuple[dict[str, Any], str, str]] = [
    ({"param": "learning_rate:0.1:0.01"}, "param", "low (0.1) must not exceed high (0.01)"),
    ({"param": "learning_rate:abc:"}, "param", "'abc' is not a number"),
    ({"param": "learning_rate::"}, "param", "give at least one bound"),
    ({"param": "learning_rate"}, "param", "use NAME:LOW:HIGH"),
    ({"param": "colour:1:2"}, "param", "no parameter 'colour' in this study"),
    ({"param": "batch_size:1:2"}, "param", "'batch_size' is categorical"),
    ({"param": "batch_size=48"}, "param", "has no choice '48'; use 32, 64"),
    ({"param": "learning_rate=0.1"}, "param", "'learning_rate' is numeric"),
    ({"value_min": 3, "value_max": 1}, "value_min", "must not exceed value_max (1)"),
    ({"value_min": "nan"}, "value_min", "finite"),
    ({"value_min": "x"}, "value_min", "valid number"),
    ({"objective": -1}, "objective", "greater than or equal to 0"),
    ({"value_min": 1, "after": "x"}, "after", "cannot be combined with after"),
    ({"param": "learning_rate:" + "1" * 600 + ":"}, "param", "longer than 500 characters"),
]


def test_bad_filters_are_422_naming_the_problem(api: TestClient) -> None:
    for query, field, words in BAD_FILTERS:
        response = api.get("/api/studies/f/trials", params=query)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["errors"][0]["field"] == field, (query, body)
        assert words in body["detail"], (query, body)


def test_filters_are_documented_in_openapi(api: TestClient) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/api/studies/{name}/trials"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert {"value_min", "value_max", "objective", "param"} <= set(names)
    assert "NAME:LOW:HIGH" in names["param"]["description"]
