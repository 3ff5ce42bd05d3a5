"""Validated per-request options shared by the plot builders."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from hpo_service.plots import labels
from hpo_service.plots.data import StudyRef
from hpo_service.plots.errors import PlotError


@dataclass(frozen=True)
class Request:
    conn: sa.Connection
    study: StudyRef
    objective: int = 0
    x: str | None = None
    y: str | None = None

    @property
    def metric(self) -> str:
        """The chosen objective's display name, e.g. "RMSE" or "accuracy"."""
        return labels.display(self.study.metric(self.objective))

    @property
    def direction(self) -> str:
        return self.study.directions[self.objective]

    def title(self, what: str) -> str:
        """E.g. "Optimization history: accuracy (higher is better) — my-study"."""
        return (
            f"{what}: {labels.value_label(self.study.metric(self.objective), self.direction)}"
            f" — {self.study.name}"
        )


def parse_objective(raw: str | None, study: StudyRef) -> int:
    if raw is None or raw == "":
        return 0
    try:
        k = int(raw)
    except ValueError:
        raise PlotError(f"objective must be an integer, got {raw!r}") from None
    if not 0 <= k < len(study.directions):
        raise PlotError(
            f"objective {k} out of range: study {study.name!r} has "
            f"{len(study.directions)} objective(s)"
        )
    return k
