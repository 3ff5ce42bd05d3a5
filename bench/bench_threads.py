"""Trials per hour for K local workers x T torch threads each, on one sunspots study.

Run by hand (never in the test suite)::

    python bench/bench_threads.py                       # K in 1,2,4 and T in 1,2 on SQLite
    python bench/bench_threads.py --workers 1,2 --threads 1,2,4 --trials 12

Every row runs the same study from scratch: the sunspots forecaster with a fixed architecture
(only the learning rate is searched, so every trial does the same work), random search, no
pruning, a fixed number of epochs. K worker processes are started the way ``hpo worker
--processes K`` starts them (``processes.spawn_workers``), each with T torch threads, and the wall
time from their start until the budget is spent gives trials per hour. The row marked
``default`` is what a worker picks without ``--threads`` (``processes.default_threads``: the
cores shared out among the local workers); the last column says how far each row is from the
best one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from hpo_service.config import Settings
from hpo_service.scheduling.processes import default_threads, spawn_workers
from hpo_service.scheduling.worker import WorkerOptions
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.store.db import dispose_engines, migrate
from hpo_service.store.studies import create_study


def threads_spec(name: str, trials: int, epochs: int) -> StudySpec:
    return parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"}
            | {"lookback": 24, "seed": 0},
            "search_space": {
                "learning_rate": {"low": 0.001, "high": 0.02, "log": True},
                "batch_size": 32,
                "hidden_units": 64,
                "num_layers": 2,
                "optimizer": "adam",
                "cell": "lstm",
            },
            "budget": {"n_trials": trials, "max_epochs": epochs, "patience": epochs},
            "sampler": {"type": "random", "seed": 0},
            "pruner": "none",
        }
    )


def trials_per_hour(
    settings: Settings, args: argparse.Namespace, workers: int, threads: int
) -> float:
    spec = threads_spec(
        f"threads-{workers}x{threads}-{uuid.uuid4().hex[:6]}", args.trials, args.epochs
    )
    create_study(settings, spec, start=True)
    options = WorkerOptions(study=spec.name, exit_when_idle=True, num_threads=threads)
    started = time.perf_counter()
    children = spawn_workers(settings, options, ["cpu"] * workers)
    for child in children:
        child.join()
    elapsed = time.perf_counter() - started
    if any(child.exitcode != 0 for child in children):
        raise RuntimeError("a worker process failed")
    return args.trials / elapsed * 3600


def _ints(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=_ints, default=[1, 2, 4], help="K values")
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="T values")
    parser.add_argument("--trials", type=int, default=8, help="trials per row")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rows: list[tuple[int, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite:///{root / 'threads.db'}",
            artifact_dir=root / "artifacts",
            cache_dir=root / "cache",
            poll_interval_s=0.2,
            log_level="WARNING",
        )
        migrate(settings)
        for workers in args.workers:
            for threads in args.threads:
                rate = trials_per_hour(settings, args, workers, threads)
                rows.append((workers, threads, rate))
                print(f"K={workers} T={threads}: {rate:,.0f} trials/hour", flush=True)
        dispose_engines()
    best = max(rate for _, _, rate in rows)
    print(f"\n{os.cpu_count()} cores; {args.trials} trials x {args.epochs} epochs per row")
    print("| workers K | threads T | trials/hour | vs best |\n|---|---|---|---|")
    for workers, threads, rate in rows:
        mark = " (default)" if threads == default_threads(workers) else ""
        print(f"| {workers} | {threads}{mark} | {rate:,.0f} | {rate / best - 1:+.0%} |")


if __name__ == "__main__":
    main()
