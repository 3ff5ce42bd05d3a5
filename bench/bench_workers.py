"""Worker speed against plain Optuna by study size, on SQLite and PostgreSQL, 1 and 4 workers.

Run by hand (never in the test suite)::

    python bench/bench_workers.py                      # SQLite only
    python bench/bench_workers.py --postgres postgresql://postgres@127.0.0.1:5432/postgres \\
        --sizes 100,1000,10000,50000 --workers 1,4

Both sides run the same trivial objective (the spec's search space suggested through
``suggest_params``, then a cheap arithmetic value) with the same sampler built from the same spec
(TPE by default, as the service builds it), on the same database, so the difference is the
service's machinery: budget claims, run rows, heartbeats, the registry, the reaper, the trial
cache, the parameters written together.

For every size S and worker count W, each side gets a fresh study with S finished trials
bulk-inserted (grown_study.py), then W processes (spawned, started together behind a barrier) each
run WARMUP + MEASURED trials: plain Optuna through ``study.optimize``, the service through a
:class:`Worker` (the code behind ``hpo worker``) with the trivial objective as ``train_fn``. The
rate is read back from the trials' start times in the database, the same way for both sides,
after the first WARMUP x W trials (which absorb each process's cold read of the study). A row
prints both rates, the service/plain ratio and the per-trial cost (wall time per trial of the
W processes together). Best of ``--repeat`` runs per side. Last, per backend and worker count, the
per-trial cost at the largest size over that at the smallest (the target: at most 1.5 for the
service at 50,000 against 100). ``--tpe-history`` sets the service's TPE window
(``HPO_TPE_HISTORY``) for a comparison; plain Optuna always uses every trial.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import optuna
from grown_study import prefill
from optuna.storages._rdb import models as om
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.spec.sampling import build_sampler, suggest_params
from hpo_service.store.db import dispose_engines, get_engine, get_storage, migrate
from hpo_service.store.studies import create_study

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


def _service_process(settings: Settings, spec: StudySpec, n: int, ready: Any, go: Event) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options = WorkerOptions(study=spec.name, max_trials=n, exit_when_idle=True)
    worker = Worker(settings, options, trivial_train)
    ready.release()
    go.wait()
    worker.serve()


def run_processes(target: Callable[..., None], args_list: list[tuple[Any, ...]]) -> None:
    """Start the processes, release them together once all are ready, wait for all."""
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, ready, go)) for args in args_list]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    go.set()
    for proc in procs:
        proc.join()
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError("a benchmark process failed")


def measured_rate(settings: Settings, name: str, after: int, skip: int) -> float:
    """Trials per second among the trials numbered ``after`` and up, from their start times,
    leaving out the first ``skip`` (warm-up)."""
    trials, studies = om.TrialModel.__table__, om.StudyModel.__table__
    query = (
        select(trials.c.datetime_start)
        .join(studies, studies.c.study_id == trials.c.study_id)
        .where(studies.c.study_name == name, trials.c.number >= after)
        .where(trials.c.datetime_start.is_not(None))
    )
    with get_engine(settings).connect() as conn:
        starts = sorted(conn.execute(query).scalars())[skip:]
    return (len(starts) - 1) / (starts[-1] - starts[0]).total_seconds()


def _trial_count(settings: Settings, name: str) -> int:
    sql = text(
        "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :name"
    )
    with get_engine(settings).connect() as conn:
        return int(conn.execute(sql, {"name": name}).scalar() or 0)


def side_rate(
    settings: Settings, spec: StudySpec, target: Callable[..., None], workers: int, per: int
) -> float:
    before = _trial_count(settings, spec.name)
    run_processes(target, [(settings, spec, per)] * workers)
    return measured_rate(settings, spec.name, before, WARMUP * workers)


def compare(
    args: argparse.Namespace, settings: Settings, size: int, workers: int
) -> tuple[float, float]:
    """Best (plain trials/s, service trials/s) with ``size`` existing trials and ``workers``
    processes per side, each side on its own fresh, prefilled study."""
    per = WARMUP + args.measured
    total = size + workers * per * args.repeat + 10
    tag = f"{size}-{workers}-{uuid.uuid4().hex[:6]}"
    plain = bench_spec(f"plain-{tag}", total, args.sampler)
    optuna.create_study(study_name=plain.name, storage=get_storage(settings))
    service = bench_spec(f"service-{tag}", total, args.sampler)
    create_study(settings, service, start=True)
    for spec in (plain, service):
        prefill(settings, spec, size)
    plain_best = service_best = 0.0
    for _ in range(args.repeat):
        plain_best = max(plain_best, side_rate(settings, plain, _plain_process, workers, per))
        service_best = max(
            service_best, side_rate(settings, service, _service_process, workers, per)
        )
    return plain_best, service_best


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
    rates: dict[tuple[int, int], tuple[float, float]] = {}
    for size in args.sizes:
        for workers in args.workers:
            started = time.perf_counter()
            plain, service = rates[size, workers] = compare(args, settings, size, workers)
            lines.append(
                f"| {label} | {size:,} | {workers} | {plain:6.1f} | {service:6.1f} | "
                f"{service / plain:5.2f} | {1000 / plain:7.1f} | {1000 / service:7.1f} |"
            )
            print(f"{lines[-1]}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return lines + growth_lines(label, rates, args)


def growth_lines(
    label: str, rates: dict[tuple[int, int], tuple[float, float]], args: argparse.Namespace
) -> list[str]:
    """Per-trial cost at the largest size over the cost at the smallest (issue 14's target:
    at most 1.5 for the service at 50,000 against 100), per worker count."""
    small, large = min(args.sizes), max(args.sizes)
    if small == large:
        return []
    lines = []
    for workers in args.workers:
        (plain_small, service_small), (plain_large, service_large) = (
            rates[small, workers],
            rates[large, workers],
        )
        lines.append(
            f"{label}, {workers} worker(s): per-trial cost at {large:,} / at {small:,} trials: "
            f"service {service_small / service_large:.2f}, plain {plain_small / plain_large:.2f}"
        )
        print(lines[-1], flush=True)
    return lines


def _ints(text_value: str) -> list[int]:
    return [int(part) for part in text_value.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (bench databases)")
    parser.add_argument("--sizes", type=_ints, default=[100, 1000, 10000, 50000])
    parser.add_argument("--workers", type=_ints, default=[1, 4])
    parser.add_argument("--measured", type=int, default=20, help="timed trials per process")
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "random"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; best is kept")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--tpe-history",
        type=int,
        help="HPO_TPE_HISTORY for the service's workers (default: the setting's, 2000; 0: all)",
    )
    args = parser.parse_args()
    if args.tpe_history is not None:  # the spawned workers read it from the environment
        os.environ["HPO_TPE_HISTORY"] = str(args.tpe_history)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    header = (
        "| database | existing trials | workers | plain trials/s | service trials/s "
        "| service/plain | plain ms/trial | service ms/trial |\n|---|---|---|---|---|---|---|---|"
    )
    print(header, flush=True)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            with sqlite_database(Path(tmp)) as url:
                lines += bench_backend("SQLite", url, Path(tmp), args)
        if args.postgres:
            with postgres_database(args.postgres) as url:
                lines += bench_backend("PostgreSQL", url, Path(tmp), args)
    print(
        f"\nsampler {args.sampler}, {WARMUP} warm-up + {args.measured} timed trials per process, "
        f"best of {args.repeat}, HPO_TPE_HISTORY {os.environ.get('HPO_TPE_HISTORY', 'default')}"
        f"\n{header}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
