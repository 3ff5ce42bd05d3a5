"""Worker throughput and per-trial overhead against plain Optuna, on SQLite and PostgreSQL.

Run by hand (never in the test suite)::

    python bench/bench_workers.py                      # SQLite only
    python bench/bench_workers.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

Both sides run the same trivial objective (the spec's search space suggested through
``suggest_params``, then a cheap arithmetic value) with the same sampler built from the same spec
(TPE by default, as the service builds it), on the same database, so the difference is the
service's machinery: budget claims, run rows, heartbeats, the worker registry, the reaper.

1. Throughput, trials/s: N trials with 1 and with 4 processes. Plain Optuna: each process runs
   ``study.optimize`` for N/W trials. Service: each process runs a :class:`Worker` (the code behind
   ``hpo worker``) with the trivial objective injected as ``train_fn``. Timing starts once every
   process has imported and connected (a barrier), and ends when all have exited.
2. Per-trial time with 100 and with 5,000 trials already in the study, one warm process: the mean
   interval between consecutive trial starts after a few warm-up trials (which absorb the cold
   read of the study into the storage cache), read from the database for both sides.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.spec.sampling import build_sampler, suggest_params
from hpo_service.store.clock import utcnow
from hpo_service.store.db import dispose_engines, get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import StudyRecord, TrialRun
from hpo_service.store.studies import StudyInfo, create_study

WARMUP = 5


def bench_spec(name: str, n_trials: int, sampler: str) -> StudySpec:
    return parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"},
            "search_space": {
                "learning_rate": {"low": 0.0005, "high": 0.05, "log": True},
                "batch_size": [16, 32, 64],
                "hidden_units": {"low": 8, "high": 64, "step": 8},
                "optimizer": ["sgd", "momentum", "adam", "rmsprop"],
                "num_layers": [1, 2],
                "cell": ["lstm", "gru"],
            },
            "budget": {"n_trials": n_trials},
            "sampler": {"type": sampler, "n_startup_trials": 10},
            "pruner": "none",
        }
    )


def value_of(params: dict[str, Any]) -> float:
    return (params["learning_rate"] - 0.01) ** 2 + params["hidden_units"] / 1000.0


def trivial_train(spec: StudySpec, trial: optuna.Trial, _stop: Callable[[], bool]) -> list[float]:
    return [value_of(suggest_params(trial, spec.search_space))]


def settings_for(url: str, root: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        artifact_dir=root / "artifacts",
        cache_dir=root / "cache",
        poll_interval_s=0.05,
        log_level="WARNING",
    )


# --- processes behind a barrier -----------------------------------------------------------------


def _plain_process(settings: Settings, spec: StudySpec, n: int, ready: Any, go: Event) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=spec.name, storage=get_storage(settings), sampler=build_sampler(spec)
    )
    ready.release()
    go.wait()
    study.optimize(lambda trial: trivial_train(spec, trial, lambda: False)[0], n_trials=n)


def _service_process(settings: Settings, spec: StudySpec, ready: Any, go: Event) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    worker = Worker(settings, WorkerOptions(study=spec.name, exit_when_idle=True), trivial_train)
    ready.release()
    go.wait()
    worker.serve()


def timed_processes(target: Callable[..., None], args_list: list[tuple[Any, ...]]) -> float:
    """Seconds from the moment every process is ready until the last one exits."""
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, ready, go)) for args in args_list]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError("a benchmark process failed")
    return elapsed


def throughput(args: argparse.Namespace, settings: Settings, workers: int) -> tuple[float, float]:
    """Best (plain trials/s, service trials/s) of ``args.repeat`` alternating runs of
    ``args.trials`` trials over ``workers`` processes (a shared machine is noisy)."""
    plain_best = service_best = 0.0
    for _ in range(args.repeat):
        plain = bench_spec(f"plain-{workers}-{uuid.uuid4().hex[:6]}", args.trials, args.sampler)
        optuna.create_study(study_name=plain.name, storage=get_storage(settings))
        share = [(settings, plain, args.trials // workers)] * workers
        plain_best = max(plain_best, args.trials / timed_processes(_plain_process, share))
        service = bench_spec(f"service-{workers}-{uuid.uuid4().hex[:6]}", args.trials, args.sampler)
        create_study(settings, service, start=True)
        jobs = [(settings, service)] * workers
        service_best = max(service_best, args.trials / timed_processes(_service_process, jobs))
    return plain_best, service_best


# --- per-trial time in a grown study ------------------------------------------------------------


def prefill(settings: Settings, spec: StudySpec, existing: int) -> None:
    """``existing`` finished trials in Optuna and as complete runs in the service's table."""
    study = optuna.load_study(study_name=spec.name, storage=get_storage(settings))
    sampler = optuna.samplers.RandomSampler(seed=0)
    filler = optuna.create_study(sampler=sampler)  # in memory; single objective like the spec
    filler.optimize(lambda t: trivial_train(spec, t, lambda: False)[0], n_trials=existing)
    for trial in filler.get_trials(deepcopy=False):
        study.add_trial(trial)
    with session_scope(get_engine(settings)) as session:
        study_id = session.scalar(select(StudyRecord.id).where(StudyRecord.name == spec.name))
        now = utcnow()
        rows = [
            {"study_id": study_id, "status": "complete", "retries": 0, "started_at": now}
            | {"heartbeat_at": now, "worker_id": "prefill", "trial_number": number}
            for number in range(existing)
        ]
        session.execute(insert(TrialRun), rows)


