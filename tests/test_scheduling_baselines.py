"""A real worker computes a study's baselines with its first trial, once, on the trials' data."""

from __future__ import annotations

from hpo_service.config import Settings
from hpo_service.data import load_dataset
from hpo_service.data.sources import DataRoots
from hpo_service.scheduling.baselines import ensure_baselines
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.baselines import get_baselines
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study
from tests.conftest import tiny_spec


def test_first_trial_stores_the_baselines_once(migrated: Settings) -> None:
    spec = parse_spec(tiny_spec("fc", n_trials=2))
    create_study(migrated, spec, start=True)
    done = Worker(migrated, WorkerOptions(study="fc", exit_when_idle=True)).serve()
    assert done == 2
    stored = get_baselines(get_engine(migrated), "fc")
    assert stored is not None and stored.error is None
    assert [r["name"] for r in stored.results] == ["naive", "seasonal_naive", "ets"]
    assert stored.results[1]["label"] == "seasonal naive (period 11)"
    first = stored.computed_at
    data = load_dataset(spec.task, DataRoots.from_settings(migrated), migrated.cache_dir)
    assert ensure_baselines(migrated, spec, data) is False  # already stored: not recomputed
    again = get_baselines(get_engine(migrated), "fc")
    assert again is not None and again.computed_at == first


def test_a_spec_season_is_used(migrated: Settings) -> None:
    raw = tiny_spec("season")
    raw["task"]["season"] = 9
    spec = parse_spec(raw)
    create_study(migrated, spec)
    data = load_dataset(spec.task, DataRoots.from_settings(migrated), migrated.cache_dir)
    assert ensure_baselines(migrated, spec, data) is True
    stored = get_baselines(get_engine(migrated), "season")
    assert stored is not None
    assert stored.results[1]["detail"] == "period 9 (from the spec)"
