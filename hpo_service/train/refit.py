"""Refit: the chosen configuration trained again on train+validation for its best epoch count.

Why: on small data, holding out validation costs the served model a large share of its data.
The search run picked the epoch count on validation; the refit trains that many epochs on both
splits and keeps the last weights (there is nothing held out left to choose by). Its test
metrics are reported beside the search run's, and its weights are what ``predict`` serves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hpo_service.data import PreparedData
from hpo_service.data.merge import with_validation_in_train
from hpo_service.train.config import TrainConfig, TrainResult
from hpo_service.train.loop import fit


def refit(
    config: TrainConfig,
    data: PreparedData,
    searched: TrainResult,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult | None:
    """The refit run, or None when the search run has no best epoch to repeat."""
    if searched.best_epoch < 1:
        return None
    again = refit_config(config, searched.best_epoch)
    result = fit(again, with_validation_in_train(data), should_stop=should_stop)
    return result if result.stop_reason == "max_epochs" else None


def refit_config(config: TrainConfig, epochs: int) -> TrainConfig:
    """The search run's configuration, for ``epochs`` epochs, keeping the last weights."""
    return dataclasses.replace(config, max_epochs=epochs, patience=None, keep_last=True)
