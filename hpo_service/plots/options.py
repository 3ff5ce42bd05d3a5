"""Validated per-request options shared by the plot builders."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from hpo_service.plots.data import StudyRef
from hpo_service.plots.errors import PlotError


@dataclass(frozen=True)
class Request:
    conn: sa.Connection
    study: StudyRef
    objective: int = 0
    x: str | None = None
    y: str | None = None

    def title(self, what: str) -> str:
        suffix = f" (objective {self.objective})" if len(self.study.directions) > 1 else ""
        return f"{what}{suffix} — {self.study.name}"


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
