"""PATCH /api/studies/{name}: changing a study's trial budget, over real databases.

The budget a study has used is what the claims count (finished and running runs); those rows are
written here directly, as workers would, so the test needs no training."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling import claims
from hpo_service.store.clock import utcnow
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import RunStatus, StudyRecord
from hpo_service.store.studies import get_study, transition
from tests.conftest import tiny_spec


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        yield client


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def use_budget(settings: Settings, name: str, statuses: list[RunStatus]) -> None:
    """Claim and close one run per status through the real claim path (it keeps the counters);
    RUNNING and REAPING runs stay open."""
    engine = get_engine(settings)
    info = get_study(engine, name)
    with session_scope(engine) as session:
        session.execute(
            sa.update(StudyRecord).where(StudyRecord.id == info.id).values(state="running")
        )
    for status in statuses:
        with session_scope(engine) as session:
            claimed = claims.claim_unit(session, info.id, "w", info.spec)
            assert claimed is not None
            if status not in (RunStatus.RUNNING, RunStatus.REAPING):
                claims.finish(
                    session,
                    claimed.run_id,
                    "w",
                    status,
                    count_failed=info.spec.budget.count_failed,
                )
    with session_scope(engine) as session:
        session.execute(
            sa.update(StudyRecord).where(StudyRecord.id == info.id).values(state=info.state)
        )


def test_extend_reopens_a_completed_study_and_refuses_going_below_used(
    api: TestClient, migrated: Settings
) -> None:
    assert api.post("/api/studies?start=true", json=tiny_spec("ext", 3)).status_code == 201
    use_budget(migrated, "ext", [RunStatus.FAILED])  # count_failed is false: not used
    use_budget(migrated, "ext", [RunStatus.COMPLETE, RunStatus.PRUNED, RunStatus.COMPLETE])
    engine = get_engine(migrated)
    transition(engine, "ext", "complete")
    assert api.get("/api/studies/ext").json()["state"] == "completed"

    detail = error(api.patch("/api/studies/ext", json={"n_trials": 2}), 409)
    assert detail == "n_trials: 2 is below the 3 trial(s) already used by 'ext'"

    extended = api.patch("/api/studies/ext", json={"n_trials": 5})
    assert extended.status_code == 200, extended.text
    body = extended.json()
    assert (body["state"], body["n_trials"], body["spec"]["budget"]["n_trials"]) == (
        "running",
        5,
        5,
    )
    assert body["finished_at"] is None
    # Workers can claim the new budget at once, and only that much of it.
    with session_scope(engine) as session:
        sid = get_study(engine, "ext").id
        first = claims.claim(session, sid, "w1")
    with session_scope(engine) as session:
        second = claims.claim(session, sid, "w1")
    with session_scope(engine) as session:
        third = claims.claim(session, sid, "w1")
    assert first is not None and second is not None and third is None

    # Lowering to exactly what is used is allowed while it runs (5 used now).
    assert api.patch("/api/studies/ext", json={"n_trials": 5}).json()["state"] == "running"


def test_extend_validation_state_and_token(
    api: TestClient, migrated: Settings, tmp_path: Path
) -> None:
    api.post("/api/studies", json=tiny_spec("ext2", 3))
    assert api.patch("/api/studies/ext2", json={"n_trials": 4}).json()["state"] == "created"
    assert error(api.patch("/api/studies/ext2", json={"n_trials": 0}), 422).startswith("n_trials: ")
    assert error(api.patch("/api/studies/ext2", json={"n_trials": 4, "x": 1}), 422).startswith(
        "x: "
    )
    assert error(api.patch("/api/studies/ext2", json={}), 422).startswith("n_trials: ")
    assert "no study named 'nope'" in error(
        api.patch("/api/studies/nope", json={"n_trials": 4}), 404
    )
    api.post("/api/studies/ext2/stop")
    assert "stopped for good" in error(api.patch("/api/studies/ext2", json={"n_trials": 9}), 409)

    grid = tiny_spec("grid", 2, sampler={"type": "grid"})
    grid["search_space"] = {
        "learning_rate": 0.01,
        "batch_size": [32, 64],
        "hidden_units": 8,
        "optimizer": "adam",
    }
    assert api.post("/api/studies", json=grid).status_code == 201
    assert "only 2 points" in error(api.patch("/api/studies/grid", json={"n_trials": 3}), 409)

    cfg = migrated.model_copy(update={"api_token": SecretStr("s3cret")})
    with TestClient(create_app(cfg)) as locked:
        assert error(locked.patch("/api/studies/grid", json={"n_trials": 2}), 401)
        ok = locked.patch(
            "/api/studies/grid", json={"n_trials": 2}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200, ok.text


def test_extend_refuses_a_study_whose_time_limit_has_passed(
    api: TestClient, migrated: Settings
) -> None:
    spec = tiny_spec("late", 1)
    spec["budget"]["timeout_s"] = 60
    assert api.post("/api/studies?start=true", json=spec).status_code == 201
    use_budget(migrated, "late", [RunStatus.COMPLETE])
    engine = get_engine(migrated)
    with session_scope(engine) as session:
        session.execute(
            sa.update(StudyRecord)
            .where(StudyRecord.name == "late")
            .values(started_at=utcnow() - timedelta(minutes=5))
        )
    transition(engine, "late", "complete")
    detail = error(api.patch("/api/studies/late", json={"n_trials": 3}), 409)
    assert "used up its time limit (budget.timeout_s = 60)" in detail
    assert api.get("/api/studies/late").json()["state"] == "completed"


@pytest.mark.parametrize("count_failed", [False, True])
def test_extend_refuses_below_the_claims_counter(
    api: TestClient, migrated: Settings, count_failed: bool
) -> None:
    spec = tiny_spec("count", 20)
    spec["budget"]["count_failed"] = count_failed
    assert api.post("/api/studies", json=spec).status_code == 201
    use_budget(migrated, "count", [RunStatus.COMPLETE, RunStatus.PRUNED, RunStatus.FAILED])
    used = 3 if count_failed else 2
    assert get_study(get_engine(migrated), "count").n_trials == 20
    refused = api.patch("/api/studies/count", json={"n_trials": used - 1})
    assert refused.status_code == 409 and f"the {used} trial(s) already used" in refused.text
    assert api.patch("/api/studies/count", json={"n_trials": used}).status_code == 200
