"""Refit only the study's best: the step after a trial is told COMPLETE.

A refit (``task.refit``, :mod:`hpo_service.train.refit`) trains a configuration again on
train+validation, and only the model that serves predictions needs it: the best trial's. It used
to run after every finished trial, doubling the cost of a small study for models nobody serves.
Now a finished trial saves its search run's model, is told COMPLETE, and only then, if it is the
study's best at that moment (:func:`hpo_service.store.best.best_trial_ids`, the one home of the
rule; for several objectives: on the Pareto front), is refit, and the refit's model replaces the
search run's in its artifact folder. Decisions:

- a later, better trial refits itself when it finishes; a trial that was best and is overtaken
  keeps its refit model and figures (they stay true of that trial; nothing is undone);
- a trial that is not the best when it finishes is not refit later; its search-run model is
  saved and can still be named for predictions;
- two trials finishing at once may both be best when each asks (both refit): harmless;
- a refit that fails or is interrupted leaves the COMPLETE trial as it was (its search-run model
  serves); the trial's status does not change after it was told.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

from hpo_service.config import Settings
from hpo_service.scheduling.completed import CompletedRun
from hpo_service.scheduling.outcomes import retry
from hpo_service.store import trial_data
from hpo_service.store.best import best_trial_ids
from hpo_service.store.db import get_engine
from hpo_service.train import save_artifacts
from hpo_service.train.artifacts import WEIGHTS
from hpo_service.train.config import TrainResult
from hpo_service.train.refit import refit, refit_config

log = logging.getLogger(__name__)


def is_best(settings: Settings, study_id: int, trial_id: int, directions: list[str]) -> bool:
    """Whether the COMPLETE trial ``trial_id`` is its study's best (single objective) or on its
    Pareto front (several), by :mod:`hpo_service.store.best`'s rule."""

    def ask() -> list[int]:
        with get_engine(settings).connect() as conn:
            return best_trial_ids(conn, study_id, directions)

    return trial_id in retry(ask)


def refit_if_best(
    settings: Settings,
    pending: CompletedRun,
    study_id: int,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult | None:
    """Refit ``pending``'s trial if it is the study's best now; its model then serves
    predictions and its figures are stored as the trial's ``refit``. None when not refit."""
    if not is_best(settings, study_id, pending.trial_id, pending.spec.directions):
        log.info("trial %d is not the study's best: no refit", pending.number)
        return None
    refitted = refit(pending.config, pending.data, pending.result, should_stop)
    if refitted is None:
        log.info("trial %d: refit not finished; the search run's model serves", pending.number)
        return None
    replace_artifacts(refitted, pending)
    retry(lambda: _store(settings, pending, refitted))
    return refitted


def replace_artifacts(refitted: TrainResult, pending: CompletedRun) -> None:
    """Write the refit's model beside the search run's, then move each file over its
    counterpart (``os.replace``: a reader sees one file or the other, never half of one); the
    weights go last, so a predictor cached by their time stamp reloads with the new config."""
    config = refit_config(pending.config, pending.result.best_epoch)
    staging = pending.directory.with_name(pending.directory.name + ".refit")
    shutil.rmtree(staging, ignore_errors=True)
    save_artifacts(refitted, pending.data, config, staging)
    files = sorted(staging.iterdir(), key=lambda path: path.name == WEIGHTS)
    for path in files:
        os.replace(path, pending.directory / path.name)
    shutil.rmtree(staging, ignore_errors=True)


def _store(settings: Settings, pending: CompletedRun, refitted: TrainResult) -> None:
    """The refit's figures beside the search run's (the trial's ``refit`` field)."""
    engine = get_engine(settings)
    with engine.connect() as conn:
        stored = trial_data.load(conn, pending.trial_id)
    extra = {**stored.extra, "refit": refit_summary(refitted)}
    updated = trial_data.TrialData(stored.curves, stored.metrics, stored.artifact_dir, extra)
    trial_data.save(engine, pending.spec.name, pending.trial_id, pending.number, updated)


def refit_summary(refitted: TrainResult) -> dict[str, object]:
    """What is stored of a refit: its epochs, its training examples and its test metrics."""
    return {
        "epochs": refitted.best_epoch,
        "train_n": refitted.train_n,
        "test_metrics": refitted.test_metrics,
    }