def mean_interval(starts: list[datetime]) -> float:
    starts = sorted(starts)[WARMUP:]
    return (starts[-1] - starts[0]).total_seconds() / (len(starts) - 1)


def _plain_interval(settings: Settings, spec: StudySpec, measured: int) -> float:
    study = optuna.load_study(
        study_name=spec.name, storage=get_storage(settings), sampler=build_sampler(spec)
    )
    before = len(study.get_trials(deepcopy=False))
    study.optimize(lambda t: trivial_train(spec, t, lambda: False)[0], n_trials=WARMUP + measured)
    starts = [t.datetime_start for t in study.get_trials()[before:] if t.datetime_start]
    return mean_interval(starts)


def _service_interval(settings: Settings, info: StudyInfo, measured: int) -> float:
    options = WorkerOptions(study=info.name, max_trials=WARMUP + measured)
    worker = Worker(settings, options, trivial_train)
    worker.serve()
    with session_scope(get_engine(settings)) as session:
        starts = session.scalars(select(TrialRun.started_at).where(TrialRun.worker_id == worker.id))
        return mean_interval(list(starts))


def per_trial_ms(
    args: argparse.Namespace, settings: Settings, existing: int
) -> tuple[float, float]:
    """Best (plain ms, service ms) per trial with ``existing`` trials already in the study, each
    side on its own prefilled study, in fresh processes' worth of cold caches (warm-up trials
    absorb the cold read)."""
    total = existing + args.repeat * (WARMUP + args.measured) + 10
    plain = bench_spec(f"grown-plain-{uuid.uuid4().hex[:6]}", total, args.sampler)
    create_study(settings, plain, start=False)
    prefill(settings, plain, existing)
    service = bench_spec(f"grown-service-{uuid.uuid4().hex[:6]}", total, args.sampler)
    info = create_study(settings, service, start=True)
    prefill(settings, service, existing)
    plain_ms, service_ms = [], []
    for _ in range(args.repeat):
        plain_ms.append(_plain_interval(settings, plain, args.measured) * 1000)
        service_ms.append(_service_interval(settings, info, args.measured) * 1000)
    return min(plain_ms), min(service_ms)


# --- databases and the report -------------------------------------------------------------------


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    name = f"hpo_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sqlite_database(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root / 'bench.db'}"
    dispose_engines()


def bench_backend(label: str, url: str, root: Path, args: argparse.Namespace) -> list[str]:
    settings = settings_for(url, root)
    migrate(settings)
    lines = []
    for workers in (1, 4):
        plain, service = throughput(args, settings, workers)
        lines.append(
            f"{label:<10} {workers} worker(s)  plain {plain:6.1f}/s  service {service:6.1f}/s"
            f"  service/plain {service / plain:5.2f}"
        )
        print(lines[-1], flush=True)
    small = per_trial_ms(args, settings, 100)
    big = per_trial_ms(args, settings, args.big)
    for side, index in (("plain", 0), ("service", 1)):
        lines.append(
            f"{label:<10} {side:<7} per trial  {small[index]:6.1f} ms at 100  "
            f"{big[index]:6.1f} ms at {args.big}  ratio {big[index] / small[index]:5.2f}"
        )
        print(lines[-1], flush=True)
    lines.append(
        f"{label:<10} service overhead per trial: {small[1] - small[0]:+6.1f} ms at 100, "
        f"{big[1] - big[0]:+6.1f} ms at {args.big}"
    )
    print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (bench databases)")
    parser.add_argument("--trials", type=int, default=200, help="trials per throughput run")
    parser.add_argument("--big", type=int, default=5000, help="trials already in the big study")
    parser.add_argument("--measured", type=int, default=20, help="trials timed per overhead run")
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "random"])
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs; best is kept")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            with sqlite_database(Path(tmp)) as url:
                lines += bench_backend("sqlite", url, Path(tmp), args)
        if args.postgres:
            with postgres_database(args.postgres) as url:
                lines += bench_backend("postgres", url, Path(tmp), args)
    print(
        f"\nsampler {args.sampler}, {args.trials} trials per throughput run, "
        f"{args.measured} timed trials per overhead run, best of {args.repeat}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
