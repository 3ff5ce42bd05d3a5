"""Why a study's trials failed, grouped by kind: the summary ``hpo run`` prints at the end.

A failing dataset or a bug fails every trial the same way; printing each trial's traceback hid
the one line that mattered under screens of repetition. The reasons come from the service's own
runs table (``hpo_trial_runs.reason``, written when a run closes), so nothing of Optuna's tables
is read here. A kind is a reason's first line, cut short, so reasons that differ only further
down still group together.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, func, select

from hpo_service.store.db import session_scope
from hpo_service.store.models import RunStatus, TrialRun

KIND_WIDTH = 300


def failure_kind(reason: str | None) -> str:
    """The first line of a failure reason, at most :data:`KIND_WIDTH` characters."""
    lines = (reason or "").strip().splitlines()
    line = lines[0] if lines else "no reason recorded"
    return line if len(line) <= KIND_WIDTH else line[: KIND_WIDTH - 3] + "..."


def failure_kinds(engine: Engine, study_id: int, limit: int = 5) -> list[tuple[str, int]]:
    """The study's failed runs as (kind, count), most frequent first, at most ``limit`` kinds
    (the rest are folded into one ``"other reasons"`` entry)."""
    query = (
        select(TrialRun.reason, func.count())
        .where(TrialRun.study_id == study_id, TrialRun.status == RunStatus.FAILED)
        .group_by(TrialRun.reason)
    )
    kinds: Counter[str] = Counter()
    with session_scope(engine) as session:
        for reason, n in session.execute(query):
            kinds[failure_kind(reason)] += int(n)
    ranked = sorted(kinds.items(), key=lambda kind: (-kind[1], kind[0]))  # ties: by name
    if len(ranked) <= limit:
        return ranked
    rest = sum(n for _, n in ranked[limit - 1 :])
    return [*ranked[: limit - 1], ("other reasons", rest)]


def failure_lines(kinds: list[tuple[str, int]]) -> list[str]:
    """``"3 trials failed: DatasetError: ..."``, one line per kind."""
    return [f"{n} trial{'s' if n != 1 else ''} failed: {kind}" for kind, n in kinds]
