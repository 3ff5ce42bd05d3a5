"""The cached TPE sampler's bounded history (``tpe_history``), on real databases: under the
window it is Optuna's TPE (the equivalence itself is in test_trial_cache.py); over it the good
("below") set is still chosen from every finished trial and the "above" set holds only the latest
``tpe_history`` of the rest; the best trials kept across asks are those a full sort finds."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.study import StudyDirection
from optuna.trial import TrialState
from pydantic import ValidationError

from hpo_service.config import Settings, get_settings
from hpo_service.scheduling.tpe import (
    BestComplete,
    CachedTPESampler,
    above_rows,
    below_rows,
    sample_from_cache,
)
from hpo_service.scheduling.trial_cache import TrialCache
from hpo_service.spec.sampling import suggest_params
from hpo_service.store.db import get_engine, get_storage
from hpo_service.store.studies import create_study, load_optuna_study
from tests.test_runs import tiny_spec
from tests.test_trial_cache import fill, tpe


def recorded_estimators(
    settings: Settings, name: str, cache: TrialCache, history: int
) -> list[dict[str, np.ndarray]]:
    """The observations the sampler builds its two Parzen estimators from (below, then above),
    through Optuna's own estimator class."""
    built: list[dict[str, np.ndarray]] = []

    class Recording(_ParzenEstimator):
        def __init__(self, observations: dict[str, np.ndarray], *args: Any) -> None:
            built.append({k: v.copy() for k, v in observations.items()})
            super().__init__(observations, *args)

    storage = get_storage(settings)
    sampler = CachedTPESampler.adopt(tpe(0), cache, history)
    sampler._parzen_estimator_cls = Recording
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    frozen = storage.get_trial(study.ask()._trial_id)
    sampler.sample_relative(study, frozen, sampler.infer_relative_search_space(study, frozen))
    return built


def filled_cache(settings: Settings, name: str, n: int) -> TrialCache:
    info = create_study(settings, tiny_spec(name, n_trials=200), start=True)
    storage = get_storage(settings)
    fill(load_optuna_study(storage, info), info.spec, n)
    cache = TrialCache(get_engine(settings), storage.get_study_id_from_name(name))
    cache.refresh()
    return cache


def test_over_the_window_below_is_from_all_trials_and_above_is_the_latest(
    migrated: Settings,
) -> None:
    cache = filled_cache(migrated, "window", 70)
    n = cache.n_finished
    assert n == 70 - 5  # failures at i = 5, 16, 27, 49, 60 (38 is pruned)
    full_below, full_above = recorded_estimators(migrated, "window", cache, 0)
    window_below, window_above = recorded_estimators(migrated, "window", cache, 10)
    assert len(full_below["learning_rate"]) == 7  # gamma(65) = ceil(0.1 * 65)
    for name in full_below:
        assert np.array_equal(window_below[name], full_below[name])
        # the latest 10 finished trials of the rest, then the running trial (constant liar)
        assert len(window_above[name]) == 10 + 1 < len(full_above[name])
        assert np.array_equal(window_above[name], full_above[name][-11:])


def test_a_window_the_trials_fit_in_changes_nothing(migrated: Settings) -> None:
    cache = filled_cache(migrated, "fits", 40)
    n_above = cache.n_finished - 4  # gamma(37) = 4
    full = recorded_estimators(migrated, "fits", cache, 0)
    for history in (n_above, n_above + 1, 1000):
        assert all(
            np.array_equal(got[k], want[k])
            for got, want in zip(
                recorded_estimators(migrated, "fits", cache, history), full, strict=True
            )
            for k in want
        )
    smaller = recorded_estimators(migrated, "fits", cache, n_above - 1)[1]["learning_rate"]
    assert len(smaller) == n_above - 1 + 1  # one fewer finished trial, plus the running one


def test_above_rows_leave_out_the_below_ones() -> None:
    below = np.array([2, 9, 95])
    assert above_rows(100, below, 0).tolist() == [r for r in range(100) if r not in (2, 9, 95)]
    assert above_rows(100, below, 5).tolist() == [94, 96, 97, 98, 99]
    assert above_rows(100, below, 97).tolist() == above_rows(100, below, 0).tolist()
    assert above_rows(100, below, 96).tolist() == above_rows(100, below, 0).tolist()[1:]


@pytest.mark.parametrize("direction", [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE])
def test_best_trials_kept_across_asks_are_those_a_full_sort_finds(
    migrated: Settings, direction: StudyDirection
) -> None:
    info = create_study(migrated, tiny_spec(f"kept-{direction.name}", n_trials=500), start=True)
    study = load_optuna_study(get_storage(migrated), info)
    cache = TrialCache(get_engine(migrated), study._study_id)
    kept = BestComplete()
    rng = np.random.default_rng(1)
    for _ in range(6):
        trials = [study.ask() for _ in range(12)]
        for trial in rng.permutation(len(trials)):  # finished out of number order
            suggest_params(trials[trial], info.spec.search_space)
            value = float(rng.integers(0, 5))  # many ties: the earlier trial must win
            state = TrialState.PRUNED if trial % 5 == 0 else TrialState.COMPLETE
            study.tell(trials[trial], None if state == TrialState.PRUNED else value, state=state)
            if trial % 4 == 0:
                cache.refresh()
        cache.refresh()
        for count in (1, 7, 25):
            full = below_rows(cache, count, direction)
            assert below_rows(cache, count, direction, kept).tolist() == full.tolist()
            assert len(full) == min(count, cache.n_finished)
    values = cache.columns.values[below_rows(cache, 25, direction)]
    assert np.all(np.isfinite(values))  # pruned trials only when complete ones run out
    assert (
        below_rows(cache, 40, direction, kept).tolist() == below_rows(cache, 40, direction).tolist()
    )


def test_history_setting_is_validated_and_reaches_the_sampler(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="tpe_history"):
        Settings(_env_file=None, tpe_history=-1)  # type: ignore[call-arg]
    monkeypatch.setenv("HPO_TPE_HISTORY", "-5")
    with pytest.raises(ValidationError, match="tpe_history"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert Settings(_env_file=None, tpe_history=0).tpe_history == 0  # type: ignore[call-arg]
    info = create_study(migrated, tiny_spec("setting", n_trials=10), start=True)
    study = load_optuna_study(get_storage(migrated), info)
    cache = TrialCache(get_engine(migrated), study._study_id)
    with pytest.raises(ValueError, match="tpe_history"):
        CachedTPESampler.adopt(tpe(0), cache, -1)
    monkeypatch.setenv("HPO_TPE_HISTORY", "7")
    get_settings.cache_clear()
    try:
        study.sampler = tpe(0)
        sample_from_cache(study, get_engine(migrated))
        assert isinstance(study.sampler, CachedTPESampler) and study.sampler.history == 7
        study.sampler = tpe(0)
        sample_from_cache(study, get_engine(migrated), history=0)
        assert isinstance(study.sampler, CachedTPESampler) and study.sampler.history == 0
    finally:
        get_settings.cache_clear()
    assert Settings(_env_file=None).tpe_history == 7  # type: ignore[call-arg]
    monkeypatch.delenv("HPO_TPE_HISTORY")
    assert Settings(_env_file=None).tpe_history == 2000  # type: ignore[call-arg]
