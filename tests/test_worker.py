"""``hpo worker`` as real subprocesses on a real database (an SQLite file and PostgreSQL): tiny
sunspots trials, 4 racing workers, a worker SIGKILLed mid-trial, PostgreSQL connections terminated
mid-study, SIGTERM (forwarded by a ``--processes 2`` parent) and a second signal. Every wait is
bounded; on failure the workers' logs are in the assertion message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine, select, text

from hpo_service.config import Settings
from hpo_service.scheduling import reaper
from hpo_service.store.db import get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import TrialRun, WorkerRecord
from hpo_service.store.studies import create_study, transition
from tests.conftest import REPO_ROOT, env_for, make_settings
from tests.test_runs import FAST, run_statuses, tiny_spec

T = TypeVar("T")
# A generous grace period where no worker dies: on a machine this busy a live worker's heartbeat
# thread can go unscheduled for seconds, and a false "worker lost" would be a FAIL these tests
# do not expect. The SIGKILL test, which needs the reaper, uses 3 s and tolerates false alarms.
FAST_ENV = {
    "HPO_HEARTBEAT_INTERVAL_S": "0.5",
    "HPO_STALE_AFTER_S": "30",
    "HPO_POLL_INTERVAL_S": "0.2",
    "HPO_LOG_LEVEL": "WARNING",
    "OMP_NUM_THREADS": "1",
}


class Workers:
    """Starts ``hpo worker`` processes and, whatever happens, kills any still running at the end
    (their spawned children included: their pids are in hpo_workers)."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, *args: str, argv: list[str] | None = None, **env: str
    ) -> subprocess.Popen[bytes]:
        command = argv or [sys.executable, "-m", "hpo_service", "worker", *args]
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            command,
            env={**env_for(self.settings), **FAST_ENV, **env},
            cwd=REPO_ROOT if argv else self.tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.tmp_path.glob("worker-*.log"))
        )

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                message = f"workers still running after {timeout}s\n{self.logs()}"
                raise AssertionError(message) from None
        return [proc.returncode for proc in self.procs]

    def kill_leftovers(self) -> None:
        pids = {p.pid for p in self.procs if p.poll() is None}
        try:
            with session_scope(get_engine(self.settings)) as session:
                pids |= set(session.scalars(select(WorkerRecord.pid)))
        except Exception:  # the database may be gone already; the Popen pids are enough then
            pass
        for pid in pids:
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared-sunspots cache for every worker here: each process then reads a small file
    instead of preprocessing (and importing statsmodels) itself."""
    from hpo_service.data import load_dataset

    path = tmp_path_factory.mktemp("cache")
    load_dataset(tiny_spec("warm").task, None, path)
    return path


@pytest.fixture
def fast(db_url: str, tmp_path: Path, warm_cache: Path) -> Settings:
    settings = make_settings(db_url, tmp_path, cache_dir=warm_cache, **FAST)
    migrate(settings)
    return settings


@pytest.fixture
def workers(fast: Settings, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(fast, tmp_path)
    yield started
    started.kill_leftovers()


@pytest.fixture
def pg_fast(pg_url: str, tmp_path: Path, warm_cache: Path) -> Settings:
    settings = make_settings(pg_url, tmp_path, cache_dir=warm_cache, **FAST)
    migrate(settings)
    return settings


@pytest.fixture
def pg_workers(pg_fast: Settings, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(pg_fast, tmp_path)
    yield started
    started.kill_leftovers()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, logs: Workers) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs.logs()}")


def registered(settings: Settings, count: int) -> Callable[[], bool]:
    def check() -> bool:
        with session_scope(get_engine(settings)) as session:
            return len(session.scalars(select(WorkerRecord.id)).all()) >= count

    return check


def failures(done: list[FrozenTrial]) -> list[str]:
    failed = [t for t in done if t.state == TrialState.FAIL]
    return [f"#{t.number}: {t.user_attrs.get('fail_reason')}" for t in failed]


def trials(settings: Settings, name: str) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(settings.database_url)  # uncached: what is stored now
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def running_runs(settings: Settings, epochs_done: int = 1) -> list[tuple[int, str, int]]:
    """(run id, worker id, worker pid) of runs whose trial has reported ``epochs_done`` epochs."""
    sql = text(
        "SELECT r.id, r.worker_id, w.pid FROM hpo_trial_runs r JOIN hpo_workers w "
        "ON w.id = r.worker_id WHERE r.status = 'running' AND r.optuna_trial_id IS NOT NULL AND "
        "(SELECT COUNT(*) FROM trial_intermediate_values v "
        "WHERE v.trial_id = r.optuna_trial_id) >= :n"
    )
    with get_engine(settings).connect() as conn:
        return [(int(a), str(b), int(c)) for a, b, c in conn.execute(sql, {"n": epochs_done})]


def study_state(settings: Settings, name: str) -> str:
    sql = text("SELECT state FROM hpo_studies WHERE name = :n")
    with get_engine(settings).connect() as conn:
        return str(conn.execute(sql, {"n": name}).scalar())


def start_when_registered(settings: Settings, name: str, count: int, procs: Workers) -> None:
    """Start the study once every worker waits on it, so they all race from the first claim."""
    wait_for(registered(settings, count), 120, f"{count} workers to register", procs)
    transition(get_engine(settings), name, "start")


# --- the tests ----------------------------------------------------------------------------------


def test_four_workers_finish_exactly_sixteen_trials(fast: Settings, workers: Workers) -> None:
    info = create_study(fast, tiny_spec("four", n_trials=16, max_epochs=1), start=False)
    for _ in range(4):
        workers.start("--study", "four", "--exit-when-idle")
    start_when_registered(fast, "four", 4, workers)
    assert workers.wait(timeout=150) == [0, 0, 0, 0], workers.logs()
    done = trials(fast, "four")
    assert Counter(t.state for t in done) == {TrialState.COMPLETE: 16}, failures(done)
    assert sorted(t.number for t in done) == list(range(16))
    assert run_statuses(fast, info.id) == {"complete": 16}
    with session_scope(get_engine(fast)) as session:
        rows = session.scalars(select(WorkerRecord)).all()
        run_workers = set(session.scalars(select(TrialRun.worker_id)))
    assert len(rows) == 4 and sum(r.trials_done for r in rows) == 16
    assert {r.state for r in rows} == {"stopped"} and len(run_workers) >= 2
    assert study_state(fast, "four") == "completed"


def test_sigkilled_worker_trial_is_requeued_and_finished_by_another(
    fast: Settings, workers: Workers
) -> None:
    info = create_study(fast, tiny_spec("kill", n_trials=4, max_epochs=12), start=False)
    for _ in range(2):
        workers.start("--study", "kill", "--exit-when-idle", HPO_STALE_AFTER_S="3")
    start_when_registered(fast, "kill", 2, workers)
    _, victim_id, victim_pid = wait_for(
        lambda: running_runs(fast, 1), 60, "a trial mid-training", workers
    )[0]
    with session_scope(get_engine(fast)) as session:
        victim_trial = session.scalar(
            select(TrialRun.trial_number).where(
                TrialRun.worker_id == victim_id, TrialRun.status == "running"
            )
        )
    assert victim_trial is not None
    os.kill(victim_pid, signal.SIGKILL)
    codes = workers.wait(timeout=120)
    assert sorted(codes) == [-signal.SIGKILL, 0], workers.logs()
    done = trials(fast, "kill")
    by_number = {t.number: t for t in done}
    crashed = by_number[victim_trial]
    assert crashed.state == TrialState.FAIL, failures(done)
    assert crashed.user_attrs["fail_reason"].startswith("worker lost")
    retried = [t for t in done if t.user_attrs.get("hpo_retry_of") == crashed.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == crashed.params and retried[0].user_attrs["hpo_retries"] == 1
    # Exact: 4 complete, and each failure is a lost attempt whose copy ran (on a busy machine a
    # live worker's heartbeat can also lapse; such a false alarm must keep the counts exact).
    states = Counter(t.state for t in done)
    assert states[TrialState.COMPLETE] == 4
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAIL}
    assert run_statuses(fast, info.id) == {"complete": 4, "requeued": states[TrialState.FAIL]}
    copies = {t.user_attrs.get("hpo_retry_of") for t in done}
    assert all(t.number in copies for t in done if t.state == TrialState.FAIL), failures(done)
    with session_scope(get_engine(fast)) as session:
        retry_run = session.scalar(
            select(TrialRun).where(TrialRun.optuna_trial_id == retried[0]._trial_id)
        )
        victim = session.get(WorkerRecord, victim_id)
    assert retry_run is not None and retry_run.worker_id != victim_id
    assert victim is not None and victim.state == "lost"
    assert study_state(fast, "kill") == "completed"


def test_postgres_connections_terminated_mid_study_lose_no_trial(
    pg_fast: Settings, pg_workers: Workers
) -> None:
    fast, workers = pg_fast, pg_workers
    info = create_study(fast, tiny_spec("pgkill", n_trials=10, max_epochs=4), start=False)
    for _ in range(2):
        workers.start("--study", "pgkill", "--exit-when-idle")
    start_when_registered(fast, "pgkill", 2, workers)
    admin = create_engine(fast.database_url, isolation_level="AUTOCOMMIT")
    kill = text(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    progress = text("SELECT COUNT(*) FROM hpo_trial_runs WHERE status <> 'running'")
    rounds_mid_study = terminated = last = 0
    last_kill, deadline = time.monotonic(), time.monotonic() + 150
    with admin.connect() as conn:  # the one connection the kills spare
        while any(p.poll() is None for p in workers.procs) and time.monotonic() < deadline:
            finished = int(conn.execute(progress).scalar() or 0)
            if finished != last or time.monotonic() - last_kill > 0.5:  # after every trial
                terminated += int(conn.execute(kill).scalar() or 0)
                rounds_mid_study += 0 < finished < 10
                last, last_kill = finished, time.monotonic()
            time.sleep(0.05)
    admin.dispose()
    assert workers.wait(timeout=30) == [0, 0], workers.logs()
    assert rounds_mid_study >= 5 and terminated >= 10, (rounds_mid_study, terminated)
    done = trials(fast, "pgkill")
    assert Counter(t.state for t in done) == {TrialState.COMPLETE: 10}, failures(done)
    assert run_statuses(fast, info.id) == {"complete": 10}
    assert study_state(fast, "pgkill") == "completed"


def test_sigterm_to_parent_and_child_requeues_each_childs_trial_and_exits_zero(
    fast: Settings, workers: Workers
) -> None:
    info = create_study(fast, tiny_spec("term", n_trials=8, max_epochs=500), start=True)
    parent = workers.start("--study", "term", "--processes", "2")

    def both_busy() -> list[tuple[int, str, int]]:
        busy = running_runs(fast, 1)
        return busy if len(busy) == 2 else []

    busy = wait_for(both_busy, 90, "two trials mid-training", workers)
    parent.send_signal(signal.SIGTERM)
    # As systemd does when it stops the whole cgroup: one child also gets SIGTERM directly. With
    # the parent's forward that makes two requests, which must still mean "after this epoch".
    os.kill(busy[0][2], signal.SIGTERM)
    assert workers.wait(timeout=60) == [0], workers.logs()
    done = trials(fast, "term")
    failed = [t for t in done if t.state == TrialState.FAIL]
    waiting = [t for t in done if t.state == TrialState.WAITING]
    assert len(failed) == 2 and len(waiting) == 2 and len(done) == 4, workers.logs()
    for attempt in failed:
        assert attempt.user_attrs["hpo_requeued"] is True
        assert attempt.user_attrs["fail_reason"].startswith("interrupted after epoch")
        assert len(attempt.intermediate_values) < 500
    assert {(w.user_attrs["hpo_retry_of"], w.user_attrs["hpo_retries"]) for w in waiting} == {
        (t.number, 0) for t in failed
    }
    assert sorted(w.system_attrs["fixed_params"]["learning_rate"] for w in waiting) == sorted(
        t.params["learning_rate"] for t in failed
    )
    assert run_statuses(fast, info.id) == {"requeued": 2}
    with session_scope(get_engine(fast)) as session:
        states = session.scalars(select(WorkerRecord.state)).all()
    assert states == ["stopped", "stopped"]


# --- a second signal ------------------------------------------------------------------------------


def _stubborn_train(spec: Any, trial: optuna.Trial, _stop: Callable[[], bool]) -> list[float]:
    """Ignores stop requests for a minute: only a second signal can end this trial early."""
    from hpo_service.spec.sampling import suggest_params

    suggest_params(trial, spec.search_space)
    time.sleep(60)
    return [1.0]


def stubborn_worker_main() -> None:
    """A worker process (settings from HPO_* variables) whose trials never reach an epoch end."""
    from hpo_service.config import Settings as EnvSettings
    from hpo_service.scheduling.worker import Worker, WorkerOptions

    settings = EnvSettings(_env_file=None)  # type: ignore[call-arg]
    Worker(settings, WorkerOptions(study="second"), _stubborn_train).serve()


def test_second_signal_stops_at_once_and_reaper_recovers(fast: Settings, workers: Workers) -> None:
    create_study(fast, tiny_spec("second", n_trials=2), start=True)
    argv = [sys.executable, "-c", "import tests.test_worker as t; t.stubborn_worker_main()"]
    proc = workers.start(argv=argv)
    wait_for(lambda: running_runs(fast, 0), 60, "a running trial", workers)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the first signal only asks: the trial keeps running
    assert proc.poll() is None and [s.state for s in trials(fast, "second")] == [TrialState.RUNNING]
    proc.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=10) == [-signal.SIGTERM]
    time.sleep(0.6)
    assert reaper.reap(get_engine(fast), get_storage(fast), stale_after_s=0.5) == ["requeued"]
    assert [t.state for t in trials(fast, "second")] == [TrialState.FAIL, TrialState.WAITING]
