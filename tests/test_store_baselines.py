"""Stored baselines on real SQLite and PostgreSQL (once per study, racing inserts, deleted with
the study) and the verdict rule every reader shows."""

from __future__ import annotations

from typing import Any

import pytest

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.baselines import best_baseline, get_baselines, save_baselines, verdict
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study, delete_study
from tests.conftest import tiny_spec

ROWS: list[dict[str, Any]] = [
    {"name": "naive", "label": "naive", "val": {"rmse": 20.0}, "test": {"rmse": 30.0}},
    {"name": "ets", "label": "ETS", "val": {"rmse": 18.0}, "test": {"rmse": 28.0}},
    {"name": "odd", "label": "odd", "val": {"rmse": None}, "test": {}},
]


def test_stored_once_and_deleted_with_the_study(migrated: Settings) -> None:
    engine = get_engine(migrated)
    create_study(migrated, parse_spec(tiny_spec("bl")))
    assert get_baselines(engine, "bl") is None  # not computed yet
    assert save_baselines(engine, "bl", ROWS) is True
    assert save_baselines(engine, "bl", ROWS[:1], "late") is False  # a racing worker: no-op
    stored = get_baselines(engine, "bl")
    assert stored is not None and stored.results == ROWS and stored.error is None
    assert stored.computed_at is not None
    delete_study(migrated, "bl")
    assert get_baselines(engine, "bl") is None
    assert save_baselines(engine, "bl", ROWS) is False  # no such study


def test_an_error_is_stored_instead_of_baselines(migrated: Settings) -> None:
    engine = get_engine(migrated)
    create_study(migrated, parse_spec(tiny_spec("broken")))
    save_baselines(engine, "broken", [], "ValueError: too short")
    stored = get_baselines(engine, "broken")
    assert stored is not None and stored.results == [] and stored.error == "ValueError: too short"


def test_best_baseline_is_chosen_on_validation() -> None:
    assert best_baseline(ROWS, "rmse", "minimize")["name"] == "ets"
    assert best_baseline(ROWS, "rmse", "maximize")["name"] == "naive"
    with pytest.raises(ValueError, match="no baseline reports loss"):
        best_baseline(ROWS, "loss", "minimize")


def test_verdict_beats_on_test() -> None:
    v = verdict(ROWS, "rmse", "minimize", 15.0, {"rmse": 21.0})
    assert v is not None and v.beats and v.split == "test"
    assert v.relative == pytest.approx(0.25)
    assert v.text.startswith("beats the best baseline by 25.0%; rmse on test: 21 vs 28 (ETS)")


def test_verdict_loses_and_says_so() -> None:
    v = verdict(ROWS, "rmse", "minimize", 15.0, {"rmse": 35.0})
    assert v is not None and not v.beats
    assert v.text.startswith("does not beat the best baseline (25.0% worse)")


def test_verdict_falls_back_to_validation_and_handles_maximize() -> None:
    rows = [{"name": "lr", "label": "TF-IDF", "val": {"f1": 0.8}, "test": {}}]
    v = verdict(rows, "f1", "maximize", 0.9, {"f1": 0.95})
    assert v is not None and v.split == "validation" and v.beats
    assert v.relative == pytest.approx(0.125)
    zero = [{"name": "majority", "label": "majority", "val": {"f1": 0.0}, "test": {"f1": 0.0}}]
    v = verdict(zero, "f1", "maximize", 0.5, {"f1": 0.4})
    assert v is not None and v.beats and v.relative is None
    assert v.text.startswith("beats the best baseline; f1 on test")


def test_no_verdict_without_a_comparable_figure() -> None:
    assert verdict(ROWS, "loss", "minimize", 1.0, None) is None
    assert verdict(ROWS, "rmse", "minimize", None, None) is None


def test_a_refit_figure_is_reported_beside_the_search_runs_comparison() -> None:
    """The baselines are fit on training alone: the search run is compared, the refit shown."""
    v = verdict(ROWS, "rmse", "minimize", 15.0, {"rmse": 29.0}, {"rmse": 26.0})
    assert v is not None and not v.beats and v.trial_value == 29.0 and v.refit_value == 26.0
    assert v.text.endswith("; its refit on train+validation (serving predictions): 26 on test")
    on_val = verdict(ROWS, "rmse", "minimize", 15.0, None, {"rmse": 26.0})
    assert on_val is not None and on_val.split == "validation" and on_val.refit_value is None
    plain = verdict(ROWS, "rmse", "minimize", 15.0, {"rmse": 21.0})
    assert plain is not None and plain.refit_value is None and "refit" not in plain.text
