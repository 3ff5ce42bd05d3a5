"""CUDA out-of-memory inside a trial: the trial fails with reason "out of memory" and the worker
goes on to the next one. No GPU is needed: the real trainer runs on CPU in a real in-process
worker on an SQLite file, and only the second epoch of the first trial is replaced by one that
raises what PyTorch raises when the GPU is full."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState
from sqlalchemy import select

from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import TrialRun
from hpo_service.store.studies import create_study
from hpo_service.train import loop
from tests.conftest import make_settings, tiny_spec


def test_cuda_out_of_memory_fails_the_trial_and_the_worker_continues(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(sqlite_url, tmp_path, poll_interval_s=0.1)
    migrate(settings)
    info = create_study(settings, parse_spec(tiny_spec("oom", n_trials=3)), start=True)
    real_epoch, calls = loop.run_epoch, Counter[str]()

    def epoch_that_runs_out_of_memory(run: Any, epoch: int) -> Any:
        calls["epochs"] += 1
        if calls["epochs"] == 2:  # the first trial's second epoch, after one real epoch
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_epoch(run, epoch)

    monkeypatch.setattr(loop, "run_epoch", epoch_that_runs_out_of_memory)
    done = Worker(settings, WorkerOptions(study="oom", exit_when_idle=True)).serve()

    trials = optuna.load_study(study_name="oom", storage=get_storage(settings)).get_trials()
    first = trials[0]
    assert first.state == TrialState.FAIL
    assert first.user_attrs["fail_reason"] == "out of memory"
    assert "hpo_retry_of" not in first.user_attrs  # a failure, not a requeue
    # Failures do not use up budget (count_failed: false): three more trials complete after it.
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 3
    with get_engine(settings).connect() as conn:
        assert all(trial_data.artifact_dir(conn, t._trial_id) for t in trials[1:])
    assert done == 4
    with session_scope(get_engine(settings)) as session:
        rows = session.execute(
            select(TrialRun.status, TrialRun.reason).where(TrialRun.study_id == info.id)
        ).all()
    assert Counter(status for status, _ in rows) == {"failed": 1, "complete": 3}
    assert [reason for status, reason in rows if status == "failed"] == ["out of memory"]
