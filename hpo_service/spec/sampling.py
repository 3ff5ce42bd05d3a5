"""From a spec to Optuna: the sampler, the pruner and the parameters a trial suggests.

Optuna persists neither samplers nor pruners, so every process calls these with the stored spec.
"""

from __future__ import annotations

from typing import Any

import optuna

from hpo_service.spec.model import StudySpec
from hpo_service.spec.space import FloatRange, IntRange, SearchSpace, branches, condition_key


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    cfg = spec.sampler
    startup: dict[str, Any] = (
        {} if cfg.n_startup_trials is None else {"n_startup_trials": cfg.n_startup_trials}
    )
    if cfg.type == "tpe":
        return optuna.samplers.TPESampler(
            seed=cfg.seed, multivariate=True, constant_liar=True, **startup
        )
    if cfg.type == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    if cfg.type == "grid":
        return optuna.samplers.GridSampler(grid_space(spec.search_space), seed=cfg.seed)
    if cfg.type == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=cfg.seed, warn_independent_sampling=False, **startup
        )
    if cfg.type == "gp":
        return optuna.samplers.GPSampler(seed=cfg.seed, warn_independent_sampling=False, **startup)
    return optuna.samplers.NSGAIISampler(seed=cfg.seed)


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    cfg = spec.pruner
    if cfg.type == "none" or spec.is_multi_objective:
        return optuna.pruners.NopPruner()
    if cfg.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps
        )
    if cfg.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=cfg.min_resource, reduction_factor=cfg.reduction_factor
        )
    return optuna.pruners.HyperbandPruner(
        min_resource=cfg.min_resource,
        max_resource=spec.budget.max_epochs,
        reduction_factor=cfg.reduction_factor,
    )


def _float_values(entry: FloatRange) -> list[float]:
    assert entry.step is not None
    count = round((entry.high - entry.low) / entry.step) + 1
    return [round(entry.low + i * entry.step, 12) for i in range(count)]


def grid_space(space: SearchSpace) -> dict[str, list[Any]]:
    """Every searched entry as a finite list (the spec already refused continuous ranges)."""
    grid: dict[str, list[Any]] = {}
    for name, entry in space:
        if isinstance(entry, list):
            grid[name] = list(entry)
        elif isinstance(entry, IntRange):
            grid[name] = list(range(entry.low, entry.high + 1, entry.step))
        elif isinstance(entry, FloatRange):
            grid[name] = _float_values(entry)
    return grid


def optuna_name(name: str, entry: Any, params: dict[str, Any]) -> tuple[str, Any]:
    """The Optuna parameter name and range of entry ``name`` given the values chosen so far.

    A conditional range (``when``) is a distinct Optuna parameter per branch,
    ``learning_rate[sgd]``, and the entry's own range stays ``learning_rate``: Optuna's TPE
    models each name from the trials that have it, so SGD's learning rates (0.01-0.5) never
    shape the density Adam's (1e-4-1e-2) are drawn from, and no name ever changes its
    distribution (which Optuna refuses for a change of ``log``, and which the cached TPE of
    ``scheduling/tpe.py`` would have to fall back on). The trainer still gets
    ``learning_rate``."""
    key = condition_key(entry)
    if key is not None and key in params:
        choice = str(params[key])
        branch = branches(entry).get(choice)
        if branch is not None:
            return f"{name}[{choice}]", branch
    return name, entry


def suggest_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Every search-space entry resolved to a value: searched ones through ``trial``.
    Entries a conditional range depends on are suggested first."""
    entries = dict(space)
    order = sorted(entries, key=lambda n: condition_key(entries[n]) is not None)
    params: dict[str, Any] = {}
    for name in order:
        label, entry = optuna_name(name, entries[name], params)
        if isinstance(entry, FloatRange):
            params[name] = trial.suggest_float(
                label, entry.low, entry.high, log=entry.log, step=entry.step
            )
        elif isinstance(entry, IntRange):
            params[name] = trial.suggest_int(
                label, entry.low, entry.high, log=entry.log, step=entry.step
            )
        elif isinstance(entry, list):
            params[name] = trial.suggest_categorical(label, list(entry))
        elif entry is not None:  # None: a data entry left to the task's own value
            params[name] = entry
    return {name: params[name] for name in entries if name in params}
