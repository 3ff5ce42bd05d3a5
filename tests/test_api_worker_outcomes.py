"""GET /api/workers tells a worker's failed trials apart from its done ones (``outcomes``), over
real databases: the registry's ``trials_done`` counts every finished trial, failed ones too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import TrialRun, WorkerRecord
from hpo_service.store.studies import get_study
from tests.conftest import tiny_spec


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        yield client


def test_outcomes_split_done_and_failed_per_worker(api: TestClient, migrated: Settings) -> None:
    assert api.post("/api/studies", json=tiny_spec("w")).status_code == 201
    engine = get_engine(migrated)
    sid = get_study(engine, "w").id
    runs = {"w-a": ["complete", "complete", "pruned", "failed", "running", "requeued"], "w-b": []}
    with session_scope(engine) as session:
        for worker, statuses in runs.items():
            session.add(WorkerRecord(id=worker, host="box", pid=1, device="cpu", trials_done=4))
            for status in statuses:
                session.add(TrialRun(study_id=sid, worker_id=worker, status=status, retries=0))
    items = {w["id"]: w for w in api.get("/api/workers").json()["items"]}
    assert items["w-a"]["outcomes"] == {"complete": 2, "pruned": 1, "failed": 1}
    assert items["w-a"]["trials_done"] == 4  # as the worker counted: failures included
    assert items["w-b"]["outcomes"] == {}
