"""Stopping a study, or reaching its time limit, stops the trial that is training at its next
epoch boundary (hpo_service.scheduling.halting): a real worker with the real trainer on sunspots,
on an SQLite file and on PostgreSQL. The trial ends PRUNED with stop_reason 'stopped' or
'timeout', keeps its curve so far, is not queued again and does not count as a failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo_service.config import Settings
from hpo_service.scheduling.halting import StudyHalt
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.db import get_engine, migrate, session_scope
from hpo_service.store.models import TrialRun
from hpo_service.store.studies import StudyInfo, create_study, get_study, transition
from tests.conftest import make_settings
from tests.test_runs import FAST, tiny_spec

#: Far more epochs than a test waits for: only a stop or a timeout can end the trial.
ENDLESS = {"n_trials": 1, "max_epochs": 10_000, "patience": 10_000}


@pytest.fixture
def fast(db_url: str, tmp_path: Path) -> Settings:
    settings = make_settings(db_url, tmp_path, **FAST)
    migrate(settings)
    return settings


def endless(name: str, **budget: Any) -> Any:
    spec = tiny_spec(name).model_dump(mode="json")
    spec["search_space"] = {"hidden_units": 4, "batch_size": 64, "learning_rate": 0.01}
    spec["budget"] = {**ENDLESS, **budget}
    return parse_spec(spec)


@pytest.fixture
def worker_thread(fast: Settings) -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=60)


def serve(settings: Settings, study: str, threads: list[threading.Thread]) -> threading.Thread:
    """A real worker (the real trainer) in a thread of this process."""
    worker = Worker(settings, WorkerOptions(study=study, exit_when_idle=True))
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    threads.append(thread)
    return thread


def trial_of(settings: Settings, name: str) -> optuna.trial.FrozenTrial:
    trials = optuna.load_study(study_name=name, storage=settings.database_url).trials
    assert len(trials) == 1, [t.state for t in trials]  # nothing was queued again
    return trials[0]


def wait_for_epochs(settings: Settings, name: str, epochs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trials = optuna.load_study(study_name=name, storage=settings.database_url).trials
        if trials and len(trials[0].intermediate_values) >= epochs:
            return
        time.sleep(0.2)
    raise AssertionError(f"the trial did not reach {epochs} epochs in {timeout}s")


def run_of(settings: Settings, info: StudyInfo) -> tuple[str, str | None]:
    with session_scope(get_engine(settings)) as session:
        run = session.query(TrialRun).filter(TrialRun.study_id == info.id).one()
        return run.status, run.reason


def test_stopping_a_study_stops_its_running_trial_at_the_next_epoch(
    fast: Settings, worker_thread: list[threading.Thread]
) -> None:
    info = create_study(fast, endless("stop-me"), start=True)
    thread = serve(fast, info.name, worker_thread)
    wait_for_epochs(fast, info.name, 3)
    transition(get_engine(fast), info.name, "stop")
    asked = time.monotonic()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert time.monotonic() - asked < 30  # one epoch plus one state check, on a busy machine
    trial = trial_of(fast, info.name)
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["stop_reason"] == "stopped"
    assert 3 <= len(trial.intermediate_values) < 10_000  # its curve so far is kept
    assert "hpo_requeued" not in trial.user_attrs
    status, reason = run_of(fast, info)
    assert status == "pruned" and reason is not None and reason.startswith("stopped: ")
    assert get_study(get_engine(fast), info.name).state == "stopped"


def test_a_study_time_limit_stops_the_running_trial(
    fast: Settings, worker_thread: list[threading.Thread]
) -> None:
    info = create_study(fast, endless("out-of-time", timeout_s=4), start=True)
    thread = serve(fast, info.name, worker_thread)
    thread.join(timeout=120)
    assert not thread.is_alive()
    trial = trial_of(fast, info.name)
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["stop_reason"] == "timeout"
    assert trial.datetime_complete is not None and trial.datetime_start is not None
    took = (trial.datetime_complete - trial.datetime_start).total_seconds()
    assert took < 4 + 5  # stopped at an epoch boundary past the limit, not at epoch 10,000
    status, reason = run_of(fast, info)
    assert status == "pruned" and reason is not None and reason.startswith("timeout: ")
    # Not one trial completed: the study ends 'failed', not a plain 'completed' at 0/1.
    assert get_study(get_engine(fast), info.name).state == "failed"


def test_the_state_is_read_at_most_once_a_second(fast: Settings) -> None:
    info = create_study(fast, endless("polled"), start=True)
    halt = StudyHalt(get_engine(fast))
    halt.watch(info)
    assert halt.reason() is None
    transition(get_engine(fast), info.name, "stop")
    assert halt.reason() is None  # checked a moment ago: not read again yet
    time.sleep(1.1)
    assert halt.reason() == "stopped"
    halt.watch(None)
    assert halt.reason() is None
