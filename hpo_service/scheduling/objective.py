"""Spec + Optuna trial -> one training run: the only place where Optuna meets the trainer.

The trainer reports each epoch; here that becomes ``trial.report`` and a pruning decision. What
the trial leaves is written once, at the end, so a trial costs a handful of writes rather than
one per metric per epoch: a few small scalars as Optuna user attributes (stop reason, best
epoch, parameter count) and the curves, metrics and artifact folder in the service's
``hpo_trial_data`` table (:mod:`hpo_service.store.trial_data` says why).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from hpo_service.config import Settings
from hpo_service.data import PreparedData, load_dataset
from hpo_service.data.folds import cv_folds
from hpo_service.data.merge import wants_refit
from hpo_service.data.sources import DataRoots
from hpo_service.scheduling.baselines import ensure_baselines
from hpo_service.scheduling.completed import CompletedRun
from hpo_service.scheduling.ensembles import update_ensemble
from hpo_service.scheduling.outcomes import TrialFailed, TrialInterrupted, retry
from hpo_service.scheduling.refits import refit_if_best
from hpo_service.spec import StudySpec, split_params
from hpo_service.spec.sampling import suggest_params
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine
from hpo_service.train import fit, save_artifacts
from hpo_service.train.config import EpochResult, TrainConfig, TrainResult
from hpo_service.train.crossval import CrossValidation, cross_validate

# The trainer contract's exceptions live in the worker's torch-free code; importable from here.
__all__ = ["Trainer", "TrialFailed", "TrialInterrupted", "run_trial", "trainer"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerOptions:
    device: str = "cpu"
    num_threads: int | None = None


def _metric(epoch: EpochResult, name: str, n_params: int) -> float:
    if name == "n_params":
        return float(n_params)
    return float(epoch.metrics[name])


def objective_values(result: TrainResult, spec: StudySpec) -> list[float]:
    """The objective metric(s) at the best epoch (the weights that are kept)."""
    best = result.best
    assert best is not None
    return [_metric(best, m, result.n_params) for m in spec.task.metrics]


def _curves(result: TrainResult) -> dict[str, list[float]]:
    return {
        "train_loss": [e.train_loss for e in result.epochs],
        "val_loss": [e.val_loss for e in result.epochs],
        "seconds": [round(e.seconds, 4) for e in result.epochs],
        **{
            f"val_{name}": [e.metrics.get(name, math.nan) for e in result.epochs]
            for name in (result.epochs[0].metrics if result.epochs else {})
        },
    }


def _extra(cv: CrossValidation | None, k: int) -> dict[str, Any]:
    """The cross-validation's results, kept with the trial's bulky data (a refit's are added
    by :mod:`.refits` once the trial is COMPLETE and the study's best)."""
    if cv is None:
        return {}
    return {"cv": {"folds": k, "fold_metrics": cv.folds, "failure": cv.failure or None}}


def store_result(
    settings: Settings, spec: StudySpec, trial: optuna.Trial, result: TrainResult,
    artifact_dir: Path | None, extra: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The trial's results: bulky data in the service's table, small scalars on Optuna's trial."""
    metrics = {"best": result.best, "final": result.final}
    data = trial_data.TrialData(
        curves=_curves(result),
        metrics={
            **{name: epoch.metrics for name, epoch in metrics.items() if epoch is not None},
            "test": result.test_metrics or {},
        },
        artifact_dir=None if artifact_dir is None else str(artifact_dir),
        extra=extra or {},
    )
    trial_data.save(get_engine(settings), spec.name, trial._trial_id, trial.number, data)
    attrs: dict[str, Any] = {
        "stop_reason": result.stop_reason,
        "best_epoch": result.best_epoch,
        "n_params": result.n_params,
        "train_n": result.train_n,
        "val_n": result.val_n,
        "test_n": result.test_n,
    }
    if result.reason_detail:
        attrs["fail_reason"] = result.reason_detail[: trial_data.MAX_SMALL_CHARS]
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _pruning_callback(trial: optuna.Trial, spec: StudySpec) -> Callable[[EpochResult], bool]:
    metric = spec.task.metrics[0]

    def on_epoch(epoch: EpochResult) -> bool:
        if spec.is_multi_objective or metric == "n_params":
            return False
        value = _metric(epoch, metric, 0)
        if not math.isfinite(value):
            return False  # divergence is the trainer's to report
        # Retried: a dropped database connection must not fail a trial that trains fine.
        retry(lambda: trial.report(value, epoch.epoch))
        return retry(trial.should_prune)

    return on_epoch


def train_config(
    spec: StudySpec, params: dict[str, Any], options: TrainerOptions, seed: int
) -> TrainConfig:
    return TrainConfig.from_params(
        params,
        max_epochs=spec.budget.max_epochs,
        patience=spec.budget.patience,
        seed=seed,
        device=options.device,
        num_threads=options.num_threads,
        # The best epoch (the weights kept, the value reported) follows the first objective.
        metric=spec.task.metrics[0],
        direction=spec.directions[0],
    )


def run_trial(
    settings: Settings,
    spec: StudySpec,
    trial: optuna.Trial,
    options: TrainerOptions,
    should_stop: Callable[[], bool] | None = None,
    completed: dict[int, CompletedRun] | None = None,
) -> list[float]:
    """Train the trial's configuration; returns objective values or raises
    ``optuna.TrialPruned``, :class:`TrialFailed` or :class:`TrialInterrupted`. When the task
    asks for a step after COMPLETE (a refit, or the study's ensemble), the trained run is left
    in ``completed`` (by Optuna trial id) for :class:`Trainer`'s ``after_complete``; without
    ``completed`` there is none."""
    task, params = split_params(spec.task, retry(lambda: suggest_params(trial, spec.search_space)))
    config = train_config(spec, params, options, seed=spec.task.seed + trial.number)
    # Strict roots whatever HPO_ALLOW_LOCAL_PATHS says: the spec may come from an API client.
    data = load_dataset(task, DataRoots.from_settings(settings), settings.cache_dir)
    retry(lambda: ensure_baselines(settings, spec, data))  # once per study, before its first fit
    # Pruning compares one split's epochs; a cross-validated value is known only at the end.
    pruning = None if spec.task.cv_folds else _pruning_callback(trial, spec)
    try:
        result = fit(config, data, pruning, should_stop)
    except torch.cuda.OutOfMemoryError as error:  # this configuration does not fit the GPU
        log.warning("trial %d: %s", trial.number, error)
        result = None
    if result is None:  # outside the handler, whose traceback pins the trial's tensors
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise TrialFailed("out of memory")
    artifact_dir, cv = None, None
    finished = result.stop_reason in ("max_epochs", "early_stopping")
    if finished and result.best_state is not None:
        artifact_dir = Path(settings.artifact_dir) / spec.name / f"trial-{trial.number:05d}"
        save_artifacts(result, data, config, artifact_dir)
        if completed is not None and _after_completion(spec, data):
            # Run after the trial is told COMPLETE: the ensemble (.ensembles), or the refit
            # if the trial is then the best (.refits).
            completed[trial._trial_id] = CompletedRun(
                spec, data, config, result, artifact_dir, trial._trial_id, trial.number
            )
    k = spec.task.cv_folds or 0
    if finished and k:
        cv = cross_validate(config, cv_folds(data, k, spec.task.seed), should_stop)
    extra = _extra(cv, k)
    retry(lambda: store_result(settings, spec, trial, result, artifact_dir, extra))
    if result.stop_reason == "diverged":
        raise TrialFailed(result.reason_detail or "the loss diverged")
    if result.stop_reason == "pruned":
        raise optuna.TrialPruned(f"pruned at epoch {len(result.epochs)}")
    if result.stop_reason == "interrupted":
        raise TrialInterrupted(f"interrupted after epoch {len(result.epochs)}")
    return objective_values(result, spec) if cv is None else _cv_values(cv, spec)


def _after_completion(spec: StudySpec, data: PreparedData) -> bool:
    """Whether a trial needs a step after COMPLETE. An ensemble study serves its ensemble, so
    it refits nothing: members refit on validation would make the ensemble's validation
    figure a measure of data it was trained on."""
    return spec.task.ensemble_trials > 1 or wants_refit(spec.task.refit, data)


def _cv_values(cv: CrossValidation, spec: StudySpec) -> list[float]:
    """The objective values as means over ``task.cv_folds`` folds of train+validation (the
    model saved from the main split still serves predictions)."""
    if cv.interrupted:
        raise TrialInterrupted(f"interrupted in cross-validation ({cv.failure})")
    if cv.failure:
        raise TrialFailed(f"cross-validation {cv.failure}")
    return [cv.mean(metric) for metric in spec.task.metrics]


def set_torch_threads(threads: int) -> None:
    """Intra-op and inter-op threads of this process. Inter-op threads can be set only before
    torch's first parallel work, so this runs when the worker starts, before any trial."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already started: keep torch's pool
        torch.set_num_interop_threads(threads)


class Trainer:
    """The worker's objective (a ``TrainFn``: the LSTM/GRU trainer bound to these settings)
    and its step after a trial is told COMPLETE: the study's ensemble of its N best trials
    (:func:`.ensembles.update_ensemble`) with ``task.ensemble_trials`` > 1, else the refit, when
    the trial is then the study's best (:func:`.refits.refit_if_best`)."""

    def __init__(self, settings: Settings, options: TrainerOptions) -> None:
        self.settings, self.options = settings, options
        self._completed: dict[int, CompletedRun] = {}  # at most the trial in hand

    def __call__(
        self, spec: StudySpec, trial: optuna.Trial, should_stop: Callable[[], bool]
    ) -> list[float]:
        self._completed.clear()
        return run_trial(self.settings, spec, trial, self.options, should_stop, self._completed)

    def after_complete(
        self, study: optuna.Study, trial: optuna.Trial, should_stop: Callable[[], bool]
    ) -> TrainResult | None:
        pending = self._completed.pop(trial._trial_id, None)
        if pending is None:
            return None
        if pending.spec.task.ensemble_trials > 1:
            update_ensemble(self.settings, pending)
            return None
        return refit_if_best(self.settings, pending, study._study_id, should_stop)


def trainer(settings: Settings, device: str, num_threads: int | None) -> Trainer:
    """The worker's objective. The worker imports this module lazily, so a process that never
    trains never pays torch's import."""
    options = TrainerOptions(device=device, num_threads=num_threads)
    if num_threads:
        set_torch_threads(num_threads)
    return Trainer(settings, options)
