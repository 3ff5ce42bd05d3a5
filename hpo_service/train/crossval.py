"""Cross-validated trial values: the same configuration trained on each fold (plain torch).

Why: see :mod:`hpo_service.data.folds`. Each fold keeps its best epoch's validation metrics, and
the trial value is their mean, so a configuration that is lucky on one small split no longer
wins. ``n_params`` is the same in every fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hpo_service.data import PreparedData
from hpo_service.train.config import TrainConfig
from hpo_service.train.loop import fit


@dataclass(frozen=True)
class CrossValidation:
    """Per-fold best-epoch validation metrics; ``failure`` says why a fold did not finish."""

    folds: list[dict[str, float]] = field(default_factory=list)
    failure: str = ""
    interrupted: bool = False

    def mean(self, metric: str) -> float:
        values = [fold[metric] for fold in self.folds]
        return math.fsum(values) / len(values) if values else math.nan


def cross_validate(
    config: TrainConfig,
    folds: list[PreparedData],
    should_stop: Callable[[], bool] | None = None,
) -> CrossValidation:
    """Train ``config`` on every fold in turn; stops at the first fold that diverges or is
    interrupted."""
    done: list[dict[str, float]] = []
    for number, fold in enumerate(folds, 1):
        result = fit(config, fold, should_stop=should_stop)
        if result.stop_reason in ("diverged", "interrupted") or result.best is None:
            detail = result.reason_detail or result.stop_reason
            return CrossValidation(
                done, f"fold {number}: {detail}", result.stop_reason == "interrupted"
            )
        done.append({**result.best.metrics, "n_params": float(result.n_params)})
    return CrossValidation(done)
