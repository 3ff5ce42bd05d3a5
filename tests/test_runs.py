"""Budget claims, heartbeats, the reaper and the worker registry, on an SQLite file and on
PostgreSQL. Workers here are real :class:`Worker` objects (in this process, or 8 spawned
processes) with a trivial train function instead of the LSTM trainer, so these tests exercise the
service's own machinery: claims under contention, ask/tell, requeue, recovery.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError, PendingRollbackError

from hpo_service.config import Settings
from hpo_service.scheduling import claims, reaper
from hpo_service.scheduling.outcomes import TrialFailed, retry, transient
from hpo_service.scheduling.registry import beat, list_workers, register
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.spec.sampling import suggest_params
from hpo_service.store.clock import utcnow
from hpo_service.store.db import get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import StudyRecord, TrialRun, WorkerRecord
from hpo_service.store.studies import StudyInfo, create_study, load_optuna_study
from tests.conftest import make_settings

# No worker dies in these tests: a long grace period keeps a heartbeat thread that a busy machine
# leaves unscheduled for seconds from being taken for a lost worker.
FAST = {"heartbeat_interval_s": 0.5, "stale_after_s": 30.0, "poll_interval_s": 0.1}


def tiny_spec(name: str, **budget: Any) -> StudySpec:
    """Tiny sunspots trials: hidden 8, a few epochs, random search (cheap, no pruning)."""
    return parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse", "lookback": 8},
            "search_space": {
                "hidden_units": 8,
                "batch_size": 64,
                "learning_rate": {"low": 0.001, "high": 0.05, "log": True},
                "optimizer": ["adam", "rmsprop"],
            },
            "budget": {"n_trials": 16, "max_epochs": 2, **budget},
            "sampler": {"type": "random", "seed": 0},
            "pruner": "none",
        }
    )


def trial_states(settings: Settings, name: str) -> Counter[str]:
    study = optuna.load_study(study_name=name, storage=get_storage(settings))
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def run_statuses(settings: Settings, study_id: int) -> dict[str, int]:
    with session_scope(get_engine(settings)) as session:
        return claims.status_counts(session, study_id)


def study_state(settings: Settings, study_id: int) -> str:
    with session_scope(get_engine(settings)) as session:
        return str(session.get(StudyRecord, study_id).state)  # type: ignore[union-attr]


# --- a trivial objective and 8 racing worker processes -------------------------------------------


def flaky_train(spec: StudySpec, trial: optuna.Trial, _stop: Callable[[], bool]) -> list[float]:
    """Completes, prunes or fails by trial number, so every outcome races."""
    params = suggest_params(trial, spec.search_space)
    time.sleep(0.005)
    if trial.number % 5 == 3:
        raise TrialFailed("planned failure")
    if trial.number % 5 == 4:
        raise optuna.TrialPruned("planned prune")
    return [float(params["learning_rate"])]


def _race(settings: Settings, study: str) -> None:
    Worker(settings, WorkerOptions(study=study, exit_when_idle=True), flaky_train).serve()


@pytest.fixture
def fast(db_url: str, tmp_path: Path) -> Settings:
    settings = make_settings(db_url, tmp_path, **FAST)
    migrate(settings)
    return settings


def test_eight_racing_worker_processes_spend_the_budget_exactly(fast: Settings) -> None:
    info = create_study(fast, tiny_spec("race", n_trials=30, count_failed=True), start=True)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_race, args=(fast, "race")) for _ in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 8
    states = trial_states(fast, "race")
    # FAIL counts here (count_failed): finished trials are exactly the budget, nothing left over.
    assert states["COMPLETE"] + states["PRUNED"] + states["FAIL"] == 30, states
    assert states["FAIL"] > 0 and states["PRUNED"] > 0
    assert run_statuses(fast, info.id) == {
        "complete": states["COMPLETE"],
        "pruned": states["PRUNED"],
        "failed": states["FAIL"],
    }
    assert study_state(fast, info.id) == "completed"
    workers = list_workers(get_engine(fast), fast.stale_after_s)
    assert len(workers) == 8 and sum(w.trials_done for w in workers) == 30
    assert all(w.state == "stopped" and not w.alive for w in workers)


# --- claims -------------------------------------------------------------------------------------


def _claim(settings: Settings, info: StudyInfo, worker: str = "w") -> claims.Claim | None:
    with session_scope(get_engine(settings)) as session:
        return claims.claim_unit(session, info.id, worker, info.spec)


def _finish(
    settings: Settings, run_id: int, status: str, worker: str = "w", count_failed: bool = False
) -> bool:
    with session_scope(get_engine(settings)) as session:
        return claims.finish(session, run_id, worker, status, count_failed=count_failed)


def test_claims_stop_at_budget_and_failures_count_per_spec(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("b", n_trials=3), start=True)
    claims = [_claim(migrated, info) for _ in range(3)]
    assert [c.ordinal for c in claims if c] == [0, 1, 2]
    assert _claim(migrated, info) is None
    assert _finish(migrated, claims[0].run_id, "failed")  # type: ignore[union-attr]
    assert _finish(migrated, claims[1].run_id, "requeued")  # type: ignore[union-attr]
    # Neither a failure (count_failed: false) nor a requeued attempt uses up budget.
    assert _claim(migrated, info) is not None and _claim(migrated, info) is not None
    assert _claim(migrated, info) is None

    counted = create_study(migrated, tiny_spec("c", n_trials=2, count_failed=True), start=True)
    first = _claim(migrated, counted)
    assert first is not None and _finish(migrated, first.run_id, "failed", count_failed=True)
    assert _claim(migrated, counted) is not None
    assert _claim(migrated, counted) is None


def test_failures_that_do_not_count_still_cap_the_study(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("cap", n_trials=2), start=True)
    for _ in range(2):
        claimed = _claim(migrated, info)
        assert claimed is not None and _finish(migrated, claimed.run_id, "failed")
    assert _claim(migrated, info) is None
    with session_scope(get_engine(migrated)) as session:
        assert claims.maybe_complete(session, info.id)
    # Not one trial completed: the study ends 'failed', not 'completed' at 0/2.
    assert study_state(migrated, info.id) == "failed"


def test_deadline_stops_claims_and_completes_once_nothing_runs(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("t", n_trials=100, timeout_s=60), start=True)
    running = _claim(migrated, info)
    assert running is not None
    with session_scope(get_engine(migrated)) as session:
        session.execute(
            update(StudyRecord)
            .where(StudyRecord.id == info.id)
            .values(started_at=utcnow() - timedelta(seconds=61))
        )
    assert _claim(migrated, info) is None
    with session_scope(get_engine(migrated)) as session:
        assert not claims.maybe_complete(session, info.id)  # a trial still runs
    _finish(migrated, running.run_id, "complete")
    with session_scope(get_engine(migrated)) as session:
        assert claims.maybe_complete(session, info.id)
    assert study_state(migrated, info.id) == "completed"  # one trial completed


def test_paused_study_gives_no_claims(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("p"), start=False)
    assert _claim(migrated, info) is None


def test_worker_respects_timeout_in_process(fast: Settings) -> None:
    spec = tiny_spec("slow", n_trials=1000, timeout_s=1.0)
    info = create_study(fast, spec, start=True)

    def slow(spec: StudySpec, trial: optuna.Trial, _stop: Callable[[], bool]) -> list[float]:
        suggest_params(trial, spec.search_space)
        time.sleep(0.2)
        return [1.0]

    started = time.monotonic()
    done = Worker(fast, WorkerOptions(study="slow", exit_when_idle=True), slow).serve()
    assert 1 <= done < 1000 and time.monotonic() - started < 30
    assert study_state(fast, info.id) == "completed"
    assert trial_states(fast, "slow") == Counter(COMPLETE=done)
    with session_scope(get_engine(fast)) as session:
        claimed = session.scalars(select(TrialRun.started_at)).all()
    assert info.started_at is not None
    deadline = info.started_at + timedelta(seconds=1.0)
    assert len(claimed) == done and max(claimed) <= deadline  # nothing claimed after it


def test_grid_search_covers_the_grid_once_and_completes(fast: Settings) -> None:
    spec = parse_spec(
        {
            "name": "grid",
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"},
            "search_space": {
                "optimizer": ["adam", "sgd"],
                "batch_size": [32, 64],
                "learning_rate": 0.01,
                "hidden_units": 8,
            },
            "budget": {"n_trials": 10},
            "sampler": {"type": "grid", "seed": 0},
            "pruner": "none",
        }
    )
    info = create_study(fast, spec, start=True)

    def train(spec: StudySpec, trial: optuna.Trial, _stop: Callable[[], bool]) -> list[float]:
        return [float(suggest_params(trial, spec.search_space)["batch_size"])]

    assert Worker(fast, WorkerOptions(study="grid", exit_when_idle=True), train).serve() == 4
    done = _trials(fast, "grid")
    assert {(t.params["optimizer"], t.params["batch_size"]) for t in done} == {
        ("adam", 32),
        ("adam", 64),
        ("sgd", 32),
        ("sgd", 64),
    }
    assert study_state(fast, info.id) == "completed"


# --- the reaper ---------------------------------------------------------------------------------


def _start_trial(settings: Settings, info: StudyInfo, worker: str = "w") -> tuple[int, int]:
    """What a worker does before training: claim, ask, suggest, attach. Returns (run, trial id)."""
    claimed = _claim(settings, info, worker)
    assert claimed is not None
    trial = load_optuna_study(get_storage(settings), info).ask()
    suggest_params(trial, info.spec.search_space)
    with session_scope(get_engine(settings)) as session:
        claims.attach(session, claimed.run_id, trial, 0, worker_id=worker)
    return claimed.run_id, trial._trial_id


def _trials(settings: Settings, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=get_storage(settings)).get_trials()


def _reap(settings: Settings, stale_after_s: float = 0.2) -> list[str]:
    return reaper.reap(get_engine(settings), get_storage(settings), stale_after_s)


def test_racing_reapers_requeue_a_stale_trial_exactly_once(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("r", n_trials=2), start=True)
    _start_trial(migrated, info)
    assert _reap(migrated, stale_after_s=30) == []  # fresh heartbeat: left alone
    time.sleep(0.3)
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.extend(_reap(migrated))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["requeued"]
    crashed, copy = _trials(migrated, "r")
    assert crashed.state == TrialState.FAIL and crashed.user_attrs["hpo_requeued"] is True
    assert crashed.user_attrs["fail_reason"].startswith("worker lost")
    assert copy.state == TrialState.WAITING
    assert copy.system_attrs["fixed_params"] == crashed.params
    assert copy.user_attrs == {"hpo_retries": 1, "hpo_retry_of": crashed.number}
    assert run_statuses(migrated, info.id) == {"requeued": 1}
    # The freed unit of budget goes to the copy: the next ask pops it.
    _, trial_id = _start_trial(migrated, info)
    assert trial_id == copy._trial_id


def test_retries_are_bounded_by_max_retries(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("m", n_trials=3, max_retries=1), start=True)
    _start_trial(migrated, info)
    time.sleep(0.3)
    assert _reap(migrated) == ["requeued"]
    _start_trial(migrated, info)  # pops the copy, which crashes as well
    time.sleep(0.3)
    assert _reap(migrated) == ["failed"]
    trials = _trials(migrated, "m")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert trials[1].user_attrs["hpo_retries"] == 1
    assert trials[1].user_attrs["hpo_requeued"] is False
    assert run_statuses(migrated, info.id) == {"requeued": 1, "failed": 1}


def test_a_trial_told_before_its_worker_died_keeps_its_outcome(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("told", n_trials=2), start=True)
    _, trial_id = _start_trial(migrated, info)
    get_storage(migrated).set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])
    time.sleep(0.3)
    assert _reap(migrated) == ["complete"]
    assert run_statuses(migrated, info.id) == {"complete": 1}
    assert [t.state for t in _trials(migrated, "told")] == [TrialState.COMPLETE]


def test_a_worker_presumed_dead_cannot_overwrite_the_reaper(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("zombie", n_trials=2), start=True)
    run_id, _ = _start_trial(migrated, info, worker="w1")
    time.sleep(0.3)
    _reap(migrated)
    with session_scope(get_engine(migrated)) as session:
        assert not claims.beat(session, "w1", run_id)
        assert not claims.finish(session, run_id, "w1", "complete", count_failed=False)
    assert run_statuses(migrated, info.id) == {"requeued": 1}


def test_orphaned_running_trial_is_failed_and_requeued(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("o", n_trials=3), start=True)
    study = load_optuna_study(get_storage(migrated), info)
    orphan, recorded = study.ask(), study.ask()  # neither is held by a run yet
    for trial in (orphan, recorded):
        suggest_params(trial, info.spec.search_space)
    plain = optuna.create_study(study_name="not-ours", storage=get_storage(migrated))
    plain.ask()  # a plain Optuna study on the same database is not the reaper's business
    assert _reap(migrated, 1.0) == []  # first seen unheld: they may be recorded on a run soon
    claimed = _claim(migrated, info)
    assert claimed is not None
    with session_scope(get_engine(migrated)) as session:
        claims.attach(session, claimed.run_id, recorded, 0, worker_id="w")
    time.sleep(1.2)  # a grace period of 1 s: the beat below stays fresh on a loaded machine
    with session_scope(get_engine(migrated)) as session:
        assert claims.beat(session, "w", claimed.run_id)  # its worker is alive
    assert _reap(migrated, 1.0) == ["requeued"]  # only the one still unheld a grace period later
    states = [t.state for t in _trials(migrated, "o")]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert [t.state for t in plain.get_trials()] == [TrialState.RUNNING]


# --- the registry -------------------------------------------------------------------------------


def test_list_workers_flags_dead_ones_and_reaper_marks_them_lost(migrated: Settings) -> None:
    engine = get_engine(migrated)
    with session_scope(engine) as session:
        register(session, "alive-1", "host-a", 11, "cpu", None)
        register(session, "dead-2", "host-b", 22, "cuda:0", "s")
    with session_scope(engine) as session:
        session.execute(
            update(WorkerRecord)
            .where(WorkerRecord.id == "dead-2")
            .values(heartbeat_at=utcnow() - timedelta(seconds=120))
        )
    by_id = {w.id: w for w in list_workers(engine, stale_after_s=60)}
    assert by_id["alive-1"].alive and not by_id["dead-2"].alive
    assert by_id["dead-2"].device == "cuda:0" and by_id["dead-2"].host == "host-b"
    reaper.reap(engine, get_storage(migrated), stale_after_s=60)
    with session_scope(engine) as session:
        states = dict(session.execute(select(WorkerRecord.id, WorkerRecord.state)).all())
    assert states == {"alive-1": "idle", "dead-2": "lost"}
    assert [w.id for w in list_workers(engine, 60, active_only=True)] == ["alive-1"]


def test_the_worker_of_a_reaped_run_is_lost_even_if_its_row_beat_later(migrated: Settings) -> None:
    """The race CI hit: the worker's row was written after its run's last beat, so at the reap
    the run was stale but the row was not, and the dead worker stayed 'busy' for good."""
    engine = get_engine(migrated)
    info = create_study(migrated, tiny_spec("late", n_trials=2), start=True)
    with session_scope(engine) as session:
        register(session, "w", "host", 1, "cpu", None)
    _start_trial(migrated, info, worker="w")
    time.sleep(0.3)
    with session_scope(engine) as session:
        beat(session, "w")  # the row is fresh, the run is not
    assert _reap(migrated) == ["requeued"]
    with session_scope(engine) as session:
        assert session.get(WorkerRecord, "w").state == "lost"  # type: ignore[union-attr]


# --- retries through Optuna's wrapping -----------------------------------------------------------


def _wrapped_disconnect() -> optuna.exceptions.StorageInternalError:
    """What Optuna raises when a connection drops mid-read and it retries in the broken session:
    StorageInternalError <- PendingRollbackError, whose context is the real disconnect."""
    disconnect = OperationalError("SELECT 1", {}, Exception("terminating connection"))
    pending = PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
    pending.__context__ = disconnect  # raised while handling it, as SQLAlchemy does
    wrapped = optuna.exceptions.StorageInternalError("An exception is raised during the commit")
    wrapped.__cause__ = pending
    return wrapped


def test_retry_sees_a_disconnect_through_optunas_wrapping() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _wrapped_disconnect()
        return "ok"

    assert transient(_wrapped_disconnect())
    assert retry(flaky) == "ok" and len(calls) == 3
    bad_data = optuna.exceptions.StorageInternalError("exceeding max length")
    bad_data.__cause__ = ValueError("too long")
    assert not transient(bad_data)
    with pytest.raises(optuna.exceptions.StorageInternalError):
        retry(lambda: (_ for _ in ()).throw(bad_data))
