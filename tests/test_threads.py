"""torch threads per worker: who decides (request, setting, default from the cores and the local
workers), that a worker process really runs with them, and clear errors for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling.processes import default_threads, worker_threads
from hpo_service.store.studies import create_study
from tests.conftest import env_for, make_settings
from tests.test_runs import tiny_spec


def test_requested_threads_beat_the_setting_which_beats_the_default(tmp_path: Path) -> None:
    plain = make_settings(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    assert worker_threads(plain, None, 1) == default_threads(1)
    assert worker_threads(plain, None, 64) == 1  # more workers than cores: one thread each
    configured = make_settings(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, worker_threads=3)
    assert worker_threads(configured, None, 2) == 3
    assert worker_threads(configured, 2, 2) == 2


def test_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_WORKER_THREADS", "2")
    assert Settings(_env_file=None).worker_threads == 2  # type: ignore[call-arg]


def test_a_worker_process_runs_with_its_intra_and_inter_op_threads() -> None:
    code = (
        "from hpo_service.scheduling.objective import set_torch_threads\n"
        "set_torch_threads(1)\n"
        "import torch\n"
        "print(torch.get_num_threads(), torch.get_num_interop_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_api_refuses_a_bad_thread_count(migrated: Settings) -> None:
    create_study(migrated, tiny_spec("threads-api"), start=False)
    with TestClient(create_app(migrated)) as client:
        response = client.post("/api/studies/threads-api/workers", json={"threads": 0})
    assert response.status_code == 422
    assert "threads" in response.text


def test_cli_refuses_a_bad_thread_count(migrated: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpo_service", "worker", "--threads", "0"],
        capture_output=True,
        text=True,
        env=env_for(migrated),
        timeout=120,
    )
    assert result.returncode == 2
    assert "--threads" in result.stderr and "Traceback" not in result.stderr
