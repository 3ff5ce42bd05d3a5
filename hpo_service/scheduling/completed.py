"""What the step after a trial is told COMPLETE needs: its refit (:mod:`.refits`) or the
study's ensemble (:mod:`.ensembles`). Kept by the trainer from the end of the search run until
the trial is COMPLETE, because only then can the study's ranking include it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpo_service.data import PreparedData
from hpo_service.spec import StudySpec
from hpo_service.train.config import TrainConfig, TrainResult


@dataclass(frozen=True)
class CompletedRun:
    """One trained trial: its spec, prepared data, configuration, result and artifact folder."""

    spec: StudySpec
    data: PreparedData
    config: TrainConfig
    result: TrainResult
    directory: Path
    trial_id: int
    number: int
