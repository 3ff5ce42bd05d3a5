"""The study's TPE sampler, fed from the worker's :class:`TrialCache` instead of every trial.

Optuna's multivariate TPE (what the service builds for ``sampler.type: tpe``) turns every
finished trial into its internal representation, splits them into good and bad ones and sorts
them, in Python, on every ``ask``; at 10,000 trials that is most of a trial's cost. This subclass
does the same split on the cache's numpy columns and hands the same observations, in the same
trial-number order, to Optuna's own Parzen estimators, acquisition function and random state, so
it samples what Optuna's TPE samples from the same trials. It covers the configuration the
service builds (single objective, multivariate, constant liar, no groups, no constraints) and
falls back to Optuna's code for anything else, or when a parameter's distribution ever changed.

Bounded history (``HPO_TPE_HISTORY``, default 2,000; 0 = unbounded), a decision. Even on numpy
columns, TPE's cost grows with the study: its "above" (not good) Parzen estimator has one
component per finished trial, evaluated at 24 candidates per ``ask`` (sampling took about 200 ms
at 50,000 trials against 5 ms at 100, on a loaded 2-core machine), so a worker's per-trial cost
could not stay within 1.5x of its cost at 100 trials. So, when more finished trials than the
window are not good:

- the "below" (good) set is still Optuna's, chosen from ALL finished trials (the best
  ``gamma(n)`` by value, at most 25 with the default gamma): the best trial ever found always
  shapes the proposals, and the split is kept across asks (:class:`BestComplete`) so it costs the
  new trials, not a sort of all of them;
- the "above" set holds only the latest W finished trials of the rest (plus, with the constant
  liar, the running ones). l(x) then estimates where the recent not-good trials lie, the region
  TPE has been proposing lately, from W components instead of n. Optuna's own default weights
  already lean the same way (a linear ramp from 1/n for the oldest to 1 for the latest 25), but
  only linearly, so beyond the window this is a different estimate, not a rounding of Optuna's:
  trials older than the window no longer push proposals away from where they were.

With no more than W not-good trials (with the default gamma: up to W + 25 finished trials)
nothing changes: the sampler proposes exactly what Optuna's TPE proposes (tests/test_trial_cache.py
checks this with and without a window, tests/test_tpe.py what the window keeps). Plain
``study.optimize`` and other samplers are unaffected.

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

from hpo_service.config import get_settings
from hpo_service.scheduling.trial_cache import TrialCache


class CachedTPESampler(TPESampler):
    """A TPESampler whose trials come from a :class:`TrialCache` (refreshed by the worker
    before each ``ask``)."""

    _trial_cache: TrialCache
    _history: int
    _best: BestComplete

    @classmethod
    def adopt(cls, sampler: TPESampler, cache: TrialCache, history: int = 0) -> CachedTPESampler:
        """The same sampler (settings, seed and random state) reading from ``cache``; with
        ``history`` > 0 its "above" set holds at most that many finished trials (0: all)."""
        if history < 0:
            raise ValueError(f"tpe_history must be 0 (unbounded) or positive, not {history}")
        adopted = cls.__new__(cls)
        adopted.__dict__.update(sampler.__dict__)
        adopted._trial_cache = cache
        adopted._history = history
        adopted._best = BestComplete()
        return adopted

    @property
    def history(self) -> int:
        """Most finished trials of the "above" set; 0: all of them."""
        return self._history

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
        n_below = self._gamma(cache.n_finished)
        below = below_rows(cache, n_below, study.direction, self._best)
        above = above_rows(cache.n_finished, below, self._history)
        below_obs = _observations(cache, search_space, below, [])
        running = [r for r in cache.running if r.number != trial.number and self._constant_liar]
        above_obs = _observations(cache, search_space, above, running)
        params = self._parzen_estimator_parameters
        mpe_below = self._parzen_estimator_cls(below_obs, search_space, params)
        mpe_above = self._parzen_estimator_cls(above_obs, search_space, params)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acquisition = self._compute_acquisition_func(samples, mpe_below, mpe_above)
        chosen = TPESampler._compare(samples, acquisition)
        return {name: dist.to_external_repr(chosen[name]) for name, dist in search_space.items()}


def sample_from_cache(
    study: optuna.Study, engine: Engine, history: int | None = None
) -> TrialCache:
    """A trial cache for ``study``; a TPE sampler of the study (as the service builds it) now
    samples from it, with ``history`` (default: the ``tpe_history`` setting) bounding its
    "above" set. The worker refreshes the cache before each ``ask``."""
    cache = TrialCache(engine, study._study_id)
    if type(study.sampler) is TPESampler:
        window = get_settings().tpe_history if history is None else history
        study.sampler = CachedTPESampler.adopt(study.sampler, cache, window)
    return cache


def below_rows(
    cache: TrialCache, n_below: int, direction: StudyDirection, best: BestComplete | None = None
) -> np.ndarray:
    """Optuna's ``_split_trials`` on columns, over every finished trial: the best ``n_below``
    COMPLETE trials by value (ties to the earlier trial, as Python's stable sort), then PRUNED
    ones by (latest step reached, its value). Rows of the cache's columns, ascending. ``best``
    (kept across calls) finds the complete ones from the trials added since the last call."""
    cols = cache.columns
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    chosen = (best or BestComplete()).rows(cache, n_below, sign)
    n_below = max(0, n_below - len(chosen))
    pruned = np.flatnonzero(~cols.complete) if n_below else np.empty(0, dtype=np.int64)
    if len(pruned):  # fewer COMPLETE trials than n_below (n_below is at most 25 by default)
        steps, last = cols.last_step[pruned], cols.last_value[pruned]
        reported = ~np.isnan(steps)
        value_key = np.where(np.isnan(last), np.inf, sign * last)
        first = np.where(reported, -steps, 1.0)
        second = np.where(reported, value_key, 0.0)
        order = np.lexsort((second, first))
        chosen = np.concatenate([chosen, pruned[order[:n_below]]])
    return np.sort(chosen)


class BestComplete:
    """The best COMPLETE trials by (signed value, number), at least 25 of them (the most Optuna's
    default gamma asks for), kept as trials arrive: each ``ask`` merges only the trials the
    cache added since, instead of sorting every trial of the study. Exact: the best ``k`` of
    all trials are among the best ``k`` of those kept plus those added."""

    def __init__(self) -> None:
        self.numbers = np.empty(0, dtype=np.int64)
        self.seen = 0  # how many of the cache's arrivals have been merged
        self.keep = 0  # how many best trials are kept (all of them when fewer)
        self.sign = 0.0

    def rows(self, cache: TrialCache, count: int, sign: float) -> np.ndarray:
        """Rows of the best ``count`` COMPLETE trials (fewer when there are fewer)."""
        if count > self.keep or sign != self.sign:
            self.numbers, self.seen = np.empty(0, dtype=np.int64), 0
            self.keep, self.sign = max(count, 25), sign
        cols = cache.columns
        arrived = np.asarray(cache.arrivals[self.seen :], dtype=np.int64)
        self.seen = len(cache.arrivals)
        numbers = np.concatenate([self.numbers, arrived])
        rows = np.searchsorted(cols.numbers, numbers)
        complete = cols.complete[rows]
        numbers, rows = numbers[complete], rows[complete]
        order = np.lexsort((numbers, sign * cols.values[rows]))[: self.keep]
        self.numbers = numbers[order]
        return rows[order[: max(count, 0)]]


def above_rows(n_rows: int, below: np.ndarray, history: int) -> np.ndarray:
    """The finished trials not in ``below`` (ascending rows): all of them, or with a ``history``
    window only the latest ``history`` of them."""
    if history == 0 or n_rows - len(below) <= history:
        keep = np.ones(n_rows, dtype=bool)
        keep[below] = False
        return np.flatnonzero(keep)
    start = max(0, n_rows - history - len(below))
    rows = np.arange(start, n_rows)
    return rows[~np.isin(rows, below)][-history:]


def _observations(
    cache: TrialCache,
    search_space: dict[str, BaseDistribution],
    rows: np.ndarray,
    running: list[Any],
) -> dict[str, np.ndarray]:
    """Internal values of the selected finished trials (``rows``, ascending, so in number order)
    plus ``running`` ones, in trial-number order, keeping only trials that have every parameter
    of the space (as Optuna does)."""
    cols = cache.columns
    names = list(search_space)
    matrix = np.column_stack([cols.param(n)[rows] for n in names]) if names else np.empty((0, 0))
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
