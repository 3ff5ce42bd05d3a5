"""Spec + Optuna trial -> one training run: the only place where Optuna meets the trainer.

The trainer reports each epoch; here that becomes ``trial.report`` and a pruning decision. The
curves, metrics and artifact folder are stored on the trial (user attributes) once, at the end,
so a trial costs a handful of writes rather than one per metric per epoch.
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
from hpo_service.data import load_dataset
from hpo_service.data.sources import DataRoots
from hpo_service.jsonsafe import finite_json
from hpo_service.scheduling.baselines import ensure_baselines
from hpo_service.scheduling.outcomes import TrainFn, TrialFailed, TrialInterrupted, retry
from hpo_service.spec import StudySpec
from hpo_service.spec.sampling import suggest_params
from hpo_service.train import fit, save_artifacts
from hpo_service.train.config import EpochResult, TrainConfig, TrainResult

# The trainer contract's exceptions live in the worker's torch-free code; importable from here.
__all__ = ["TrialFailed", "TrialInterrupted", "run_trial", "trainer"]
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


def store_result(trial: optuna.Trial, result: TrainResult, artifact_dir: Path | None) -> None:
    attrs: dict[str, Any] = {
        "curves": _curves(result),
        "stop_reason": result.stop_reason,
        "best_epoch": result.best_epoch,
        "n_params": result.n_params,
    }
    if result.best is not None:
        attrs["best_metrics"] = finite_json(result.best.metrics)
    if result.final is not None:
        attrs["final_metrics"] = finite_json(result.final.metrics)
    if result.test_metrics:
        attrs["test_metrics"] = finite_json(result.test_metrics)
    if artifact_dir is not None:
        attrs["artifact_dir"] = str(artifact_dir)
    if result.reason_detail:
        attrs["fail_reason"] = result.reason_detail
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
) -> list[float]:
    """Train the trial's configuration; returns objective values or raises
    ``optuna.TrialPruned``, :class:`TrialFailed` or :class:`TrialInterrupted`."""
    params = retry(lambda: suggest_params(trial, spec.search_space))
    config = train_config(spec, params, options, seed=spec.task.seed + trial.number)
    # Strict roots whatever HPO_ALLOW_LOCAL_PATHS says: the spec may come from an API client.
    data = load_dataset(spec.task, DataRoots.from_settings(settings), settings.cache_dir)
    retry(lambda: ensure_baselines(settings, spec, data))  # once per study, before its first fit
    try:
        result = fit(config, data, _pruning_callback(trial, spec), should_stop)
    except torch.cuda.OutOfMemoryError as error:  # this configuration does not fit the GPU
        log.warning("trial %d: %s", trial.number, error)
        result = None
    if result is None:  # outside the handler, whose traceback pins the trial's tensors
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise TrialFailed("out of memory")
    artifact_dir = None
    finished = result.stop_reason in ("max_epochs", "early_stopping")
    if finished and result.best_state is not None:
        artifact_dir = Path(settings.artifact_dir) / spec.name / f"trial-{trial.number:05d}"
        save_artifacts(result, data, config, artifact_dir)
    retry(lambda: store_result(trial, result, artifact_dir))
    if result.stop_reason == "diverged":
        raise TrialFailed(result.reason_detail or "the loss diverged")
    if result.stop_reason == "pruned":
        raise optuna.TrialPruned(f"pruned at epoch {len(result.epochs)}")
    if result.stop_reason == "interrupted":
        raise TrialInterrupted(f"interrupted after epoch {len(result.epochs)}")
    return objective_values(result, spec)


def set_torch_threads(threads: int) -> None:
    """Intra-op and inter-op threads of this process. Inter-op threads can be set only before
    torch's first parallel work, so this runs when the worker starts, before any trial."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already started: keep torch's pool
        torch.set_num_interop_threads(threads)


def trainer(settings: Settings, device: str, num_threads: int | None) -> TrainFn:
    """The worker's objective: the LSTM/GRU trainer bound to these settings. The worker imports
    this module lazily, so a process that never trains never pays torch's import."""
    options = TrainerOptions(device=device, num_threads=num_threads)
    if num_threads:
        set_torch_threads(num_threads)

    def train(spec: StudySpec, trial: optuna.Trial, should_stop: Callable[[], bool]) -> list[float]:
        return run_trial(settings, spec, trial, options, should_stop)

    return train
