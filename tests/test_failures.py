"""Failed runs grouped by kind (hpo_service.store.failures), the summary ``hpo run`` prints: on
real runs rows in SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import insert

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.clock import utcnow
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.failures import KIND_WIDTH, failure_kind, failure_kinds, failure_lines
from hpo_service.store.models import TrialRun
from hpo_service.store.studies import create_study
from tests.conftest import tiny_spec


def add_runs(settings: Settings, study_id: int, runs: list[tuple[str, str | None]]) -> None:
    now = utcnow()
    rows = [
        {"study_id": study_id, "status": status, "reason": reason, "retries": 0,
         "started_at": now, "heartbeat_at": now}
        for status, reason in runs
    ]  # fmt: skip
    with session_scope(get_engine(settings)) as session:
        session.execute(insert(TrialRun), rows)


def test_reasons_are_grouped_by_their_first_line(migrated: Settings) -> None:
    info = create_study(migrated, parse_spec(tiny_spec("f")))
    dataset = "DatasetError: column 'value' has no numeric values"
    add_runs(
        migrated,
        info.id,
        [
            ("failed", dataset),
            ("failed", dataset + "\n  at line 3"),  # same kind: the first line counts
            ("failed", dataset),
            ("failed", "the loss diverged"),
            ("failed", None),
            ("complete", None),
            ("requeued", "interrupted after epoch 1"),  # not a failure: it runs again
        ],
    )
    kinds = failure_kinds(get_engine(migrated), info.id)
    assert kinds == [(dataset, 3), ("no reason recorded", 1), ("the loss diverged", 1)]
    assert failure_lines(kinds)[::2] == [
        f"3 trials failed: {dataset}",
        "1 trial failed: the loss diverged",
    ]


def test_many_kinds_fold_into_other_reasons(migrated: Settings) -> None:
    info = create_study(migrated, parse_spec(tiny_spec("many")))
    add_runs(migrated, info.id, [("failed", f"reason {i}") for i in range(8)])
    kinds = failure_kinds(get_engine(migrated), info.id, limit=3)
    assert len(kinds) == 3 and kinds[-1] == ("other reasons", 6)
    assert sum(n for _, n in kinds) == 8


def test_a_long_reason_is_cut() -> None:
    kind = failure_kind("x" * 1000)
    assert len(kind) == KIND_WIDTH and kind.endswith("...")
