"""What a worker process remembers between trials, and how its sampler is seeded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo_service.store.studies import StudyInfo


@dataclass(frozen=True)
class Pending:
    """A told trial whose run is not closed yet: that happens in the next claim's transaction."""

    run_id: int
    outcome: tuple[str, str | None, dict[str, Any]]  # status, reason, params
    count_failed: bool  # the study's budget.count_failed: whether a failure keeps its unit


@dataclass
class WorkerState:
    idle_done: bool = False
    run_id: int | None = None
    lost_run: int | None = None  # a run the reaper took from this worker
    pending: Pending | None = None
    idle: bool = True  # what the worker's row says
    trials_done: int = 0


def seeded(info: StudyInfo, ordinal: int) -> StudyInfo:
    """The study with its sampler seed offset by the worker's first claim ordinal: one worker gets
    the spec's seed exactly, several workers get distinct streams (same seeds = same samples)."""
    seed = info.spec.sampler.seed
    if seed is None or ordinal == 0:
        return info
    sampler = info.spec.sampler.model_copy(update={"seed": seed + ordinal})
    return info.model_copy(update={"spec": info.spec.model_copy(update={"sampler": sampler})})
