"""The per-study counters on real databases: they agree with a recount of the runs after every
kind of move, the change watermark moves on every change to a trial, the claim is two statements
without a count over the runs, and the migration computes them for existing studies."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text

from alembic import command
from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling import claims, reaper
from hpo_service.spec import spec_to_dict
from hpo_service.spec.sampling import suggest_params
from hpo_service.store import db
from hpo_service.store.db import get_engine, get_storage, session_scope
from hpo_service.store.models import StudyRecord
from hpo_service.store.studies import (
    InvalidTransition,
    StudyInfo,
    create_study,
    extend_budget,
    load_optuna_study,
    transition,
)
from tests.test_runs import tiny_spec


def counters(settings: Settings, study_id: int) -> dict[str, int]:
    columns = ("budget_used", "runs_failed", "runs_claimed", "change_seq")
    with session_scope(get_engine(settings)) as session:
        row = session.execute(
            select(*(getattr(StudyRecord, c) for c in columns)).where(StudyRecord.id == study_id)
        ).one()
    return dict(zip(columns, (int(v) for v in row), strict=True))


def recount(settings: Settings, info: StudyInfo) -> dict[str, int]:
    """What the counters must say, counted from the runs the slow way."""
    with session_scope(get_engine(settings)) as session:
        by_status = claims.status_counts(session, info.id)
    counted = ["running", "reaping", "complete", "pruned"]
    if info.spec.budget.count_failed:
        counted.append("failed")
    return {
        "budget_used": sum(by_status.get(s, 0) for s in counted),
        "runs_failed": by_status.get("failed", 0),
        "runs_claimed": sum(by_status.values()),
    }


def assert_consistent(settings: Settings, info: StudyInfo) -> dict[str, int]:
    found = counters(settings, info.id)
    assert {k: v for k, v in found.items() if k != "change_seq"} == recount(settings, info)
    return found


def _claim(settings: Settings, info: StudyInfo, worker: str = "w") -> claims.Claim:
    with session_scope(get_engine(settings)) as session:
        claimed = claims.claim_unit(session, info.id, worker, info.spec)
    assert claimed is not None
    return claimed


def _finish(settings: Settings, info: StudyInfo, run_id: int, status: str) -> bool:
    count_failed = info.spec.budget.count_failed
    with session_scope(get_engine(settings)) as session:
        return claims.finish(session, run_id, "w", status, count_failed=count_failed)


def test_counters_follow_every_move_and_the_watermark_every_change(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("moves", n_trials=10), start=True)
    seq = assert_consistent(migrated, info)["change_seq"]
    runs = [_claim(migrated, info).run_id for _ in range(5)]
    after = assert_consistent(migrated, info)
    assert after["change_seq"] == seq + 5 and after["budget_used"] == 5
    for run_id, status in zip(runs, ["complete", "pruned", "failed", "requeued"], strict=False):
        seq = counters(migrated, info.id)["change_seq"]
        assert _finish(migrated, info, run_id, status)
        assert assert_consistent(migrated, info)["change_seq"] == seq + 1
    # A second finish of the same run changes nothing (the worker no longer owns it).
    before = counters(migrated, info.id)
    assert not _finish(migrated, info, runs[0], "failed")
    assert counters(migrated, info.id) == before
    assert before["budget_used"] == 3  # complete, pruned, and the one still running
    assert before["runs_failed"] == 1


def test_reaping_moves_the_counters_once(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("reaped", n_trials=3), start=True)
    claimed = _claim(migrated, info)
    trial = load_optuna_study(get_storage(migrated), info).ask()
    suggest_params(trial, info.spec.search_space)
    with session_scope(get_engine(migrated)) as session:
        seq = counters(migrated, info.id)["change_seq"]
        assert claims.attach(session, claimed.run_id, trial, 0, worker_id="w")
    assert counters(migrated, info.id)["change_seq"] == seq + 1
    time.sleep(0.3)
    assert reaper.reap(get_engine(migrated), get_storage(migrated), 0.2) == ["requeued"]
    found = assert_consistent(migrated, info)
    assert found["budget_used"] == 0 and found["runs_claimed"] == 1
    assert found["change_seq"] == seq + 3  # attach, taken over, released


def test_queueing_a_configuration_moves_the_watermark(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("queued"), start=False)
    seq = counters(migrated, info.id)["change_seq"]
    with TestClient(create_app(migrated)) as client:
        response = client.post(
            "/api/studies/queued/trials",
            json={"params": {"learning_rate": 0.01, "optimizer": "adam"}},
        )
    assert response.status_code == 201, response.text
    assert counters(migrated, info.id)["change_seq"] == seq + 1


def test_state_and_budget_changes_move_the_watermark(migrated: Settings) -> None:
    """What a study's page shows besides its trials (state, budget, completion) moves the
    counter too, so ETags and cached responses see it; a refused change moves nothing."""
    info = create_study(migrated, tiny_spec("studymoves", n_trials=1), start=False)
    engine = get_engine(migrated)

    def seq() -> int:
        return counters(migrated, info.id)["change_seq"]

    before = seq()
    transition(engine, "studymoves", "start")
    assert seq() == before + 1
    extend_budget(engine, "studymoves", 2)
    assert seq() == before + 2
    with pytest.raises(InvalidTransition):
        transition(engine, "studymoves", "start")
    assert seq() == before + 2
    runs = [_claim(migrated, info).run_id for _ in range(2)]
    for run_id in runs:
        assert _finish(migrated, info, run_id, "complete")
    settled = seq()
    with session_scope(engine) as session:
        assert claims.maybe_complete(session, info.id)
    assert seq() == settled + 1


def test_claim_is_two_statements_that_never_count_runs(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("o1", n_trials=1000), start=True)
    for _ in range(20):
        _finish(migrated, info, _claim(migrated, info).run_id, "complete")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.upper())

    engine = get_engine(migrated)
    event.listen(engine, "before_cursor_execute", record)
    try:
        claimed = _claim(migrated, info)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert claimed.ordinal == 20
    writes = [s for s in statements if s.startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 2, statements
    assert not any("COUNT(" in s or "GROUP BY" in s for s in statements), statements


def test_budget_stays_exact_when_claims_race(migrated: Settings) -> None:
    """Threads with their own connections claim at once; exactly n_trials succeed."""
    info = create_study(migrated, tiny_spec("threads", n_trials=7), start=True)
    won: list[int] = []

    def grab() -> None:
        for _ in range(4):
            with session_scope(get_engine(migrated)) as session:
                claimed = claims.claim_unit(session, info.id, "w", info.spec)
            if claimed is not None:
                won.append(claimed.ordinal)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == list(range(7))
    assert assert_consistent(migrated, info)["budget_used"] == 7


def test_migration_computes_counters_of_existing_studies(settings: Settings) -> None:
    engine = get_engine(settings)
    optuna.storages.RDBStorage(settings.database_url).engine.dispose()  # Optuna's tables
    with engine.begin() as conn:
        cfg = db.alembic_config(settings.database_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    spec = tiny_spec("old", n_trials=10, count_failed=True)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hpo_studies (id, name, spec, state, n_trials, created_at, updated_at)"
                " VALUES (1, 'old', :spec, 'running', 10, :now, :now)"
            ),
            {"spec": json.dumps(spec_to_dict(spec)), "now": now},
        )
        statuses = ["complete", "complete", "failed", "requeued", "running", "crashed"]
        conn.execute(
            text(
                "INSERT INTO hpo_trial_runs (study_id, status, retries, started_at, heartbeat_at)"
                " VALUES (1, :status, 0, :now, :now)"
            ),
            [{"status": status, "now": now} for status in statuses],
        )
    db.migrate(settings)
    info = StudyInfo(
        id=1, name="old", spec=spec, state="running", n_trials=10, created_at=now,
        updated_at=now, started_at=None, finished_at=None,
    )  # fmt: skip
    found = assert_consistent(settings, info)
    assert found["budget_used"] == 4 and found["runs_failed"] == 1 and found["runs_claimed"] == 6
