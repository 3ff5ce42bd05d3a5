"""The study's TPE sampler, fed from the worker's :class:`TrialCache` instead of every trial.

Optuna's multivariate TPE (what the service builds for ``sampler.type: tpe``) turns every
finished trial into its internal representation, splits them into good and bad ones and sorts
them, in Python, on every ``ask``; at 10,000 trials that is most of a trial's cost. This subclass
does the same split on the cache's numpy columns and hands the same observations, in the same
trial-number order, to Optuna's own Parzen estimators, acquisition function and random state, so
it samples what Optuna's TPE samples from the same trials. It covers the configuration the
service builds (single objective, multivariate, constant liar, no groups, no constraints) and
falls back to Optuna's code for anything else, or when a parameter's distribution ever changed.

Not shared through system attrs: Optuna's constant liar writes each trial's relative params to
the storage so that other workers see them while it runs; the worker writes the trial's params
themselves, all together, right after asking (see :mod:`.params`), which other workers read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import default_gamma
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from sqlalchemy import Engine

from hpo_service.scheduling.trial_cache import TrialCache


class CachedTPESampler(TPESampler):
    """A TPESampler whose trials come from a :class:`TrialCache` (refreshed by the worker
    before each ``ask``)."""

    _trial_cache: TrialCache

    @classmethod
    def adopt(cls, sampler: TPESampler, cache: TrialCache) -> CachedTPESampler:
        """The same sampler (settings, seed and random state) reading from ``cache``."""
        adopted = cls.__new__(cls)
        adopted.__dict__.update(sampler.__dict__)
        adopted._trial_cache = cache
        return adopted

    def _cached(self, study: optuna.Study) -> bool:
        return not (
            self._group
            or self._constraints_func is not None
            or study._is_multi_objective()
            or not self._is_multivariate(study)
            or self._trial_cache.irregular
        )

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._cached(study):
            return super().infer_relative_search_space(study, trial)
        space = self._trial_cache.space or {}
        return {name: dist for name, dist in sorted(space.items()) if not dist.single()}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._cached(study):
            return super().sample_relative(study, trial, search_space)
        if search_space == {} or self._trial_cache.n_finished < self._n_startup_trials:
            return {}
        return self._sample_cached(study, trial, search_space)

    def _sample_cached(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        cache = self._trial_cache
        if self._gamma is None:
            self._gamma = default_gamma
        below = _below_mask(cache, self._gamma(cache.n_finished), study.direction)
        below_obs = _observations(cache, search_space, below, [])
        running = [r for r in cache.running if r.number != trial.number and self._constant_liar]
        above_obs = _observations(cache, search_space, ~below, running)
        params = self._parzen_estimator_parameters
        mpe_below = self._parzen_estimator_cls(below_obs, search_space, params)
        mpe_above = self._parzen_estimator_cls(above_obs, search_space, params)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acquisition = self._compute_acquisition_func(samples, mpe_below, mpe_above)
        chosen = TPESampler._compare(samples, acquisition)
        return {name: dist.to_external_repr(chosen[name]) for name, dist in search_space.items()}


def sample_from_cache(study: optuna.Study, engine: Engine) -> TrialCache:
    """A trial cache for ``study``; a TPE sampler of the study (as the service builds it) now
    samples from it. The worker refreshes the cache before each ``ask``."""
    cache = TrialCache(engine, study._study_id)
    if type(study.sampler) is TPESampler:
        study.sampler = CachedTPESampler.adopt(study.sampler, cache)
    return cache


def _below_mask(cache: TrialCache, n_below: int, direction: StudyDirection) -> np.ndarray:
    """Optuna's ``_split_trials`` on columns: the best ``n_below`` COMPLETE trials by value
    (stable, as Python's sort), then PRUNED ones by (latest step reached, its value)."""
    cols = cache.columns
    mask = np.zeros(len(cols.numbers), dtype=bool)
    complete = np.flatnonzero(cols.complete)
    values = cols.values[complete]
    order = np.argsort(values if direction == StudyDirection.MINIMIZE else -values, kind="stable")
    taken = min(n_below, len(complete))
    mask[complete[order[:taken]]] = True
    n_below = max(0, n_below - taken)
    pruned = np.flatnonzero(~cols.complete)
    if n_below and len(pruned):
        steps, last = cols.last_step[pruned], cols.last_value[pruned]
        reported = ~np.isnan(steps)
        sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
        value_key = np.where(np.isnan(last), np.inf, sign * last)
        first = np.where(reported, -steps, 1.0)
        second = np.where(reported, value_key, 0.0)
        order = np.lexsort((second, first))
        mask[pruned[order[:n_below]]] = True
    return mask


def _observations(
    cache: TrialCache,
    search_space: dict[str, BaseDistribution],
    rows: np.ndarray,
    running: list[Any],
) -> dict[str, np.ndarray]:
    """Internal values of the selected finished trials plus ``running`` ones, in trial-number
    order, keeping only trials that have every parameter of the space (as Optuna does)."""
    cols = cache.columns
    names = list(search_space)
    matrix = np.column_stack([cols.params[n][rows] for n in names]) if names else np.empty((0, 0))
    numbers = cols.numbers[rows]
    extra = [r for r in running if all(n in r.params for n in names)]
    if extra:
        liars = [[search_space[n].to_internal_repr(r.params[n]) for n in names] for r in extra]
        matrix = np.vstack([matrix, np.asarray(liars, dtype=float)])
        numbers = np.concatenate([numbers, [r.number for r in extra]])
    keep = ~np.isnan(matrix).any(axis=1) if names else np.ones(len(numbers), dtype=bool)
    order = np.argsort(numbers[keep], kind="stable")
    kept = matrix[keep][order]
    return {name: kept[:, i] for i, name in enumerate(names)}
