"""Schemathesis fuzzes every operation of the OpenAPI document in-process and finds no 5xx.

The app runs on a real SQLite file with a study named like the documentation's example
(``sunspots-lstm``), so the explicit-examples phase reaches real objects too. Worker spawning is
replaced by a stub: fuzzing must not start training processes.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from hpo_service.api.app import create_app
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.store.db import dispose_engines, migrate
from tests.conftest import make_settings, tiny_spec

EXAMPLE_STUDY = "sunspots-lstm"
STATUSES: dict[str, set[int]] = {}
EXAMPLES = 8  # per operation and mode: about 600 requests, well under a minute


def _no_processes(self: Supervisor, study: str, count: int, device: str) -> list[Any]:
    return []


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("fuzz")
    cfg = make_settings(f"sqlite:///{root / 'fuzz.db'}", root, data_dir=root / "data")
    migrate(cfg)
    patch = pytest.MonkeyPatch()
    patch.setattr(Supervisor, "start", _no_processes)
    app: FastAPI = create_app(cfg)
    with TestClient(app) as client:
        assert (
            client.post("/api/studies?start=true", json=tiny_spec(EXAMPLE_STUDY)).status_code == 201
        )
    study = optuna.load_study(study_name=EXAMPLE_STUDY, storage=cfg.database_url)
    for value in (3.0, 2.0):
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
        study.tell(trial, value)
    yield app
    patch.undo()
    dispose_engines()


def operations(app: FastAPI) -> list[Any]:
    """Every operation of the app's OpenAPI document, deletions last (they remove the study
    the other operations are pointed at)."""
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in loaded.get_all_operations()]
    return sorted(found, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def fuzz(operation: Any, failures: list[str], mode: GenerationMode, **fixed: Any) -> int:
    """Run bounded examples of one operation; returns how many requests were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate],
    )  # fmt: skip
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call()
        STATUSES.setdefault(f"{case.method} {operation.path}", set()).add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:300]} (body {case.body!r:.200})")  # fmt: skip

    with contextlib.suppress(Unsatisfiable):  # e.g. negative mode with nothing to break
        run()
    return sent


def test_no_input_gives_a_server_error(fuzz_app: FastAPI) -> None:
    failures: list[str] = []
    sent = 0
    for operation in operations(fuzz_app):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += fuzz(operation, failures, mode)
        if "{name}" in operation.path:
            named = {"path_parameters": {"name": EXAMPLE_STUDY}}
            sent += fuzz(operation, failures, GenerationMode.POSITIVE, **named)
    assert sent > 200
    for reached in ("GET /api/studies/{name}/trials", "GET /api/studies/{name}/plots/{kind}"):
        assert 200 in STATUSES[reached], STATUSES  # the fuzzer got past the 404s to real data
    assert not failures, "\n".join(failures[:20])


NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
ANY_NUMBER = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False)
)
# Mostly valid (three branches of four), so that most specs reach the database.
POSITIVE_INT = st.one_of(*[st.integers(1, 2**62)] * 3, ANY_NUMBER)
POSITIVE_FLOAT = st.one_of(*[st.floats(1e-300, 1e300)] * 3, ANY_NUMBER)


@st.composite
def near_valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Specs of the right shape with extreme names and numbers, mostly valid, so the creation
    path itself (validation, both tables, JSON columns) is what gets exercised."""
    low = draw(POSITIVE_FLOAT)
    high = low * draw(st.floats(1, 1e6))
    task = {
        "dataset": "sunspots",
        "kind": "forecasting",
        "lookback": draw(POSITIVE_INT),
        "seed": draw(st.integers(-(2**70), 2**70)),
        "metric": draw(st.sampled_from(["rmse", "mae"])),
    }
    space = {
        "learning_rate": {
            "low": low,
            "high": high if math.isfinite(high) else low,
            "log": draw(st.booleans()),
        },
        "hidden_units": draw(st.one_of(POSITIVE_INT, st.lists(POSITIVE_INT, max_size=3))),
    }
    budget = {"n_trials": draw(st.integers(1, 1_000_000)), "timeout_s": draw(POSITIVE_FLOAT)}
    return tiny_spec(draw(NAMES), task=task, search_space=space, budget=budget)  # fmt: skip


def test_extreme_but_well_formed_specs_never_give_a_server_error(fuzz_app: FastAPI) -> None:
    client = TestClient(fuzz_app, raise_server_exceptions=False)
    statuses: list[int] = []

    @given(spec=near_valid_specs())
    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(spec: dict[str, Any]) -> None:
        response = client.post("/api/studies", json=spec)
        assert response.status_code < 500, response.text
        statuses.append(response.status_code)

    run()
    assert 201 in statuses and 422 in statuses, statuses  # both paths were reached
